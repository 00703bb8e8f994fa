#include "grad_ops.h"

namespace odt {

namespace {

int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Writes clamp(round_shift(exact(i), s)) for the sample; Exact(i) recomputes value i (cheaper
// than a scratch buffer, and lets the output alias the input).
template <typename T, int Bits, typename Exact>
int32_t normalize_with(Exact exact, int32_t count, int32_t e, T* out) {
  uint64_t top = 0;
  for (int32_t i = 0; i < count; ++i) {
    const uint64_t a = magnitude64(exact(i));
    top = a > top ? a : top;
  }
  const int32_t s = grad_normalize_shift(top, Bits);
  for (int32_t i = 0; i < count; ++i) out[i] = static_cast<T>(grad_round_clamp<Bits>(exact(i), s));
  return e + s;
}

template <typename T, int Bits>
int32_t scale_t(const T* v, int32_t count, int32_t channels, int32_t e, const int32_t* multiplier,
                const int32_t* shift, T* out) {
  bool any = false;
  int32_t top = 0;
  for (int32_t c = 0; c < channels; ++c) {
    if (multiplier[c] == 0) continue;
    top = (!any || shift[c] > top) ? shift[c] : top;
    any = true;
  }
  auto exact = [&](int32_t i) {
    const int32_t c = i % channels;
    const int64_t s = static_cast<int64_t>(top) - shift[c];
    return round_shift(static_cast<int64_t>(v[i]) * multiplier[c], s > 0 ? s : 0);
  };
  return normalize_with<T, Bits>(exact, count, e + top - 31, out);
}

template <typename T>
void mask_t(T* v, const int8_t* y, int32_t count, int32_t act_min, int32_t act_max) {
  for (int32_t i = 0; i < count; ++i) {
    if (!(y[i] > act_min && y[i] < act_max)) v[i] = 0;
  }
}

template <typename T, int Bits>
int32_t add_t(const T* a, int32_t ea, const T* b, int32_t eb, int32_t count, T* out) {
  const int32_t top = ea > eb ? ea : eb;
  const int64_t sa = static_cast<int64_t>(top) - ea, sb = static_cast<int64_t>(top) - eb;
  auto exact = [&](int32_t i) { return round_shift(a[i], sa) + round_shift(b[i], sb); };
  return normalize_with<T, Bits>(exact, count, top, out);
}

template <typename T>
void batch_align_t(T* v, int32_t n, int32_t count, int32_t* e) {
  if (n <= 1) return;
  int32_t top = e[0];
  for (int32_t s = 1; s < n; ++s) top = e[s] > top ? e[s] : top;
  for (int32_t s = 0; s < n; ++s) {
    const int64_t shift = static_cast<int64_t>(top) - e[s];
    T* vs = v + static_cast<int64_t>(s) * count;
    for (int32_t i = 0; i < count; ++i) vs[i] = static_cast<T>(round_shift(vs[i], shift));
    e[s] = top;
  }
}

template <typename T, int Bits>
int32_t softmax_ce_t(const int8_t* logits, int32_t k, int32_t label, const uint32_t* table,
                     int32_t table_size, T* out) {
  int32_t top = logits[0];
  for (int32_t i = 1; i < k; ++i) top = logits[i] > top ? logits[i] : top;
  auto weight = [&](int32_t i) -> int64_t {
    const int32_t d = top - logits[i];
    return table[d < table_size - 1 ? d : table_size - 1];
  };
  int64_t total = 0;
  for (int32_t i = 0; i < k; ++i) total += weight(i);
  auto exact = [&](int32_t i) {
    const int64_t num = (weight(i) << 15) + total / 2;   // >= 0: floor division is truncation
    return num / total - (i == label ? int64_t{1} << 15 : 0);
  };
  return normalize_with<T, Bits>(exact, k, -15, out);
}

}  // namespace

int64_t round_shift(int64_t x, int64_t s) {
  if (s <= 0) return x;
  if (s > kGradMaxShift) s = kGradMaxShift;
  return (x + (int64_t{1} << (s - 1))) >> s;   // arithmetic shift: floor
}

int32_t bit_length_abs(int64_t x) {
  uint64_t a = magnitude64(x);
  int32_t len = 0;
  while (a != 0) {
    ++len;
    a >>= 1;
  }
  return len;
}

int32_t grad_normalize_shift(uint64_t top, int32_t bits) {
  const int32_t s = bit_length_abs(static_cast<int64_t>(top)) - (bits - 1);
  return s > 0 ? s : 0;
}

int32_t grad_normalize_s16(const int64_t* exact, int32_t count, int32_t e, int16_t* out) {
  return normalize_with<int16_t, 16>([&](int32_t i) { return exact[i]; }, count, e, out);
}

int32_t grad_normalize_s8(const int64_t* exact, int32_t count, int32_t e, int8_t* out) {
  return normalize_with<int8_t, 8>([&](int32_t i) { return exact[i]; }, count, e, out);
}

int32_t grad_scale_s16(const int16_t* v, int32_t count, int32_t channels, int32_t e,
                       const int32_t* multiplier, const int32_t* shift, int16_t* out) {
  return scale_t<int16_t, 16>(v, count, channels, e, multiplier, shift, out);
}

int32_t grad_scale_s8(const int8_t* v, int32_t count, int32_t channels, int32_t e,
                      const int32_t* multiplier, const int32_t* shift, int8_t* out) {
  return scale_t<int8_t, 8>(v, count, channels, e, multiplier, shift, out);
}

void grad_mask_s16(int16_t* v, const int8_t* y, int32_t count, int32_t act_min, int32_t act_max) {
  mask_t(v, y, count, act_min, act_max);
}

void grad_mask_s8(int8_t* v, const int8_t* y, int32_t count, int32_t act_min, int32_t act_max) {
  mask_t(v, y, count, act_min, act_max);
}

int32_t grad_add_s16(const int16_t* a, int32_t ea, const int16_t* b, int32_t eb, int32_t count,
                     int16_t* out) {
  return add_t<int16_t, 16>(a, ea, b, eb, count, out);
}

int32_t grad_add_s8(const int8_t* a, int32_t ea, const int8_t* b, int32_t eb, int32_t count,
                    int8_t* out) {
  return add_t<int8_t, 8>(a, ea, b, eb, count, out);
}

void grad_batch_align_s16(int16_t* v, int32_t n, int32_t count, int32_t* e) {
  batch_align_t(v, n, count, e);
}

void grad_batch_align_s8(int8_t* v, int32_t n, int32_t count, int32_t* e) {
  batch_align_t(v, n, count, e);
}

int32_t softmax_ce_grad_s16(const int8_t* logits, int32_t k, int32_t label, const uint32_t* table,
                            int32_t table_size, int16_t* out) {
  return softmax_ce_t<int16_t, 16>(logits, k, label, table, table_size, out);
}

int32_t softmax_ce_grad_s8(const int8_t* logits, int32_t k, int32_t label, const uint32_t* table,
                           int32_t table_size, int8_t* out) {
  return softmax_ce_t<int8_t, 8>(logits, k, label, table, table_size, out);
}

// -- layer backward -------------------------------------------------------------------------------

int32_t mean_hw_grad_input_s16(const int16_t* g, int32_t channels, int32_t e, int32_t multiplier,
                               int32_t shift, int32_t h, int32_t w, int16_t* gx) {
  const int32_t out_e = grad_scale_s16(g, channels, 1, e, &multiplier, &shift, gx);
  for (int32_t pos = 1; pos < h * w; ++pos) {
    for (int32_t c = 0; c < channels; ++c) gx[pos * channels + c] = gx[c];
  }
  return out_e;
}

void pad_grad_input_s16(const PadParams& p, const Dims& in, const Dims& out, const int16_t* g, int16_t* gx) {
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t y = 0; y < in.h; ++y) {
      for (int32_t x = 0; x < in.w; ++x) {
        const int16_t* src = g + (((static_cast<int64_t>(b) + p.before[0]) * out.h + y + p.before[1]) * out.w +
                                  x + p.before[2]) * out.c + p.before[3];
        int16_t* dst = gx + ((static_cast<int64_t>(b) * in.h + y) * in.w + x) * in.c;
        for (int32_t c = 0; c < in.c; ++c) dst[c] = src[c];
      }
    }
  }
}

