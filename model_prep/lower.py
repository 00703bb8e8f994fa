"""Lower a .tflite graph to kernel calls: every integer parameter the kernels need, computed once.

A LoweredOp holds exactly the arguments of one kernel in firmware/runtime/kernels/kernels.h
(`params` is the model_prep/int8_params.py twin of the C++ parameter struct, field for field).
The simulator executes LoweredOps with model_prep/int8_ops.py and bake writes the same
LoweredOps into C++ sources, so the two can never disagree about a padding, a multiplier or a clamp.

Activations are int8. Float32 appears only at the model's edges: a QUANTIZE that reads a float
model input, a DEQUANTIZE that writes a float model output.
"""
from dataclasses import dataclass

import numpy as np

from model_prep import int8_params
from model_prep.tflite_graph import Graph, ModelError

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "PAD", "PADV2", "RESHAPE", "ADD",
             "AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX", "QUANTIZE", "DEQUANTIZE")
_SAME, _VALID = 0, 1   # tflite Padding enum


@dataclass
class LoweredOp:
    name: str                 # layer name: the op's output tensor name
    kind: str                 # conv2d, depthwise_conv2d, fully_connected, mean_hw, pad, reshape, add,
                              # avg_pool2d, max_pool2d, softmax, quantize, requantize, dequantize
    inputs: tuple             # tensor indices in the graph of the activations it reads (two for add)
    output: int
    in_dims: tuple            # (n, h, w, c) of the first input (an add's inputs share it)
    out_dims: tuple
    filter_dims: tuple = None
    weights: np.ndarray = None
    bias: np.ndarray = None
    quant: int8_params.ChannelQuant = None
    params: object = None     # the int8_params parameter dataclass of its kernel (ConvParams, AddParams, ...)

    @property
    def input(self):
        """The first (for most ops the only) input tensor."""
        return self.inputs[0]


