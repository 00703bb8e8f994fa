// Shared Cortex-M7 startup for qemu-m7 and stm32f746: Reset_Handler, fault handler, the
// linker-symbol based memory reports of hal.h, and the two libc hooks a bare-metal C++
// image needs. Each board supplies its vector table and board_init() (clocks, UART, timers).
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "cm7.h"
#include "hal.h"

#define STACK_PAINT 0xC0FFEE11u

// From common.ld.
extern uint32_t __stack_start[], __stack_top[];
extern uint32_t __data_start[], __data_end[], __data_load[];
extern uint32_t __bss_start[], __bss_end[];
extern uint8_t __flash_start[], __flash_end[], __heap_start[], __ram_end[];
extern void (*__preinit_array_start[])(void), (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void), (*__init_array_end[])(void);

void board_init(void);  // per board
int main(int argc, char** argv);

void* __dso_handle = 0;  // for C++ static destructors (crtbegin.o is not linked: -nostartfiles)

void Reset_Handler(void) {
  // FPU first: CP10/CP11 full access, before any floating-point instruction (ARMv7-M B3.2.20).
  SCB_CPACR |= 0xFu << 20;
  cm7_dsb_isb();

  // Paint the free stack below the current SP so hal_stack_used() can find the high-water mark.
  uint32_t* sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  for (volatile uint32_t* p = __stack_start; p < sp; ++p) *p = STACK_PAINT;

  for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) *dst++ = *src++;
  for (uint32_t* dst = __bss_start; dst < __bss_end;) *dst++ = 0;

  SCB_VTOR = (uint32_t)(uintptr_t)__flash_start;  // the vector table opens the image

  // Stack guard: the stack grows down from the bottom of RAM, so an overflow runs into the 16 MiB
  // below 0x20000000. QEMU maps that as a silent "unimplemented device" (reads 0, writes ignored);
  // the STM32F746 has reserved space and its boot ROM/OTP/unique ID there. MPU region 0 makes it
  // no-access (AP=000, XN): an overflow faults on both (QEMU exits with 131; the chip locks up
  // in the fault, visible to a debugger). PRIVDEFENA keeps the default map everywhere else.
  MPU_RNR = 0;
  MPU_RBAR = 0x1F000000u;
  MPU_RASR = (1u << 28) | (0u << 24) | (23u << 1) | 1u;  // XN, no access, 2^24 bytes, enabled
  MPU_CTRL = (1u << 2) | 1u;
  cm7_dsb_isb();

  board_init();
  for (void (**f)(void) = __preinit_array_start; f < __preinit_array_end; ++f) (*f)();
  for (void (**f)(void) = __init_array_start; f < __init_array_end; ++f) (*f)();
  hal_exit(main(0, 0));
}

// Any unexpected exception or fault, a stack overflow included: exit with 128 + exception
// number (HardFault = 131). The handler first moves SP back to the top of the stack, since
// after an overflow it points below RAM; the firmware never returns from a fault.
void fault_exit(void) {
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  hal_exit(128 + (int)(ipsr & 0x1FF));
}

__attribute__((naked)) void Default_Handler(void) {
  __asm volatile("ldr r0, =__stack_top\n mov sp, r0\n b fault_exit");
}

// malloc's heap: from the end of .bss to the end of the (chip-sized) RAM region, never beyond.
void* _sbrk(ptrdiff_t incr) {
  static uint8_t* brk = __heap_start;
  if (incr > __ram_end - brk || incr < __heap_start - brk) {
    errno = ENOMEM;
    return (void*)-1;
  }
  uint8_t* prev = brk;
  brk += incr;
  return prev;
}

size_t hal_stack_size(void) { return (size_t)((uint8_t*)__stack_top - (uint8_t*)__stack_start); }

size_t hal_stack_used(void) {
  const uint32_t* p = __stack_start;
  while (p < __stack_top && *p == STACK_PAINT) ++p;
  return (size_t)((uint8_t*)__stack_top - (const uint8_t*)p);
}

size_t hal_flash_used(void) { return (size_t)(__flash_end - __flash_start); }

size_t hal_static_ram_used(void) {
  return (size_t)((uint8_t*)__data_end - (uint8_t*)__data_start) +
         (size_t)((uint8_t*)__bss_end - (uint8_t*)__bss_start);
}
