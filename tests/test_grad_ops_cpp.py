"""The integer backward arithmetic: C++ (firmware/runtime/grad_ops.cc) == model_prep/grad_ops.py, bit for bit."""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest
import torch
from conftest import ROOT, runtime_library

from model_prep import grad_ops as G
from model_prep.grad_ops import exp_table
from model_prep.int8_params import ConvParams, FcParams, PadParams
from model_prep.lower import LoweredOp

FMT = {16: "int16", 8: "int8"}
NP = {16: np.int16, 8: np.int8}


def _p(a):
    return a.ctypes.data_as(ctypes.c_void_p)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    lib = runtime_library(tmp_path_factory.mktemp("grad_ops"), "grad_ops")
    i32, i64, u32, vp = ctypes.c_int32, ctypes.c_int64, ctypes.c_uint32, ctypes.c_void_p
    lib.shim_round_shift.restype, lib.shim_round_shift.argtypes = i64, [i64, i64]
    lib.shim_round_shift_n.argtypes = [i32, vp, vp, vp]
    lib.shim_bit_length_abs.restype, lib.shim_bit_length_abs.argtypes = i32, [i64]
    lib.shim_normalize.restype, lib.shim_normalize.argtypes = i32, [vp, i32, i32, i32, vp]
    lib.shim_scale.restype, lib.shim_scale.argtypes = i32, [vp, i32, i32, i32, vp, vp, i32, vp]
    lib.shim_mask.argtypes = [vp, vp, i32, i32, i32, i32]
    lib.shim_add.restype, lib.shim_add.argtypes = i32, [vp, i32, vp, i32, i32, i32, vp]
    lib.shim_batch_align.argtypes = [vp, i32, i32, vp, i32]
    lib.shim_softmax_ce.restype, lib.shim_softmax_ce.argtypes = i32, [vp, i32, i32, vp, i32, i32, vp]
    lib.shim_conv_grad_input.argtypes = [i32, vp, vp, vp, vp, vp, vp, i32, vp, i32, vp, vp, vp, vp, vp, vp]
    lib.shim_conv_grad_weight.argtypes = [i32, vp, vp, vp, vp, vp, vp, vp, i32, vp, i32, vp]
    lib.shim_fc_grad_input.argtypes = [i32, i32, i32, vp, vp, vp, i32, vp, vp, vp, vp, vp]
    lib.shim_fc_grad_weight.argtypes = [i32, i32, i32, vp, i32, vp, vp, i32, vp]
    lib.shim_bias_grad.argtypes = [vp, i32, i32, vp]
    lib.shim_hash32.restype, lib.shim_hash32.argtypes = u32, [u32]
    lib.shim_uniform32.argtypes = [i64, i64, u32, i32, vp]
    lib.shim_apply_update.argtypes = [i32, vp, vp, vp, vp, vp, i64, i64, vp, i32, vp]
    return lib


def _magnitudes(rng, n, top_bits=52):
    """Integers of every magnitude from 0 to 2^top_bits, both signs, with round-half ties."""
    bits = rng.integers(0, top_bits + 1, n)
    x = np.floor(rng.random(n) * np.exp2(bits)).astype(np.int64)
    x[rng.random(n) < 0.1] = 0
    return x * rng.choice([-1, 1], n)


def _ties(rng, n, max_shift=52):
    """x = k 2^s + 2^(s-1) (exactly half way) and neighbours, with their shifts s."""
    s = rng.integers(1, max_shift + 1, n)
    k = rng.integers(-1000, 1000, n)
    x = k * (np.int64(1) << s) + (np.int64(1) << (s - 1)) + rng.integers(-1, 2, n)
    keep = np.abs(x) < (1 << 52)
    return x[keep], s[keep]


# -- scalars -------------------------------------------------------------------------------------


