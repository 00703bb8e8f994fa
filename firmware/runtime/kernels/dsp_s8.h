// Helpers of the Cortex-M DSP paths of conv2d_s8, depthwise_conv2d_s8 and fully_connected_s8.
// Header-only and internal to the kernels; see kernels.h for the API.
//
// ODT_KERNELS_DSP is 1 where the tuned paths are compiled in: targets with the DSP extension
// (-mcpu=cortex-m7 defines __ARM_FEATURE_DSP) unless ODT_PLAIN_KERNELS is defined. Elsewhere each
// kernel is its plain C path (<name>_plain). Both give the same bits: every product is exact in
// 32 bits and int32 sums wrap the same way in any order.
#pragma once

#include <stdint.h>
#include <string.h>

#include "kernels.h"

#if defined(__ARM_FEATURE_DSP) && !defined(ODT_PLAIN_KERNELS)
#define ODT_KERNELS_DSP 1
#include <arm_acle.h>
#else
#define ODT_KERNELS_DSP 0
#endif

namespace odt {
namespace dsp {

// Filter taps [from, to) whose input coordinate start + dilation * tap lies in [0, size): the
// others are padding, which contributes nothing (TFLM skips it; it is not input_offset * w).
struct TapRange {
  int32_t from, to;
};

inline TapRange tap_range(int32_t start, int32_t dilation, int32_t taps, int32_t size) {
  const int32_t from = start < 0 ? (-start + dilation - 1) / dilation : 0;
  const int32_t end = size > start ? (size - start + dilation - 1) / dilation : 0;
  const int32_t to = end < taps ? end : taps;
  return {from, to > from ? to : from};
}

// Bias, requantization, output offset and clamp of one accumulator, as the plain paths do.
inline int8_t requantize(int32_t acc, const int32_t* bias, const ChannelQuant& q, int32_t channel,
                         int32_t output_offset, int32_t act_min, int32_t act_max) {
  if (bias != nullptr) acc += bias[channel];
  acc = multiply_by_quantized_multiplier(acc, q.multiplier[channel], q.shift[channel]);
  acc += output_offset;
  return static_cast<int8_t>(acc < act_min ? act_min : (acc > act_max ? act_max : acc));
}

#if ODT_KERNELS_DSP

// Four int8 as one word, from any address (the M7 loads unaligned words; memcpy is one LDR).
inline int32_t load4(const int8_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

// Bytes 1 and 3 moved to 0 and 2, so that SXTB16 extends the odd bytes.
inline int32_t ror8(int32_t v) {
  const uint32_t u = static_cast<uint32_t>(v);
  return static_cast<int32_t>((u >> 8) | (u << 24));
}

// A 16-bit value in both halves of a word, the addend of SXTAB16.
inline int32_t dual16(int32_t v) {
  const uint32_t u = static_cast<uint32_t>(v) & 0xFFFFu;
  return static_cast<int32_t>(u | (u << 16));
}

// acc0 += sum_i w0[i] * (x[i] + offset) and acc1 likewise with w1, for i < n: four inputs per step,
// each read and offset once for two output channels. x[i] + offset lies in [-255, 255], so it
// fits a 16-bit lane; SMLAD adds two exact 16 x 16 products to the 32-bit accumulator.
// offset2 = dual16(offset).
inline void dot2_s8(const int8_t* x, const int8_t* w0, const int8_t* w1, int32_t n,
                    int32_t offset2, int32_t& acc0, int32_t& acc1) {
  int32_t a0 = acc0, a1 = acc1;
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const int32_t xv = load4(x + i);
    const int32_t x02 = __sxtab16(offset2, xv), x13 = __sxtab16(offset2, ror8(xv));
    const int32_t u = load4(w0 + i), v = load4(w1 + i);
    a0 = __smlad(x02, __sxtb16(u), a0);
    a0 = __smlad(x13, __sxtb16(ror8(u)), a0);
    a1 = __smlad(x02, __sxtb16(v), a1);
    a1 = __smlad(x13, __sxtb16(ror8(v)), a1);
  }
  const int32_t offset = static_cast<int16_t>(offset2);
  for (; i < n; ++i) {  // the 0..3 left over
    const int32_t xi = x[i] + offset;
    a0 += w0[i] * xi;
    a1 += w1[i] * xi;
  }
  acc0 = a0;
  acc1 = a1;
}

#endif  // ODT_KERNELS_DSP

}  // namespace dsp
}  // namespace odt
