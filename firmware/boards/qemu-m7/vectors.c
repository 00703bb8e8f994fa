// Vector table for QEMU mps2-an500 (Cortex-M7). External IRQs follow QEMU's hw/arm/mps2.c:
// UART0 RX = IRQ 0, UART0 TX = IRQ 1 (only UART0 RX is used).
#include "vectors.h"

void Uart0Rx_Handler(void);

__attribute__((section(".isr_vector"), used)) const vector_t g_vectors[16 + 32] = {
    CM7_CORE_VECTORS,
    [16 + 0] = Uart0Rx_Handler,
    [16 + 1 ... 16 + 31] = Default_Handler,
};
