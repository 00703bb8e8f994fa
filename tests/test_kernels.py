"""Int8 kernels: the C++ (firmware/runtime/kernels), the PyTorch twin (model_prep/int8_ops.py) and
the tflite-micro interpreter agree bit for bit.

    .venv/bin/pytest tests/test_kernels.py -q

Each case converts a one-op Keras model to a full-integer int8 .tflite (tests/tflite_models.py;
some then edited with model_prep.tflite_graph.edit_model, e.g. to give MEAN identical in/out
quantization, or cut down to the QUANTIZE / DEQUANTIZE at a float model's edge), reads it with
model_prep.tflite_graph.load_graph and lowers it with model_prep.lower.lower, exactly as bake and
the simulator do. The one LoweredOp then runs random inputs (one batch per model input: ADD has
two) through the PyTorch twin (model_prep.simulate.run_op) and the C++ kernel (built with g++
into a shared library, called via ctypes with the LoweredOp's own weights, bias, multipliers,
parameter struct and dims), and both must equal TFLM (run in a subprocess: a failed check in
TFLM aborts the process).
"""
import ctypes
import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from model_prep import int8_ops as ops
from model_prep import tflm
from model_prep.lower import lower
from model_prep.simulate import run_op
from model_prep.tflite_graph import edit_model, load_graph

from tflite_models import convert, tf_fixture  # noqa: F401 (registers the fixture `tf`)

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "firmware" / "runtime" / "kernels"
SEEDS = range(4)


# -- the C++ kernels through ctypes ---------------------------------------------------------


class Dims(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in "nhwc"]


class ConvParams(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in (
        "input_offset", "output_offset", "stride_h", "stride_w", "dilation_h", "dilation_w",
        "pad_h", "pad_w", "depth_multiplier", "act_min", "act_max")]


class FcParams(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in ("input_offset", "output_offset", "act_min", "act_max")]


class MeanParams(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in (
        "input_zero_point", "output_zero_point", "multiplier", "shift")]


class PadParams(ctypes.Structure):
    _fields_ = [("before", ctypes.c_int32 * 4), ("after", ctypes.c_int32 * 4),
                ("pad_value", ctypes.c_int8)]


class AddParams(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in (
        "input1_offset", "input2_offset", "output_offset", "left_shift", "input1_multiplier",
        "input1_shift", "input2_multiplier", "input2_shift", "output_multiplier", "output_shift",
        "act_min", "act_max")]


class PoolParams(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in (
        "stride_h", "stride_w", "filter_h", "filter_w", "pad_h", "pad_w", "act_min", "act_max")]


class SoftmaxParams(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in ("input_multiplier", "input_left_shift", "diff_min")]


class QuantizeParams(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("zero_point", ctypes.c_int32)]


class RequantizeParams(ctypes.Structure):
    _fields_ = [(k, ctypes.c_int32) for k in (
        "input_zero_point", "output_zero_point", "multiplier", "shift")]


class DequantizeParams(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("zero_point", ctypes.c_int32)]


STRUCTS = {ops.ConvParams: ConvParams, ops.FcParams: FcParams, ops.MeanParams: MeanParams,
           ops.PadParams: PadParams, ops.AddParams: AddParams, ops.PoolParams: PoolParams,
           ops.SoftmaxParams: SoftmaxParams, ops.QuantizeParams: QuantizeParams,
           ops.RequantizeParams: RequantizeParams, ops.DequantizeParams: DequantizeParams}


def _field(t, v):
    if issubclass(t, ctypes.Array):
        return t(*v)
    return float(v) if t is ctypes.c_float else int(v)


def struct(params):
    """The kernels.h struct (ctypes) of an int8_ops parameter dataclass; field names must match."""
    ctype = STRUCTS[type(params)]
    names = [f.name for f in dataclasses.fields(params)]
    assert names == [n for n, _ in ctype._fields_], (type(params).__name__, names)
    values = [getattr(params, n) for n in names]
    return ctypes.byref(ctype(*(_field(t, v) for (_, t), v in zip(ctype._fields_, values))))


def dims(d):
    return ctypes.byref(Dims(*d))


def ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p) if a is not None else None


