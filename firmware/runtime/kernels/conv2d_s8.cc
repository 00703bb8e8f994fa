// conv2d_s8: TFLM's reference_integer_ops::ConvPerChannel for int8 NHWC, filter OHWI.
#include "kernels.h"

namespace odt {

void conv2d_s8(const ConvParams& p, const ChannelQuant& q, const Dims& in, const int8_t* input,
               const Dims& filter, const int8_t* weights, const int32_t* bias, const Dims& out,
               int8_t* output) {
  const int32_t depth = in.c;  // == filter.c
  for (int32_t b = 0; b < out.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        for (int32_t oc = 0; oc < out.c; ++oc) {
          int32_t acc = 0;
          for (int32_t fy = 0; fy < filter.h; ++fy) {
            const int32_t iy = y0 + p.dilation_h * fy;
            if (iy < 0 || iy >= in.h) continue;
            for (int32_t fx = 0; fx < filter.w; ++fx) {
              const int32_t ix = x0 + p.dilation_w * fx;
              if (ix < 0 || ix >= in.w) continue;
              const int8_t* xp = input + ((b * in.h + iy) * in.w + ix) * depth;
              const int8_t* wp = weights + ((oc * filter.h + fy) * filter.w + fx) * depth;
              for (int32_t ic = 0; ic < depth; ++ic) {
                acc += static_cast<int32_t>(wp[ic]) * (static_cast<int32_t>(xp[ic]) + p.input_offset);
              }
            }
          }
          if (bias != nullptr) acc += bias[oc];
          acc = multiply_by_quantized_multiplier(acc, q.multiplier[oc], q.shift[oc]);
          acc += p.output_offset;
          acc = acc < p.act_min ? p.act_min : (acc > p.act_max ? p.act_max : acc);
          output[((b * out.h + oy) * out.w + ox) * out.c + oc] = static_cast<int8_t>(acc);
        }
      }
    }
  }
}

}  // namespace odt