def test_round_shift_equals_python(lib):
    rng = np.random.default_rng(0)
    x = _magnitudes(rng, 20000)
    s = rng.integers(0, 80, 20000)                       # beyond MAX_SHIFT too
    tx, ts = _ties(rng, 5000)
    x, s = np.concatenate([x, tx]), np.concatenate([s, ts])
    out = np.zeros_like(x)
    lib.shim_round_shift_n(len(x), _p(x), _p(s), _p(out))
    expected = G.round_shift(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(s)).numpy()
    assert np.array_equal(out, expected.astype(np.int64))
    assert lib.shim_round_shift(-3, 1) == -1 and lib.shim_round_shift(3, 1) == 2 and lib.shim_round_shift(-1, 1) == 0
    assert lib.shim_round_shift(-(1 << 52), 100) == 0 and lib.shim_round_shift(1 << 61, 62) == 1
    for v in [0, 1, -1, 2, 255, -256, (1 << 52) - 1, -(1 << 62)]:
        assert lib.shim_bit_length_abs(v) == abs(v).bit_length()


@pytest.mark.parametrize("bits", [16, 8])
def test_normalize_equals_python(lib, bits):
    rng = np.random.default_rng(bits)
    n, count = 3000, 9
    scale_bits = rng.integers(0, 53, n)[:, None]
    exact = np.floor(rng.random((n, count)) * np.exp2(scale_bits)).astype(np.int64) * rng.choice([-1, 1], (n, count))
    exact[:50] = 0                                                           # all-zero samples
    exact[50:100, 0] = (1 << (bits - 1)) - 1                                # fits exactly
    exact[100:150, 0] = -(1 << (bits - 1))                                  # one bit too many
    tie_s = rng.integers(1, 40, 200)                                        # halves at the shift
    exact[150:350] = 0
    exact[150:350, 0] = (1 << (tie_s + bits - 2)) + (1 << (tie_s - 1))
    exact[150:350, 1] = -(1 << (tie_s - 1))
    exact[350:400] = (1 << bits) * rng.integers(-2, 3, (50, count)) + (1 << (bits - 1))  # rounds up past the limit
    e = rng.integers(-200, 200, n)
    got = G.normalize(torch.from_numpy(exact.astype(np.float64)), torch.from_numpy(e), FMT[bits])
    for i in range(n):
        out = np.zeros(count, NP[bits])
        e_c = lib.shim_normalize(_p(exact[i]), count, int(e[i]), bits, _p(out))
        assert e_c == int(got.e[i]) and np.array_equal(out, got.v[i].numpy()), (i, exact[i], e[i])
    out = np.zeros(1, NP[bits])
    assert lib.shim_normalize(_p(np.zeros(1, np.int64)), 0, 7, bits, _p(out)) == 7     # empty tensor


def _quantize_multipliers(rng, c):
    m = rng.integers(1 << 30, 1 << 31, c).astype(np.int32)
    s = rng.integers(-31, 31, c).astype(np.int32)
    m[rng.random(c) < 0.2] = 0                                   # dead channels, any shift
    return m, s


def _grad(rng, shape, bits, n):
    limit = (1 << (bits - 1)) - 1
    span = np.exp2(rng.integers(0, bits, n)).reshape((n,) + (1,) * len(shape))
    v = np.clip(np.round((rng.random((n,) + shape) * 2 - 1) * span), -limit, limit).astype(np.int64)
    v[rng.random(v.shape) < 0.2] = 0
    return v


