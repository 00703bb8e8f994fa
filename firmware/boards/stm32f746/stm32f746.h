// The few STM32F746 peripheral registers this board uses, with their RM0385 (Rev 8) sections.
// No vendor headers. Core (SCB, SysTick, NVIC, DWT) registers are in ../cortex-m7/cm7.h.
#ifndef FIRMWARE_BOARDS_STM32F746_STM32F746_H_
#define FIRMWARE_BOARDS_STM32F746_STM32F746_H_

#include "cm7.h"

// RCC, base 0x40023800 (RM0385 5.3 "RCC registers").
#define RCC_CR CM7_REG(0x40023800u)        // 5.3.1: bit 16 HSEON, 17 HSERDY, 24 PLLON, 25 PLLRDY
#define RCC_PLLCFGR CM7_REG(0x40023804u)   // 5.3.2: PLLM[5:0] PLLN[14:6] PLLP[17:16] PLLSRC[22] PLLQ[27:24]
#define RCC_CFGR CM7_REG(0x40023808u)      // 5.3.3: SW[1:0] SWS[3:2] HPRE[7:4] PPRE1[12:10] PPRE2[15:13]
#define RCC_AHB1ENR CM7_REG(0x40023830u)   // 5.3.10: bit 0 GPIOAEN, bit 1 GPIOBEN
#define RCC_APB1ENR CM7_REG(0x40023840u)   // 5.3.13: bit 28 PWREN
#define RCC_APB2ENR CM7_REG(0x40023844u)   // 5.3.14: bit 4 USART1EN
// 5.3.26 RCC_DCKCFGR2 (0x40023890) USART1SEL[1:0] resets to 00 = PCLK2: left as is.

// PWR, base 0x40007000 (RM0385 4.4).
#define PWR_CR1 CM7_REG(0x40007000u)   // 4.4.1: VOS[15:14] (11 = scale 1), bit 16 ODEN, 17 ODSWEN
#define PWR_CSR1 CM7_REG(0x40007004u)  // 4.4.2: bit 16 ODRDY, bit 17 ODSWRDY

// FLASH interface, base 0x40023C00 (RM0385 3.7.1 FLASH_ACR).
#define FLASH_ACR CM7_REG(0x40023C00u)  // LATENCY[3:0], bit 8 PRFTEN, bit 9 ARTEN

// GPIO ports A and B (RM0385 6.4): MODER 0x00, OSPEEDR 0x08, PUPDR 0x0C, AFRL 0x20, AFRH 0x24.
#define GPIOA_BASE 0x40020000u
#define GPIOB_BASE 0x40020400u
#define GPIO_MODER(port) CM7_REG((port) + 0x00u)    // 2 bits/pin: 10 = alternate function
#define GPIO_OSPEEDR(port) CM7_REG((port) + 0x08u)  // 2 bits/pin: 10 = high speed
#define GPIO_PUPDR(port) CM7_REG((port) + 0x0Cu)    // 2 bits/pin: 01 = pull-up
#define GPIO_AFRL(port) CM7_REG((port) + 0x20u)     // 4 bits/pin, pins 0-7
#define GPIO_AFRH(port) CM7_REG((port) + 0x24u)     // 4 bits/pin, pins 8-15

// USART1, base 0x40011000 (RM0385 2.2.2 memory map; registers 31.8).
#define USART1_CR1 CM7_REG(0x40011000u)  // 31.8.1: bit 0 UE, 2 RE, 3 TE, 5 RXNEIE; M/OVER8/PCE = 0: 8N, x16
#define USART1_CR2 CM7_REG(0x40011004u)  // 31.8.2: STOP[13:12] = 00: 1 stop bit
#define USART1_CR3 CM7_REG(0x40011008u)  // 31.8.3: no flow control, no DMA
#define USART1_BRR CM7_REG(0x4001100Cu)  // 31.8.4: = f_ck / baud with 16x oversampling
#define USART1_ISR CM7_REG(0x4001101Cu)  // 31.8.8: bit 0 PE, 1 FE, 2 NF, 3 ORE, 5 RXNE, 6 TC, 7 TXE
#define USART1_ICR CM7_REG(0x40011020u)  // 31.8.9: write 1 to clear PE/FE/NF/ORE (bits 0-3)
#define USART1_RDR CM7_REG(0x40011024u)  // 31.8.10
#define USART1_TDR CM7_REG(0x40011028u)  // 31.8.11
#define USART1_IRQN 37u                  // RM0385 table 40 (vector table), position 37

#endif  // FIRMWARE_BOARDS_STM32F746_STM32F746_H_
