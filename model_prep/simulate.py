"""Integer simulator: run a lowered .tflite graph with the NumPy twins of the firmware's kernels.

    from model_prep.simulate import Simulator
    sim = Simulator.from_tflite("build/kws/dscnn.tflite")
    logits = sim.run(x_int8)              # x: [N, H, W, C] int8, whole batches at once
    acts = sim.run(x_int8, keep=True)     # every activation, by tensor index

Its outputs equal the tflite-micro interpreter's and the C++ runtime's bit for bit (tests).
"""
import numpy as np

from model_prep import int8_ops
from model_prep.lower import lower
from model_prep.tflite_graph import load_graph


def run_op(op, x, weights=None, bias=None):
    """One lowered op on a batch; weights / bias override the model's (trained copies)."""
    w = op.weights if weights is None else weights
    b = op.bias if bias is None else bias
    if op.kind == "conv2d":
        return int8_ops.conv2d_s8(op.params, op.quant, x, w, b, op.out_dims[1:3])
    if op.kind == "depthwise_conv2d":
        return int8_ops.depthwise_conv2d_s8(op.params, op.quant, x, w, b, op.out_dims[1:3])
    if op.kind == "fully_connected":
        return int8_ops.fully_connected_s8(op.params, op.quant, x.reshape(len(x), -1), w, b)
    if op.kind == "mean_hw":
        return int8_ops.mean_hw_s8(op.params, x)
    if op.kind == "pad":
        return int8_ops.pad_s8(op.params, x)
    if op.kind == "reshape":
        return x.reshape((len(x),) + tuple(op.out_dims[1:]))
    raise ValueError(f"no simulator kernel for {op.kind}")


class Simulator:
    def __init__(self, graph, ops):
        self.graph, self.ops = graph, ops

    @classmethod
    def from_tflite(cls, path):
        graph = load_graph(path)
        return cls(graph, lower(graph))

    def run(self, x, keep=False, overrides=None):
        """Outputs of the graph for a batch of int8 inputs (all activations if keep)."""
        overrides = overrides or {}
        acts = {self.graph.inputs[0]: np.asarray(x, np.int8).reshape((len(x),) + self.ops[0].in_dims[1:])}
        for op in self.ops:
            acts[op.output] = run_op(op, acts[op.input], *overrides.get(op.name, (None, None)))
        if keep:
            return acts
        return acts[self.graph.outputs[0]].reshape(len(x), -1)
