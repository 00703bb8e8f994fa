// fully_connected_s8: TFLM's reference_integer_ops::FullyConnected (per-tensor and per-channel),
// weights [out_features][in_features].
#include "kernels.h"

namespace odt {

void fully_connected_s8(const FcParams& p, const ChannelQuant& q, int32_t batches,
                        int32_t in_features, const int8_t* input, int32_t out_features,
                        const int8_t* weights, const int32_t* bias, int8_t* output) {
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t* x = input + b * in_features;
    for (int32_t o = 0; o < out_features; ++o) {
      const int8_t* w = weights + o * in_features;
      int32_t acc = 0;
      for (int32_t i = 0; i < in_features; ++i) {
        acc += static_cast<int32_t>(w[i]) * (static_cast<int32_t>(x[i]) + p.input_offset);
      }
      if (bias != nullptr) acc += bias[o];
      acc = multiply_by_quantized_multiplier(acc, q.multiplier[o], q.shift[o]);
      acc += p.output_offset;
      acc = acc < p.act_min ? p.act_min : (acc > p.act_max ? p.act_max : acc);
      output[b * out_features + o] = static_cast<int8_t>(acc);
    }
  }
}

}  // namespace odt