def dims(shape):
    """NHWC dims of a tensor shape (2-D [n, c] becomes (n, 1, 1, c))."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4:
        return shape
    if len(shape) == 2:
        return (shape[0], 1, 1, shape[1])
    if len(shape) == 1:
        return (1, 1, 1, shape[0])
    raise ValueError(f"unsupported tensor rank {len(shape)} (shape {shape})")


def _q(t):
    if t.scale is None:
        raise ModelError(f"tensor '{t.name}' is not quantized; the runtime needs int8 tensors")
    return float(t.scale[0]), int(t.zero_point[0])


def _require(g, op, tensor, dtype):
    if tensor.dtype != dtype:
        raise ModelError(f"{g.path}: op {op.index} ({op.kind}) tensor '{tensor.name}' is {tensor.dtype}; "
                         f"the runtime computes in int8 (float32 only at a model input or output)")


def _channel_quant(x, w, y, channels):
    """Per-output-channel multipliers (a per-tensor layer repeats its one pair)."""
    q = int8_params.conv_channel_quant(np.float32(_q(x)[0]), w.scale, np.float32(_q(y)[0]))
    if len(q.multiplier) == 1:
        q = int8_params.ChannelQuant(np.repeat(q.multiplier, channels), np.repeat(q.shift, channels))
    return q


def _padding(g, op, in_d, out_d, kh, kw, stride, dil):
    """(pad_h, pad_w) of a SAME / VALID window op, checked against the output shape."""
    padding = int8_params.same_padding if op.options["padding"] == _SAME else int8_params.valid_padding
    pad_h, out_h = padding(in_d[1], kh, stride[0], dil[0])
    pad_w, out_w = padding(in_d[2], kw, stride[1], dil[1])
    if (out_h, out_w) != out_d[1:3]:
        raise ModelError(f"{g.path}: {op.kind} '{g.tensors[op.outputs[0]].name}' output is {out_d[1]}x{out_d[2]}, "
                         f"but its padding and strides give {out_h}x{out_w}")
    return pad_h, pad_w


def _conv(g, op, depthwise):
    x, w, y = (g.tensors[i] for i in op.inputs[:2] + op.outputs[:1])
    b = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    o = op.options
    _, kh, kw, _ = w.shape
    in_d, out_d = dims(x.shape), dims(y.shape)
    stride, dil = (o["strideH"], o["strideW"]), (o["dilationHFactor"], o["dilationWFactor"])
    pad_h, pad_w = _padding(g, op, in_d, out_d, kh, kw, stride, dil)
    s_y, zp_y = _q(y)
    act_min, act_max = int8_params.activation_range(o["fusedActivationFunction"], s_y, zp_y)
    params = int8_params.ConvParams(-_q(x)[1], zp_y, stride[0], stride[1], dil[0], dil[1], pad_h, pad_w,
                                 o.get("depthMultiplier", 1) if depthwise else 1, act_min, act_max)
    return LoweredOp(y.name, "depthwise_conv2d" if depthwise else "conv2d", (x.index,), y.index, in_d, out_d,
                     tuple(w.shape), w.data, None if b is None else b.data.astype(np.int32),
                     _channel_quant(x, w, y, out_d[3]), params)


def _fully_connected(g, op):
    x, w, y = (g.tensors[i] for i in op.inputs[:2] + op.outputs[:1])
    b = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    q = _channel_quant(x, w, y, w.shape[0])
    s_y, zp_y = _q(y)
    act_min, act_max = int8_params.activation_range(op.options["fusedActivationFunction"], s_y, zp_y)
    params = int8_params.FcParams(-_q(x)[1], zp_y, act_min, act_max)
    return LoweredOp(y.name, "fully_connected", (x.index,), y.index, dims(x.shape), dims(y.shape),
                     dims(w.shape), w.data, None if b is None else b.data.astype(np.int32), q, params)


def _mean(g, op):
    x, axis, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if len(x.shape) != 4 or axis.data is None or sorted(int(a) % 4 for a in axis.data.ravel()) != [1, 2]:
        raise ModelError(f"{g.path}: MEAN '{y.name}' must reduce H and W of a 4-D tensor")
    (s_x, zp_x), (s_y, zp_y) = _q(x), _q(y)
    params = int8_params.mean_params(s_x, zp_x, s_y, zp_y)
    return LoweredOp(y.name, "mean_hw", (x.index,), y.index, dims(x.shape), dims(y.shape), params=params)


def _pad(g, op):
    x, pads, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if pads.data is None or pads.data.shape != (4, 2):
        raise ModelError(f"{g.path}: PAD '{y.name}' needs constant 4x2 paddings")
    value = _q(y)[1]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = int(g.tensors[op.inputs[2]].data.ravel()[0])
    params = int8_params.PadParams(tuple(int(v) for v in pads.data[:, 0]), tuple(int(v) for v in pads.data[:, 1]), value)
    return LoweredOp(y.name, "pad", (x.index,), y.index, dims(x.shape), dims(y.shape), params=params)


def _reshape(g, op):
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    return LoweredOp(y.name, "reshape", (x.index,), y.index, dims(x.shape), dims(y.shape))


def _same_elements(*shapes):
    """Shapes equal but for leading 1s (the converter adds (1, n) + (n,)): elementwise, no broadcast."""
    def strip(shape):
        shape = list(shape)
        while shape and shape[0] == 1:
            shape.pop(0)
        return shape
    return all(strip(s) == strip(shapes[0]) for s in shapes)


def _add(g, op):
    a, b, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    _require(g, op, b, "int8")
    if a.is_const or b.is_const:
        raise ModelError(f"{g.path}: ADD '{y.name}' adds a constant; only two activations are supported")
    if not _same_elements(a.shape, b.shape, y.shape):
        raise ModelError(f"{g.path}: ADD '{y.name}' broadcasts {a.shape} + {b.shape}; "
                         f"only equal shapes are supported")
    act = op.options.get("fusedActivationFunction", int8_params.ACT_NONE)   # the converter may omit AddOptions
    params = int8_params.add_params(*_q(a), *_q(b), *_q(y), act)
    return LoweredOp(y.name, "add", (a.index, b.index), y.index, dims(y.shape), dims(y.shape), params=params)


def _pool(g, op, kind):
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    o = op.options
    in_d, out_d = dims(x.shape), dims(y.shape)
    stride, size = (o["strideH"], o["strideW"]), (o["filterHeight"], o["filterWidth"])
    pad_h, pad_w = _padding(g, op, in_d, out_d, *size, stride, (1, 1))
    act_min, act_max = int8_params.activation_range(o["fusedActivationFunction"], *_q(y))
    params = int8_params.PoolParams(*stride, *size, pad_h, pad_w, act_min, act_max)
    return LoweredOp(y.name, kind, (x.index,), y.index, in_d, out_d, params=params)


def _softmax(g, op):
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if _q(y) != (1.0 / 256, -128):
        raise ModelError(f"{g.path}: SOFTMAX '{y.name}' output must have scale 1/256 and zero point -128 "
                         f"(it has {_q(y)[0]:g}, {_q(y)[1]})")
    try:
        params = int8_params.softmax_params(op.options.get("beta", 1.0), _q(x)[0])
    except ValueError as e:
        raise ModelError(f"{g.path}: SOFTMAX '{y.name}': {e}") from None
    return LoweredOp(y.name, "softmax", (x.index,), y.index, dims(x.shape), dims(y.shape), params=params)


def _quantize(g, op):
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    s_y, zp_y = _q(y)
    if x.dtype == "float32":
        if x.index not in g.inputs:
            raise ModelError(f"{g.path}: QUANTIZE '{y.name}' reads a float32 tensor that is not a model input")
        params = int8_params.QuantizeParams(float(np.float32(s_y)), zp_y)
        return LoweredOp(y.name, "quantize", (x.index,), y.index, dims(x.shape), dims(y.shape), params=params)
    _require(g, op, x, "int8")
    params = int8_params.requantize_params(*_q(x), s_y, zp_y)
    return LoweredOp(y.name, "requantize", (x.index,), y.index, dims(x.shape), dims(y.shape), params=params)


def _dequantize(g, op):
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    _require(g, op, y, "float32")
    if y.index not in g.outputs:
        raise ModelError(f"{g.path}: DEQUANTIZE '{y.name}' writes a float32 tensor that is not a model output")
    s_x, zp_x = _q(x)
    params = int8_params.DequantizeParams(float(np.float32(s_x)), zp_x)
    return LoweredOp(y.name, "dequantize", (x.index,), y.index, dims(x.shape), dims(y.shape), params=params)


_LOWER = {
    "CONV_2D": lambda g, op: _conv(g, op, False),
    "DEPTHWISE_CONV_2D": lambda g, op: _conv(g, op, True),
    "FULLY_CONNECTED": _fully_connected,
    "MEAN": _mean,
    "PAD": _pad,
    "PADV2": _pad,   # PAD with a constant value input
    "RESHAPE": _reshape,
    "ADD": _add,
    "AVERAGE_POOL_2D": lambda g, op: _pool(g, op, "avg_pool2d"),
    "MAX_POOL_2D": lambda g, op: _pool(g, op, "max_pool2d"),
    "SOFTMAX": _softmax,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
}
_FLOAT_IN, _FLOAT_OUT = ("QUANTIZE",), ("DEQUANTIZE",)   # the only ops whose edges may be float32


def lower(graph: Graph):
    """The graph as a list of LoweredOps, in execution order."""
    ops = []
    for op in graph.ops:
        if op.kind not in _LOWER:
            raise ModelError(f"{graph.path}: unsupported op {op.kind} (op {op.index}); "
                             f"supported: {', '.join(SUPPORTED)}")
        if op.kind not in _FLOAT_IN:
            _require(graph, op, graph.tensors[op.inputs[0]], "int8")
        if op.kind not in _FLOAT_OUT:
            for i in op.outputs:
                _require(graph, op, graph.tensors[i], "int8")
        ops.append(_LOWER[op.kind](graph, op))
    return ops
