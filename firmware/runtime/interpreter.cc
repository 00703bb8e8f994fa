// Runs a baked model: one kernel call per op, arena offsets resolved at bake time.
#include "model.h"

namespace odt {

void invoke(const ModelDesc& m) {
  for (int32_t i = 0; i < m.num_ops; ++i) {
    const OpDesc& op = m.ops[i];
    const int8_t* in = m.arena + op.input;
    int8_t* out = m.arena + op.output;
    switch (op.kind) {
      case kOpConv2D:
        conv2d_s8(op.conv, op.quant, op.in, in, op.filter, op.weights, op.bias, op.out, out);
        break;
      case kOpDepthwiseConv2D:
        depthwise_conv2d_s8(op.conv, op.quant, op.in, in, op.filter, op.weights, op.bias, op.out,
                            out);
        break;
      case kOpFullyConnected:
        fully_connected_s8(op.fc, op.quant, op.in.n, op.in.h * op.in.w * op.in.c, in,
                           op.out.h * op.out.w * op.out.c, op.weights, op.bias, out);
        break;
      case kOpMeanHW:
        mean_hw_s8(op.mean, op.in, in, out);
        break;
      case kOpPad:
        pad_s8(op.pad, op.in, in, op.out, out);
        break;
      case kOpReshape:  // the plan aliases a reshape's output to its input: nothing to move
        break;
    }
  }
}

}  // namespace odt
