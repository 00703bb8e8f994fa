"""Integer simulator: a .tflite as a PyTorch module that computes with TFLite Micro's integer arithmetic.

    from model_prep.simulate import Simulator
    sim = Simulator.from_tflite("build/kws/dscnn.tflite")
    y = sim(torch.as_tensor(x_int8))      # x: [N, H, W, C] int8 (float32 for a float-input model)
    acts = sim.activations(x)             # every activation tensor, by tensor index (torch)
    logits = sim.run(x_int8)              # NumPy in, NumPy out: [N, outputs]
    acts = sim.run(x_int8, keep=True)     # every activation, by tensor index (NumPy)
    sim.get_submodule("blocks.0.dw")      # one submodule per op, named after its layer

Each op of the lowered graph (model_prep.lower) is a `Layer` whose forward maps its int8
input(s) to its int8 output with model_prep.int8_ops; the Simulator runs them in graph order
over a dict of activations (graphs are DAGs: ADD reads two). Every activation is a batch of N
samples, [N, *sample_shape(tensor)]: the tensor's shape with a model batch of 1 dropped.
Outputs equal the tflite-micro interpreter's and the C++ runtime's bit for bit, tensor by
tensor (tests/test_kernels.py, tests/test_simulate.py).
"""
import numpy as np
import torch
from torch import nn

from model_prep import int8_ops
from model_prep.lower import lower
from model_prep.tflite_graph import load_graph


def _t(a):
    """A torch view of a NumPy array (shared memory: trained copies stay in sync), or a copy if read-only."""
    if a is None or torch.is_tensor(a):
        return a
    a = np.asarray(a)
    return torch.as_tensor(a if a.flags.writeable else a.copy())


_KERNELS = {  # kind -> f(op, inputs as NHWC dims with the batch of the call, weights, bias)
    "conv2d": lambda op, x, w, b: int8_ops.conv2d_s8(op.params, op.quant, x[0], w, b, op.out_dims[1:3]),
    "depthwise_conv2d": lambda op, x, w, b: int8_ops.depthwise_conv2d_s8(op.params, op.quant, x[0], w, b,
                                                                         op.out_dims[1:3]),
    "fully_connected": lambda op, x, w, b: int8_ops.fully_connected_s8(op.params, op.quant, x[0], w, b),
    "mean_hw": lambda op, x, w, b: int8_ops.mean_hw_s8(op.params, x[0]),
    "pad": lambda op, x, w, b: int8_ops.pad_s8(op.params, x[0]),
    "reshape": lambda op, x, w, b: x[0],
    "add": lambda op, x, w, b: int8_ops.add_s8(op.params, x[0], x[1]),
    "avg_pool2d": lambda op, x, w, b: int8_ops.avg_pool2d_s8(op.params, x[0], op.out_dims[1:3]),
    "max_pool2d": lambda op, x, w, b: int8_ops.max_pool2d_s8(op.params, x[0], op.out_dims[1:3]),
    "softmax": lambda op, x, w, b: int8_ops.softmax_s8(op.params, x[0]),
    "quantize": lambda op, x, w, b: int8_ops.quantize_f32_s8(op.params, x[0]),
    "requantize": lambda op, x, w, b: int8_ops.requantize_s8(op.params, x[0]),
    "dequantize": lambda op, x, w, b: int8_ops.dequantize_s8_f32(op.params, x[0]),
}


def run_op(op, *inputs, weights=None, bias=None):
    """One lowered op on a batch of its input(s) (torch or NumPy) -> torch [N, *out_dims[1:]].

    Each input is reshaped to [N, *in_dims[1:]] (N from its size); weights / bias override the
    model's (trained copies).
    """
    if op.kind not in _KERNELS:
        raise ValueError(f"no simulator kernel for {op.kind}")
    xs = [_t(x).reshape((-1,) + tuple(op.in_dims[1:])) for x in inputs]
    w = _t(op.weights if weights is None else weights)
    b = _t(op.bias if bias is None else bias)
    return _KERNELS[op.kind](op, xs, w, b).reshape((-1,) + tuple(op.out_dims[1:]))


def sample_shape(tensor):
    """A tensor's shape per sample: its shape without a leading model batch of 1."""
    shape = tuple(tensor.shape)
    return shape[1:] if len(shape) >= 2 and shape[0] == 1 else shape


