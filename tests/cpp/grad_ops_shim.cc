// extern "C" entry points into firmware/runtime/grad_ops.cc for tests/test_grad_ops_cpp.py.
// Structs travel as int32 arrays: Dims {n, h, w, c}; ConvParams in declaration order
// {input_offset, output_offset, stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w,
//  depth_multiplier, act_min, act_max}.
// The layer backward is streamed (one sample, one position / kernel tap per call): the shims
// call it over every sample and position to build the Python's whole tensors.
#include <vector>

#include "grad_ops.h"

namespace {
odt::Dims dims(const int32_t* d) { return odt::Dims{d[0], d[1], d[2], d[3]}; }
odt::ConvParams conv(const int32_t* a) {
  return odt::ConvParams{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]};
}

// A WeightSlice of `values` at channels ch (of `depth`, the weight's last axis) and kernel rows;
// none when values is null.
struct Slice {
  std::vector<int16_t> slot;
  odt::WeightSlice s;
  Slice(int8_t* values, const int32_t* ch, int32_t n_ch, const int32_t* rows, int32_t n_rows, int32_t depth)
      : slot(static_cast<size_t>(depth), -1), s{values, ch, n_ch, rows, n_rows, nullptr} {
    for (int32_t k = 0; values != nullptr && k < n_ch; ++k) slot[static_cast<size_t>(ch[k])] = static_cast<int16_t>(k);
    s.slot = slot.data();
  }
  const odt::WeightSlice* get() const { return s.values != nullptr ? &s : nullptr; }
};
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

// Per sample b: gx[b] the exact sums of every input position, and gx16[b] / e_out[b] the device's
// normalization of them (grad_normalize_rows_s16 from exponent e[b]). slice_values null: no slice.
void shim_conv_grad_input(int32_t depthwise, const int32_t* params, const int32_t* in_d, const int32_t* filter_d,
                          const int8_t* w, int8_t* slice_values, const int32_t* slice_ch, int32_t n_slice_ch,
                          const int32_t* slice_rows, int32_t n_slice_rows, const int32_t* out_d, const int16_t* g,
                          int64_t* gx, const int32_t* e, int16_t* gx16, int32_t* e_out) {
  const odt::ConvParams p = conv(params);
  const odt::Dims in = dims(in_d), filter = dims(filter_d), out = dims(out_d);
  const Slice slice(slice_values, slice_ch, n_slice_ch, slice_rows, n_slice_rows, filter.c);
  const int32_t in_size = in.h * in.w * in.c, out_size = out.h * out.w * out.c;
  std::vector<int64_t> scratch(static_cast<size_t>(in.c));
  for (int32_t b = 0; b < in.n; ++b) {
    const int16_t* gb = g + static_cast<int64_t>(b) * out_size;
    auto row = [&](int32_t pos, int64_t* acc) {
      if (depthwise) odt::depthwise_conv2d_grad_input_at(p, in, filter, w, out, gb, pos / in.w, pos % in.w, acc);
      else odt::conv2d_grad_input_at(p, in, filter, w, slice.get(), out, gb, pos / in.w, pos % in.w, acc);
    };
    for (int32_t pos = 0; pos < in.h * in.w; ++pos) row(pos, gx + static_cast<int64_t>(b) * in_size + pos * in.c);
    e_out[b] = odt::grad_normalize_rows_s16(row, in.h * in.w, in.c, e[b], scratch.data(),
                                            gx16 + static_cast<int64_t>(b) * in_size);
  }
}

