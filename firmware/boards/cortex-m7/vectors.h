// The Cortex-M7's own 16 exception vectors (ARMv7-M ARM B1.5.2, table B1-4), shared by the MCU boards'
// vector tables, which add their external interrupts after them (position 16 + IRQ number).
#ifndef FIRMWARE_BOARDS_CORTEX_M7_VECTORS_H_
#define FIRMWARE_BOARDS_CORTEX_M7_VECTORS_H_

#include <stdint.h>

extern uint32_t __stack_top[];
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);

typedef void (*vector_t)(void);

#define CM7_CORE_VECTORS                                 \
    (vector_t)(uintptr_t)__stack_top, /* initial SP */   \
        Reset_Handler,                                   \
        Default_Handler,  /* NMI */                      \
        Default_Handler,  /* HardFault */                \
        Default_Handler,  /* MemManage */                \
        Default_Handler,  /* BusFault */                 \
        Default_Handler,  /* UsageFault */               \
        0, 0, 0, 0,       /* reserved */                 \
        Default_Handler,  /* SVCall */                   \
        Default_Handler,  /* DebugMonitor */             \
        0,                /* reserved */                 \
        Default_Handler,  /* PendSV */                   \
        SysTick_Handler

#endif  // FIRMWARE_BOARDS_CORTEX_M7_VECTORS_H_
