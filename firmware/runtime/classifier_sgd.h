// On-device training of the classifier in integers: softmax cross-entropy gradient in Q15,
// Quantization-Aware Scaling folded into per-channel fixed-point multipliers, stochastic
// rounding of int8 weights. The Python twin is model_prep/classifier_sgd.py; the two are
// tested bit-exact against each other (tests/test_classifier_sgd.py).
#pragma once

#include <stdint.h>

namespace odt {

constexpr int32_t kExpTableSize = 256;

// The trained FULLY_CONNECTED layer and its baked training constants.
struct ClassifierTraining {
  int32_t in_features, out_features;
  int32_t input_zero_point;     // zero point of the classifier's int8 input
  int8_t* weights;              // [out][in] in SRAM, updated in place
  int32_t* bias;                // [out] in SRAM
  const int8_t* weights_init;   // flash originals (RESET restores them)
  const int32_t* bias_init;
  // Per output channel o: dq_W = -g*(x-zp) * w_mult[o] * 2^(w_exp[o]-31), stochastic rounding;
  // dq_b = -g * b_mult[o] * 2^(b_exp[o]-31), rounded to nearest. g is the Q15 gradient.
  const int32_t* w_mult;
  const int32_t* w_exp;
  const int32_t* b_mult;
  const int32_t* b_exp;
  const uint32_t* exp_table;    // round(2^16 * exp(-d * s_logits)), d = 0..255
  uint64_t seed;                // xorshift64 seed of the stochastic rounding
};

uint64_t xorshift64(uint64_t* state);

// grad[i] = softmax(logits)[i] - (i == label), in Q15.
void softmax_grad_q15(const int8_t* logits, int32_t n, int32_t label, const uint32_t* exp_table,
                      int32_t* grad);

// -acc * mult * 2^(exp-31), rounded down after adding the top bits of `rand` (stochastic),
// or to nearest when use_rand is false.
int32_t scaled_step(int32_t acc, int32_t mult, int32_t exp, uint64_t rand, bool use_rand);

// One SGD step (batch size 1) given the classifier's input x and output logits.
// grad_scratch holds out_features int32 (classifier_sgd_scratch_size bytes).
void classifier_sgd_step(const ClassifierTraining& t, const int8_t* x, const int8_t* logits,
                         int32_t label, uint64_t* rng_state, int32_t* grad_scratch);

inline int32_t classifier_sgd_scratch_size(const ClassifierTraining& t) {
  return t.out_features * static_cast<int32_t>(sizeof(int32_t));
}

}  // namespace odt
