// requantize_s8: TFLM's QUANTIZE of int8 to int8 (reference_ops::Requantize).
#include "kernels.h"

namespace odt {

void requantize_s8(const RequantizeParams& p, int32_t size, const int8_t* input, int8_t* output) {
  for (int32_t i = 0; i < size; ++i) {
    int32_t v = multiply_by_quantized_multiplier(input[i] - p.input_zero_point, p.multiplier,
                                                 p.shift) +
                p.output_zero_point;
    v = v < -128 ? -128 : (v > 127 ? 127 : v);
    output[i] = static_cast<int8_t>(v);
  }
}

}  // namespace odt