class Cpp:
    """The C++ kernels (tests/cpp/kernels_shim.cc)."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(str(path))

    def multiply_by_quantized_multiplier(self, x, multiplier, shift):
        x, m, s = (np.ascontiguousarray(np.broadcast_to(a, np.shape(x)), np.int32).ravel()
                   for a in (x, multiplier, shift))
        out = np.empty_like(x)
        self.lib.shim_multiply_by_quantized_multiplier(ptr(x), ptr(m), ptr(s), ptr(out), len(x))
        return out

    def run(self, op, *inputs):
        """A LoweredOp on its input tensor(s), every argument taken from op as firmware/runtime/interpreter.cc does."""
        in_type = np.float32 if op.kind == "quantize" else np.int8
        xs = [np.ascontiguousarray(np.asarray(x).reshape(op.in_dims), in_type) for x in inputs]
        x = xs[0]
        out = np.empty(op.out_dims, np.float32 if op.kind == "dequantize" else np.int8)
        w = None if op.weights is None else np.ascontiguousarray(op.weights, np.int8)
        b = None if op.bias is None else np.ascontiguousarray(op.bias, np.int32)
        m = s = None
        if op.quant is not None:
            m, s = (np.ascontiguousarray(a, np.int32) for a in op.quant)
        size = x.size
        if op.kind in ("conv2d", "depthwise_conv2d"):
            getattr(self.lib, f"shim_{op.kind}_s8")(
                struct(op.params), ptr(m), ptr(s), dims(op.in_dims), ptr(x),
                dims(op.filter_dims), ptr(w), ptr(b), dims(op.out_dims), ptr(out))
        elif op.kind == "fully_connected":
            n, h, wd, c = op.in_dims
            self.lib.shim_fully_connected_s8(struct(op.params), ptr(m), ptr(s), n, h * wd * c,
                                             ptr(x), int(np.prod(op.out_dims[1:])), ptr(w), ptr(b),
                                             ptr(out))
        elif op.kind == "mean_hw":
            self.lib.shim_mean_hw_s8(struct(op.params), dims(op.in_dims), ptr(x), ptr(out))
        elif op.kind in ("pad", "avg_pool2d", "max_pool2d"):
            getattr(self.lib, f"shim_{op.kind}_s8")(struct(op.params), dims(op.in_dims), ptr(x),
                                                     dims(op.out_dims), ptr(out))
        elif op.kind == "add":
            self.lib.shim_add_s8(struct(op.params), size, ptr(x), ptr(xs[1]), ptr(out))
        elif op.kind == "softmax":
            n, h, wd, c = op.in_dims
            self.lib.shim_softmax_s8(struct(op.params), n * h * wd, c, ptr(x), ptr(out))
        elif op.kind in ("quantize", "requantize", "dequantize"):
            fn = {"quantize": "quantize_f32_s8", "requantize": "requantize_s8", "dequantize": "dequantize_s8_f32"}
            getattr(self.lib, f"shim_{fn[op.kind]}")(struct(op.params), size, ptr(x), ptr(out))
        else:
            raise NotImplementedError(op.kind)
        return out


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def cpp(tmp_path_factory):
    so = tmp_path_factory.mktemp("kernels") / "libkernels.so"
    sources = sorted(KERNELS.glob("*.cc")) + [ROOT / "tests" / "cpp" / "kernels_shim.cc"]
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-O2", "-ffp-contract=off",
                    "-shared", "-fPIC", f"-I{KERNELS}", *map(str, sources), "-o", str(so)],
                   check=True)
    return Cpp(so)


def run_tflm(model_bytes, inputs, tmp_path):
    """TFLM outputs for each input (model_prep.tflm runs the interpreter in a subprocess)."""
    model = tmp_path / "m.tflite"
    model.write_bytes(model_bytes)
    return list(tflm.run_tflm(model, np.stack(inputs)))


def random_input(shape, zero_point, seed):
    """Seed 0: uniform over int8; later seeds: ever wider normals around the zero point."""
    rng = np.random.default_rng(seed)
    if seed == 0:
        return rng.integers(-128, 128, shape, dtype=np.int8)
    x = rng.normal(zero_point, 6.0 * 2.5**seed, shape).round()
    return np.clip(x, -128, 127).astype(np.int8)


def random_float_input(shape, scale, seed):
    """Seed 0: near-ties (k + 1/2) * scale, one float32 step either side too; later: wider normals."""
    rng = np.random.default_rng(seed)
    if seed == 0:
        x = ((rng.integers(-140, 140, shape) + 0.5) * np.float64(scale)).astype(np.float32)
        step = rng.integers(-1, 2, shape)
        return np.where(step > 0, np.nextafter(x, np.float32(np.inf)),
                        np.where(step < 0, np.nextafter(x, np.float32(-np.inf)), x)).astype(np.float32)
    return rng.normal(0.0, 40 * scale * 2.0**seed, shape).astype(np.float32)


def case_inputs(graph, op, seed):
    """One random input per model input (float32 ones probe the QUANTIZE's rounding)."""
    xs = []
    for k, i in enumerate(graph.inputs):
        t = graph.tensors[i]
        if t.dtype == "float32":
            xs.append(random_float_input(t.shape, op.params.scale, seed))
        else:
            xs.append(random_input(t.shape, int(t.zero_point[0]), seed + 7 * k))
    return xs


# -- cases ----------------------------------------------------------------------------------


def _act(code):
    def fn(m):
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = code
    return fn


def _output_quant(scale, zero_point, act):
    """Give the output a scale where the activation bound f / scale is an exact tie (x.5)."""
    def fn(m):
        g = m.subgraphs[0]
        q = g.tensors[g.outputs[0]].quantization
        q.scale, q.zeroPoint = [scale], [zero_point]
        g.operators[0].builtinOptions.fusedActivationFunction = act
    return fn


def _same_quant(m):
    g = m.subgraphs[0]
    g.tensors[g.outputs[0]].quantization = g.tensors[g.inputs[0]].quantization


def _bias(tf):
    return dict(bias_initializer=tf.keras.initializers.RandomNormal(stddev=2.0))


def _first_op(m):
    """Keep only the first op (a float model's QUANTIZE); its output becomes the model's."""
    g = m.subgraphs[0]
    g.operators = g.operators[:1]
    g.outputs = [g.operators[0].outputs[0]]


def _last_op(m):
    """Keep only the last op (a float model's DEQUANTIZE); its input becomes the model's."""
    g = m.subgraphs[0]
    g.operators = g.operators[-1:]
    g.inputs = [g.operators[0].inputs[0]]


def _int8_input(scale, zero_point):
    """Make the float model input int8 (scale, zero point): its QUANTIZE becomes a requantize."""
    def fn(m):
        _first_op(m)
        g = m.subgraphs[0]
        t = g.tensors[g.inputs[0]]
        t.type = schema.TensorType.INT8
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zero_point]
    return fn