@pytest.mark.parametrize("bits", [16, 8])
def test_scale_mask_add_align_equal_python(lib, bits):
    rng = np.random.default_rng(10 + bits)
    fmt = FMT[bits]
    for case in range(300):
        c = int(rng.integers(1, 7))
        shape = (int(rng.integers(1, 4)), c)
        n = int(rng.integers(1, 4))
        m, s = _quantize_multipliers(rng, c)
        if case % 10 == 0:
            m[:] = 0
        v = _grad(rng, shape, bits, n)
        e = rng.integers(-300, 300, n)
        gs = G.scale(G.Grad(torch.from_numpy(v.astype(np.float64)), torch.from_numpy(e)), m, s, fmt)
        for i in range(n):
            vi, out = v[i].astype(NP[bits]), np.zeros(shape, NP[bits])
            e_c = lib.shim_scale(_p(vi), vi.size, c, int(e[i]), _p(m), _p(s), bits, _p(out))
            assert e_c == int(gs.e[i]) and np.array_equal(out, gs.v[i].numpy()), (case, i)
            lib.shim_scale(_p(vi), vi.size, c, int(e[i]), _p(m), _p(s), bits, _p(vi))      # in place
            assert np.array_equal(vi, out)

        y = rng.integers(-128, 128, (n,) + shape).astype(np.int8)
        lo, hi = sorted(rng.integers(-128, 128, 2))
        gm = G.mask(G.Grad(torch.from_numpy(v.astype(np.float64)), torch.from_numpy(e)), torch.from_numpy(y), lo, hi)
        vm = v.astype(NP[bits])
        lib.shim_mask(_p(vm), _p(y), vm.size, int(lo), int(hi), bits)
        assert np.array_equal(vm, gm.v.numpy())

        v2 = _grad(rng, shape, bits, n)
        e2 = e + rng.integers(-70, 71, n)                                      # past MAX_SHIFT too
        g1 = G.Grad(torch.from_numpy(v.astype(np.float64)), torch.from_numpy(e))
        g2 = G.Grad(torch.from_numpy(v2.astype(np.float64)), torch.from_numpy(e2))
        ga = G.add(g1, g2, fmt)
        for i in range(n):
            a, b, out = v[i].astype(NP[bits]), v2[i].astype(NP[bits]), np.zeros(shape, NP[bits])
            e_c = lib.shim_add(_p(a), int(e[i]), _p(b), int(e2[i]), a.size, bits, _p(out))
            assert e_c == int(ga.e[i]) and np.array_equal(out, ga.v[i].numpy()), (case, i)
            lib.shim_add(_p(a), int(e[i]), _p(b), int(e2[i]), a.size, bits, _p(b))         # in place
            assert np.array_equal(b, out)

        gb = G.batch_align(g2, fmt)
        vb, eb = v2.astype(NP[bits]), e2.astype(np.int32)
        lib.shim_batch_align(_p(vb), n, vb[0].size, _p(eb), bits)
        assert np.array_equal(vb, gb.v.numpy()) and np.array_equal(eb, gb.e.numpy())


@pytest.mark.parametrize("bits", [16, 8])
def test_softmax_ce_grad_equals_python(lib, bits):
    rng = np.random.default_rng(20 + bits)
    for scale in (0.01, 0.07, 0.5):
        table = exp_table(scale)
        n, k = 200, int(rng.integers(2, 13))
        logits = rng.integers(-128, 128, (n, k)).astype(np.int8)
        logits[:20] = logits[:20, :1]                                        # all equal
        labels = rng.integers(0, k, n)
        g = G.softmax_ce_grad(logits, labels, table, FMT[bits], scale)
        for i in range(n):
            out = np.zeros(k, NP[bits])
            e_c = lib.shim_softmax_ce(_p(logits[i]), k, int(labels[i]), _p(table), len(table), bits, _p(out))
            assert e_c == int(g.e[i]) and np.array_equal(out, g.v[i].numpy()), (scale, i)


def test_hash_and_uniform32_equal_python(lib):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 1 << 32, 5000)
    expected = G.hash32(torch.from_numpy(x)).numpy()
    assert [lib.shim_hash32(int(v)) for v in x] == expected.tolist()
    for seed, step, stream in [(0, 0, 0), (1234, 7, 4), ((1 << 40) + 3, 123456, 10), (2**32 - 1, 2**32 + 5, 2)]:
        out = np.zeros(1000, np.uint32)
        lib.shim_uniform32(seed, step, stream, 1000, _p(out))
        assert np.array_equal(out.astype(np.int64), G.uniform32(seed, step, stream, 1000).numpy())


def test_apply_update_equals_python_over_all_shift_regimes(lib):
    rng = np.random.default_rng(4)
    n = 40000
    grad = _magnitudes(rng, n, 46)
    reals = np.exp2(rng.uniform(-60, 40, n))
    mk = [G.update_multiplier(float(r)) for r in reals]
    m = np.array([a for a, _ in mk], np.int64)
    k = np.array([b for _, b in mk], np.int64)
    m[rng.random(n) < 0.05] = 0
    e = rng.integers(-60, 40, n)                     # r = 15 - k - e spans about -75 .. 130
    rand = rng.integers(0, 1 << 32, n)
    for lo, hi in [(-127, 127), (-(1 << 31), (1 << 31) - 1)]:
        q = rng.integers(lo, hi + 1, n)
        for stochastic in (0, 1):
            expected = G.apply_update(torch.from_numpy(q), torch.from_numpy(grad.astype(np.float64)),
                                      torch.from_numpy(e), torch.from_numpy(m), torch.from_numpy(k), lo, hi,
                                      torch.from_numpy(rand) if stochastic else None, "int16").numpy()
            out = np.zeros(n, np.int64)
            args = [a.astype(np.int32) for a in (e, m, k)]
            lib.shim_apply_update(n, _p(q), _p(grad), *map(_p, args), lo, hi, _p(rand.astype(np.uint32)),
                                  stochastic, _p(out))
            bad = np.nonzero(out != expected)[0]
            assert len(bad) == 0, [(int(q[i]), int(grad[i]), int(e[i]), int(m[i]), int(k[i]), int(out[i]),
                                    int(expected[i])) for i in bad[:5]]


