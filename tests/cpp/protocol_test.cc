// Host driver for firmware/runtime/protocol.cc, run by tests/test_protocol.py.
// Reads commands on stdin, one a line, and prints what the protocol code did:
//   n CAP            new FrameDecoder over a buffer of CAP bytes (start: kMaxPayload)
//   t MS             set the simulated clock (ms)
//   p                poll(clock)
//   b HEX            push each byte at the clock
//   e TYPE HEX       encode_frame(TYPE, payload)       -> "enc HEX" (or "enc" when 0)
//   r CODE CAP TEXT  encode_error into CAP bytes        -> "enc HEX"
//   c HEX            crc16_ccitt                        -> "crc HEX4"
// Decoder events print as "frame TYPE HEX" or "error CODE" (TYPE, CODE decimal).
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "protocol.h"

namespace {

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

void print_hex(const char* tag, const uint8_t* data, size_t len) {
  std::printf("%s", tag);
  if (len > 0) std::printf(" ");
  for (size_t i = 0; i < len; ++i) std::printf("%02x", data[i]);
  std::printf("\n");
}

void report(odt::FrameDecoder::Result r, const odt::FrameDecoder& dec) {
  if (r == odt::FrameDecoder::kFrame) {
    std::printf("frame %u", dec.type());
    print_hex("", dec.payload(), dec.length());
  } else if (r == odt::FrameDecoder::kError) {
    std::printf("error %u\n", dec.error());
  }
}

}  // namespace

int main() {
  std::vector<uint8_t> buffer(odt::kMaxPayload);
  odt::FrameDecoder dec(buffer.data(), buffer.size());
  std::vector<uint8_t> out(odt::kMaxFrameSize + 16);
  uint32_t now = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, arg;
    in >> cmd;
    if (cmd == "n") {
      size_t cap = 0;
      in >> cap;
      buffer.assign(cap, 0);
      dec = odt::FrameDecoder(buffer.data(), cap);
    } else if (cmd == "t") {
      in >> now;
    } else if (cmd == "p") {
      report(dec.poll(now), dec);
    } else if (cmd == "b") {
      in >> arg;
      for (uint8_t byte : from_hex(arg)) report(dec.push(byte, now), dec);
    } else if (cmd == "e") {
      unsigned type = 0;
      in >> type >> arg;
      const std::vector<uint8_t> payload = from_hex(arg);
      const size_t n = odt::encode_frame(static_cast<uint8_t>(type), payload.data(),
                                         payload.size(), out.data(), out.size());
      print_hex("enc", out.data(), n);
    } else if (cmd == "r") {
      unsigned code = 0;
      size_t cap = 0;
      in >> code >> cap;
      std::getline(in >> std::ws, arg);
      const size_t n = odt::encode_error(static_cast<uint8_t>(code), arg.c_str(), out.data(),
                                         cap < out.size() ? cap : out.size());
      print_hex("enc", out.data(), n);
    } else if (cmd == "c") {
      in >> arg;
      const std::vector<uint8_t> data = from_hex(arg);
      std::printf("crc %04x\n", odt::crc16_ccitt(data.data(), data.size()));
    } else if (!cmd.empty()) {
      std::fprintf(stderr, "unknown command: %s\n", line.c_str());
      return 2;
    }
  }
  return 0;
}
