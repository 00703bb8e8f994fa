// STM32F746G-DISCO board: 216 MHz from the 25 MHz HSE, USART1 (the ST-LINK virtual COM port,
// PA9 TX / PB7 RX) at 115200 8N1 with an RX interrupt ring buffer, DWT cycle counter ticks,
// SysTick milliseconds. Untested on hardware here: every register value is commented.
#include "hal.h"
#include "rx_ring.h"
#include "stm32f746.h"

namespace {

constexpr uint32_t kCpuHz = 216000000u;  // SYSCLK = HCLK
constexpr uint32_t kPclk2Hz = kCpuHz / 2;  // APB2 (max 108 MHz): USART1's clock
constexpr uint32_t kBaud = 115200;

// The chip has no flow control on this UART: the ring must hold what the host sends while the
// application is busy (about 87 us per byte at 115200 baud).
RxRing g_rx;
volatile uint32_t g_millis;

void wait_set(volatile uint32_t& reg, uint32_t mask) {
  while ((reg & mask) != mask) {
  }
}

// RM0385 5.3 and 4.1.4 (over-drive): HSE 25 MHz -> PLL (M=25: 1 MHz input, N=432: 432 MHz VCO,
// P=2: 216 MHz SYSCLK, Q=9: 48 MHz) -> AHB /1, APB1 /4 (54 MHz), APB2 /2 (108 MHz).
void clock_init() {
  RCC_APB1ENR |= 1u << 28;  // PWREN
  (void)RCC_APB1ENR;        // read back: the enable takes effect before PWR is touched
  PWR_CR1 |= 3u << 14;      // VOS = scale 1 (needed for 216 MHz; only writable with PLL off)

  RCC_CR |= 1u << 16;  // HSEON (the DISCO board's 25 MHz HSE)
  wait_set(RCC_CR, 1u << 17);  // HSERDY

  RCC_PLLCFGR = (RCC_PLLCFGR & 0xF0BC8000u)  // keep reserved bits
                | 25u                         // PLLM = 25
                | (432u << 6)                 // PLLN = 432
                | (0u << 16)                  // PLLP = 00: divide by 2
                | (1u << 22)                  // PLLSRC = HSE
                | (9u << 24);                 // PLLQ = 9
  RCC_CR |= 1u << 24;  // PLLON
  wait_set(RCC_CR, 1u << 25);  // PLLRDY

  PWR_CR1 |= 1u << 16;  // ODEN: over-drive on (needed above 180 MHz)
  wait_set(PWR_CSR1, 1u << 16);  // ODRDY
  PWR_CR1 |= 1u << 17;  // ODSWEN: switch the regulator to over-drive
  wait_set(PWR_CSR1, 1u << 17);  // ODSWRDY

  // 7 wait states for 210-216 MHz at 2.7-3.6 V (RM0385 table 5), prefetch and ART on.
  FLASH_ACR = 7u | (1u << 8) | (1u << 9);
  while ((FLASH_ACR & 0xFu) != 7u) {
  }

  RCC_CFGR = (RCC_CFGR & ~0xFCF0u)  // HPRE = 0000 (/1)
             | (5u << 10)           // PPRE1 = 101 (/4)
             | (4u << 13);          // PPRE2 = 100 (/2)
  RCC_CFGR = (RCC_CFGR & ~3u) | 2u;  // SW = 10: PLL
  while (((RCC_CFGR >> 2) & 3u) != 2u) {  // SWS = PLL
  }
}

// Cortex-M7 L1 caches (ARMv7-M B2.2.7): invalidate, then enable. No DMA here, so the D-cache
// needs no maintenance afterwards.
void cache_init() {
  cm7_dsb_isb();
  SCB_ICIALLU = 0;
  cm7_dsb_isb();
  SCB_CCR |= 1u << 17;  // IC
  cm7_dsb_isb();

  SCB_CSSELR = 0;  // level 1 data cache
  cm7_dsb_isb();
  uint32_t ccsidr = SCB_CCSIDR;
  uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1;  // NumSets
  uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1;    // Associativity (4: way index at bit 30)
  for (uint32_t set = 0; set < sets; ++set) {
    for (uint32_t way = 0; way < ways; ++way) SCB_DCISW = (way << 30) | (set << 5);  // 32 B lines
  }
  cm7_dsb_isb();
  SCB_CCR |= 1u << 16;  // DC
  cm7_dsb_isb();
}

// USART1 on PA9 (TX) / PB7 (RX), alternate function 7 (STM32F746 datasheet table 12).
void uart_init() {
  RCC_AHB1ENR |= (1u << 0) | (1u << 1);  // GPIOAEN, GPIOBEN
  RCC_APB2ENR |= 1u << 4;                // USART1EN
  (void)RCC_APB2ENR;

  GPIO_MODER(GPIOA_BASE) = (GPIO_MODER(GPIOA_BASE) & ~(3u << 18)) | (2u << 18);      // PA9: AF
  GPIO_OSPEEDR(GPIOA_BASE) = (GPIO_OSPEEDR(GPIOA_BASE) & ~(3u << 18)) | (2u << 18);  // high
  GPIO_AFRH(GPIOA_BASE) = (GPIO_AFRH(GPIOA_BASE) & ~(0xFu << 4)) | (7u << 4);        // AF7
  GPIO_MODER(GPIOB_BASE) = (GPIO_MODER(GPIOB_BASE) & ~(3u << 14)) | (2u << 14);      // PB7: AF
  GPIO_PUPDR(GPIOB_BASE) = (GPIO_PUPDR(GPIOB_BASE) & ~(3u << 14)) | (1u << 14);      // pull-up
  GPIO_AFRL(GPIOB_BASE) = (GPIO_AFRL(GPIOB_BASE) & ~(0xFu << 28)) | (7u << 28);      // AF7

  USART1_CR1 = 0;  // disabled while configuring; 8 data bits, no parity, 16x oversampling
  USART1_CR2 = 0;  // 1 stop bit
  USART1_CR3 = 0;  // no flow control
  USART1_BRR = (kPclk2Hz + kBaud / 2) / kBaud;  // 108 MHz / 115200 = 937.5 -> 938 (0.05% error)
  USART1_CR1 = (1u << 0) | (1u << 2) | (1u << 3) | (1u << 5);  // UE | RE | TE | RXNEIE
  NVIC_ISER(USART1_IRQN / 32) = 1u << (USART1_IRQN % 32);
}

}  // namespace