def _softmax(beta=None, input_scale=None):
    def fn(m):
        g = m.subgraphs[0]
        if beta is not None:
            g.operators[0].builtinOptions.beta = beta
        if input_scale is not None:
            g.tensors[g.inputs[0]].quantization.scale = [input_scale]
    return fn


def _add_scales(s1, s2, s_out):
    def fn(m):
        g = m.subgraphs[0]
        for i, scale in zip((*g.operators[0].inputs, g.outputs[0]), (s1, s2, s_out)):
            g.tensors[i].quantization.scale = [scale]
    return fn


# Case names start with the op family: the converter must have produced that op.
FAMILY = {"conv": "CONV_2D", "dw": "DEPTHWISE_CONV_2D", "fc": "FULLY_CONNECTED", "mean": "MEAN",
          "pad": "PAD", "padv2": "PADV2", "add": "ADD", "avgpool": "AVERAGE_POOL_2D", "maxpool": "MAX_POOL_2D",
          "softmax": "SOFTMAX", "quantize": "QUANTIZE", "requantize": "QUANTIZE", "dequantize": "DEQUANTIZE"}
CASES = {
    "conv_3x3_s1_same_relu": lambda tf: convert(
        tf, tf.keras.layers.Conv2D(6, 3, padding="same", activation="relu", **_bias(tf)), (9, 7, 3)),
    "conv_3x3_s1_same_relu6_batch2": lambda tf: convert(
        tf, tf.keras.layers.Conv2D(5, 3, padding="same", activation="relu6", **_bias(tf)),
        (8, 6, 4), batch=2),
    "conv_3x3_s1_same_none": lambda tf: convert(
        tf, tf.keras.layers.Conv2D(4, 3, padding="same", **_bias(tf)), (6, 6, 2)),
    "conv_3x3_s2_valid_relu": lambda tf: convert(
        tf, tf.keras.layers.Conv2D(6, 3, strides=2, activation="relu", **_bias(tf)), (11, 9, 3)),
    "conv_3x3_s2_valid_none": lambda tf: convert(
        tf, tf.keras.layers.Conv2D(6, 3, strides=2, **_bias(tf)), (10, 8, 3)),
    "conv_3x3_relu_n1_to_1": lambda tf: edit_model(convert(
        tf, tf.keras.layers.Conv2D(4, 3, padding="same", **_bias(tf)), (6, 5, 3)),
        _act(ops.ACT_RELU_N1_TO_1)),
    "conv_3x3_relu6_bound_tie": lambda tf: edit_model(convert(  # 6 / 12 = 0.5 rounds to 1
        tf, tf.keras.layers.Conv2D(4, 3, padding="same", **_bias(tf)), (6, 5, 3)),
        _output_quant(12.0, 0, ops.ACT_RELU6)),
    "conv_3x3_relu_n1_to_1_bound_tie": lambda tf: edit_model(convert(  # 1 / 2 = 0.5 rounds to 1
        tf, tf.keras.layers.Conv2D(4, 3, padding="same", **_bias(tf)), (6, 5, 3)),
        _output_quant(2.0, 0, ops.ACT_RELU_N1_TO_1)),
    "conv_3x3_dilation2_same": lambda tf: convert(
        tf, tf.keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same", **_bias(tf)), (9, 8, 2)),
    "conv_1x1_relu": lambda tf: convert(
        tf, tf.keras.layers.Conv2D(16, 1, activation="relu", **_bias(tf)), (5, 4, 12)),
    "conv_1x1_per_tensor": lambda tf: convert(
        tf, tf.keras.layers.Conv2D(8, 1, **_bias(tf)), (5, 4, 6), per_channel=False),
    "conv_10x4_s2_same_relu": lambda tf: convert(
        tf, tf.keras.layers.Conv2D(8, (10, 4), strides=2, padding="same", activation="relu",
                                   **_bias(tf)), (49, 10, 1)),
    "dw_3x3_s1_same_relu": lambda tf: convert(
        tf, tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", **_bias(tf)),
        (7, 5, 8)),
    "dw_3x3_s2_valid_mult2": lambda tf: convert(
        tf, tf.keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, **_bias(tf)),
        (9, 8, 3)),
    "dw_10x4_s2_valid_1ch_mult8_relu": lambda tf: convert(
        tf, tf.keras.layers.DepthwiseConv2D((10, 4), strides=2, depth_multiplier=8,
                                            activation="relu", **_bias(tf)), (59, 12, 1)),
    "dw_3x3_same_1ch_mult8_per_tensor": lambda tf: convert(
        tf, tf.keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=8, **_bias(tf)),
        (8, 6, 1), per_channel=False),
    "fc_per_channel": lambda tf: convert(
        tf, tf.keras.layers.Dense(12, **_bias(tf)), (64,), batch=3),
    "fc_per_tensor_relu": lambda tf: convert(
        tf, tf.keras.layers.Dense(7, activation="relu", **_bias(tf)), (16,), batch=2,
        per_channel=False),
    "mean_hw_requant": lambda tf: convert(
        tf, tf.keras.layers.GlobalAveragePooling2D(), (25, 5, 64)),
    "mean_hw_keepdims_requant": lambda tf: convert(
        tf, tf.keras.layers.GlobalAveragePooling2D(keepdims=True), (7, 3, 8), batch=2),
    "mean_hw_same_quant": lambda tf: edit_model(convert(
        tf, tf.keras.layers.GlobalAveragePooling2D(), (25, 5, 64)), _same_quant),
    "mean_hw_same_quant_3x3": lambda tf: edit_model(convert(
        tf, tf.keras.layers.GlobalAveragePooling2D(), (3, 3, 256)), _same_quant),
    "pad_hw": lambda tf: convert(tf, tf.keras.layers.ZeroPadding2D(((5, 5), (1, 1))), (49, 10, 1)),
    "pad_asymmetric": lambda tf: convert(tf, tf.keras.layers.ZeroPadding2D(((1, 2), (0, 3))), (5, 4, 6)),
    "pad_hw_and_channels": lambda tf: convert(tf, tf.keras.layers.Lambda(
        lambda x: tf.pad(x, [[0, 0], [1, 0], [0, 2], [1, 1]])), (5, 4, 3)),
    "padv2_constant": lambda tf: convert(tf, tf.keras.layers.Lambda(
        lambda x: tf.pad(x, [[0, 0], [1, 0], [0, 2], [1, 1]], constant_values=0.7)), (5, 4, 3)),
    "add_4d": lambda tf: convert(tf, tf.keras.layers.Add(), [(6, 5, 4), (6, 5, 4)]),
    "add_relu_batch2": lambda tf: convert(
        tf, lambda xs: tf.keras.layers.ReLU()(tf.keras.layers.Add()(xs)), [(4, 3, 5), (4, 3, 5)], batch=2),
    "add_relu6": lambda tf: edit_model(convert(tf, tf.keras.layers.Add(), [(3, 7, 4), (3, 7, 4)]),
                                       _act(ops.ACT_RELU6)),
    "add_equal_scales": lambda tf: edit_model(convert(tf, tf.keras.layers.Add(), [(6, 5, 4), (6, 5, 4)]),
                                              _add_scales(0.05, 0.05, 0.1)),
    "add_far_scales": lambda tf: edit_model(convert(tf, tf.keras.layers.Add(), [(6, 5, 4), (6, 5, 4)]),
                                            _add_scales(0.5, 0.003, 0.02)),
    "avgpool_2x2_valid": lambda tf: convert(tf, tf.keras.layers.AveragePooling2D(2), (7, 6, 5)),
    "avgpool_3x3_s2_same_relu": lambda tf: edit_model(convert(
        tf, tf.keras.layers.AveragePooling2D(3, strides=2, padding="same"), (8, 7, 4)), _act(ops.ACT_RELU)),
    "avgpool_4x4_s1_same_batch2": lambda tf: convert(
        tf, tf.keras.layers.AveragePooling2D(4, strides=1, padding="same"), (5, 6, 3), batch=2),
    "maxpool_2x2_valid_relu": lambda tf: convert(
        tf, lambda x: tf.keras.layers.ReLU()(tf.keras.layers.MaxPooling2D(2)(x)), (7, 6, 5)),
    "maxpool_3x3_s2_same_relu6": lambda tf: edit_model(convert(
        tf, tf.keras.layers.MaxPooling2D(3, strides=2, padding="same"), (8, 7, 4)), _act(ops.ACT_RELU6)),
    "softmax_2d_batch3": lambda tf: convert(tf, tf.keras.layers.Softmax(), (10,), batch=3),
    "softmax_4d": lambda tf: convert(tf, tf.keras.layers.Softmax(), (3, 4, 6)),
    "softmax_wide_beta": lambda tf: edit_model(convert(tf, tf.keras.layers.Softmax(), (300,)),
                                               _softmax(beta=0.37)),
    "softmax_coarse_input": lambda tf: edit_model(convert(tf, tf.keras.layers.Softmax(), (12,), batch=2),
                                                  _softmax(input_scale=0.3)),
    "softmax_fine_input": lambda tf: edit_model(convert(tf, tf.keras.layers.Softmax(), (12,), batch=2),
                                                _softmax(beta=2.0, input_scale=0.0007)),
    "quantize_f32": lambda tf: edit_model(convert(tf, tf.keras.layers.ReLU(), (6, 5, 4), io="float32"),
                                          _first_op),
    "requantize_s8": lambda tf: edit_model(convert(tf, tf.keras.layers.ReLU(), (6, 5, 4), io="float32"),
                                           _int8_input(0.07, 5)),
    "dequantize_f32": lambda tf: edit_model(convert(tf, tf.keras.layers.ReLU(), (6, 5, 4), io="float32"),
                                            _last_op),
}


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_matches_tflm(case, tf, cpp, tmp_path):
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(CASES[case](tf))
    graph = load_graph(path)
    assert [o.kind for o in graph.ops] == [FAMILY[case.split("_")[0]]]
    (op,) = lower(graph)
    inputs = [case_inputs(graph, op, seed) for seed in SEEDS]
    batches = [np.stack(xs) for xs in zip(*inputs)]   # one batch per model input, in the model's order
    for xs, want in zip(inputs, tflm.run_tflm(path, *batches)):
        by_tensor = dict(zip(graph.inputs, xs))
        xs = [by_tensor[i] for i in op.inputs]        # in the op's order (an ADD's may differ)
        got_torch = run_op(op, *xs).numpy().reshape(want.shape)
        got_cpp = cpp.run(op, *xs).reshape(want.shape)
        assert got_torch.dtype == got_cpp.dtype == want.dtype
        assert np.array_equal(got_torch, want), f"torch: {np.sum(got_torch != want)} of {want.size} differ"
        assert np.array_equal(got_cpp, want), f"c++: {np.sum(got_cpp != want)} of {want.size} differ"


