// Vector table for the STM32F746 (RM0385 10.1.2, table 40: 98 peripheral interrupts).
// Only USART1 (position 37) is used; everything else goes to Default_Handler.
#include "vectors.h"

void Usart1_Handler(void);

__attribute__((section(".isr_vector"), used)) const vector_t g_vectors[16 + 98] = {
    CM7_CORE_VECTORS,
    [16 ... 16 + 36] = Default_Handler,
    [16 + 37] = Usart1_Handler,
    [16 + 38 ... 16 + 97] = Default_Handler,
};
