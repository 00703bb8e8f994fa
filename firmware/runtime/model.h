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
};

// One op: arena offsets of its input and output, their shapes, and the kernel's parameters
// (only the struct of its kind is meaningful).
struct OpDesc {
  OpKind kind;
  const char* name;        // layer name in the .tflite (schemes refer to layers by it)
  int32_t input, output;   // byte offsets in the arena
  Dims in, out, filter;
  const int8_t* weights;   // flash, or SRAM when the layer is trained
  const int32_t* bias;
  ChannelQuant quant;
  ConvParams conv;
  FcParams fc;
  MeanParams mean;
  PadParams pad;
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

}  // namespace odt
