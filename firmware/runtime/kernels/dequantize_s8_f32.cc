// dequantize_s8_f32: TFLM's DEQUANTIZE of int8 to float32 (reference_ops::Dequantize).
//
// TFLM computes double(scale) * (q - zero_point) and rounds to float; (q - zero_point) has at
// most 9 bits, so the exact product fits a double and the float32 product rounds the same.
#include "kernels.h"

namespace odt {

void dequantize_s8_f32(const DequantizeParams& p, int32_t size, const int8_t* input,
                       float* output) {
  for (int32_t i = 0; i < size; ++i) {
    output[i] = p.scale * static_cast<float>(input[i] - p.zero_point);
  }
}

}  // namespace odt
