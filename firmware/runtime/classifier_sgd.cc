#include "classifier_sgd.h"

namespace odt {

namespace {
constexpr int32_t kQ15 = 1 << 15;
constexpr int32_t kMaxShift = 62;

int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }
}  // namespace

uint64_t xorshift64(uint64_t* state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return x;
}

void softmax_grad_q15(const int8_t* logits, int32_t n, int32_t label, const uint32_t* exp_table,
                      int32_t* grad) {
  int32_t top = logits[0];
  for (int32_t i = 1; i < n; ++i) top = logits[i] > top ? logits[i] : top;
  uint64_t total = 0;
  for (int32_t i = 0; i < n; ++i) total += exp_table[top - logits[i]];
  for (int32_t i = 0; i < n; ++i) {
    const uint64_t e = exp_table[top - logits[i]];
    const int32_t p = static_cast<int32_t>(((e << 15) + total / 2) / total);
    grad[i] = p - (i == label ? kQ15 : 0);
  }
}

int32_t scaled_step(int32_t acc, int32_t mult, int32_t exp, uint64_t rand, bool use_rand) {
  const int64_t p = -static_cast<int64_t>(acc) * mult;
  int32_t r = 31 - exp;
  if (r > kMaxShift) r = kMaxShift;
  int64_t v;
  if (r <= 0) {
    v = clamp64(p, INT32_MIN, INT32_MAX) * (int64_t{1} << (-r < 31 ? -r : 31));
  } else {
    const int64_t round = use_rand ? static_cast<int64_t>(rand >> (64 - r)) : (int64_t{1} << (r - 1));
    v = (p + round) >> r;
  }
  return static_cast<int32_t>(clamp64(v, INT32_MIN, INT32_MAX));
}

void classifier_sgd_step(const ClassifierTraining& t, const int8_t* x, const int8_t* logits,
                         int32_t label, uint64_t* rng_state, int32_t* grad) {
  softmax_grad_q15(logits, t.out_features, label, t.exp_table, grad);
  for (int32_t o = 0; o < t.out_features; ++o) {
    const int32_t g = grad[o];
    int8_t* w = t.weights + o * t.in_features;
    for (int32_t i = 0; i < t.in_features; ++i) {
      const uint64_t rand = xorshift64(rng_state);
      const int32_t step = scaled_step(g * (x[i] - t.input_zero_point), t.w_mult[o], t.w_exp[o],
                                       rand, true);
      w[i] = static_cast<int8_t>(clamp64(static_cast<int64_t>(w[i]) + step, -127, 127));
    }
    const int64_t b = static_cast<int64_t>(t.bias[o]) +
                      scaled_step(g, t.b_mult[o], t.b_exp[o], 0, false);
    t.bias[o] = static_cast<int32_t>(clamp64(b, INT32_MIN, INT32_MAX));
  }
}

}  // namespace odt
