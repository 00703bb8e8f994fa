// Board HAL: the only seam between the shared firmware and a board.
// Implemented once per board in firmware/boards/<board>/ (host, qemu-m7, stm32f746).
// Applications never need to know which board they run on.
#ifndef FIRMWARE_HAL_HAL_H_
#define FIRMWARE_HAL_HAL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// host: parses `--port N`, listens on 127.0.0.1:N and blocks until one TCP client connects.
// MCU boards: ignore the arguments (startup has already set up clocks, UART and timers).
void hal_init(int argc, char** argv);

// Waits up to timeout_ms for at least one byte (0 = do not wait); returns the number of bytes
// read, 0 on timeout. host: if the client disconnected, the process exits with status 0.
size_t hal_read(uint8_t* buf, size_t max, uint32_t timeout_ms);

// Blocks until all n bytes are sent.
void hal_write(const uint8_t* buf, size_t n);

// Free-running tick counter (wraps; take differences as uint32_t) and its rate.
// stm32f746: DWT CYCCNT (CPU cycles, 216 MHz); qemu-m7: a 25 MHz timer in QEMU's virtual time
// (with -icount shift=0: 40 instructions per tick, reproducible); host: microseconds.
uint32_t hal_ticks(void);
uint32_t hal_ticks_per_second(void);

// Milliseconds since boot, for protocol time-outs.
uint32_t hal_millis(void);

// "host", "qemu-m7" or "stm32f746".
const char* hal_board_name(void);

// Stack high-water mark in bytes (startup paints the stack; this scans for the first
// overwritten word) and the reserved stack size. host: 0.
size_t hal_stack_used(void);
size_t hal_stack_size(void);

// From linker symbols: flash the image occupies (text + rodata + .data init image) and
// static SRAM (.data + .bss, including any static arena). host: 0.
size_t hal_flash_used(void);
size_t hal_static_ram_used(void);

// qemu-m7: semihosting SYS_EXIT_EXTENDED (QEMU exits with `code`); host: exit(code);
// stm32f746: interrupts off, sleeps forever (a board has nobody to return a status to).
void hal_exit(int code);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // FIRMWARE_HAL_HAL_H_
