// What a trained WeightSlice (kernels.h) changes in a conv's or fully connected layer's int32
// accumulator: sum of (slice value - flash value) * (x + input_offset) over the slice's channels
// and kernel rows. Added before requantization, it makes the flash weights the trained ones
// exactly (integer sums), in the plain and the DSP kernels alike.
#pragma once

#include "kernels.h"

namespace odt {

// Output channel oc at the output position whose window starts at input row y0, column x0;
// input_b is the sample's input [in.h][in.w][in.c].
inline int32_t conv_slice_delta(const WeightSlice& s, const ConvParams& p, const Dims& in, const Dims& filter,
                                const int8_t* input_b, const int8_t* weights, int32_t oc, int32_t y0,
                                int32_t x0) {
  int32_t acc = 0;
  for (int32_t r = 0; r < s.n_rows; ++r) {
    const int32_t fy = s.rows[r], iy = y0 + p.dilation_h * fy;
    if (iy < 0 || iy >= in.h) continue;
    for (int32_t fx = 0; fx < filter.w; ++fx) {
      const int32_t ix = x0 + p.dilation_w * fx;
      if (ix < 0 || ix >= in.w) continue;
      const int8_t* xp = input_b + (iy * in.w + ix) * in.c;
      const int8_t* wp = weights + ((oc * filter.h + fy) * filter.w + fx) * in.c;
      const int8_t* sp = s.values + ((oc * s.n_rows + r) * filter.w + fx) * s.n_channels;
      for (int32_t k = 0; k < s.n_channels; ++k) {
        const int32_t ic = s.channels[k];
        acc += (sp[k] - wp[ic]) * (static_cast<int32_t>(xp[ic]) + p.input_offset);
      }
    }
  }
  return acc;
}

// Output feature o of a fully connected layer; x the sample's input, w the flash weights [out][in].
inline int32_t fc_slice_delta(const WeightSlice& s, int32_t input_offset, const int8_t* x, const int8_t* w,
                              int32_t in_features, int32_t o) {
  int32_t acc = 0;
  const int8_t* sp = s.values + o * s.n_channels;
  for (int32_t k = 0; k < s.n_channels; ++k) {
    const int32_t i = s.channels[k];
    acc += (sp[k] - w[o * in_features + i]) * (static_cast<int32_t>(x[i]) + input_offset);
  }
  return acc;
}

}  // namespace odt
