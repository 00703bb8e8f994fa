// Vector table for QEMU mps2-an500 (Cortex-M7). External IRQs follow QEMU's hw/arm/mps2.c:
// UART0 RX = IRQ 0, UART0 TX = IRQ 1 (only UART0 RX is used).
#include <stdint.h>

extern uint32_t __stack_top[];
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void Uart0Rx_Handler(void);

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t g_vectors[16 + 32] = {
    (vector_t)(uintptr_t)__stack_top,  // initial SP
    Reset_Handler,
    Default_Handler,  // NMI
    Default_Handler,  // HardFault
    Default_Handler,  // MemManage
    Default_Handler,  // BusFault
    Default_Handler,  // UsageFault
    0, 0, 0, 0,       // reserved
    Default_Handler,  // SVCall
    Default_Handler,  // DebugMonitor
    0,                // reserved
    Default_Handler,  // PendSV
    SysTick_Handler,
    [16 + 0] = Uart0Rx_Handler,
    [16 + 1 ... 16 + 31] = Default_Handler,
};
