// The on-device training application: serves the framed serial protocol (runtime/protocol.h)
// over the board's HAL, runs the baked model, and trains it on streamed samples: the layers,
// channels and biases its scheme names (runtime/train.h), one sparse-update step per sample.
// The same file runs on host, under QEMU and on the STM32F746.
#include <stdio.h>
#include <string.h>

#include "hal/hal.h"
#include "model.h"
#include "protocol.h"
#include "train.h"

namespace odt {
extern const ModelDesc kModel;
extern const Training* const kTraining;  // nullptr when the model is inference-only
}  // namespace odt

namespace {

using namespace odt;

uint8_t rx_buffer[kMaxPayload];
uint8_t tx_buffer[kMaxFrameSize];

struct Stats {
  uint32_t samples_trained, train_correct, evals;
  uint32_t train_ticks, eval_ticks;
  uint32_t last_train_ticks, last_eval_ticks;
} stats;
int64_t steps_done;  // updates applied since boot or RESET (the stochastic rounding's counter)
int32_t bad_step;    // the training plan's first step with too little scratch (training_check), -1: none

// Whether LOAD has staged an input that no forward pass has consumed yet (the arena reuses the
// input's bytes during the forward pass, so a staged input serves exactly one TRAIN or EVAL).
bool input_loaded;

// The last TRAIN's sequence number and reply: a retried TRAIN is answered, not trained again.
struct LastTrain {
  bool valid;
  uint16_t seq;
  uint8_t reply[5];
} last_train;

void send_error(uint8_t code, const char* message) {
  hal_write(tx_buffer, encode_error(code, message, tx_buffer, sizeof(tx_buffer)));
}

// A reply that cannot be framed (over kMaxPayload) is answered with an error, never dropped.
void send(uint8_t type, const uint8_t* payload, size_t len) {
  const size_t n = encode_frame(type, payload, len, tx_buffer, sizeof(tx_buffer));
  if (n == 0) return send_error(kErrBusy, "reply over the frame size");
  hal_write(tx_buffer, n);
}

// A piece of a byte sequence that lies in several places (INFO's text, the trained-parameter blob).
struct Part {
  const void* data;
  size_t size;
};

// Copies bytes [offset, offset + count) of n parts laid end to end (part_at(k) for k < n) to out;
// returns how many it copied (fewer than count past the end of the last part).
template <typename PartAt>
size_t copy_range(int32_t n, PartAt part_at, size_t offset, size_t count, uint8_t* out) {
  size_t at = 0, copied = 0;  // the sequence's offset of part k
  for (int32_t k = 0; k < n; ++k) {
    const Part p = part_at(k);
    const size_t lo = offset > at ? offset : at;
    const size_t hi = offset + count < at + p.size ? offset + count : at + p.size;
    if (lo < hi) {
      memcpy(out + (lo - offset), static_cast<const uint8_t*>(p.data) + (lo - at), hi - lo);
      copied += hi - lo;
    }
    at += p.size;
  }
  return copied;
}

// snprintf's count of what it wrote, not of what it would have written.
size_t written(int n, size_t cap) {
  if (n < 0 || cap == 0) return 0;
  return static_cast<size_t>(n) < cap ? static_cast<size_t>(n) : cap - 1;
}

void restore_params() {
  if (kTraining != nullptr) training_reset(kModel, *kTraining);
  steps_done = 0;
  memset(&stats, 0, sizeof(stats));
  last_train.valid = false;
}

int32_t params_bytes() { return training_param_bytes(kTraining); }

// Forward pass on `input` (nullptr: the input staged by LOAD), keeping what a training step
// needs when `train`; returns the arg-max class and its ticks.
int32_t forward(const uint8_t* input, bool train, uint32_t* ticks) {
  const uint32_t start = hal_ticks();
  if (input) memcpy(kModel.arena + kModel.input_offset, input, static_cast<size_t>(kModel.input_bytes));
  input_loaded = false;
  forward_with_saves(kModel, train ? kTraining : nullptr);
  const int8_t* out = kModel.arena + kModel.output_offset;
  int32_t best = 0;
  for (int32_t i = 1; i < kModel.output_bytes; ++i) best = out[i] > out[best] ? i : best;
  *ticks = hal_ticks() - start;
  return best;
}

// INFO's JSON text is "{" + the baked kModel.info_json (flash) + what the device measures (below);
// with a long scheme it exceeds one frame, so INFO serves it from an offset (the host reads on
// while replies come back full). The measured part is written into `p` (a few hundred bytes).
size_t write_info_measured(char* p, size_t cap) {
  const size_t static_ram = hal_static_ram_used(), stack = hal_stack_used();
  return written(snprintf(
      p, cap,
      ", \"board\": \"%s\", \"input_bytes\": %ld, \"output_bytes\": %ld, \"params_bytes\": %ld, "
      "\"flash_bytes\": %lu, "
      "\"static_sram_bytes\": %lu, \"stack_bytes_used\": %lu, \"stack_bytes_reserved\": %lu, "
      "\"peak_sram_bytes\": %lu, \"tick_hz\": %lu, \"plan_ok\": %s}",
      hal_board_name(), static_cast<long>(kModel.input_bytes),
      static_cast<long>(kModel.output_bytes), static_cast<long>(params_bytes()), static_cast<unsigned long>(hal_flash_used()),
      static_cast<unsigned long>(static_ram), static_cast<unsigned long>(stack),
      static_cast<unsigned long>(hal_stack_size()), static_cast<unsigned long>(static_ram + stack),
      static_cast<unsigned long>(hal_ticks_per_second()), bad_step < 0 ? "true" : "false"), cap);
}

void handle_info(const uint8_t* payload, size_t len) {
  if (len != 0 && len != 4) return send_error(kErrBadLength, "INFO: empty or u32 offset");
  const uint32_t offset = len == 4 ? get_u32le(payload) : 0;  // read before rx_buffer is reused
  char* measured = reinterpret_cast<char*>(rx_buffer);
  const size_t measured_len = write_info_measured(measured, sizeof(rx_buffer));
  const Part parts[3] = {{"{", 1}, {kModel.info_json, strlen(kModel.info_json)}, {measured, measured_len}};
  if (offset > parts[0].size + parts[1].size + parts[2].size)
    return send_error(kErrBadValue, "INFO: offset past the end of the text");
  uint8_t* out = tx_buffer + kFrameHeaderSize;  // the reply's payload, built in place
  const size_t n = copy_range(3, [&](int32_t k) { return parts[k]; }, offset, kMaxPayload, out);
  send(kMsgInfo | kMsgResponseBit, out, n);
}

size_t write_stats(char* p, size_t cap) {
  return written(snprintf(
      p, cap,
      "{\"samples_trained\": %lu, \"train_correct\": %lu, \"evals\": %lu, \"train_ticks\": %lu, "
      "\"eval_ticks\": %lu, \"last_train_ticks\": %lu, \"last_eval_ticks\": %lu, \"tick_hz\": %lu, "
      "\"stack_bytes_used\": %lu}",
      static_cast<unsigned long>(stats.samples_trained), static_cast<unsigned long>(stats.train_correct),
      static_cast<unsigned long>(stats.evals), static_cast<unsigned long>(stats.train_ticks),
      static_cast<unsigned long>(stats.eval_ticks), static_cast<unsigned long>(stats.last_train_ticks),
      static_cast<unsigned long>(stats.last_eval_ticks),
      static_cast<unsigned long>(hal_ticks_per_second()), static_cast<unsigned long>(hal_stack_used())), cap);
}

void handle_train(const uint8_t* payload, size_t len) {
  if (kTraining == nullptr) return send_error(kErrBadValue, "this build trains nothing");
  if (bad_step >= 0) return send_error(kErrBadValue, "training plan: a step has less scratch than its kernel needs; re-bake");
  const bool staged = len == 3;
  if (len != static_cast<size_t>(kModel.input_bytes) + 3 && !staged)
    return send_error(kErrBadLength, "TRAIN: u16 seq + label [+ input bytes]");
  const uint16_t seq = get_u16le(payload);
  if (last_train.valid && seq == last_train.seq)
    return send(kMsgTrain | kMsgResponseBit, last_train.reply, sizeof(last_train.reply));
  const int32_t label = payload[2];
  if (label >= kTraining->num_classes) return send_error(kErrBadValue, "label out of range");
  if (staged && !input_loaded) return send_error(kErrBadValue, "TRAIN: no input staged by LOAD");
  uint32_t ticks;
  const int32_t pred = forward(staged ? nullptr : payload + 3, true, &ticks);
  const uint32_t start = hal_ticks();
  train_step(kModel, *kTraining, label, steps_done++);
  ticks += hal_ticks() - start;
  stats.samples_trained++;
  stats.train_correct += pred == label;
  stats.train_ticks += ticks;
  stats.last_train_ticks = ticks;
  last_train.valid = true;
  last_train.seq = seq;
  last_train.reply[0] = static_cast<uint8_t>(pred);
  put_u32le(last_train.reply + 1, ticks);
  send(kMsgTrain | kMsgResponseBit, last_train.reply, sizeof(last_train.reply));
}

void handle_eval(const uint8_t* payload, size_t len) {
  const bool staged = len == 0;
  if (len != static_cast<size_t>(kModel.input_bytes) && !staged)
    return send_error(kErrBadLength, "EVAL: input bytes, or none after LOAD");
  if (staged && !input_loaded) return send_error(kErrBadValue, "EVAL: no input staged by LOAD");
  uint32_t ticks;
  const int32_t pred = forward(staged ? nullptr : payload, false, &ticks);
  stats.evals++;
  stats.eval_ticks += ticks;
  stats.last_eval_ticks = ticks;
  uint8_t* reply = rx_buffer;  // the request is consumed: reuse its buffer for the reply
  reply[0] = static_cast<uint8_t>(pred);
  put_u32le(reply + 1, ticks);
  const size_t out = static_cast<size_t>(kModel.output_bytes);
  const size_t shown = 5 + out <= kMaxPayload ? out : 0;  // larger outputs: read them with OUTPUT
  memcpy(reply + 5, kModel.arena + kModel.output_offset, shown);
  send(kMsgEval | kMsgResponseBit, reply, 5 + shown);
}

// Writes bytes into the model input at an offset (inputs larger than one frame).
void handle_load(const uint8_t* payload, size_t len) {
  if (len < 4) return send_error(kErrBadLength, "LOAD: u32 offset + bytes");
  const uint32_t offset = get_u32le(payload), count = static_cast<uint32_t>(len - 4);
  const uint32_t total = static_cast<uint32_t>(kModel.input_bytes);
  if (offset > total || count > total - offset) return send_error(kErrBadValue, "LOAD: range outside the input");
  memmove(kModel.arena + kModel.input_offset + offset, payload + 4, count);
  input_loaded = true;
  send(kMsgLoad | kMsgResponseBit, nullptr, 0);
}

// Bytes of the output of the last forward pass.
void handle_output(const uint8_t* payload, size_t len) {
  if (len != 6) return send_error(kErrBadLength, "OUTPUT: u32 offset + u16 length");
  const uint32_t offset = get_u32le(payload), count = get_u16le(payload + 4);
  const uint32_t total = static_cast<uint32_t>(kModel.output_bytes);
  if (offset > total || count > total - offset || count > kMaxPayload)
    return send_error(kErrBadValue, "OUTPUT: range outside the output");
  memcpy(rx_buffer, kModel.arena + kModel.output_offset + offset, count);
  send(kMsgOutput | kMsgResponseBit, rx_buffer, count);
}

// The trained-parameter blob: each trained tensor's bytes in the order of model.json's "params"
// (int8 weights as laid out in the model, int32 biases little-endian).
void handle_params(const uint8_t* payload, size_t len) {
  if (len != 6) return send_error(kErrBadLength, "PARAMS: u32 offset + u16 length");
  const uint32_t offset = get_u32le(payload), count = get_u16le(payload + 4);
  const uint32_t total = static_cast<uint32_t>(params_bytes());
  if (offset > total || count > total - offset || count > kMaxPayload)
    return send_error(kErrBadValue, "PARAMS: range outside the parameter blob");
  const auto tensor = [](int32_t k) {
    const ParamCopy& p = kTraining->params[k];
    return Part{p.dst, static_cast<size_t>(p.bytes)};
  };
  copy_range(kTraining ? kTraining->n_params : 0, tensor, offset, count, rx_buffer);
  send(kMsgParams | kMsgResponseBit, rx_buffer, count);
}

void dispatch(uint8_t type, const uint8_t* payload, size_t len) {
  char* text = reinterpret_cast<char*>(rx_buffer);
  switch (type) {
    case kMsgInfo:
      return handle_info(payload, len);
    case kMsgTrain:
      return handle_train(payload, len);
    case kMsgEval:
      return handle_eval(payload, len);
    case kMsgStats:
      return send(kMsgStats | kMsgResponseBit, rx_buffer, write_stats(text, sizeof(rx_buffer)));
    case kMsgParams:
      return handle_params(payload, len);
    case kMsgLoad:
      return handle_load(payload, len);
    case kMsgOutput:
      return handle_output(payload, len);
    case kMsgReset:
      restore_params();
      return send(kMsgReset | kMsgResponseBit, nullptr, 0);
    default:
      return send_error(kErrUnknownType, "unknown message type");
  }
}

void report_decoder_error(uint8_t code) {
  static const char* const kText[] = {"", "bad CRC", "truncated frame", "", "", "payload too long"};
  send_error(code, code < 6 ? kText[code] : "frame error");
}

}  // namespace

int main(int argc, char** argv) {
  hal_init(argc, argv);
  bad_step = kTraining ? training_check(kModel, *kTraining) : -1;
  restore_params();
  FrameDecoder decoder(rx_buffer, sizeof(rx_buffer));
  uint8_t chunk[64];
  for (;;) {
    const size_t n = hal_read(chunk, sizeof(chunk), 20);
    for (size_t i = 0; i < n; ++i) {
      const FrameDecoder::Result r = decoder.push(chunk[i], hal_millis());
      if (r == FrameDecoder::kFrame) dispatch(decoder.type(), decoder.payload(), decoder.length());
      if (r == FrameDecoder::kError) report_decoder_error(decoder.error());
    }
    if (n == 0 && decoder.poll(hal_millis()) == FrameDecoder::kError) report_decoder_error(decoder.error());
  }
}
