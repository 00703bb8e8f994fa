// The receive path both MCU boards share: a UART interrupt puts bytes into a ring, hal_read
// takes them out, sleeping (WFI) while the ring is empty. Interrupts are masked while hal_read
// looks at the ring; the interrupt is the only writer of `head`, hal_read the only writer of `tail`.
#ifndef FIRMWARE_BOARDS_CORTEX_M7_RX_RING_H_
#define FIRMWARE_BOARDS_CORTEX_M7_RX_RING_H_

#include <stddef.h>
#include <stdint.h>

#include "cm7.h"

struct RxRing {
  static constexpr uint32_t kSize = 2048;  // power of two
  uint8_t data[kSize];
  volatile uint32_t head;  // written by the RX interrupt
  volatile uint32_t tail;  // written by rx_ring_read

  bool full() const { return head - tail == kSize; }
  void put(uint8_t b) {  // the caller checked !full()
    data[head % kSize] = b;
    head = head + 1;
  }
};

// hal_read on a ring: waits up to timeout_ms (0: not at all) for bytes and copies up to max.
// After taking bytes it calls on_taken (if any) with interrupts still masked: a board whose
// receiver pauses when the ring is full resumes it there.
inline size_t rx_ring_read(RxRing& ring, uint8_t* buf, size_t max, uint32_t timeout_ms,
                           const volatile uint32_t& millis, void (*on_taken)()) {
  const uint32_t start = millis;
  for (;;) {
    cm7_irq_disable();
    const uint32_t avail = ring.head - ring.tail;
    if (avail > 0 && max > 0) {
      const size_t n = avail < max ? avail : max;
      for (size_t i = 0; i < n; ++i) buf[i] = ring.data[(ring.tail + i) % RxRing::kSize];
      ring.tail = ring.tail + n;
      if (on_taken) on_taken();
      cm7_irq_enable();
      return n;
    }
    if (timeout_ms == 0 || millis - start >= timeout_ms) {
      cm7_irq_enable();
      return 0;
    }
    cm7_wfi();  // wakes on the RX interrupt or the next SysTick
    cm7_irq_enable();
  }
}

#endif  // FIRMWARE_BOARDS_CORTEX_M7_RX_RING_H_
