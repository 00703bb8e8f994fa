"""Lower a .tflite graph to kernel calls: every integer parameter the kernels need, computed once.

A LoweredOp holds exactly the arguments of one kernel in firmware/runtime/kernels/kernels.h
(`params` is the int8_ops twin of the C++ parameter struct, field for field). The simulator executes LoweredOps with
model_prep/int8_ops.py and bake writes the same LoweredOps into C++ sources, so the two can
never disagree about a padding, a multiplier or a clamp.
"""
from dataclasses import dataclass

import numpy as np

from model_prep import int8_ops
from model_prep.tflite_graph import Graph, ModelError

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN", "PAD", "PADV2", "RESHAPE")
_SAME, _VALID = 0, 1   # tflite Padding enum


@dataclass
class LoweredOp:
    name: str                 # layer name: the op's output tensor name
    kind: str                 # conv2d, depthwise_conv2d, fully_connected, mean_hw, pad, reshape
    input: int                # tensor indices in the graph
    output: int
    in_dims: tuple            # (n, h, w, c)
    out_dims: tuple
    filter_dims: tuple = None
    weights: np.ndarray = None
    bias: np.ndarray = None
    quant: int8_ops.ChannelQuant = None
    params: object = None     # int8_ops.ConvParams / FcParams / MeanParams / PadParams


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


def _channel_quant(x, w, y, channels):
    """Per-output-channel multipliers (a per-tensor layer repeats its one pair)."""
    q = int8_ops.conv_channel_quant(np.float32(_q(x)[0]), w.scale, np.float32(_q(y)[0]))
    if len(q.multiplier) == 1:
        q = int8_ops.ChannelQuant(np.repeat(q.multiplier, channels), np.repeat(q.shift, channels))
    return q


def _conv(g, op, depthwise):
    x, w, y = (g.tensors[i] for i in op.inputs[:2] + op.outputs[:1])
    b = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    o = op.options
    _, kh, kw, _ = w.shape
    in_d, out_d = dims(x.shape), dims(y.shape)
    stride, dil = (o["strideH"], o["strideW"]), (o["dilationHFactor"], o["dilationWFactor"])
    padding = int8_ops.same_padding if o["padding"] == _SAME else int8_ops.valid_padding
    pad_h, out_h = padding(in_d[1], kh, stride[0], dil[0])
    pad_w, out_w = padding(in_d[2], kw, stride[1], dil[1])
    if (out_h, out_w) != out_d[1:3]:
        raise ModelError(f"{g.path}: {op.kind} '{y.name}' output is {out_d[1]}x{out_d[2]}, "
                         f"but its padding and strides give {out_h}x{out_w}")
    s_y, zp_y = _q(y)
    act_min, act_max = int8_ops.activation_range(o["fusedActivationFunction"], s_y, zp_y)
    params = int8_ops.ConvParams(-_q(x)[1], zp_y, stride[0], stride[1], dil[0], dil[1], pad_h, pad_w,
                                 o.get("depthMultiplier", 1) if depthwise else 1, act_min, act_max)
    return LoweredOp(y.name, "depthwise_conv2d" if depthwise else "conv2d", x.index, y.index, in_d, out_d,
                     tuple(w.shape), w.data, None if b is None else b.data.astype(np.int32),
                     _channel_quant(x, w, y, out_d[3]), params)


def _fully_connected(g, op):
    x, w, y = (g.tensors[i] for i in op.inputs[:2] + op.outputs[:1])
    b = g.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    q = _channel_quant(x, w, y, w.shape[0])
    s_y, zp_y = _q(y)
    act_min, act_max = int8_ops.activation_range(op.options["fusedActivationFunction"], s_y, zp_y)
    params = int8_ops.FcParams(-_q(x)[1], zp_y, act_min, act_max)
    return LoweredOp(y.name, "fully_connected", x.index, y.index, dims(x.shape), dims(y.shape),
                     dims(w.shape), w.data, None if b is None else b.data.astype(np.int32), q, params)


def _mean(g, op):
    x, axis, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if len(x.shape) != 4 or axis.data is None or sorted(int(a) % 4 for a in axis.data.ravel()) != [1, 2]:
        raise ModelError(f"{g.path}: MEAN '{y.name}' must reduce H and W of a 4-D tensor")
    (s_x, zp_x), (s_y, zp_y) = _q(x), _q(y)
    params = int8_ops.mean_params(s_x, zp_x, s_y, zp_y)
    return LoweredOp(y.name, "mean_hw", x.index, y.index, dims(x.shape), dims(y.shape), params=params)


def _pad(g, op):
    x, pads, y = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if pads.data is None or pads.data.shape != (4, 2):
        raise ModelError(f"{g.path}: PAD '{y.name}' needs constant 4x2 paddings")
    value = _q(y)[1]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = int(g.tensors[op.inputs[2]].data.ravel()[0])
    params = int8_ops.PadParams(tuple(int(v) for v in pads.data[:, 0]), tuple(int(v) for v in pads.data[:, 1]), value)
    return LoweredOp(y.name, "pad", x.index, y.index, dims(x.shape), dims(y.shape), params=params)


def _reshape(g, op):
    x, y = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    return LoweredOp(y.name, "reshape", x.index, y.index, dims(x.shape), dims(y.shape))


_LOWER = {
    "CONV_2D": lambda g, op: _conv(g, op, False),
    "DEPTHWISE_CONV_2D": lambda g, op: _conv(g, op, True),
    "FULLY_CONNECTED": _fully_connected,
    "MEAN": _mean,
    "PAD": _pad,
    "PADV2": _pad,   # PAD with a constant value input
    "RESHAPE": _reshape,
}


def lower(graph: Graph):
    """The graph as a list of LoweredOps, in execution order."""
    ops = []
    for op in graph.ops:
        if op.kind not in _LOWER:
            raise ModelError(f"{graph.path}: unsupported op {op.kind} (op {op.index}); "
                             f"supported: {', '.join(SUPPORTED)}")
        for i in op.inputs[:1] + op.outputs:
            if graph.tensors[i].dtype != "int8":
                raise ModelError(f"{graph.path}: op {op.index} ({op.kind}) tensor '{graph.tensors[i].name}' is "
                                 f"{graph.tensors[i].dtype}; the runtime computes in int8")
        ops.append(_LOWER[op.kind](graph, op))
    return ops
