// fully_connected_s8: TFLM's reference_integer_ops::FullyConnected (per-tensor and per-channel),
// weights [out_features][in_features]. fully_connected_s8_plain is the reference loop;
// fully_connected_s8 is the Cortex-M DSP path where the target has one (dsp_s8.h), else the plain
// one. Both give the same bits.
#include "dsp_s8.h"
#include "kernels.h"
#include "weight_slice.h"

namespace odt {

void fully_connected_s8_plain(const FcParams& p, const ChannelQuant& q, int32_t batches,
                              int32_t in_features, const int8_t* input, int32_t out_features,
                              const int8_t* weights, const int32_t* bias, int8_t* output,
                              const WeightSlice* slice) {
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t* x = input + b * in_features;
    for (int32_t o = 0; o < out_features; ++o) {
      const int8_t* w = weights + o * in_features;
      int32_t acc = 0;
      for (int32_t i = 0; i < in_features; ++i) {
        acc += static_cast<int32_t>(w[i]) * (static_cast<int32_t>(x[i]) + p.input_offset);
      }
      if (slice != nullptr) acc += fc_slice_delta(*slice, p.input_offset, x, weights, in_features, o);
      if (bias != nullptr) acc += bias[o];
      acc = multiply_by_quantized_multiplier(acc, q.multiplier[o], q.shift[o]);
      acc += p.output_offset;
      acc = acc < p.act_min ? p.act_min : (acc > p.act_max ? p.act_max : acc);
      output[b * out_features + o] = static_cast<int8_t>(acc);
    }
  }
}

#if ODT_KERNELS_DSP

// Two output features at a time, four inputs per step (dsp::dot2_s8).
void fully_connected_s8(const FcParams& p, const ChannelQuant& q, int32_t batches,
                        int32_t in_features, const int8_t* input, int32_t out_features,
                        const int8_t* weights, const int32_t* bias, int8_t* output,
                        const WeightSlice* slice) {
  const int32_t offset2 = dsp::dual16(p.input_offset);
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t* x = input + b * in_features;
    int8_t* y = output + b * out_features;
    for (int32_t o = 0; o < out_features; o += 2) {
      const bool pair = o + 1 < out_features;  // an odd last feature runs as its own pair
      const int8_t* w0 = weights + o * in_features;
      int32_t acc0 = 0, acc1 = 0;
      dsp::dot2_s8(x, w0, pair ? w0 + in_features : w0, in_features, offset2, acc0, acc1);
      if (slice != nullptr) {   // trained values overlay the flash weights
        acc0 += fc_slice_delta(*slice, p.input_offset, x, weights, in_features, o);
        if (pair) acc1 += fc_slice_delta(*slice, p.input_offset, x, weights, in_features, o + 1);
      }
      y[o] = dsp::requantize(acc0, bias, q, o, p.output_offset, p.act_min, p.act_max);
      if (pair) {
        y[o + 1] = dsp::requantize(acc1, bias, q, o + 1, p.output_offset, p.act_min, p.act_max);
      }
    }
  }
}

#else

void fully_connected_s8(const FcParams& p, const ChannelQuant& q, int32_t batches,
                        int32_t in_features, const int8_t* input, int32_t out_features,
                        const int8_t* weights, const int32_t* bias, int8_t* output,
                        const WeightSlice* slice) {
  fully_connected_s8_plain(p, q, batches, in_features, input, out_features, weights, bias, output, slice);
}

#endif  // ODT_KERNELS_DSP

}  // namespace odt