def test_tflm_rounds_twice(tf, tmp_path):
    """TFLM's MultiplyByQuantizedMultiplier is the double-rounding one, not TFLITE_SINGLE_ROUNDING.

    A 1x1 FULLY_CONNECTED with weight 1 and effective scale 0.25 (m = 2^30, shift = -1) maps
    acc to round(round_half_up(acc / 2) / 2): acc = 1 -> 1, where single rounding gives 0.
    """
    def probe(m):
        g = m.subgraphs[0]
        for i, scale in zip((g.inputs[0], g.operators[0].inputs[1], g.outputs[0]), (1.0, 0.25, 1.0)):
            g.tensors[i].quantization.scale, g.tensors[i].quantization.zeroPoint = [scale], [0]
        m.buffers[g.tensors[g.operators[0].inputs[1]].buffer].data = np.array([1], np.uint8)
    model = edit_model(convert(tf, tf.keras.layers.Dense(1, use_bias=False), (1,), batch=256,
                         per_channel=False), probe)
    x = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)
    got = run_tflm(model, [x], tmp_path)[0].ravel().astype(np.int64)
    acc = x.ravel().astype(np.int64)
    assert got[129] == 1  # acc = 1
    assert np.array_equal(got, ops.multiply_by_quantized_multiplier(acc, 2**30, -1))
    single = (acc * 2**30 + 2**31) >> 32
    assert not np.array_equal(got, single)


