// mean_hw_s8: TFLM's MEAN of int8 over H and W (reference_ops::QuantizedMeanOrSum in reduce.h).
//
// This TFLM build takes the integer path for every int8 MEAN, also when input and output
// quantization are identical: sum (x - zp_in), multiply by QuantizeMultiplier(s_in / s_out)
// with 1 / count folded into the multiplier, add zp_out, clamp. Neither the truncating integer
// mean nor the float32 rescale of older TFLM versions matches the interpreter.
#include "kernels.h"

namespace odt {

void mean_hw_s8(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output) {
  const int32_t count = in.h * in.w;
  // Fold 1 / count into the multiplier as TFLM does: shift = floor(log2(count)), at most 32
  // and at most 31 + p.shift, so that the final shift stays >= -31.
  int32_t log2 = 0;
  while ((int64_t{2} << log2) <= count) ++log2;
  int32_t fold = log2 < 32 ? log2 : 32;
  if (fold > 31 + p.shift) fold = 31 + p.shift;
  const int32_t multiplier =
      static_cast<int32_t>((static_cast<int64_t>(p.multiplier) << fold) / count);
  const int32_t shift = p.shift - fold;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t c = 0; c < in.c; ++c) {
      int32_t sum = 0;
      const int8_t* x = input + b * count * in.c + c;
      for (int32_t i = 0; i < count; ++i) sum += x[i * in.c];
      int32_t v = multiply_by_quantized_multiplier(sum - p.input_zero_point * count, multiplier,
                                                   shift) +
                  p.output_zero_point;
      v = v < -128 ? -128 : (v > 127 ? 127 : v);
      output[b * in.c + c] = static_cast<int8_t>(v);
    }
  }
}

}  // namespace odt