namespace {

// The output row (or column) whose tap t reads input row i, or -1 (the inverse of conv_tap).
inline int32_t conv_source(int32_t i, int32_t t, int32_t stride, int32_t dilation, int32_t pad, int32_t out_size) {
  const int32_t o = i + pad - t * dilation;
  if (o < 0 || o % stride != 0 || o / stride >= out_size) return -1;
  return o / stride;
}

// Calls tap(out_position, in_position) for every output position whose kernel tap (ky, kx) reads
// an input position inside the image (positions are flat: y * w + x).
template <typename Tap>
void for_each_tap(const ConvParams& p, const Dims& in, const Dims& out, int32_t ky, int32_t kx, Tap tap) {
  for (int32_t oy = 0; oy < out.h; ++oy) {
    const int32_t iy = conv_tap(oy, p.stride_h, ky, p.dilation_h, p.pad_h, in.h);
    if (iy < 0) continue;
    for (int32_t ox = 0; ox < out.w; ++ox) {
      const int32_t ix = conv_tap(ox, p.stride_w, kx, p.dilation_w, p.pad_w, in.w);
      if (ix >= 0) tap(oy * out.w + ox, iy * in.w + ix);
    }
  }
}

}  // namespace

void conv2d_grad_input_at(const ConvParams& p, const Dims& in, const Dims& filter, const int8_t* weights,
                          const WeightSlice* slice, const Dims& out, const int16_t* g, int32_t iy, int32_t ix,
                          int64_t* acc) {
  const Dims& f = filter;
  for (int32_t i = 0; i < in.c; ++i) acc[i] = 0;
  for (int32_t ky = 0; ky < f.h; ++ky) {
    const int32_t oy = conv_source(iy, ky, p.stride_h, p.dilation_h, p.pad_h, out.h);
    if (oy < 0) continue;
    int32_t r = slice ? slice->n_rows - 1 : -1;   // the slice's row of tap ky, or -1
    for (; r >= 0 && slice->rows[r] != ky; --r) {}
    for (int32_t kx = 0; kx < f.w; ++kx) {
      const int32_t ox = conv_source(ix, kx, p.stride_w, p.dilation_w, p.pad_w, out.w);
      if (ox < 0) continue;
      const int16_t* src = g + (oy * out.w + ox) * out.c;
      for (int32_t o = 0; o < out.c; ++o) {
        const int32_t gv = src[o];
        if (gv == 0) continue;
        const int8_t* w = weights + ((o * f.h + ky) * f.w + kx) * f.c;
        for (int32_t i = 0; i < in.c; ++i) acc[i] += gv * w[i];   // |g w| < 2^22: int32 products
        if (r < 0) continue;
        const int8_t* sv = slice->values + ((o * slice->n_rows + r) * f.w + kx) * slice->n_channels;
        for (int32_t k = 0; k < slice->n_channels; ++k) {
          acc[slice->channels[k]] += gv * (sv[k] - w[slice->channels[k]]);
        }
      }
    }
  }
}

