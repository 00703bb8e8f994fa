// max_pool2d_s8: TFLM's reference_integer_ops::MaxPool for int8 NHWC: the maximum over the
// window clipped to the input, clamped to the fused activation.
#include "kernels.h"

namespace odt {

void max_pool2d_s8(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                   int8_t* output) {
  for (int32_t b = 0; b < out.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      const int32_t fy0 = y0 < 0 ? -y0 : 0;
      const int32_t fy1 = p.filter_h < in.h - y0 ? p.filter_h : in.h - y0;
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        const int32_t fx0 = x0 < 0 ? -x0 : 0;
        const int32_t fx1 = p.filter_w < in.w - x0 ? p.filter_w : in.w - x0;
        for (int32_t c = 0; c < out.c; ++c) {
          int32_t m = -128;
          for (int32_t fy = fy0; fy < fy1; ++fy) {
            for (int32_t fx = fx0; fx < fx1; ++fx) {
              const int32_t v = input[((b * in.h + y0 + fy) * in.w + x0 + fx) * in.c + c];
              m = v > m ? v : m;
            }
          }
          m = m < p.act_min ? p.act_min : (m > p.act_max ? p.act_max : m);
          output[((b * out.h + oy) * out.w + ox) * out.c + c] = static_cast<int8_t>(m);
        }
      }
    }
  }
}

}  // namespace odt
