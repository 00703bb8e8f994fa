// depthwise_conv2d_s8: TFLM's reference_integer_ops::DepthwiseConvPerChannel for int8 NHWC,
// filter 1HWC with output channel ic * depth_multiplier + m reading input channel ic.
// depthwise_conv2d_s8_plain is the reference loop; depthwise_conv2d_s8 is the Cortex-M DSP path
// where the target has one (dsp_s8.h), else the plain one. Both give the same bits.
#include "dsp_s8.h"
#include "kernels.h"

namespace odt {

void depthwise_conv2d_s8_plain(const ConvParams& p, const ChannelQuant& q, const Dims& in,
                               const int8_t* input, const Dims& filter, const int8_t* weights,
                               const int32_t* bias, const Dims& out, int8_t* output) {
  for (int32_t b = 0; b < out.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        for (int32_t ic = 0; ic < in.c; ++ic) {
          for (int32_t m = 0; m < p.depth_multiplier; ++m) {
            const int32_t oc = ic * p.depth_multiplier + m;
            int32_t acc = 0;
            for (int32_t fy = 0; fy < filter.h; ++fy) {
              const int32_t iy = y0 + p.dilation_h * fy;
              if (iy < 0 || iy >= in.h) continue;
              for (int32_t fx = 0; fx < filter.w; ++fx) {
                const int32_t ix = x0 + p.dilation_w * fx;
                if (ix < 0 || ix >= in.w) continue;
                const int32_t x = input[((b * in.h + iy) * in.w + ix) * in.c + ic];
                const int32_t w = weights[(fy * filter.w + fx) * filter.c + oc];
                acc += w * (x + p.input_offset);
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
}

#if ODT_KERNELS_DSP

namespace {

// acc[k] += w[k] * (x[k] + offset) for four adjacent channels k: SXTAB16 / SXTB16 put the even and
// the odd bytes in 16-bit lanes, SMLABB / SMLATT multiply-accumulate their bottom / top lanes.
inline void mac4(const int8_t* x, const int8_t* w, int32_t offset2, int32_t acc[4]) {
  const int32_t xv = dsp::load4(x), wv = dsp::load4(w);
  const int32_t x02 = __sxtab16(offset2, xv), x13 = __sxtab16(offset2, dsp::ror8(xv));
  const int32_t w02 = __sxtb16(wv), w13 = __sxtb16(dsp::ror8(wv));
  acc[0] = __smlabb(x02, w02, acc[0]);
  acc[1] = __smlabb(x13, w13, acc[1]);
  acc[2] = __smlatt(x02, w02, acc[2]);
  acc[3] = __smlatt(x13, w13, acc[3]);
}

// acc[k] += w[k] * x for four adjacent channels k and one input value x (input + offset, in
// [-255, 255]: its bottom 16-bit lane is x); SMLABB / SMLABT take the weights' bottom / top lane.
inline void mac4_broadcast(int32_t x, const int8_t* w, int32_t acc[4]) {
  const int32_t wv = dsp::load4(w);
  const int32_t w02 = __sxtb16(wv), w13 = __sxtb16(dsp::ror8(wv));
  acc[0] = __smlabb(x, w02, acc[0]);
  acc[1] = __smlabb(x, w13, acc[1]);
  acc[2] = __smlabt(x, w02, acc[2]);
  acc[3] = __smlabt(x, w13, acc[3]);
}

}  // namespace

// Output channels four at a time over the taps inside the input, found once per output pixel:
// with depth multiplier 1 four adjacent input channels, otherwise four adjacent outputs of one
// input channel (DS-CNN's first layer: one input channel times 64). Channels left over (fewer
// than four, or a multiplier not a multiple of four) one at a time.
void depthwise_conv2d_s8(const ConvParams& p, const ChannelQuant& q, const Dims& in,
                         const int8_t* input, const Dims& filter, const int8_t* weights,
                         const int32_t* bias, const Dims& out, int8_t* output) {
  const int32_t mult = p.depth_multiplier;  // out.c == filter.c == in.c * mult
  const int32_t offset2 = dsp::dual16(p.input_offset);
  for (int32_t b = 0; b < out.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      const dsp::TapRange ty = dsp::tap_range(y0, p.dilation_h, filter.h, in.h);
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        const dsp::TapRange tx = dsp::tap_range(x0, p.dilation_w, filter.w, in.w);
        // f(input index, weight index) of channel 0 at each tap inside the input.
        auto each_tap = [&](auto&& f) {
          for (int32_t fy = ty.from; fy < ty.to; ++fy) {
            const int32_t row = (b * in.h + y0 + p.dilation_h * fy) * in.w + x0;
            for (int32_t fx = tx.from; fx < tx.to; ++fx) {
              f((row + p.dilation_w * fx) * in.c, (fy * filter.w + fx) * out.c);
            }
          }
        };
        int8_t* o = output + ((b * out.h + oy) * out.w + ox) * out.c;
        for (int32_t oc = 0; oc < out.c;) {
          const int32_t ic = mult == 1 ? oc : oc / mult;  // the input channel of oc
          if (mult == 1 ? oc + 4 <= out.c : oc - ic * mult + 4 <= mult) {
            int32_t acc[4] = {0, 0, 0, 0};
            if (mult == 1) {
              each_tap([&](int32_t xi, int32_t wi) {
                mac4(input + xi + oc, weights + wi + oc, offset2, acc);
              });
            } else {
              each_tap([&](int32_t xi, int32_t wi) {
                mac4_broadcast(input[xi + ic] + p.input_offset, weights + wi + oc, acc);
              });
            }
            for (int32_t k = 0; k < 4; ++k, ++oc) {
              o[oc] =
                  dsp::requantize(acc[k], bias, q, oc, p.output_offset, p.act_min, p.act_max);
            }
          } else {
            int32_t acc = 0;
            each_tap([&](int32_t xi, int32_t wi) {
              acc += weights[wi + oc] * (input[xi + ic] + p.input_offset);
            });
            o[oc] = dsp::requantize(acc, bias, q, oc, p.output_offset, p.act_min, p.act_max);
            ++oc;
          }
        }
      }
    }
  }
}

#else

void depthwise_conv2d_s8(const ConvParams& p, const ChannelQuant& q, const Dims& in,
                         const int8_t* input, const Dims& filter, const int8_t* weights,
                         const int32_t* bias, const Dims& out, int8_t* output) {
  depthwise_conv2d_s8_plain(p, q, in, input, filter, weights, bias, out, output);
}

#endif  // ODT_KERNELS_DSP

}  // namespace odt
