// add_s8: TFLM's reference_integer_ops::Add (AddFunc) for int8 tensors of the same shape.
#include "kernels.h"

namespace odt {

void add_s8(const AddParams& p, int32_t size, const int8_t* input1, const int8_t* input2,
            int8_t* output) {
  for (int32_t i = 0; i < size; ++i) {
    // (x + offset) * 2^20 fits easily: |x + offset| <= 255.
    const int32_t shifted1 = (input1[i] + p.input1_offset) * (int32_t{1} << p.left_shift);
    const int32_t shifted2 = (input2[i] + p.input2_offset) * (int32_t{1} << p.left_shift);
    const int32_t scaled1 =
        multiply_by_quantized_multiplier(shifted1, p.input1_multiplier, p.input1_shift);
    const int32_t scaled2 =
        multiply_by_quantized_multiplier(shifted2, p.input2_multiplier, p.input2_shift);
    int32_t acc = multiply_by_quantized_multiplier(scaled1 + scaled2, p.output_multiplier,
                                                   p.output_shift) +
                  p.output_offset;
    acc = acc < p.act_min ? p.act_min : (acc > p.act_max ? p.act_max : acc);
    output[i] = static_cast<int8_t>(acc);
  }
}

}  // namespace odt
