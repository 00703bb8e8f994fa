// Framed serial protocol: CRC, frame encoding and the byte-at-a-time decoder.
// The frame format is documented at the top of protocol.h.
#include "protocol.h"

#include <cstring>

namespace odt {

uint16_t crc16_ccitt(const uint8_t* data, size_t len, uint16_t crc) {
  for (size_t i = 0; i < len; ++i) {
    crc ^= static_cast<uint16_t>(data[i] << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

namespace {

// Writes start, len and type, assumes the payload is in place, appends the crc.
size_t finish_frame(uint8_t type, size_t len, uint8_t* out) {
  out[0] = kFrameStart;
  put_u16le(out + 1, static_cast<uint16_t>(len));
  out[3] = type;
  put_u16le(out + kFrameHeaderSize + len, crc16_ccitt(out + 1, len + 3));
  return len + kFrameOverhead;
}

}  // namespace

size_t encode_frame(uint8_t type, const uint8_t* payload, size_t len, uint8_t* out,
                    size_t out_cap) {
  if (len > kMaxPayload || out_cap < len + kFrameOverhead) return 0;
  if (len > 0) std::memmove(out + kFrameHeaderSize, payload, len);
  return finish_frame(type, len, out);
}

size_t encode_error(uint8_t code, const char* message, uint8_t* out, size_t out_cap) {
  if (out_cap < kFrameOverhead + 1) return 0;
  size_t room = out_cap - kFrameOverhead - 1;
  if (room > kMaxPayload - 1) room = kMaxPayload - 1;
  size_t n = 0;
  while (message && n < room && message[n] != '\0') ++n;
  out[kFrameHeaderSize] = code;
  if (n > 0) std::memcpy(out + kFrameHeaderSize + 1, message, n);
  return finish_frame(kMsgError, n + 1, out);
}

FrameDecoder::FrameDecoder(uint8_t* buffer, size_t capacity)
    : buffer_(buffer), capacity_(capacity < kMaxPayload ? capacity : kMaxPayload) {}

FrameDecoder::Result FrameDecoder::fail(uint8_t code) {
  error_ = code;
  state_ = kHunt;
  return kError;
}

FrameDecoder::Result FrameDecoder::poll(uint32_t now_ms) {
  if (state_ != kHunt && now_ms - last_ms_ >= kInterByteTimeoutMs) return fail(kErrTruncated);
  return kNeedMore;
}

FrameDecoder::Result FrameDecoder::push(uint8_t byte, uint32_t now_ms) {
  const Result timed_out = poll(now_ms);
  last_ms_ = now_ms;
  switch (state_) {
    case kHunt:
      if (byte == kFrameStart) {
        state_ = kLen0;
        crc_ = 0xFFFF;
      }
      return timed_out;
    case kLen0:
      length_ = byte;
      state_ = kLen1;
      break;
    case kLen1:
      length_ |= static_cast<size_t>(byte) << 8;
      if (length_ > capacity_) return fail(kErrTooLong);
      state_ = kType;
      break;
    case kType:
      type_ = byte;
      received_ = 0;
      state_ = length_ > 0 ? kPayload : kCrc0;
      break;
    case kPayload:
      buffer_[received_++] = byte;
      if (received_ == length_) state_ = kCrc0;
      break;
    case kCrc0:
      crc_low_ = byte;
      state_ = kCrc1;
      return kNeedMore;
    case kCrc1:
      state_ = kHunt;
      if ((crc_low_ | (byte << 8)) != crc_) return fail(kErrBadCrc);
      return kFrame;
  }
  crc_ = crc16_ccitt(&byte, 1, crc_);
  return kNeedMore;
}

}  // namespace odt
