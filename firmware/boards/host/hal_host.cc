// Host board: the firmware runs as a native process and talks over one TCP connection on
// loopback (the test harness connects with pyserial's socket:// URL, as it would to a UART).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "hal.h"

namespace {

int g_fd = -1;
const auto g_start = std::chrono::steady_clock::now();

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "hal_host: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

}  // namespace

extern "C" void hal_init(int argc, char** argv) {
  long port = -1;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0) port = std::strtol(argv[i + 1], nullptr, 10);
  }
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "usage: %s --port N   (listens on 127.0.0.1:N for one client)\n", argv[0]);
    std::exit(2);
  }
  int server = socket(AF_INET, SOCK_STREAM, 0);
  if (server < 0) die("socket");
  int one = 1;
  setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) die("bind");
  if (listen(server, 1) < 0) die("listen");
  // The launcher (host_tools/boards.py) waits for this line before connecting.
  std::fprintf(stderr, "hal_host: listening on 127.0.0.1:%ld\n", port);
  std::fflush(stderr);
  g_fd = accept(server, nullptr, nullptr);
  if (g_fd < 0) die("accept");
  close(server);
  setsockopt(g_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

extern "C" size_t hal_read(uint8_t* buf, size_t max, uint32_t timeout_ms) {
  if (max == 0) return 0;
  pollfd p{g_fd, POLLIN, 0};
  int timeout = timeout_ms > 0x7fffffffu ? -1 : static_cast<int>(timeout_ms);
  int r = poll(&p, 1, timeout);
  if (r < 0 && errno == EINTR) return 0;
  if (r < 0) die("poll");
  if (r == 0) return 0;
  ssize_t n = recv(g_fd, buf, max, 0);
  if (n == 0 || (n < 0 && errno == ECONNRESET)) std::exit(0);  // client disconnected
  if (n < 0) die("recv");
  return static_cast<size_t>(n);
}

extern "C" void hal_write(const uint8_t* buf, size_t n) {
  while (n > 0) {
    ssize_t w = send(g_fd, buf, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) std::exit(0);
    if (w < 0) die("send");
    buf += w;
    n -= static_cast<size_t>(w);
  }
}

extern "C" uint32_t hal_ticks(void) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch());
  return static_cast<uint32_t>(ns.count() / 1000);
}

extern "C" uint32_t hal_ticks_per_second(void) { return 1000000; }

extern "C" uint32_t hal_millis(void) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - g_start);
  return static_cast<uint32_t>(ms.count());
}

extern "C" const char* hal_board_name(void) { return "host"; }
extern "C" size_t hal_stack_used(void) { return 0; }
extern "C" size_t hal_stack_size(void) { return 0; }
extern "C" size_t hal_flash_used(void) { return 0; }
extern "C" size_t hal_static_ram_used(void) { return 0; }

extern "C" void hal_exit(int code) {
  std::fflush(nullptr);
  std::exit(code);
}
