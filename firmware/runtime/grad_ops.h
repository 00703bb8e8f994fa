// Integer backward arithmetic of sparse on-device training: the C++ twin of
// model_prep/grad_ops.py, tested bit-exact against it (tests/test_grad_ops_cpp.py).
//
// A gradient of an int8 tensor is block floating point: integers v (int16 or int8) and one
// power-of-two exponent e per sample, value v * 2^e. Every kernel computes its result exactly
// in int64 and rounds once (grad_normalize_*): the exponent grows until the largest magnitude
// fits, values round half up. The Python holds the same integers in float64 (exact below 2^53).
//
// Pure functions: the caller passes every buffer, nothing allocates, nothing keeps state; no
// exceptions, no containers (the same file builds for the Cortex-M7). Tensors are NHWC and
// reuse the forward's Dims / ConvParams / WeightSlice (kernels/kernels.h). Kernels whose Python
// takes a batch take in.n samples (samples are contiguous); the layer backward is streamed, one
// sample and one slice of the result per call (the Python's whole tensors, piece by piece).
#pragma once

#include <stdint.h>

#include "kernels/kernels.h"

namespace odt {

constexpr int32_t kGradMaxShift = 62;    // larger right shifts act as this one (MAX_SHIFT)
constexpr int32_t kUpdateBits = 15;      // update multipliers m in [2^14, 2^15) (UPDATE_BITS)

// floor((x + 2^(s-1)) / 2^s) for s > 0 (round half up), x for s <= 0; s is capped at 62.
// Exact for |x| < 2^62 (the Python's float64 twin is exact for |x| < 2^52).
int64_t round_shift(int64_t x, int64_t s);

// Bits of |x|: 0 for 0, 64 for INT64_MIN.
int32_t bit_length_abs(int64_t x);

// |x| as an unsigned 64-bit value (exact for INT64_MIN).
inline uint64_t magnitude64(int64_t x) {
  return x < 0 ? uint64_t{0} - static_cast<uint64_t>(x) : static_cast<uint64_t>(x);
}

// The shift grad_normalize_* applies to values whose largest magnitude is `top`, to fit `bits`
// bits: max(0, bit_length(top) - (bits - 1)).
int32_t grad_normalize_shift(uint64_t top, int32_t bits);

// The value grad_normalize_* stores for exact sum v at shift s: clamp(round_shift(v, s)) to
// +-(2^(Bits-1) - 1) (symmetric: the gradient's sign is preserved).
template <int Bits>
inline int64_t grad_round_clamp(int64_t v, int32_t s) {
  constexpr int64_t kLimit = (int64_t{1} << (Bits - 1)) - 1;
  const int64_t r = round_shift(v, s);
  return r > kLimit ? kLimit : (r < -kLimit ? -kLimit : r);
}

// Input row / column of output position o at kernel tap t, or -1 outside [0, size).
inline int32_t conv_tap(int32_t o, int32_t stride, int32_t t, int32_t dilation, int32_t pad, int32_t size) {
  const int32_t i = o * stride + t * dilation - pad;
  return (i >= 0 && i < size) ? i : -1;
}

// One sample: top = max |exact[i]|, s = max(0, bit_length(top) - 15),
// out[i] = clamp(round_shift(exact[i], s), -32767, 32767); returns e + s. count may be 0.
int32_t grad_normalize_s16(const int64_t* exact, int32_t count, int32_t e, int16_t* out);
// The same with 8 bits: s = max(0, bit_length(top) - 7), clamp to +-127.
int32_t grad_normalize_s8(const int64_t* exact, int32_t count, int32_t e, int8_t* out);

// One sample, v * M[c] with M[c] = multiplier[c] * 2^(shift[c] - 31) per channel of the last axis
// (count = positions * channels). Live channels have multiplier != 0; top = max shift over them
// (0 if none); exact = round_shift(v * multiplier[c], max(0, top - shift[c])) (|v m| < 2^46),
// normalized with exponent e + top - 31 (the return value). out may alias v.
int32_t grad_scale_s16(const int16_t* v, int32_t count, int32_t channels, int32_t e,
                       const int32_t* multiplier, const int32_t* shift, int16_t* out);
int32_t grad_scale_s8(const int8_t* v, int32_t count, int32_t channels, int32_t e,
                      const int32_t* multiplier, const int32_t* shift, int8_t* out);

// v[i] = 0 where the fused activation clamped the int8 output: unless act_min < y[i] < act_max.
void grad_mask_s16(int16_t* v, const int8_t* y, int32_t count, int32_t act_min, int32_t act_max);
void grad_mask_s8(int8_t* v, const int8_t* y, int32_t count, int32_t act_min, int32_t act_max);

// One sample, a * 2^ea + b * 2^eb: top = max(ea, eb), exact = round_shift(a, top - ea) +
// round_shift(b, top - eb), normalized with exponent top (the return value). out may alias a or b.
int32_t grad_add_s16(const int16_t* a, int32_t ea, const int16_t* b, int32_t eb, int32_t count,
                     int16_t* out);
int32_t grad_add_s8(const int8_t* a, int32_t ea, const int8_t* b, int32_t eb, int32_t count,
                    int8_t* out);

// One exponent for the batch (n samples of `count` values, exponents e[n]): top = max e;
// v = round_shift(v, top - e[s]) per sample (no clamp needed: magnitudes only shrink); e[s] = top.
void grad_batch_align_s16(int16_t* v, int32_t n, int32_t count, int32_t* e);
void grad_batch_align_s8(int8_t* v, int32_t n, int32_t count, int32_t* e);

// Softmax cross-entropy of one sample's int8 logits[k]: d = min(max(logits) - logits[i], table_size - 1),
// t_i = table[d], total = sum t_i, p_i = floor(((t_i << 15) + total / 2) / total) (Q15),
// exact_i = p_i - 2^15 [i == label], normalized with exponent -15 (the return value).
int32_t softmax_ce_grad_s16(const int8_t* logits, int32_t k, int32_t label, const uint32_t* table,
                            int32_t table_size, int16_t* out);
int32_t softmax_ce_grad_s8(const int8_t* logits, int32_t k, int32_t label, const uint32_t* table,
                           int32_t table_size, int8_t* out);

// -- exact layer backward, streamed -----------------------------------------------------------
// One sample. Each call yields the exact int64 sums of one slice of a layer's gradient, so no
// gradient tensor ever exists: the firmware (train.cc) applies a weight gradient the moment it is
// summed and normalizes an input gradient in two passes (grad_normalize_rows_s16). g is the
// masked, scaled gradient of the accumulator, [out.h][out.w][out.c] int16 values (int8-format
// gradients are widened by the caller); its products with int8 values fit in int32. Taps as in the
// forward: output (oy, ox) reads input iy = oy*stride_h + ky*dilation_h - pad_h (and likewise x);
// taps in the padding contribute nothing.

// grad_normalize_s16 of `rows` rows of `width` values, row(r, dst) writing the exact int64 sums of
// row r to dst: one pass for the largest magnitude, one for the rounding, so only one row of sums
// exists at a time (scratch [width]). out [rows][width]; returns the exponent e + s.
template <typename Row>
int32_t grad_normalize_rows_s16(Row row, int32_t rows, int32_t width, int32_t e, int64_t* scratch, int16_t* out) {
  uint64_t top = 0;
  for (int32_t r = 0; r < rows; ++r) {
    row(r, scratch);
    for (int32_t i = 0; i < width; ++i) {
      const uint64_t a = magnitude64(scratch[i]);
      top = a > top ? a : top;
    }
  }
  const int32_t s = grad_normalize_shift(top, 16);
  for (int32_t r = 0; r < rows; ++r) {
    row(r, scratch);
    int16_t* dst = out + r * width;
    for (int32_t i = 0; i < width; ++i) dst[i] = static_cast<int16_t>(grad_round_clamp<16>(scratch[i], s));
  }
  return e + s;
}

// dL/dx of CONV_2D at input position (iy, ix): acc[i] (i < in.c) = sum of g[oy][ox][o] *
// W[o][ky][kx][i] over o and the taps (ky, kx) of output positions (oy, ox) that read (iy, ix).
// W is the flash filter OHWI {o, kh, kw, i} overlaid by `slice` (nullptr: none): at its rows and
// channels, the slice's values replace the flash ones.
void conv2d_grad_input_at(const ConvParams& p, const Dims& in, const Dims& filter, const int8_t* weights,
                          const WeightSlice* slice, const Dims& out, const int16_t* g, int32_t iy, int32_t ix,
                          int64_t* acc);

// dL/dx of DEPTHWISE_CONV_2D at (iy, ix): output channel o = i * depth_multiplier + j reads input
// channel i; acc[i] = sum of g[oy][ox][o] * W[0][ky][kx][o] over those o and the taps reading
// (iy, ix). filter 1HWC {1, kh, kw, out.c}.
void depthwise_conv2d_grad_input_at(const ConvParams& p, const Dims& in, const Dims& filter,
                                    const int8_t* weights, const Dims& out, const int16_t* g, int32_t iy,
                                    int32_t ix, int64_t* acc);

// dL/dx of FULLY_CONNECTED at input feature i: sum over o of g[o] * W[o][i]; W [out_features]
// [in_features] the flash weights, or, for a feature the slice holds (slice->slot[i] = k >= 0), the
// slice's values [out_features][n_channels] at column k.
int64_t fully_connected_grad_input_at(int32_t in_features, int32_t out_features, const int8_t* weights,
                                      const WeightSlice* slice, const int16_t* g, int32_t i);

// dL/dW_q of CONV_2D at output channel o and kernel tap (ky, kx) for the kept input channels:
// acc[c] (c < n_channels) = sum over the output positions (oy, ox) whose tap reads inside the input
// of g[oy][ox][o] * (x[iy][ix][c] + input_offset). x holds only the kept channels, [in.h][in.w]
// [n_channels] (in.c is not read), as the forward saves them.
void conv2d_grad_weight_at(const ConvParams& p, const Dims& in, const int8_t* x, int32_t n_channels,
                           const Dims& out, const int16_t* g, int32_t o, int32_t ky, int32_t kx, int64_t* acc);

// dL/dW_q of DEPTHWISE_CONV_2D at kernel tap (ky, kx) for the kept channels channels[c] (output
// channels, the weight's last axis): acc[c] = sum of g[oy][ox][channels[c]] * (x[iy][ix][c] +
// input_offset); x [in.h][in.w][n_channels] holds at c the input channel channels[c] / depth_multiplier.
void depthwise_conv2d_grad_weight_at(const ConvParams& p, const Dims& in, const int8_t* x,
                                     const int32_t* channels, int32_t n_channels, const Dims& out,
                                     const int16_t* g, int32_t ky, int32_t kx, int64_t* acc);

// dL/dW_q of FULLY_CONNECTED at output o and input feature i: g[o] * (x[i] + input_offset), one
// product (inline: the update applies it element by element).
inline int64_t fully_connected_grad_weight(int16_t g, int8_t x, int32_t input_offset) {
  return static_cast<int64_t>(g) * (x + input_offset);
}

// dL/db_q of channel c: the sum of g[pos * channels + c] over `positions` positions.
int64_t bias_grad_at(const int16_t* g, int32_t positions, int32_t channels, int32_t c);

// dL/dx of MEAN over H and W, one sample: every position gets g[c] * M, M = multiplier * 2^(shift - 31)
// = s_x / (s_y * h * w) (grad_scale_s16 with one multiplier for all channels), then copied to each
// of the h * w positions of gx [h][w][channels]. Returns the exponent. gx may not alias g.
int32_t mean_hw_grad_input_s16(const int16_t* g, int32_t channels, int32_t e, int32_t multiplier,
                               int32_t shift, int32_t h, int32_t w, int16_t* gx);

// dL/dx of PAD: the window of g [out] that holds the unpadded input (p.before offsets), one
// sample per in.n; the exponent is unchanged.
void pad_grad_input_s16(const PadParams& p, const Dims& in, const Dims& out, const int16_t* g, int16_t* gx);

// -- update -------------------------------------------------------------------------------------

// lowbias32: x ^= x >> 16; x *= 0x7FEB352D; x ^= x >> 15; x *= 0x846CA68B; x ^= x >> 16 (mod 2^32).
uint32_t hash32(uint32_t x);
// The key of update number `step` of tensor `stream`: hash32(hash32(uint32(seed ^ step)) ^ stream).
uint32_t uniform32_key(int64_t seed, int64_t step, uint32_t stream);
// Element i's uniform uint32 of that update: hash32(uint32(i) ^ key).
inline uint32_t uniform32(uint32_t key, uint32_t i) { return hash32(i ^ key); }

// q + round(-grad * m * 2^(k - 15 + e)) clamped to [lo, hi] (int8 weights: +-127, int32 biases):
// p = -(grad * m) (|grad| < 2^47, m < 2^15), r = min(15 - k - e, 62), left = clamp(-r, 0, 31),
// r = max(r, 0), coarse = max(r - 32, 0), fine = r - coarse, p >>= coarse,
// noise = fine == 0 ? 0 : stochastic ? rand >> (32 - fine) : 2^(fine - 1),
// step = clamp((p + noise) >> fine, -2^32, 2^32) << left, result clamp(q + step, lo, hi)
// (the shift and the sum wrap modulo 2^64 as in the int64 Python; only absurd steps reach that).
int64_t apply_update(int64_t q, int64_t grad, int32_t e, int32_t m, int32_t k, int64_t lo,
                     int64_t hi, uint32_t rand, bool stochastic);

}  // namespace odt