# -- layer backward ------------------------------------------------------------------------------


def _geometry(rng, h, kh, stride, dilation):
    """(pad_before, out_size) of a consistent forward: the output size floors (pad_after < stride + eff)."""
    eff = (kh - 1) * dilation + 1
    while True:
        pad = int(rng.integers(0, eff))
        after = int(rng.integers(0, eff))
        total = pad + h + after
        if total >= eff:
            return pad, (total - eff) // stride + 1


def _conv_op(rng, kind):
    n = int(rng.integers(1, 3))
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    kh, kw = (int(rng.choice([1, 2, 3])), int(rng.choice([1, 3]))) if rng.random() < 0.8 else (1, 1)
    sh, sw = int(rng.choice([1, 2])), int(rng.choice([1, 2]))
    dh, dw = (int(rng.choice([1, 2])), int(rng.choice([1, 2]))) if rng.random() < 0.3 else (1, 1)
    ph, oh = _geometry(rng, h, kh, sh, dh)
    pw, ow = _geometry(rng, w, kw, sw, dw)
    c_in = int(rng.integers(1, 5))
    dm = int(rng.choice([1, 2])) if kind == "depthwise_conv2d" else 1
    if kind == "depthwise_conv2d":
        c_out = c_in * dm
        filt = (1, kh, kw, c_out)
    else:
        c_out = int(rng.integers(1, 5))
        filt = (c_out, kh, kw, c_in)
    params = ConvParams(input_offset=int(rng.integers(-127, 129)), output_offset=0, stride_h=sh, stride_w=sw,
                        dilation_h=dh, dilation_w=dw, pad_h=ph, pad_w=pw, depth_multiplier=dm,
                        act_min=-128, act_max=127)
    weights = rng.integers(-127, 128, filt).astype(np.int8)
    return LoweredOp(name="op", kind=kind, inputs=(0,), output=1, in_dims=(n, h, w, c_in),
                     out_dims=(n, oh, ow, c_out), filter_dims=filt, weights=weights, params=params)


def _params_array(p):
    return np.array([p.input_offset, p.output_offset, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w,
                     p.pad_h, p.pad_w, p.depth_multiplier, p.act_min, p.act_max], np.int32)


def _subset(rng, n):
    """A sorted non-empty subset of range(n), int32."""
    return np.sort(rng.choice(n, int(rng.integers(1, n + 1)), replace=False)).astype(np.int32)


def _input_grad(lib, op, g, weights, rng, slice_=None):
    """The C++ streamed dL/dx of op (whole tensor, exact) and its normalization from random exponents, checked
    against the Python with `weights` (the flash ones with the slice's values in place)."""
    n = op.in_dims[0]
    g64 = torch.from_numpy(g.astype(np.float64))
    e = rng.integers(-60, 20, n).astype(np.int32)
    gx, gx16, e_c = np.zeros(op.in_dims, np.int64), np.zeros(op.in_dims, np.int16), np.zeros(n, np.int32)
    values, channels, rows = slice_ if slice_ is not None else (None, np.zeros(1, np.int32), np.zeros(1, np.int32))
    sl = [_p(values) if values is not None else None, _p(channels), len(channels) if values is not None else 0]
    if op.kind == "fully_connected":
        i_f, o_f = op.in_dims[3], op.out_dims[3]
        lib.shim_fc_grad_input(n, i_f, o_f, _p(op.weights), *sl, _p(g), _p(gx), _p(e), _p(gx16), _p(e_c))
    else:
        pa = _params_array(op.params)
        dims = [np.array(d, np.int32) for d in (op.in_dims, op.filter_dims, op.out_dims)]
        lib.shim_conv_grad_input(int(op.kind == "depthwise_conv2d"), _p(pa), _p(dims[0]), _p(dims[1]), _p(op.weights),
                                 *sl, _p(rows), len(rows), _p(dims[2]), _p(g), _p(gx), _p(e), _p(gx16), _p(e_c))
    expected = G.input_grad_exact(op, g64, weights).reshape(op.in_dims)
    assert torch.equal(expected, torch.round(expected))
    assert np.array_equal(gx, expected.numpy().astype(np.int64))
    normalized = G.normalize(expected, torch.from_numpy(e.astype(np.int64)), "int16")
    assert np.array_equal(gx16, normalized.v.numpy()) and np.array_equal(e_c, normalized.e.numpy())


