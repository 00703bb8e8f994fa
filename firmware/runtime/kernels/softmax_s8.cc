// softmax_s8: TFLM's reference_ops::Softmax for int8 in and out (scale 1/256, zero point -128).
//
// Per row: d = x - max(row); where d >= diff_min, d * beta * s_in becomes Q5.26 and gemmlowp's
// exp_on_negative_values gives exp(d) in Q0.31; the exps are summed in Q12.19, the sum's
// reciprocal comes from GetReciprocal (Newton-Raphson), and each output is
// round(exp * reciprocal / 2^(bits over unit + 23)) - 128. Rows with d < diff_min give -128.
#include "fixed_point.h"
#include "kernels.h"

namespace odt {

namespace {

using fixed_point::doubling_high_mul;
using fixed_point::rounding_divide_by_pot;
using fixed_point::saturating_shift_left;

constexpr int32_t kDiffIntegerBits = 5;    // Q5.26 input differences
constexpr int32_t kAccumIntegerBits = 12;  // Q12.19 sum of exps

// exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor expansion around -1/8.
int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a) {
  const int32_t constant_term = 1895147668;  // exp(-1/8)
  const int32_t one_third = 715827883;
  const int32_t x = a + (int32_t{1} << 28);
  const int32_t x2 = doubling_high_mul(x, x);
  const int32_t x3 = doubling_high_mul(x2, x);
  const int32_t x4 = doubling_high_mul(x2, x2);
  const int32_t x4_over_4 = rounding_divide_by_pot(x4, 2);
  const int32_t poly =
      rounding_divide_by_pot(doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
  return constant_term + doubling_high_mul(constant_term, x + poly);
}

// exp(a) for a <= 0 in Q5.26 -> Q0.31 (gemmlowp exp_on_negative_values).
int32_t exp_on_negative_values(int32_t a) {
  constexpr int32_t kFractionalBits = 31 - kDiffIntegerBits;
  constexpr int32_t kOneQuarter = int32_t{1} << (kFractionalBits - 2);
  const int32_t a_mod_quarter_minus_one_quarter = (a & (kOneQuarter - 1)) - kOneQuarter;
  int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
      saturating_shift_left(a_mod_quarter_minus_one_quarter, kDiffIntegerBits));
  const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
  // exp(-2^k) in Q0.31 for k = -2 .. 4, applied for each bit k of the remainder.
  static const int32_t kBarrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                     39332535,   720401,     242};
  for (int32_t k = -2; k <= 4; ++k) {
    if (remainder & (int32_t{1} << (kFractionalBits + k))) {
      result = doubling_high_mul(result, kBarrel[k + 2]);
    }
  }
  return a == 0 ? INT32_MAX : result;
}

// 1 / (1 + a) for a in [0, 1), Q0.31 in and out (gemmlowp one_over_one_plus_x_for_x_in_0_1).
int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  const int64_t sum = static_cast<int64_t>(a) + INT32_MAX;  // RoundingHalfSum(a, 1)
  const int32_t half_denominator = static_cast<int32_t>((sum + (sum >= 0 ? 1 : -1)) / 2);
  // Newton-Raphson in Q2.29 from 48/17 - 32/17 * half_denominator.
  int32_t x = 1515870810 + doubling_high_mul(half_denominator, -1010580540);
  for (int32_t i = 0; i < 3; ++i) {
    const int32_t one_minus_half_denominator_times_x =
        (int32_t{1} << 29) - doubling_high_mul(half_denominator, x);
    x += saturating_shift_left(doubling_high_mul(x, one_minus_half_denominator_times_x), 2);
  }
  return saturating_shift_left(x, 1);  // Q2.29 halved, as Q0.31
}

int32_t count_leading_zeros(uint32_t x) {
  int32_t n = 0;
  for (uint32_t bit = uint32_t{1} << 31; bit != 0 && (x & bit) == 0; bit >>= 1) ++n;
  return n;
}

}  // namespace

void softmax_s8(const SoftmaxParams& p, int32_t rows, int32_t depth, const int8_t* input,
                int8_t* output) {
  for (int32_t r = 0; r < rows; ++r) {
    const int8_t* x = input + r * depth;
    int8_t* y = output + r * depth;
    int32_t max_in_row = -128;
    for (int32_t c = 0; c < depth; ++c) max_in_row = x[c] > max_in_row ? x[c] : max_in_row;

    int32_t sum_of_exps = 0;  // Q12.19
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = x[c] - max_in_row;
      if (diff >= p.diff_min) {
        const int32_t rescaled =
            multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_left_shift);
        sum_of_exps += rounding_divide_by_pot(exp_on_negative_values(rescaled), kAccumIntegerBits);
      }
    }
    // GetReciprocal: the max element alone contributes 2^19, so the sum is positive.
    const int32_t headroom_plus_one = count_leading_zeros(static_cast<uint32_t>(sum_of_exps));
    const int32_t bits_over_unit = kAccumIntegerBits - headroom_plus_one;
    const int32_t shifted_sum_minus_one = static_cast<int32_t>(
        (static_cast<uint32_t>(sum_of_exps) << headroom_plus_one) - (uint32_t{1} << 31));
    const int32_t reciprocal = one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
    const int32_t exponent = bits_over_unit + 31 - 8;

    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = x[c] - max_in_row;
      int32_t v = -128;
      if (diff >= p.diff_min) {
        const int32_t rescaled =
            multiply_by_quantized_multiplier(diff, p.input_multiplier, p.input_left_shift);
        const int32_t e = exp_on_negative_values(rescaled);
        v = rounding_divide_by_pot(doubling_high_mul(reciprocal, e), exponent) - 128;
        v = v > 127 ? 127 : (v < -128 ? -128 : v);
      }
      y[c] = static_cast<int8_t>(v);
    }
  }
}

}  // namespace odt
