// extern "C" entry points into firmware/runtime/classifier_sgd.cc for tests/test_classifier_sgd.py.
#include "classifier_sgd.h"

extern "C" {

int32_t shim_scaled_step(int32_t acc, int32_t mult, int32_t exp, uint64_t rand, int32_t use_rand) {
  return odt::scaled_step(acc, mult, exp, rand, use_rand != 0);
}

void shim_softmax_grad_q15(const int8_t* logits, int32_t n, int32_t label, const uint32_t* table,
                           int32_t* grad) {
  odt::softmax_grad_q15(logits, n, label, table, grad);
}

uint64_t shim_xorshift64(uint64_t* state) { return odt::xorshift64(state); }
}