@pytest.mark.parametrize("kind", ["conv2d", "depthwise_conv2d"])
def test_conv_backward_equals_python(lib, kind):
    rng = np.random.default_rng(30 if kind == "conv2d" else 31)
    dw = int(kind == "depthwise_conv2d")
    for case in range(300):
        op = _conv_op(rng, kind)
        n = op.in_dims[0]
        g = _grad(rng, tuple(op.out_dims[1:]), 16, n).astype(np.int16)
        g[rng.random(n) < 0.1] = 0                                            # all-zero samples
        x = rng.integers(-128, 128, op.in_dims).astype(np.int8)
        pa = _params_array(op.params)
        dims = [np.array(d, np.int32) for d in (op.in_dims, op.filter_dims, op.out_dims)]
        g64 = torch.from_numpy(g.astype(np.float64))

        _input_grad(lib, op, g, op.weights, rng)

        w_channels = op.filter_dims[3]
        channels = _subset(rng, w_channels)
        kh = op.filter_dims[1]
        rows = None if rng.random() < 0.3 else _subset(rng, kh).tolist()
        rows_c = np.array(range(kh) if rows is None else rows, np.int32)
        expected = G.weight_grad_exact(op, torch.from_numpy(x), g64, channels.tolist(), rows).numpy()
        gw = np.zeros(expected.shape, np.int64)
        lib.shim_conv_grad_weight(dw, _p(pa), _p(dims[0]), _p(x), _p(dims[1]), _p(dims[2]), _p(g), _p(channels),
                                  len(channels), _p(rows_c), len(rows_c), _p(gw))
        assert np.array_equal(gw, expected.astype(np.int64)), (case, op, channels, rows)

        gb = np.zeros(op.out_dims[3], np.int64)
        lib.shim_bias_grad(_p(g), n * op.out_dims[1] * op.out_dims[2], op.out_dims[3], _p(gb))
        assert np.array_equal(gb, G.bias_grad_exact(g64).numpy().astype(np.int64))


def test_sliced_conv_input_grad_reads_the_slice(lib):
    """A WeightSlice's values replace the flash weights at its rows and channels: dL/dx is the Python's with
    those weights in place."""
    rng = np.random.default_rng(32)
    for case in range(300):
        op = _conv_op(rng, "conv2d")
        o, kh, kw, c_in = op.filter_dims
        channels, rows = _subset(rng, c_in), _subset(rng, kh)
        values = rng.integers(-127, 128, (o, len(rows), kw, len(channels))).astype(np.int8)
        trained = op.weights.copy()
        trained[np.ix_(range(o), rows, range(kw), channels)] = values
        g = _grad(rng, tuple(op.out_dims[1:]), 16, op.in_dims[0]).astype(np.int16)
        _input_grad(lib, op, g, trained, rng, (values, channels, rows))


def _fc_op(rng, n):
    i_f, o_f = int(rng.integers(1, 40)), int(rng.integers(1, 12))
    params = FcParams(input_offset=int(rng.integers(-127, 129)), output_offset=0, act_min=-128, act_max=127)
    weights = rng.integers(-127, 128, (o_f, i_f)).astype(np.int8)
    return LoweredOp(name="fc", kind="fully_connected", inputs=(0,), output=1, in_dims=(n, 1, 1, i_f),
                     out_dims=(n, 1, 1, o_f), weights=weights, params=params)


