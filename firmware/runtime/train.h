// The sparse-update training step: a forward pass that saves what the backward needs, then the
// backward's steps from the loss down to the lowest updated layer, each layer updated as soon as
// its gradient exists. model_prep/training_plan.py decides every step, buffer and constant at
// bake time; this file only executes them, with the integer arithmetic of grad_ops.h, and
// follows model_prep/sparse_train.py (batch 1, int16 gradients) one for one: fed the same
// samples, the device ends with the same int8 weights and int32 biases (tests/test_train_engine.py).
#pragma once

#include <stdint.h>

#include "model.h"

namespace odt {

// What the forward keeps right after op `after_op`.
enum SaveKind : uint8_t {
  kSaveMask,      // 1 bit per element of the op's output: act_min < y < act_max (the clamp didn't bite)
  kSaveChannels,  // the op's input, only `channels` of each position (an updated layer's weight gradient)
};

struct SaveDesc {
  int32_t after_op;
  SaveKind kind;
  int32_t src, dst;        // arena offsets
  int32_t count;           // mask: elements; channels: positions
  int32_t stride;          // channels: channels per position of the source
  const int32_t* channels;
  int32_t n_channels;
  int32_t act_min, act_max;
};

// One layer's update: SGD with Quantization-Aware Scaling, per output channel multipliers
// (m, k): step = -grad * m * 2^(k - 15 + e); int8 weights round stochastically, biases to nearest.
struct LayerUpdate {
  int8_t* weights;           // SRAM copy of the whole tensor, or the op's slice values (nullptr: frozen)
  bool sliced;               // weights holds only the slice [O][rows][KW][channels] (model.h WeightSlice)
  int32_t* bias;             // SRAM copy (nullptr: bias frozen)
  const int32_t* channels;   // the weight's last axis: conv / FC input channels, depthwise channels
  int32_t n_channels;
  const int32_t* rows;       // kernel rows updated
  int32_t n_rows;
  int32_t saved_x;           // arena offset of the input's kept channels
  const int32_t* w_mult;
  const int32_t* w_exp;
  const int32_t* b_mult;
  const int32_t* b_exp;
  uint32_t stream;           // random stream of the weights: 2 * op index
};

enum BackKind : uint8_t {
  kBackLoss,   // softmax cross-entropy of the logits, times s_logits
  kBackLayer,  // conv / depthwise / FC: mask, chain through the multiplier, input gradient, update
  kBackAdd,
  kBackMean,
  kBackPad,
  kBackCopy,   // a reshape whose input already holds a gradient: add into it
};

// A gradient in the arena: int16 values at `offset`, its exponent in exponents[slot].
struct GradRef {
  int32_t offset;  // -1: none
  int32_t slot;
};

struct BackStep {
  BackKind kind;
  int32_t op;              // model op index
  GradRef g;               // the gradient of the op's output
  int32_t mask;            // arena offset of the output's saved clamp mask, -1: none
  GradRef gx[2];           // the gradients of its inputs (an ADD has two)
  bool accumulate[2];      // gx already holds a gradient: compute into tmp, then add
  int32_t tmp;             // arena offset of an int16 temporary, -1: none
  int32_t scratch;         // arena offset of int64 scratch, -1: none
  int32_t scratch_bytes;   // what bake reserved there (at least backward_scratch_bytes)
  int32_t mult[2], shift[2];
  const LayerUpdate* update;  // nullptr: nothing of this layer is trained
};

// A trained tensor: SRAM copy `dst` of `bytes` from flash `src` (nullptr: a WeightSlice, gathered
// from its op's flash weights), restored at boot and RESET.
struct ParamCopy {
  void* dst;
  const void* src;
  int32_t bytes;
};

struct Training {
  const SaveDesc* saves;
  int32_t n_saves;
  const BackStep* steps;
  int32_t n_steps;
  int32_t* exponents;        // one per gradient buffer
  const uint32_t* exp_table; // round(2^16 exp(-d s_logits)), d = 0..table_size-1
  int32_t table_size;
  int32_t logits_offset, num_classes;
  const ParamCopy* params;
  int32_t n_params;
  int64_t seed;
};

// Restores the trained tensors from flash.
void training_reset(const ModelDesc& m, const Training& t);

// The forward pass of model m with the saves of t (t may be nullptr: plain inference).
void forward_with_saves(const ModelDesc& m, const Training* t);

// The backward and the updates of one sample after forward_with_saves; `step` numbers the
// updates (the stochastic rounding's counter, as SparseTrainer.steps).
void train_step(const ModelDesc& m, const Training& t, int32_t label, int64_t step);

// Bytes of the trained parameters (the PARAMS blob: the copies' bytes, in order).
int32_t training_param_bytes(const Training* t);

// The scratch a backward step needs: int64 sums of one input position (conv / depthwise input
// gradient) or of one kernel tap's kept channels (conv / depthwise weight gradient); FC and the
// other ops need none.
int32_t backward_scratch_bytes(const OpDesc& op, const BackStep& step);

// Index of the first step whose baked scratch is smaller than it needs, or -1 (boot-time check of
// the plan against the kernels).
int32_t training_check(const ModelDesc& m, const Training& t);

}  // namespace odt