@pytest.mark.parametrize("per_channel", [False, True])
def test_tflm_combines_scales_in_double(per_channel, tf, tmp_path):
    """FULLY_CONNECTED multipliers come from double(s_in) * double(s_w) / double(s_out).

    TFLite's per-tensor GetQuantizedConvolutionMultipler multiplies s_in * s_w in float32; with
    these scales that gives another multiplier, and acc = 65 * 99 = 6435 lands on 26, not 25.
    """
    s_in, s_w, s_out = np.float32(0.094544694), np.float32(0.008218247), np.float32(0.19610618)
    ours = ops.conv_channel_quant(s_in, s_w, s_out)
    f32 = ops.quantize_multiplier(float(np.float32(s_in * s_w)) / float(s_out))
    def probe(m):
        g = m.subgraphs[0]
        w = g.tensors[g.operators[0].inputs[1]]
        for i, scale in ((g.inputs[0], s_in), (g.outputs[0], s_out)):
            g.tensors[i].quantization.scale, g.tensors[i].quantization.zeroPoint = [float(scale)], [0]
        w.quantization.scale, w.quantization.zeroPoint = [float(s_w)], [0]
        m.buffers[w.buffer].data = np.array([99], np.uint8)
    model = edit_model(convert(tf, tf.keras.layers.Dense(1, use_bias=False), (1,), batch=2,
                         per_channel=per_channel), probe)
    got = run_tflm(model, [np.array([[65], [-65]], np.int8)], tmp_path)[0].ravel()
    acc = np.array([6435, -6435])
    assert got.tolist() == [25, -25]
    assert np.array_equal(got, ops.multiply_by_quantized_multiplier(acc, *ours))
    assert ops.multiply_by_quantized_multiplier(6435, *f32) == 26


