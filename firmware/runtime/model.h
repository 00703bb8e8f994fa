// A baked model: the op sequence with its precomputed parameters, the weights, and the
// static memory plan. model_prep/bake.py writes one of these as C++ sources; the device
// parses no flatbuffer and allocates nothing.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

namespace odt {

enum OpKind : uint8_t {
  kOpConv2D,
  kOpDepthwiseConv2D,
  kOpFullyConnected,
  kOpMeanHW,
  kOpPad,
  kOpReshape,
  kOpAdd,
  kOpAvgPool2D,
  kOpMaxPool2D,
  kOpSoftmax,
  kOpQuantize,    // float32 model input -> int8
  kOpRequantize,  // int8 -> int8
  kOpDequantize,  // int8 -> float32 model output
};

// One op: arena offsets of its input(s) and output, their shapes, and the kernel's parameters
// (only the struct of its kind is meaningful). Float32 tensors (a QUANTIZE's input, a
// DEQUANTIZE's output) sit in the arena like the others, 16-byte aligned.
struct OpDesc {
  OpKind kind;
  const char* name;        // layer name in the .tflite (schemes refer to layers by it)
  int32_t input, output;   // byte offsets in the arena
  int32_t input2;          // ADD's second operand (same dims as `in`); -1 for other ops
  Dims in, out, filter;
  const int8_t* weights;   // flash, or SRAM when the layer's whole tensor is trained
  const int32_t* bias;
  const WeightSlice* slice;  // the trained slice of `weights` (in SRAM), or nullptr
  ChannelQuant quant;
  ConvParams conv;
  FcParams fc;
  MeanParams mean;
  PadParams pad;
  AddParams add;
  PoolParams pool;
  SoftmaxParams softmax;
  QuantizeParams quantize;
  RequantizeParams requantize;
  DequantizeParams dequantize;
};

struct ModelDesc {
  const char* name;
  const OpDesc* ops;
  int32_t num_ops;
  int8_t* arena;
  int32_t arena_bytes;
  int32_t input_offset, input_bytes;
  int32_t output_offset, output_bytes;
  const char* info_json;   // baked facts for the INFO reply: a JSON object's members, no braces
};

// Runs every op of the model on the input already in the arena.
void invoke(const ModelDesc& model);
// Runs op i alone.
void invoke_op(const ModelDesc& model, int32_t i);

}  // namespace odt
