"""Read an int8 .tflite flatbuffer into a small, plain graph: tensors, ops and their options.

Everything downstream (the simulator, bake, the export's layer naming) reads models through
`load_graph`, so the flatbuffer schema is touched in one place only.
"""
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema


class ModelError(ValueError):
    """A model file that is missing, not a .tflite, or outside what the project supports."""


_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple
    dtype: str                       # "int8", "int32", "float32", ...
    scale: np.ndarray | None = None  # float32, one per channel (or one)
    zero_point: np.ndarray | None = None
    quant_dim: int = 0
    data: np.ndarray | None = None   # constant tensors only

    @property
    def is_const(self):
        return self.data is not None

    @property
    def nbytes(self):
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Op:
    index: int
    kind: str                        # builtin operator name, e.g. "CONV_2D"
    inputs: list                     # tensor indices, -1 for an omitted optional input
    outputs: list
    options: dict = field(default_factory=dict)


@dataclass
class Graph:
    path: Path
    tensors: list
    ops: list
    inputs: list
    outputs: list

    def quantize_input(self, x_nchw):
        """Float features [N, C, H, W] as this model's input [N, H, W, C]: int8 with the input's
        quantization (TFLite QUANTIZE rounding), or float32 for a model that takes floats."""
        from model_prep.data.frontend import quantize_features
        x = np.asarray(x_nchw, np.float32).transpose(0, 2, 3, 1)
        t = self.tensors[self.inputs[0]]
        if t.dtype != "int8":
            return np.ascontiguousarray(x)
        return quantize_features(x, float(t.scale[0]), int(t.zero_point[0]))

    def producer(self, tensor_index):
        return next((op for op in self.ops if tensor_index in op.outputs), None)


def _options(op_t):
    opts = op_t.builtinOptions
    if opts is None:
        return {}
    return {k: v for k, v in vars(opts).items() if not k.startswith("_")}


def _tensor(i, t, buffers):
    q = t.quantization
    scale = zp = None
    if q is not None and q.scale is not None and len(q.scale):
        scale = np.asarray(q.scale, dtype=np.float32)
        zp = np.asarray(q.zeroPoint, dtype=np.int64)
    dtype = _TYPE_NAMES[t.type]
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    raw = buffers[t.buffer].data if t.buffer < len(buffers) else None
    data = None
    if raw is not None and len(raw):
        data = np.frombuffer(bytes(np.asarray(raw, dtype=np.uint8)), dtype=dtype).reshape(shape)
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    return Tensor(i, name, shape, dtype, scale, zp, int(q.quantizedDimension) if q else 0, data)


def read_model(src):
    """The flatbuffer object tree (schema.ModelT) of a .tflite file (or its bytes), with clear errors."""
    if isinstance(src, (bytes, bytearray)):
        where, buf = "<.tflite bytes>", bytes(src)
    else:
        where = Path(src)
        if not where.is_file():
            raise ModelError(f"{where}: no such model file (expected an int8 .tflite flatbuffer)")
        buf = where.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError(f"{where}: not a TFLite flatbuffer (missing the 'TFL3' identifier)")
    return schema.ModelT.InitFromPackedBuf(buf, 0)


def load_graph(path):
    """Parse a .tflite file into a Graph (single subgraph models only)."""
    model = read_model(path)
    if len(model.subgraphs) != 1:
        raise ModelError(f"{path}: {len(model.subgraphs)} subgraphs; only single-subgraph models are supported")
    g = model.subgraphs[0]
    tensors = [_tensor(i, t, model.buffers) for i, t in enumerate(g.tensors)]
    ops = []
    for i, op_t in enumerate(g.operators):
        code = model.operatorCodes[op_t.opcodeIndex]
        kind = _OP_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), f"CUSTOM({code.customCode})")
        ops.append(Op(i, kind, [int(x) for x in op_t.inputs], [int(x) for x in op_t.outputs], _options(op_t)))
    return Graph(Path(path), tensors, ops, [int(x) for x in g.inputs], [int(x) for x in g.outputs])


