// max_pool2d_s8: TFLM's reference_integer_ops::MaxPool for int8 NHWC: the maximum over the
// window clipped to the input, clamped to the fused activation.
#include "kernels.h"
#include "pool_window.h"

namespace odt {

void max_pool2d_s8(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                   int8_t* output) {
  for (int32_t b = 0; b < out.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      const PoolWindow wy = pool_window(oy, p.stride_h, p.pad_h, p.filter_h, in.h);
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const PoolWindow wx = pool_window(ox, p.stride_w, p.pad_w, p.filter_w, in.w);
        for (int32_t c = 0; c < out.c; ++c) {
          int32_t m = -128;
          for (int32_t fy = wy.from; fy < wy.to; ++fy) {
            for (int32_t fx = wx.from; fx < wx.to; ++fx) {
              const int32_t v = input[((b * in.h + wy.start + fy) * in.w + wx.start + fx) * in.c + c];
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
