// Cortex-M7 core registers used by the MCU boards (ARMv7-M Architecture Reference Manual,
// "System Control Space"; Cortex-M7 TRM for the cache and DWT lock registers).
// No vendor headers: just the addresses we touch.
#ifndef FIRMWARE_BOARDS_CORTEX_M7_CM7_H_
#define FIRMWARE_BOARDS_CORTEX_M7_CM7_H_

#include <stdint.h>

#define CM7_REG(addr) (*(volatile uint32_t*)(addr))

// System Control Block (ARMv7-M ARM B3.2.2).
#define SCB_ICSR CM7_REG(0xE000ED04u)
#define SCB_VTOR CM7_REG(0xE000ED08u)
#define SCB_AIRCR CM7_REG(0xE000ED0Cu)
#define SCB_CCR CM7_REG(0xE000ED14u)   // bit 16 DC: data cache, bit 17 IC: instruction cache
#define SCB_CPACR CM7_REG(0xE000ED88u) // bits 20-23: CP10/CP11 full access = FPU on
#define SCB_CCSIDR CM7_REG(0xE000ED80u)
#define SCB_CSSELR CM7_REG(0xE000ED84u)
#define SCB_ICIALLU CM7_REG(0xE000EF50u)  // invalidate the whole I-cache
#define SCB_DCISW CM7_REG(0xE000EF60u)    // invalidate D-cache line by set/way

// MPU (ARMv7-M ARM B3.5): region number, base address, attributes and size.
#define MPU_CTRL CM7_REG(0xE000ED94u)  // bit 0 ENABLE, bit 2 PRIVDEFENA (default map elsewhere)
#define MPU_RNR CM7_REG(0xE000ED98u)
#define MPU_RBAR CM7_REG(0xE000ED9Cu)
#define MPU_RASR CM7_REG(0xE000EDA0u)  // bit 28 XN, bits 24-26 AP, bits 1-5 SIZE (2^(SIZE+1) B), bit 0 EN

// SysTick (ARMv7-M ARM B3.3.2): 24-bit down counter.
#define SYST_CSR CM7_REG(0xE000E010u)  // bit 0 ENABLE, bit 1 TICKINT, bit 2 CLKSOURCE (1 = CPU clock)
#define SYST_RVR CM7_REG(0xE000E014u)
#define SYST_CVR CM7_REG(0xE000E018u)

// NVIC (ARMv7-M ARM B3.4.3): set-enable registers, one bit per external IRQ.
#define NVIC_ISER(n) CM7_REG(0xE000E100u + 4u * (n))

// Debug / DWT (ARMv7-M ARM C1.6.5, C1.8.7; Cortex-M7 TRM: DWT has a software lock).
#define DEMCR CM7_REG(0xE000EDFCu)       // bit 24 TRCENA: enables DWT and ITM
#define DWT_CTRL CM7_REG(0xE0001000u)    // bit 0 CYCCNTENA
#define DWT_CYCCNT CM7_REG(0xE0001004u)
#define DWT_LAR CM7_REG(0xE0001FB0u)     // write 0xC5ACCE55 to unlock

static inline void cm7_dsb_isb(void) { __asm volatile("dsb 0xF\n isb 0xF" ::: "memory"); }
static inline void cm7_irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void cm7_irq_enable(void) { __asm volatile("cpsie i\n isb 0xF" ::: "memory"); }
// WFI wakes on a pending interrupt even while PRIMASK masks it (so: disable, check, wfi, enable).
static inline void cm7_wfi(void) { __asm volatile("dsb 0xF\n wfi" ::: "memory"); }

#endif  // FIRMWARE_BOARDS_CORTEX_M7_CM7_H_