class Layer(nn.Module):
    """One lowered op (`self.op`, a model_prep.lower.LoweredOp) as a module."""

    def __init__(self, op):
        super().__init__()
        self.op = op
        if op.weights is not None:
            self.register_buffer("weight", torch.as_tensor(np.array(op.weights)))
        if op.bias is not None:
            self.register_buffer("bias", torch.as_tensor(np.array(op.bias)))

    def forward(self, *inputs, weight=None, bias=None):
        """The op's output for its input(s), [N, *out_dims[1:]]; weight / bias override the buffers."""
        if weight is None:
            weight = getattr(self, "weight", None)
        if bias is None:
            bias = getattr(self, "bias", None)
        return run_op(self.op, *inputs, weights=weight, bias=bias)

    def extra_repr(self):
        return f"{self.op.kind}, {tuple(self.op.in_dims)} -> {tuple(self.op.out_dims)}"


def _attach(root, name, module):
    """Register `module` under the layer's dotted name (e.g. blocks.0.dw), or a flat key if it cannot be.

    Missing parents are plain nn.Module containers; a layer named like a container (blocks.0, the
    ADD of blocks.0.dw ...) takes its place and adopts its children.
    """
    parts = name.split(".")
    parent = root
    try:
        for p in parts[:-1]:
            if p not in parent._modules:
                parent.add_module(p, nn.Module())
            parent = parent._modules[p]
        existing = parent._modules.get(parts[-1])
        if existing is None:
            parent.add_module(parts[-1], module)
            return name
        if type(existing) is nn.Module and not set(existing._modules) & set(dir(module)):
            for k, child in existing._modules.items():
                module.add_module(k, child)
            parent._modules[parts[-1]] = module
            return name
    except KeyError:   # an empty part, or a name that is already an attribute
        pass
    key, i = name.replace(".", "_") or "layer", 1
    while key in root._modules or hasattr(root, key):
        key, i = f"{name.replace('.', '_')}_{i}", i + 1
    root.add_module(key, module)
    return key


class Simulator(nn.Module):
    """A lowered .tflite graph as a torch module: forward(x) -> the model's (first) output."""

    def __init__(self, graph, ops):
        super().__init__()
        self.graph, self.ops = graph, list(ops)
        self._layers = []        # (op, Layer) in execution order (the modules are registered by name)
        self.module_names = {}   # layer name -> submodule path (equal unless the name is unusable)
        for op in self.ops:
            layer = Layer(op)
            self.module_names[op.name] = _attach(self, op.name, layer)
            self._layers.append((op, layer))

    @classmethod
    def from_tflite(cls, path):
        graph = load_graph(path)
        return cls(graph, lower(graph))

    def layer(self, name):
        """The Layer of the op named `name` in the .tflite."""
        return self.get_submodule(self.module_names[name])

    def _shaped(self, index, x):
        return _t(x).reshape((-1,) + sample_shape(self.graph.tensors[index]))

    def activations(self, *inputs, overrides=None):
        """Every activation tensor by tensor index (inputs included), each [N, *sample_shape(tensor)].

        inputs: one batch per model input (int8, or float32 for a float input); overrides:
        {layer name: (weights, bias)} used instead of the model's (None keeps one).
        """
        overrides = overrides or {}
        acts = {i: self._shaped(i, x) for i, x in zip(self.graph.inputs, inputs)}
        for op, layer in self._layers:
            w, b = overrides.get(op.name, (None, None))
            y = layer(*(acts[i] for i in op.inputs), weight=_t(w), bias=_t(b))
            acts[op.output] = self._shaped(op.output, y)
        return acts

    def forward(self, *inputs, overrides=None):
        """The model's first output for a batch of inputs, [N, *sample_shape(output)]."""
        return self.activations(*inputs, overrides=overrides)[self.graph.outputs[0]]

    def run(self, x, keep=False, overrides=None):
        """NumPy in and out: the first output as [N, outputs] for a batch x (every activation if keep)."""
        dtype = self.graph.tensors[self.graph.inputs[0]].dtype
        with torch.no_grad():
            acts = self.activations(np.asarray(x, dtype), overrides=overrides)
        if keep:
            return {i: a.numpy() for i, a in acts.items()}
        return acts[self.graph.outputs[0]].numpy().reshape(len(x), -1)
