// QEMU mps2-an500 board (Cortex-M7): CMSDK APB UART0, SysTick milliseconds, CMSDK TIMER0 ticks,
// semihosting exit.
// QEMU 7.2 CMSDK UART pitfalls (see shared platform notes), handled here:
//  1. after enabling RX, one dummy DATA read, or the first byte lags ~1 s or never comes;
//  2. in the RX interrupt, INTCLEAR before draining DATA, or a byte arriving meanwhile is lost;
//  3. never busy-poll RX (starves QEMU's I/O thread): RX interrupt into a ring buffer + WFI.
// When the ring is full the RX interrupt is paused and DATA is left unread: QEMU then stops
// taking bytes from the socket, so nothing is ever dropped (TCP flow control end to end).
#include "cm7.h"
#include "hal.h"
#include "rx_ring.h"

namespace {

// CMSDK APB UART registers (ARM CoreLink SDK TRM, "APB UART"; QEMU hw/char/cmsdk-apb-uart.c).
constexpr uint32_t kUart0 = 0x40004000u;
#define UART_DATA CM7_REG(kUart0 + 0x00u)
#define UART_STATE CM7_REG(kUart0 + 0x04u)     // bit 0 TX full, bit 1 RX full
#define UART_CTRL CM7_REG(kUart0 + 0x08u)      // bit 0 TX en, 1 RX en, 3 RX interrupt en
#define UART_INTCLEAR CM7_REG(kUart0 + 0x0Cu)  // write 1 to clear (bit 1: RX)
#define UART_BAUDDIV CM7_REG(kUart0 + 0x10u)   // QEMU requires >= 16 (no real baud timing)
constexpr uint32_t kStateTxFull = 1u << 0, kStateRxFull = 1u << 1;
constexpr uint32_t kCtrlTxEn = 1u << 0, kCtrlRxEn = 1u << 1, kCtrlRxIntEn = 1u << 3;
constexpr uint32_t kIntRx = 1u << 1;
constexpr uint32_t kUart0RxIrq = 0;  // QEMU hw/arm/mps2.c: UART0 RX = IRQ 0, TX = IRQ 1

// CMSDK APB TIMER0 (QEMU hw/timer/cmsdk-apb-timer.c), a 32-bit down counter at the system
// clock, free-running from 0xFFFFFFFF: hal_ticks() = ~VALUE. (SysTick + millis went backwards
// once per ms under -icount: QEMU reloads the counter before the tick interrupt is pending.)
constexpr uint32_t kTimer0 = 0x40000000u;
#define TIMER0_CTRL CM7_REG(kTimer0 + 0x00u)  // bit 0 enable
#define TIMER0_VALUE CM7_REG(kTimer0 + 0x04u)
#define TIMER0_RELOAD CM7_REG(kTimer0 + 0x08u)

// QEMU's mps2-an500 system clock (hw/arm/mps2.c SYSCLK_FRQ): CPU clock for SysTick and TIMER0.
// Virtual time: with -icount shift=0 one tick is 40 instructions.
constexpr uint32_t kSysclkHz = 25000000u;

RxRing g_rx;
volatile bool g_rx_paused;
volatile uint32_t g_millis;

// Moves received bytes into the ring; pauses RX when the ring is full. Interrupts masked.
void drain_rx() {
  while (UART_STATE & kStateRxFull) {
    if (g_rx.full()) {
      UART_CTRL &= ~kCtrlRxIntEn;
      g_rx_paused = true;
      return;
    }
    g_rx.put(static_cast<uint8_t>(UART_DATA));
  }
}

// Called by rx_ring_read after it took bytes (interrupts masked).
void resume_rx() {
  if (g_rx_paused) {  // room again: resume RX (interrupt on, clear, then drain)
    g_rx_paused = false;
    UART_CTRL |= kCtrlRxIntEn;
    UART_INTCLEAR = kIntRx;
    drain_rx();
  }
}

}  // namespace

extern "C" void Uart0Rx_Handler(void) {
  UART_INTCLEAR = kIntRx;  // pitfall 2: clear first, then drain
  drain_rx();
}

extern "C" void SysTick_Handler(void) { g_millis = g_millis + 1; }

extern "C" void board_init(void) {
  UART_BAUDDIV = 16;
  UART_CTRL = kCtrlTxEn | kCtrlRxEn | kCtrlRxIntEn;
  (void)UART_DATA;  // pitfall 1: dummy read after enabling RX
  UART_INTCLEAR = 0xFu;
  NVIC_ISER(0) = 1u << kUart0RxIrq;
  TIMER0_RELOAD = 0xFFFFFFFFu;
  TIMER0_VALUE = 0xFFFFFFFFu;
  TIMER0_CTRL = 1u;
  SYST_RVR = kSysclkHz / 1000u - 1;  // 1 kHz
  SYST_CVR = 0;
  SYST_CSR = 7;  // ENABLE | TICKINT | CLKSOURCE = CPU clock
}

extern "C" void hal_init(int, char**) {}

extern "C" size_t hal_read(uint8_t* buf, size_t max, uint32_t timeout_ms) {
  return rx_ring_read(g_rx, buf, max, timeout_ms, g_millis, resume_rx);
}

extern "C" void hal_write(const uint8_t* buf, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    while (UART_STATE & kStateTxFull) cm7_wfi();  // only when the host stops reading
    UART_DATA = buf[i];
  }
}

extern "C" uint32_t hal_ticks(void) { return ~TIMER0_VALUE; }
extern "C" uint32_t hal_ticks_per_second(void) { return kSysclkHz; }
extern "C" uint32_t hal_millis(void) { return g_millis; }
extern "C" const char* hal_board_name(void) { return "qemu-m7"; }

extern "C" void hal_exit(int code) {
  // Let the last byte leave the UART (bounded: the host may have stopped reading).
  for (int i = 0; i < 1000000 && (UART_STATE & kStateTxFull); ++i) {
  }
  // Semihosting SYS_EXIT_EXTENDED (0x20): {ADP_Stopped_ApplicationExit, code}; QEMU exits
  // with `code` when run with -semihosting-config enable=on,target=native.
  volatile uint32_t block[2] = {0x20026u, static_cast<uint32_t>(code)};
  __asm volatile("mov r0, #0x20\n mov r1, %0\n bkpt 0xAB" : : "r"(block) : "r0", "r1", "memory");
  for (;;) cm7_wfi();
}
