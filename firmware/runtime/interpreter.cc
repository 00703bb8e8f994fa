// Runs a baked model: one kernel call per op, arena offsets resolved at bake time.
#include "model.h"

namespace odt {

namespace {

int32_t elements(const Dims& d) { return d.n * d.h * d.w * d.c; }

}  // namespace

void invoke(const ModelDesc& m) {
  for (int32_t i = 0; i < m.num_ops; ++i) invoke_op(m, i);
}

void invoke_op(const ModelDesc& m, int32_t i) {
  const OpDesc& op = m.ops[i];
  const int8_t* in = m.arena + op.input;
  int8_t* out = m.arena + op.output;
  switch (op.kind) {
    case kOpConv2D:
      conv2d_s8(op.conv, op.quant, op.in, in, op.filter, op.weights, op.bias, op.out, out, op.slice);
      break;
    case kOpDepthwiseConv2D:
      depthwise_conv2d_s8(op.conv, op.quant, op.in, in, op.filter, op.weights, op.bias, op.out,
                          out);
      break;
    case kOpFullyConnected:
      fully_connected_s8(op.fc, op.quant, op.in.n, op.in.h * op.in.w * op.in.c, in,
                         op.out.h * op.out.w * op.out.c, op.weights, op.bias, out, op.slice);
      break;
    case kOpMeanHW:
      mean_hw_s8(op.mean, op.in, in, out);
      break;
    case kOpPad:
      pad_s8(op.pad, op.in, in, op.out, out);
      break;
    case kOpReshape:  // the plan aliases a reshape's output to its input: nothing to move
      break;
    case kOpAdd:
      add_s8(op.add, elements(op.out), in, m.arena + op.input2, out);
      break;
    case kOpAvgPool2D:
      avg_pool2d_s8(op.pool, op.in, in, op.out, out);
      break;
    case kOpMaxPool2D:
      max_pool2d_s8(op.pool, op.in, in, op.out, out);
      break;
    case kOpSoftmax:
      softmax_s8(op.softmax, op.in.n * op.in.h * op.in.w, op.in.c, in, out);
      break;
    case kOpQuantize:  // the arena is 16-byte aligned and so is every offset
      quantize_f32_s8(op.quantize, elements(op.in), reinterpret_cast<const float*>(in), out);
      break;
    case kOpRequantize:
      requantize_s8(op.requantize, elements(op.in), in, out);
      break;
    case kOpDequantize:
      dequantize_s8_f32(op.dequantize, elements(op.in), in, reinterpret_cast<float*>(out));
      break;
  }
}

}  // namespace odt