// Summed over the batch: x the whole input [n][h][w][c], of which the kept channels are gathered
// as the forward saves them; gw [filter.n or 1][n_rows][filter.w][n_ch].
void shim_conv_grad_weight(int32_t depthwise, const int32_t* params, const int32_t* in_d, const int8_t* x,
                           const int32_t* filter_d, const int32_t* out_d, const int16_t* g, const int32_t* ch,
                           int32_t n_ch, const int32_t* rows, int32_t n_rows, int64_t* gw) {
  const odt::ConvParams p = conv(params);
  const odt::Dims in = dims(in_d), filter = dims(filter_d), out = dims(out_d);
  const int32_t n_out = depthwise ? 1 : filter.n, positions = in.h * in.w;
  for (int32_t i = 0; i < n_out * n_rows * filter.w * n_ch; ++i) gw[i] = 0;
  std::vector<int8_t> kept(static_cast<size_t>(positions * n_ch));
  std::vector<int64_t> acc(static_cast<size_t>(n_ch));
  for (int32_t b = 0; b < in.n; ++b) {
    const int8_t* xb = x + static_cast<int64_t>(b) * positions * in.c;
    for (int32_t pos = 0; pos < positions; ++pos) {
      for (int32_t c = 0; c < n_ch; ++c) {
        kept[static_cast<size_t>(pos * n_ch + c)] = xb[pos * in.c + (depthwise ? ch[c] / p.depth_multiplier : ch[c])];
      }
    }
    const int16_t* gb = g + static_cast<int64_t>(b) * out.h * out.w * out.c;
    for (int32_t o = 0; o < n_out; ++o) {
      for (int32_t r = 0; r < n_rows; ++r) {
        for (int32_t kx = 0; kx < filter.w; ++kx) {
          if (depthwise) odt::depthwise_conv2d_grad_weight_at(p, in, kept.data(), ch, n_ch, out, gb, rows[r], kx, acc.data());
          else odt::conv2d_grad_weight_at(p, in, kept.data(), n_ch, out, gb, o, rows[r], kx, acc.data());
          int64_t* dst = gw + ((o * n_rows + r) * filter.w + kx) * n_ch;
          for (int32_t c = 0; c < n_ch; ++c) dst[c] += acc[static_cast<size_t>(c)];
        }
      }
    }
  }
}

// As shim_conv_grad_input: gx [batches][in_f] exact, gx16 / e_out normalized one feature at a time.
void shim_fc_grad_input(int32_t batches, int32_t in_f, int32_t out_f, const int8_t* w, int8_t* slice_values,
                        const int32_t* slice_ch, int32_t n_slice_ch, const int16_t* g, int64_t* gx,
                        const int32_t* e, int16_t* gx16, int32_t* e_out) {
  const Slice slice(slice_values, slice_ch, n_slice_ch, nullptr, 1, in_f);
  for (int32_t b = 0; b < batches; ++b) {
    const int16_t* gb = g + static_cast<int64_t>(b) * out_f;
    auto row = [&](int32_t i, int64_t* acc) { *acc = odt::fully_connected_grad_input_at(in_f, out_f, w, slice.get(), gb, i); };
    for (int32_t i = 0; i < in_f; ++i) row(i, gx + static_cast<int64_t>(b) * in_f + i);
    int64_t one;
    e_out[b] = odt::grad_normalize_rows_s16(row, in_f, 1, e[b], &one, gx16 + static_cast<int64_t>(b) * in_f);
  }
}

// gw [out_f][n_ch] summed over the batch.
void shim_fc_grad_weight(int32_t offset, int32_t batches, int32_t in_f, const int8_t* x, int32_t out_f,
                         const int16_t* g, const int32_t* ch, int32_t n_ch, int64_t* gw) {
  for (int32_t i = 0; i < out_f * n_ch; ++i) gw[i] = 0;
  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t o = 0; o < out_f; ++o) {
      for (int32_t c = 0; c < n_ch; ++c) {
        gw[o * n_ch + c] += odt::fully_connected_grad_weight(g[b * out_f + o], x[b * in_f + ch[c]], offset);
      }
    }
  }
}

void shim_bias_grad(const int16_t* g, int32_t positions, int32_t channels, int64_t* gb) {
  for (int32_t c = 0; c < channels; ++c) gb[c] = odt::bias_grad_at(g, positions, channels, c);
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