def test_fully_connected_backward_equals_python(lib):
    rng = np.random.default_rng(40)
    for case in range(200):
        n = int(rng.integers(1, 4))
        op = _fc_op(rng, n)
        i_f, o_f, params = op.in_dims[3], op.out_dims[3], op.params
        g = _grad(rng, (o_f,), 16, n).astype(np.int16)
        x = rng.integers(-128, 128, (n, i_f)).astype(np.int8)
        g64 = torch.from_numpy(g.astype(np.float64))

        _input_grad(lib, op, g, op.weights, rng)
        channels = _subset(rng, i_f)
        values = rng.integers(-127, 128, (o_f, len(channels))).astype(np.int8)
        trained = op.weights.copy()
        trained[:, channels] = values
        _input_grad(lib, op, g, trained, rng, (values, channels, np.zeros(1, np.int32)))

        channels = _subset(rng, i_f)
        expected = G.weight_grad_exact(op, torch.from_numpy(x), g64, channels.tolist()).numpy()
        gw = np.zeros((o_f, len(channels)), np.int64)
        lib.shim_fc_grad_weight(params.input_offset, n, i_f, _p(x), o_f, _p(g), _p(channels), len(channels), _p(gw))
        assert np.array_equal(gw, expected.astype(np.int64)), case

        gb = np.zeros(o_f, np.int64)
        lib.shim_bias_grad(_p(g), n, o_f, _p(gb))
        assert np.array_equal(gb, G.bias_grad_exact(g64).numpy().astype(np.int64))


def test_builds_for_cortex_m7(tmp_path):
    cxx = shutil.which("arm-none-eabi-g++")
    if cxx is None:
        pytest.skip("arm-none-eabi-g++ not installed")
    subprocess.run([cxx, "-std=c++17", "-mcpu=cortex-m7", "-mthumb", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-fno-exceptions", "-fno-rtti", f"-I{ROOT}/firmware/runtime", "-c",
                    ROOT / "firmware/runtime/grad_ops.cc", "-o", tmp_path / "grad_ops.o"], check=True)


def test_mean_and_pad_backward_equal_python(lib):
    lib.shim_mean_grad.restype = ctypes.c_int32
    lib.shim_mean_grad.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                                   ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p]
    lib.shim_pad_grad.argtypes = [ctypes.c_void_p] * 6
    rng = np.random.default_rng(7)
    for _ in range(200):
        h, w, c = (int(v) for v in rng.integers(1, 6, 3))
        op = LoweredOp("mean", "mean_hw", (0,), 1, (1, h, w, c), (1, 1, 1, c))
        g = _grad(rng, (c,), 16, 1)
        e = int(rng.integers(-40, 0))
        m, s = _quantize_multipliers(rng, 1)
        ref = G.mean_hw_input_grad(G.Grad(torch.from_numpy(g.astype(np.float64)), torch.tensor([e])), op,
                                   int(m[0]), int(s[0]), "int16")
        g16 = np.ascontiguousarray(g[0], np.int16)
        out = np.zeros(h * w * c, np.int16)
        e_c = lib.shim_mean_grad(_p(g16), c, e, int(m[0]), int(s[0]), h, w, _p(out))
        assert e_c == int(ref.e[0]) and np.array_equal(out, ref.v[0].numpy().astype(np.int16).ravel())
    for _ in range(200):
        in_d = (int(rng.integers(1, 3)),) + tuple(int(v) for v in rng.integers(1, 5, 3))
        before = (0,) + tuple(int(v) for v in rng.integers(0, 3, 3))
        after = (0,) + tuple(int(v) for v in rng.integers(0, 3, 3))
        out_d = tuple(i + b + a for i, b, a in zip(in_d, before, after))
        op = LoweredOp("pad", "pad", (0,), 1, (1,) + in_d[1:], (1,) + out_d[1:], params=PadParams(before, after, 0))
        g = _grad(rng, out_d[1:], 16, in_d[0])
        ref = G.pad_input_grad(G.Grad(torch.from_numpy(g.astype(np.float64)), torch.zeros(in_d[0], dtype=torch.int64)),
                               op)
        g16 = np.ascontiguousarray(g, np.int16)
        out = np.zeros(int(np.prod(in_d)), np.int16)
        arrays = [np.array(v, np.int32) for v in (before, after, in_d, out_d)]
        lib.shim_pad_grad(*(_p(a) for a in arrays), _p(g16), _p(out))
        assert np.array_equal(out, ref.v.numpy().astype(np.int16).ravel())
