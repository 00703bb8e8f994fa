// pad_s8: TFLM's PAD / PADV2 of int8 with a constant value (reference_ops::Pad), NHWC.
#include "kernels.h"

namespace odt {

void pad_s8(const PadParams& p, const Dims& in, const int8_t* input, const Dims& out,
            int8_t* output) {
  for (int32_t b = 0; b < out.n; ++b) {
    const int32_t ib = b - p.before[0];
    for (int32_t y = 0; y < out.h; ++y) {
      const int32_t iy = y - p.before[1];
      for (int32_t x = 0; x < out.w; ++x) {
        const int32_t ix = x - p.before[2];
        const bool inside = ib >= 0 && ib < in.n && iy >= 0 && iy < in.h && ix >= 0 && ix < in.w;
        const int8_t* src = inside ? input + ((ib * in.h + iy) * in.w + ix) * in.c : nullptr;
        int8_t* dst = output + ((b * out.h + y) * out.w + x) * out.c;
        for (int32_t c = 0; c < out.c; ++c) {
          const int32_t ic = c - p.before[3];
          dst[c] = (src != nullptr && ic >= 0 && ic < in.c) ? src[ic] : p.pad_value;
        }
      }
    }
  }
}

}  // namespace odt
