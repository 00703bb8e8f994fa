// Framed serial protocol between the firmware and host_tools/protocol.py.
//
// Frame format (both directions):
//   0xA5 | len (u16 LE, payload bytes) | type (u8) | payload (len bytes) | crc (u16 LE)
//   crc = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout)
//         over len, type and payload. Max payload: 2048 bytes.
//   A receiver skips bytes before a 0xA5 start byte silently (no error).
//   A len above the max is error 5, a crc mismatch is error 1, and a frame
//   left unfinished for 100 ms without a byte is error 2 (truncated).
//   After a frame or an error the receiver hunts for 0xA5 again, starting
//   with the next byte it receives.
// Message types (host requests; the reply type is request | 0x80, or 0x7F):
//   0x01 INFO    req: empty, or u32 LE offset.      resp 0x81: UTF-8 JSON text (device-defined keys) from
//                that offset (0 when empty), at most the max payload; a shorter reply ends the text
//   0x02 TRAIN   req: u16 LE seq, u8 label[, input]. resp 0x82: u8 predicted class (before the update), u32 LE ticks
//   0x03 EVAL    req: [input].                      resp 0x83: u8 predicted class, u32 LE ticks, output (if it fits)
//   0x04 STATS   req: empty.                        resp 0x84: UTF-8 JSON text
//   0x05 PARAMS  req: u32 LE offset, u16 LE length. resp 0x85: those bytes of the trainable-parameter blob
//   0x06 RESET   req: empty.                        resp 0x86: empty (device restores its trainable parameters)
//   0x07 LOAD    req: u32 LE offset, bytes.         resp 0x87: empty (the bytes are written into the model input)
//   0x08 OUTPUT  req: u32 LE offset, u16 LE length. resp 0x88: those bytes of the last output
//   0x7F ERROR   resp only: u8 code, short UTF-8 message. Codes: 1 bad CRC, 2 truncated frame
//                (inter-byte time-out), 3 unknown type, 4 bad payload length for the type,
//                5 payload too long, 6 bad value (e.g. label out of range), 7 device busy/internal.
//   A TRAIN that repeats the sequence number of the last TRAIN is answered again without
//   training, so a retried request never trains twice. TRAIN and EVAL without input bytes run
//   on the input staged by LOAD (for inputs larger than one frame).
//
// No heap, no exceptions, no stdio: the caller owns every buffer.
#ifndef ODT_RUNTIME_PROTOCOL_H_
#define ODT_RUNTIME_PROTOCOL_H_

#include <cstddef>
#include <cstdint>

namespace odt {

constexpr uint8_t kFrameStart = 0xA5;
constexpr size_t kMaxPayload = 2048;
constexpr size_t kFrameHeaderSize = 4;    // start, len (2), type
constexpr size_t kFrameOverhead = 6;      // header + crc (2)
constexpr size_t kMaxFrameSize = kMaxPayload + kFrameOverhead;
constexpr uint32_t kInterByteTimeoutMs = 100;

// Message types. A reply has type request | kMsgResponseBit, or kMsgError.
enum : uint8_t {
  kMsgInfo = 0x01,
  kMsgTrain = 0x02,
  kMsgEval = 0x03,
  kMsgStats = 0x04,
  kMsgParams = 0x05,
  kMsgReset = 0x06,
  kMsgLoad = 0x07,
  kMsgOutput = 0x08,
  kMsgError = 0x7F,
  kMsgResponseBit = 0x80,
};

// Error codes, the first payload byte of a kMsgError frame.
enum : uint8_t {
  kErrBadCrc = 1,
  kErrTruncated = 2,
  kErrUnknownType = 3,
  kErrBadLength = 4,
  kErrTooLong = 5,
  kErrBadValue = 6,
  kErrBusy = 7,
};

// CRC-16/CCITT-FALSE; pass the previous result as `crc` to continue a running CRC.
uint16_t crc16_ccitt(const uint8_t* data, size_t len, uint16_t crc = 0xFFFF);

// Writes one frame into out and returns its size (len + kFrameOverhead), or 0
// if len > kMaxPayload or the frame does not fit in out_cap. payload may point
// at out + kFrameHeaderSize (a payload built in place).
size_t encode_frame(uint8_t type, const uint8_t* payload, size_t len, uint8_t* out,
                    size_t out_cap);

// Writes an ERROR frame (code, then message without its NUL) into out and
// returns its size. The message is cut to what fits; 0 if not even the code fits.
size_t encode_error(uint8_t code, const char* message, uint8_t* out, size_t out_cap);

inline void put_u16le(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void put_u32le(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint16_t get_u16le(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t get_u32le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// Byte-at-a-time frame receiver over a caller-owned payload buffer. Payloads
// longer than min(capacity, kMaxPayload) are rejected with kErrTooLong.
//
//   FrameDecoder dec(buf, sizeof(buf));
//   on each byte:   r = dec.push(byte, now_ms);
//   now and then:   r = dec.poll(now_ms);   // reports a truncated frame
//   r == kFrame:    dec.type(), dec.payload(), dec.length() (valid until the next push)
//   r == kError:    dec.error() is kErrBadCrc, kErrTooLong or kErrTruncated
//
// A byte that arrives after the time-out of a frame in progress reports
// kErrTruncated and is then taken as the first byte of the hunt.
class FrameDecoder {
 public:
  enum Result : uint8_t { kNeedMore, kFrame, kError };

  FrameDecoder(uint8_t* buffer, size_t capacity);

  Result push(uint8_t byte, uint32_t now_ms);
  Result poll(uint32_t now_ms);
  void reset() { state_ = kHunt; }
  bool in_frame() const { return state_ != kHunt; }

  uint8_t type() const { return type_; }
  const uint8_t* payload() const { return buffer_; }
  size_t length() const { return length_; }
  uint8_t error() const { return error_; }

 private:
  enum State : uint8_t { kHunt, kLen0, kLen1, kType, kPayload, kCrc0, kCrc1 };
  Result fail(uint8_t code);

  uint8_t* buffer_;
  size_t capacity_;
  State state_ = kHunt;
  uint8_t type_ = 0;
  uint8_t error_ = 0;
  size_t length_ = 0;
  size_t received_ = 0;
  uint16_t crc_ = 0;      // running crc of len, type and payload
  uint8_t crc_low_ = 0;   // first (low) byte of the received crc
  uint32_t last_ms_ = 0;
};

}  // namespace odt

#endif  // ODT_RUNTIME_PROTOCOL_H_