void depthwise_conv2d_grad_input_at(const ConvParams& p, const Dims& in, const Dims& filter,
                                    const int8_t* weights, const Dims& out, const int16_t* g, int32_t iy,
                                    int32_t ix, int64_t* acc) {
  const Dims& f = filter;
  const int32_t dm = p.depth_multiplier;
  for (int32_t i = 0; i < in.c; ++i) acc[i] = 0;
  for (int32_t ky = 0; ky < f.h; ++ky) {
    const int32_t oy = conv_source(iy, ky, p.stride_h, p.dilation_h, p.pad_h, out.h);
    if (oy < 0) continue;
    for (int32_t kx = 0; kx < f.w; ++kx) {
      const int32_t ox = conv_source(ix, kx, p.stride_w, p.dilation_w, p.pad_w, out.w);
      if (ox < 0) continue;
      const int16_t* src = g + (oy * out.w + ox) * out.c;
      const int8_t* w = weights + (ky * f.w + kx) * f.c;
      for (int32_t o = 0; o < out.c; ++o) acc[o / dm] += static_cast<int64_t>(src[o]) * w[o];
    }
  }
}

int64_t fully_connected_grad_input_at(int32_t in_features, int32_t out_features, const int8_t* weights,
                                      const WeightSlice* slice, const int16_t* g, int32_t i) {
  const int32_t k = slice ? slice->slot[i] : -1;
  int64_t sum = 0;
  if (k < 0) {
    for (int32_t o = 0; o < out_features; ++o) sum += static_cast<int32_t>(g[o]) * weights[o * in_features + i];
  } else {   // a trained input feature: its weights are the slice's
    const int32_t nc = slice->n_channels;
    for (int32_t o = 0; o < out_features; ++o) sum += static_cast<int32_t>(g[o]) * slice->values[o * nc + k];
  }
  return sum;
}