extern "C" void Usart1_Handler(void) {
  uint32_t isr = USART1_ISR;
  if (isr & 0xFu) USART1_ICR = isr & 0xFu;  // clear PE/FE/NF/ORE (ORE would re-fire forever)
  if (isr & (1u << 5)) {                    // RXNE: reading RDR clears it
    uint8_t b = static_cast<uint8_t>(USART1_RDR);
    if (!g_rx.full()) g_rx.put(b);  // full: the byte is lost (no flow control on this link)
  }
}

extern "C" void SysTick_Handler(void) { g_millis = g_millis + 1; }

extern "C" void board_init(void) {
  clock_init();
  cache_init();
  // DWT cycle counter (ARMv7-M C1.8): trace enable, unlock the M7's DWT, reset, start.
  DEMCR |= 1u << 24;  // TRCENA
  DWT_LAR = 0xC5ACCE55u;
  DWT_CYCCNT = 0;
  DWT_CTRL |= 1u;  // CYCCNTENA
  SYST_RVR = kCpuHz / 1000u - 1;  // 1 kHz (215999 fits the 24-bit counter)
  SYST_CVR = 0;
  SYST_CSR = 7;  // ENABLE | TICKINT | CLKSOURCE = CPU clock
  uart_init();
}

extern "C" void hal_init(int, char**) {}

extern "C" size_t hal_read(uint8_t* buf, size_t max, uint32_t timeout_ms) {
  return rx_ring_read(g_rx, buf, max, timeout_ms, g_millis, nullptr);
}

extern "C" void hal_write(const uint8_t* buf, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    while (!(USART1_ISR & (1u << 7))) {  // TXE
    }
    USART1_TDR = buf[i];
  }
}

extern "C" uint32_t hal_ticks(void) { return DWT_CYCCNT; }
extern "C" uint32_t hal_ticks_per_second(void) { return kCpuHz; }
extern "C" uint32_t hal_millis(void) { return g_millis; }
extern "C" const char* hal_board_name(void) { return "stm32f746"; }

extern "C" void hal_exit(int) {
  // No one to return a status to: let the last byte go out (TC), then sleep forever.
  for (uint32_t i = 0; i < 10000000u && !(USART1_ISR & (1u << 6)); ++i) {
  }
  cm7_irq_disable();
  for (;;) cm7_wfi();
}