def test_tflm_quantize_rounds_the_float32_quotient(tf, cpp, tmp_path):
    """QUANTIZE rounds x / scale computed in float32 (half away from zero), not the double quotient.

    Near-ties (k + 1/2) * scale, nudged by a float32 step, are where the two disagree.
    """
    path = tmp_path / "q.tflite"
    path.write_bytes(CASES["quantize_f32"](tf))
    graph = load_graph(path)
    (op,) = lower(graph)
    scale, zp = np.float32(op.params.scale), op.params.zero_point
    ties = ((np.arange(-120, 120) + 0.5) * np.float64(scale)).astype(np.float32)
    x = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    in_double = np.clip(np.sign(x / np.float64(scale)) * np.floor(np.abs(x / np.float64(scale)) + 0.5) + zp,
                        -128, 127)
    in_float = np.clip(np.sign(x / scale) * np.floor(np.abs(x / scale).astype(np.float64) + 0.5) + zp, -128, 127)
    x = x[in_double != in_float]
    assert len(x) >= 10
    n = int(np.prod(op.in_dims))
    x = np.resize(x, (len(x) + n - 1) // n * n).reshape(-1, *graph.tensors[graph.inputs[0]].shape)
    want = tflm.run_tflm(path, x)
    got = [run_op(op, v).numpy().reshape(w.shape) for v, w in zip(x, want)]
    assert np.array_equal(np.stack(got), want)
    assert np.array_equal(np.stack([cpp.run(op, v).reshape(w.shape) for v, w in zip(x, want)]), want)
    expected_double = np.clip(np.sign(x / np.float64(scale)) * np.floor(np.abs(x / np.float64(scale)) + 0.5) + zp,
                              -128, 127)
    assert not np.array_equal(expected_double.reshape(want.shape), want)


def test_kernels_build_for_cortex_m7(tmp_path):
    """The kernels and the interpreter compile warning-free for the STM32F746 and use no double precision.

    Every undefined symbol of an object is another odt:: function or an integer runtime helper
    (__aeabi_l*, 64-bit division): no double-precision instruction or helper, no libm.
    """
    sources = sorted(KERNELS.glob("*.cc")) + [KERNELS.parent / "interpreter.cc"]
    assert {"add_s8.cc", "avg_pool2d_s8.cc", "max_pool2d_s8.cc", "softmax_s8.cc", "quantize_f32_s8.cc",
            "requantize_s8.cc", "dequantize_s8_f32.cc"} <= {s.name for s in sources}
    for src in sources:
        obj = tmp_path / (src.stem + ".o")
        subprocess.run(["arm-none-eabi-g++", "-std=c++17", "-Wall", "-Wextra", "-Werror",
                        "-Wdouble-promotion", "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16",
                        "-mfloat-abi=hard", "-O2", "-ffp-contract=off", "-fno-exceptions",
                        "-fno-rtti", f"-I{KERNELS.parent}", "-c", str(src), "-o", str(obj)], check=True)
        dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], check=True,
                             capture_output=True, text=True).stdout
        assert ".f64" not in dis and "__aeabi_d" not in dis, src.name
        nm = subprocess.run(["arm-none-eabi-nm", "-C", "-u", str(obj)], check=True,
                            capture_output=True, text=True).stdout
        undefined = [line.split(None, 1)[1] for line in nm.splitlines() if line.strip()]  # "U symbol"
        foreign = [u for u in undefined if not u.startswith(("odt::", "__aeabi_l", "__aeabi_ul"))]
        assert not foreign, (src.name, foreign)


