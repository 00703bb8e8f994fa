// gemmlowp's fixed-point primitives on int32, as TFLite's reference kernels use them.
// Header-only and internal to the kernels (quant.cc, softmax_s8.cc); see kernels.h for the API.
#pragma once

#include <stdint.h>

namespace odt {
namespace fixed_point {

// SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties towards +infinity; the one
// overflow (INT32_MIN^2) saturates.
inline int32_t doubling_high_mul(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));  // truncates towards zero
}

// RoundingDivideByPOT: round(x / 2^exponent), ties away from zero; exponent in [0, 31].
inline int32_t rounding_divide_by_pot(int32_t x, int32_t exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// SaturatingRoundingMultiplyByPOT with exponent > 0: x * 2^exponent, saturated to int32.
inline int32_t saturating_shift_left(int32_t x, int32_t exponent) {
  const int64_t y = static_cast<int64_t>(x) * (int64_t{1} << exponent);
  return y > INT32_MAX ? INT32_MAX : (y < INT32_MIN ? INT32_MIN : static_cast<int32_t>(y));
}

}  // namespace fixed_point
}  // namespace odt
