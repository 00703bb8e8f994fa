// multiply_by_quantized_multiplier: TFLite's reference MultiplyByQuantizedMultiplier.
//
// TFLite has two variants: the default rounds twice (SaturatingRoundingDoublingHighMul, then
// RoundingDivideByPOT); with TFLITE_SINGLE_ROUNDING it rounds once, (x * m + 2^(30 - shift)) >>
// (31 - shift). The tflite-micro interpreter we match (0.dev20261023) rounds twice: a
// FULLY_CONNECTED with effective scale exactly 0.25 (m = 2^30, shift = -1) maps an accumulator
// of 1 to 1 (0.5 rounded up, then 0.5 rounded away from zero), where single rounding gives 0;
// MEAN outputs agree the same way (tests/test_kernels.py: test_tflm_rounds_twice).
// With shift <= 0 it is also TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp (ADD),
// with shift >= 0 its MultiplyByQuantizedMultiplierGreaterThanOne (SOFTMAX).
#include "fixed_point.h"
#include "kernels.h"

namespace odt {

int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift) {
  const int32_t left_shift = shift > 0 ? shift : 0;
  const int32_t right_shift = shift > 0 ? 0 : -shift;
  // x * 2^left_shift in 32 bits, wrapping like TFLite's int32 product (no undefined behaviour).
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left_shift);
  return fixed_point::rounding_divide_by_pot(fixed_point::doubling_high_mul(shifted, multiplier),
                                             right_shift);
}

}  // namespace odt
