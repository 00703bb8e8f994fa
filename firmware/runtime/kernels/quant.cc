// multiply_by_quantized_multiplier: TFLite's reference MultiplyByQuantizedMultiplier.
//
// TFLite has two variants: the default rounds twice (SaturatingRoundingDoublingHighMul, then
// RoundingDivideByPOT); with TFLITE_SINGLE_ROUNDING it rounds once, (x * m + 2^(30 - shift)) >>
// (31 - shift). The tflite-micro interpreter we match (0.dev20261023) rounds twice: a
// FULLY_CONNECTED with effective scale exactly 0.25 (m = 2^30, shift = -1) maps an accumulator
// of 1 to 1 (0.5 rounded up, then 0.5 rounded away from zero), where single rounding gives 0;
// MEAN outputs agree the same way (tests/test_kernels.py: test_tflm_rounds_twice).
#include "kernels.h"

namespace odt {

namespace {

// round(a * b / 2^31), ties towards +infinity; the one overflow (INT32_MIN^2) saturates.
int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));  // truncates towards zero
}

// round(x / 2^exponent), ties away from zero; exponent in [0, 31].
int32_t rounding_divide_by_pot(int32_t x, int32_t exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

}  // namespace

int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift) {
  const int32_t left_shift = shift > 0 ? shift : 0;
  const int32_t right_shift = shift > 0 ? 0 : -shift;
  // x * 2^left_shift in 32 bits, wrapping like TFLite's int32 product (no undefined behaviour).
  const int32_t shifted = static_cast<int32_t>(static_cast<uint32_t>(x) << left_shift);
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier),
                                right_shift);
}

}  // namespace odt