# -- arithmetic -----------------------------------------------------------------------------


def test_multiply_by_quantized_multiplier_cpp_equals_torch(cpp):
    rng = np.random.default_rng(0)
    n = 200_000
    special = np.array([0, 1, -1, 2, -2, 2**31 - 1, -(2**31), 2**30, -(2**30), 12345, -12345])
    x = np.concatenate([special.repeat(64), rng.integers(-(2**31), 2**31, n),
                        rng.integers(-(2**20), 2**20, n), rng.integers(-300, 300, n)])
    m = np.where(rng.random(len(x)) < 0.1, rng.choice([0, 2**30, 2**31 - 1], len(x)),
                 rng.integers(2**30, 2**31, len(x)))
    shift = rng.integers(-31, 31, len(x))
    shift[: len(special) * 64] = np.tile(np.array([-31, -30, -16, -1, 0, 1, 15, 30]), 8 * len(special))
    got = cpp.multiply_by_quantized_multiplier(x, m, shift)
    assert np.array_equal(got, ops.multiply_by_quantized_multiplier(x, m, shift))
    # The one saturating product, INT32_MIN * INT32_MIN, and its rounding neighbours.
    edge = np.array([[-(2**31), -(2**31), 0], [-(2**31), -(2**31), -31], [-(2**31), 2**31 - 1, 0],
                     [2**31 - 1, 2**31 - 1, 0], [-(2**31), 2**30, -31], [2**31 - 1, 2**30, -31]])
    want = ops.multiply_by_quantized_multiplier(edge[:, 0], edge[:, 1], edge[:, 2])
    assert want[0] == 2**31 - 1 and want[1] == 1
    assert np.array_equal(cpp.multiply_by_quantized_multiplier(edge[:, 0], edge[:, 1], edge[:, 2]),
                          want)


