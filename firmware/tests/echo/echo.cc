// Echo test application for the board layer (tests/test_boards.py).
// Echoes every byte. After the byte sequence "STK?" it also sends one line:
//   "STK board=<name> stack_used=N stack_size=N flash=N ram=N millis=N tps=N\n"
// After "WAIT" it stops reading for 300 ms (input must queue up without loss).
// After "EXIT" it calls hal_exit(3).
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hal.h"

namespace {

void put(char*& p, const char* s) {
  while (*s) *p++ = *s++;
}

void put_u(char*& p, uint32_t v) {
  char tmp[10];
  int n = 0;
  do tmp[n++] = static_cast<char>('0' + v % 10); while ((v /= 10) != 0);
  while (n > 0) *p++ = tmp[--n];
}

void report() {
  char line[160];
  char* p = line;
  put(p, "STK board="), put(p, hal_board_name());
  put(p, " stack_used="), put_u(p, hal_stack_used());
  put(p, " stack_size="), put_u(p, hal_stack_size());
  put(p, " flash="), put_u(p, hal_flash_used());
  put(p, " ram="), put_u(p, hal_static_ram_used());
  put(p, " millis="), put_u(p, hal_millis());
  put(p, " tps="), put_u(p, hal_ticks_per_second());
  put(p, "\n");
  hal_write(reinterpret_cast<const uint8_t*>(line), static_cast<size_t>(p - line));
}

}  // namespace

int main(int argc, char** argv) {
  hal_init(argc, argv);
  uint8_t buf[64];
  char last[4] = {0, 0, 0, 0};  // the last four bytes received
  for (;;) {
    size_t n = hal_read(buf, sizeof(buf), 1000);
    if (n == 0) continue;
    hal_write(buf, n);
    for (size_t i = 0; i < n; ++i) {
      memmove(last, last + 1, 3);
      last[3] = static_cast<char>(buf[i]);
      if (memcmp(last, "STK?", 4) == 0) report();
      if (memcmp(last, "EXIT", 4) == 0) hal_exit(3);
      if (memcmp(last, "WAIT", 4) == 0) {
        const uint32_t start = hal_millis();
        while (hal_millis() - start < 300) {
        }
      }
    }
  }
}
