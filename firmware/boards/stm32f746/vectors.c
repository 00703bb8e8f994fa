// Vector table for the STM32F746 (RM0385 10.1.2, table 40: 98 peripheral interrupts).
// Only USART1 (position 37) is used; everything else goes to Default_Handler.
#include <stdint.h>

extern uint32_t __stack_top[];
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void Usart1_Handler(void);

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used)) const vector_t g_vectors[16 + 98] = {
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
    [16 ... 16 + 36] = Default_Handler,
    [16 + 37] = Usart1_Handler,
    [16 + 38 ... 16 + 97] = Default_Handler,
};