def edit_model(src, fn):
    """The .tflite at `src` (a path or its bytes) with fn(schema.ModelT) applied, re-packed, as bytes."""
    model = read_model(src)
    fn(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def rename_tensors(src, dst, names):
    """Write a copy of the model at `src` to `dst` with tensors renamed ({index: new name})."""
    def rename(model):
        for i, name in names.items():
            model.subgraphs[0].tensors[i].name = name.encode()
    Path(dst).write_bytes(edit_model(src, rename))


def set_parameters(src, values):
    """The model at `src` (a path or its bytes) with new constant data for some ops' weights and biases, as bytes.

    values: {op index: {"weights": int8 array, "bias": int32 array}} (either key may be left out), each array
    of the tensor's shape. Quantization is kept: the arrays are in the tensors' own scales (what training
    with fixed scales, e.g. QAS on the device, produces). A tensor whose buffer another tensor shares gets a
    buffer of its own; an op without a bias (an omitted input) gets a new int32 bias tensor in TFLite's int8
    convention (scale = input scale x weight scale per output channel, zero point 0)."""
    def edit(model):
        g = model.subgraphs[0]
        users = {}
        for t in (t for sg in model.subgraphs for t in sg.tensors):
            users[t.buffer] = users.get(t.buffer, 0) + 1
        for i, new in values.items():
            op = g.operators[i]
            inputs = [int(x) for x in op.inputs]
            for what, array in new.items():
                if what not in ("weights", "bias"):
                    raise ValueError(f"op {i}: unknown parameter '{what}' (weights or bias)")
                slot = 1 if what == "weights" else 2
                if slot == 2 and (len(inputs) < 3 or inputs[2] < 0):
                    inputs = (inputs + [-1])[:3]
                    inputs[2] = _new_bias(model, g, op, inputs)
                    op.inputs = np.asarray(inputs, np.int32)
                t = g.tensors[inputs[slot]]
                want = (tuple(int(d) for d in t.shape), _TYPE_NAMES[t.type])
                got = (tuple(np.shape(array)), str(np.asarray(array).dtype))
                if got != want:
                    raise ValueError(f"op {i} {what} '{t.name.decode()}': given {got[1]} {list(got[0])}, "
                                     f"the model holds {want[1]} {list(want[0])}")
                if users.get(t.buffer, 0) > 1 or t.buffer == 0:
                    users[t.buffer] -= 1
                    model.buffers.append(schema.BufferT())
                    t.buffer = len(model.buffers) - 1
                data = np.ascontiguousarray(array, dtype=np.dtype(want[1]).newbyteorder("<"))
                model.buffers[t.buffer].data = np.frombuffer(data.tobytes(), np.uint8)
    return edit_model(src, edit)


def _new_bias(model, g, op, inputs):
    """Index of a new int32 bias tensor (with a buffer of its own) for an op with inputs (x, w, -1)."""
    x, w = g.tensors[inputs[0]], g.tensors[inputs[1]]
    code = model.operatorCodes[op.opcodeIndex]
    kind = _OP_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode))
    if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        raise ValueError(f"a {kind} op has no bias to set")
    channels = int(w.shape[3] if kind == "DEPTHWISE_CONV_2D" else w.shape[0])   # output channels
    q = schema.QuantizationParametersT()
    w_scale = np.broadcast_to(np.asarray(w.quantization.scale, np.float32), (channels,))
    q.scale = (np.float32(x.quantization.scale[0]) * w_scale).astype(np.float32)
    q.zeroPoint = np.zeros(channels, np.int64)
    q.quantizedDimension = 0
    t = schema.TensorT()
    t.shape = np.asarray([channels], np.int32)
    t.type = schema.TensorType.INT32
    t.name = (w.name.decode() + "/bias").encode()
    t.quantization = q
    model.buffers.append(schema.BufferT())
    t.buffer = len(model.buffers) - 1
    g.tensors.append(t)
    return len(g.tensors) - 1
