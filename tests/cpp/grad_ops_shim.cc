// extern "C" entry points into firmware/runtime/grad_ops.cc for tests/test_grad_ops_cpp.py.
// Structs travel as int32 arrays: Dims {n, h, w, c}; ConvParams in declaration order
// {input_offset, output_offset, stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w,
//  depth_multiplier, act_min, act_max}.
#include "grad_ops.h"

namespace {
odt::Dims dims(const int32_t* d) { return odt::Dims{d[0], d[1], d[2], d[3]}; }
odt::ConvParams conv(const int32_t* a) {
  return odt::ConvParams{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]};
}
}  // namespace

extern "C" {

int64_t shim_round_shift(int64_t x, int64_t s) { return odt::round_shift(x, s); }
int32_t shim_bit_length_abs(int64_t x) { return odt::bit_length_abs(x); }

int32_t shim_normalize(const int64_t* exact, int32_t count, int32_t e, int32_t bits, void* out) {
  return bits == 16 ? odt::grad_normalize_s16(exact, count, e, static_cast<int16_t*>(out))
                    : odt::grad_normalize_s8(exact, count, e, static_cast<int8_t*>(out));
}

int32_t shim_scale(const void* v, int32_t count, int32_t channels, int32_t e, const int32_t* m,
                   const int32_t* s, int32_t bits, void* out) {
  return bits == 16 ? odt::grad_scale_s16(static_cast<const int16_t*>(v), count, channels, e, m, s,
                                          static_cast<int16_t*>(out))
                    : odt::grad_scale_s8(static_cast<const int8_t*>(v), count, channels, e, m, s,
                                         static_cast<int8_t*>(out));
}

void shim_mask(void* v, const int8_t* y, int32_t count, int32_t lo, int32_t hi, int32_t bits) {
  if (bits == 16) odt::grad_mask_s16(static_cast<int16_t*>(v), y, count, lo, hi);
  else odt::grad_mask_s8(static_cast<int8_t*>(v), y, count, lo, hi);
}

int32_t shim_add(const void* a, int32_t ea, const void* b, int32_t eb, int32_t count, int32_t bits,
                 void* out) {
  return bits == 16 ? odt::grad_add_s16(static_cast<const int16_t*>(a), ea, static_cast<const int16_t*>(b),
                                        eb, count, static_cast<int16_t*>(out))
                    : odt::grad_add_s8(static_cast<const int8_t*>(a), ea, static_cast<const int8_t*>(b), eb,
                                       count, static_cast<int8_t*>(out));
}

void shim_batch_align(void* v, int32_t n, int32_t count, int32_t* e, int32_t bits) {
  if (bits == 16) odt::grad_batch_align_s16(static_cast<int16_t*>(v), n, count, e);
  else odt::grad_batch_align_s8(static_cast<int8_t*>(v), n, count, e);
}

int32_t shim_softmax_ce(const int8_t* logits, int32_t k, int32_t label, const uint32_t* table,
                        int32_t table_size, int32_t bits, void* out) {
  return bits == 16 ? odt::softmax_ce_grad_s16(logits, k, label, table, table_size, static_cast<int16_t*>(out))
                    : odt::softmax_ce_grad_s8(logits, k, label, table, table_size, static_cast<int8_t*>(out));
}

void shim_conv_grad_input(int32_t depthwise, const int32_t* params, const int32_t* in, const int32_t* filter,
                          const int8_t* w, const int32_t* out, const int16_t* g, int64_t* gx) {
  if (depthwise) odt::depthwise_conv2d_grad_input_s16(conv(params), dims(in), dims(filter), w, dims(out), g, gx);
  else odt::conv2d_grad_input_s16(conv(params), dims(in), dims(filter), w, dims(out), g, gx);
}

void shim_conv_grad_weight(int32_t depthwise, const int32_t* params, const int32_t* in, const int8_t* x,
                           const int32_t* filter, const int32_t* out, const int16_t* g, const int32_t* ch,
                           int32_t n_ch, const int32_t* rows, int32_t n_rows, int64_t* gw) {
  if (depthwise) {
    odt::depthwise_conv2d_grad_weight_s8(conv(params), dims(in), x, dims(filter), dims(out), g, ch, n_ch, rows,
                                         n_rows, gw);
  } else {
    odt::conv2d_grad_weight_s8(conv(params), dims(in), x, dims(filter), dims(out), g, ch, n_ch, rows, n_rows, gw);
  }
}

void shim_fc_grad_input(int32_t batches, int32_t in_f, int32_t out_f, const int8_t* w, const int16_t* g,
                        int64_t* gx) {
  odt::fully_connected_grad_input_s16(batches, in_f, out_f, w, g, gx);
}

void shim_fc_grad_weight(int32_t offset, int32_t batches, int32_t in_f, const int8_t* x, int32_t out_f,
                         const int16_t* g, const int32_t* ch, int32_t n_ch, int64_t* gw) {
  odt::fully_connected_grad_weight_s8(offset, batches, in_f, x, out_f, g, ch, n_ch, gw);
}

void shim_bias_grad(const int16_t* g, int32_t positions, int32_t channels, int64_t* gb) {
  odt::bias_grad_s32(g, positions, channels, gb);
}

uint32_t shim_hash32(uint32_t x) { return odt::hash32(x); }

void shim_uniform32(int64_t seed, int64_t step, uint32_t stream, int32_t n, uint32_t* out) {
  const uint32_t key = odt::uniform32_key(seed, step, stream);
  for (int32_t i = 0; i < n; ++i) out[i] = odt::uniform32(key, static_cast<uint32_t>(i));
}

// Elementwise over arrays (one call per batch of cases keeps the ctypes overhead small).
void shim_apply_update(int32_t n, const int64_t* q, const int64_t* grad, const int32_t* e, const int32_t* m,
                       const int32_t* k, int64_t lo, int64_t hi, const uint32_t* rand, int32_t stochastic,
                       int64_t* out) {
  for (int32_t i = 0; i < n; ++i) {
    out[i] = odt::apply_update(q[i], grad[i], e[i], m[i], k[i], lo, hi, stochastic ? rand[i] : 0u,
                               stochastic != 0);
  }
}

void shim_round_shift_n(int32_t n, const int64_t* x, const int64_t* s, int64_t* out) {
  for (int32_t i = 0; i < n; ++i) out[i] = odt::round_shift(x[i], s[i]);
}
int32_t shim_mean_grad(const int16_t* g, int32_t channels, int32_t e, int32_t m, int32_t s, int32_t h,
                       int32_t w, int16_t* gx) {
  return odt::mean_hw_grad_input_s16(g, channels, e, m, s, h, w, gx);
}

void shim_pad_grad(const int32_t* before, const int32_t* after, const int32_t* in, const int32_t* out,
                   const int16_t* g, int16_t* gx) {
  odt::PadParams p{{before[0], before[1], before[2], before[3]}, {after[0], after[1], after[2], after[3]}, 0};
  odt::pad_grad_input_s16(p, dims(in), dims(out), g, gx);
}

}
