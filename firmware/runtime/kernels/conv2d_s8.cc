// conv2d_s8: TFLM's reference_integer_ops::ConvPerChannel for int8 NHWC, filter OHWI.
// conv2d_s8_plain is the reference loop; conv2d_s8 is the Cortex-M DSP path where the target has
// one (dsp_s8.h), else the plain one. Both give the same bits.
#include "dsp_s8.h"
#include "kernels.h"
#include "weight_slice.h"

namespace odt {

void conv2d_s8_plain(const ConvParams& p, const ChannelQuant& q, const Dims& in,
                     const int8_t* input, const Dims& filter, const int8_t* weights,
                     const int32_t* bias, const Dims& out, int8_t* output, const WeightSlice* slice) {
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
          if (slice != nullptr) {
            acc += conv_slice_delta(*slice, p, in, filter, input + b * in.h * in.w * depth, weights, oc, y0, x0);
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

#if ODT_KERNELS_DSP

// Two output channels at a time, four input channels per step (dsp::dot2_s8). Per output pixel the
// taps inside the input are found once; with dilation_w 1 the taps of a filter row are adjacent in
// both input and weights, so each row is one dot product of (taps * depth) values.
void conv2d_s8(const ConvParams& p, const ChannelQuant& q, const Dims& in, const int8_t* input,
               const Dims& filter, const int8_t* weights, const int32_t* bias, const Dims& out,
               int8_t* output, const WeightSlice* slice) {
  const int32_t depth = in.c;  // == filter.c
  const int32_t filter_size = filter.h * filter.w * depth;
  const int32_t offset2 = dsp::dual16(p.input_offset);
  for (int32_t b = 0; b < out.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      const int32_t y0 = oy * p.stride_h - p.pad_h;
      const dsp::TapRange ty = dsp::tap_range(y0, p.dilation_h, filter.h, in.h);
      for (int32_t ox = 0; ox < out.w; ++ox) {
        const int32_t x0 = ox * p.stride_w - p.pad_w;
        const dsp::TapRange tx = dsp::tap_range(x0, p.dilation_w, filter.w, in.w);
        const bool rows = p.dilation_w == 1;
        const int32_t runs = rows ? 1 : tx.to - tx.from;               // dot products per row
        const int32_t run = rows ? (tx.to - tx.from) * depth : depth;  // values in each
        int8_t* o = output + ((b * out.h + oy) * out.w + ox) * out.c;
        for (int32_t oc = 0; oc < out.c; oc += 2) {
          const bool pair = oc + 1 < out.c;  // an odd last channel runs as its own pair
          const int8_t* w0 = weights + oc * filter_size;
          const int8_t* w1 = pair ? w0 + filter_size : w0;
          int32_t acc0 = 0, acc1 = 0;
          for (int32_t fy = ty.from; fy < ty.to; ++fy) {
            const int8_t* xp = input + ((b * in.h + y0 + p.dilation_h * fy) * in.w + x0 +
                                        p.dilation_w * tx.from) * depth;
            const int32_t wi = (fy * filter.w + tx.from) * depth;
            for (int32_t r = 0; r < runs; ++r) {
              dsp::dot2_s8(xp + r * p.dilation_w * depth, w0 + wi + r * depth, w1 + wi + r * depth,
                           run, offset2, acc0, acc1);
            }
          }
          if (slice != nullptr) {   // trained values overlay the flash weights
            const int8_t* xb = input + b * in.h * in.w * depth;
            acc0 += conv_slice_delta(*slice, p, in, filter, xb, weights, oc, y0, x0);
            if (pair) acc1 += conv_slice_delta(*slice, p, in, filter, xb, weights, oc + 1, y0, x0);
          }
          o[oc] = dsp::requantize(acc0, bias, q, oc, p.output_offset, p.act_min, p.act_max);
          if (pair) {
            o[oc + 1] =
                dsp::requantize(acc1, bias, q, oc + 1, p.output_offset, p.act_min, p.act_max);
          }
        }
      }
    }
  }
}

#else

void conv2d_s8(const ConvParams& p, const ChannelQuant& q, const Dims& in, const int8_t* input,
               const Dims& filter, const int8_t* weights, const int32_t* bias, const Dims& out,
               int8_t* output, const WeightSlice* slice) {
  conv2d_s8_plain(p, q, in, input, filter, weights, bias, out, output, slice);
}

#endif  // ODT_KERNELS_DSP

}  // namespace odt