def test_multiply_by_quantized_multiplier_known_values():
    f = ops.multiply_by_quantized_multiplier
    # 0.25: ties round up in the high multiply, then away from zero in the shift.
    assert f(np.array([1, -1, 2, -2, 3, -3, 5, -5]), 2**30, -1).tolist() == [1, 0, 1, -1, 1, -1, 2, -1]
    assert f(100, 2**30, 1) == 100 and f(100, 2**30, 2) == 200 and f(7, 2**30, 0) == 4


def test_quantize_multiplier():
    q = ops.quantize_multiplier
    assert q(0.0) == (0, 0)
    assert q(0.5) == (2**30, 0) and q(1.0) == (2**30, 1) and q(0.25) == (2**30, -1)
    assert q(1.0 - 2.0**-40) == (2**30, 1)        # rounds up to 2^31: halved, shift + 1
    assert q(2.0**-32) == (2**30, -31) and q(2.0**-33) == (0, 0)  # shift < -31 flushes to 0
    m, s = q(0.0123)
    assert 2**30 <= m < 2**31 and abs(m * 2.0 ** (s - 31) - 0.0123) < 1e-9
    qc = ops.conv_channel_quant(np.float32(0.02), np.float32([0.001, 0.5]), np.float32(0.1))
    assert qc.multiplier.dtype == np.int32 and len(qc.shift) == 2
    assert (qc.multiplier[1], qc.shift[1]) == q(float(np.float32(0.02)) * 0.5 / float(np.float32(0.1)))


def test_activation_range_and_padding():
    assert ops.activation_range(ops.ACT_NONE, 0.1, 3) == (-128, 127)
    assert ops.activation_range(ops.ACT_RELU, 0.1, -128) == (-128, 127)
    assert ops.activation_range(ops.ACT_RELU, 0.1, 5) == (5, 127)
    assert ops.activation_range(ops.ACT_RELU6, 6 / 255, -128) == (-128, 127)
    assert ops.activation_range(ops.ACT_RELU6, 0.1, -100) == (-100, -40)
    assert ops.activation_range(ops.ACT_RELU_N1_TO_1, 0.01, 0) == (-100, 100)
    assert ops.activation_range(ops.ACT_RELU_N1_TO_1, 0.004, 0) == (-128, 127)
    assert ops.activation_range(ops.ACT_RELU6, 12.0, 0) == (0, 1)  # 0.5 rounds away from 0
    assert ops.activation_range(ops.ACT_RELU_N1_TO_1, 2.0, 3) == (2, 4)
    assert ops.same_padding(49, 10, 2, 1) == (4, 25) and ops.same_padding(10, 4, 2, 1) == (1, 5)
    assert ops.same_padding(7, 3, 1, 1) == (1, 7) and ops.same_padding(8, 3, 1, 2) == (2, 8)
    assert ops.valid_padding(59, 10, 2, 1) == (0, 25) and ops.valid_padding(9, 3, 2, 1) == (0, 4)