void conv2d_grad_weight_at(const ConvParams& p, const Dims& in, const int8_t* x, int32_t n_channels,
                           const Dims& out, const int16_t* g, int32_t o, int32_t ky, int32_t kx, int64_t* acc) {
  const int32_t nc = n_channels;
  for (int32_t c = 0; c < nc; ++c) acc[c] = 0;
  for_each_tap(p, in, out, ky, kx, [&](int32_t at, int32_t from) {
    const int32_t gv = g[at * out.c + o];
    if (gv == 0) return;
    const int8_t* xp = x + from * nc;
    for (int32_t c = 0; c < nc; ++c) acc[c] += gv * (xp[c] + p.input_offset);
  });
}

void depthwise_conv2d_grad_weight_at(const ConvParams& p, const Dims& in, const int8_t* x,
                                     const int32_t* channels, int32_t n_channels, const Dims& out,
                                     const int16_t* g, int32_t ky, int32_t kx, int64_t* acc) {
  const int32_t nc = n_channels;
  for (int32_t c = 0; c < nc; ++c) acc[c] = 0;
  for_each_tap(p, in, out, ky, kx, [&](int32_t at, int32_t from) {
    const int16_t* src = g + at * out.c;
    const int8_t* xp = x + from * nc;
    for (int32_t c = 0; c < nc; ++c) acc[c] += src[channels[c]] * (xp[c] + p.input_offset);
  });
}

int64_t bias_grad_at(const int16_t* g, int32_t positions, int32_t channels, int32_t c) {
  int64_t sum = 0;
  for (int32_t i = 0; i < positions; ++i) sum += g[i * channels + c];
  return sum;
}

// -- update -------------------------------------------------------------------------------------

uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  return x ^ (x >> 16);
}

uint32_t uniform32_key(int64_t seed, int64_t step, uint32_t stream) {
  return hash32(hash32(static_cast<uint32_t>(static_cast<uint64_t>(seed ^ step))) ^ stream);
}

int64_t apply_update(int64_t q, int64_t grad, int32_t e, int32_t m, int32_t k, int64_t lo,
                     int64_t hi, uint32_t rand, bool stochastic) {
  int64_t p = -(grad * m);
  int64_t r = static_cast<int64_t>(kUpdateBits) - k - e;
  if (r > kGradMaxShift) r = kGradMaxShift;
  const int64_t left = clamp64(-r, 0, 31);
  if (r < 0) r = 0;
  const int64_t coarse = r > 32 ? r - 32 : 0;
  const int64_t fine = r - coarse;   // 0..32
  p >>= coarse;
  int64_t noise = 0;
  if (fine > 0) noise = stochastic ? static_cast<int64_t>(rand >> (32 - fine)) : int64_t{1} << (fine - 1);
  const int64_t step = clamp64((p + noise) >> fine, -(int64_t{1} << 32), int64_t{1} << 32);
  // Wrap modulo 2^64 like the Python's int64 tensors (only steps of 2^63 can overflow).
  const uint64_t shifted = static_cast<uint64_t>(step) << left;
  const int64_t sum = static_cast<int64_t>(static_cast<uint64_t>(q) + shifted);
  return clamp64(sum, lo, hi);
}

}  // namespace odt
