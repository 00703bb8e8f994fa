"""Backward kernels of the integer simulator, as small pure functions the C++ runtime copies one for one.

A gradient is the derivative of the loss with respect to an int8 tensor's *integer* values q
(not its real values): G = dL/dq. It is a `Grad(v, e)`: v [N, ...] holds integers and the value
is v * 2^e[n], one power-of-two exponent per sample and tensor (block floating point). Formats:
  "int16"   |v| <= 2^15 - 1   (products with int8 accumulate in 64 bits: SMLALD on the M7)
  "int8"    |v| <= 127        (products accumulate in 32 bits)
  "float32" v holds float32 values and e is 0 (the M7's single-precision FPU)
Every kernel first computes its result exactly (int64, or float64 sums of integers below 2^53,
which are exact in any order) and then rounds once, in `normalize`, to the format: the exponent
grows until the largest magnitude fits, and values round half up. So C++ reproduces every
gradient bit for bit (float32 is the exception: its sums depend on order).

The chain rule in the integer domain, for y = requant(acc), acc = sum W_q (x - zp_x) + b_q:
  dL/dacc[c] = dL/dy[c] * M[c] * [act_min < y < act_max]   M = s_x s_W[c] / s_y: the forward's own multiplier
  dL/dx      = W_q^T dL/dacc                               transposed convolution (x's zero point drops out)
  dL/dW_q    = dL/dacc * (x - zp_x)                        correlated over the batch and the output positions
  dL/db_q    = sum of dL/dacc
Quantization-Aware Scaling (Lin et al. 2022) makes SGD on the integers equal SGD on the real
weights W = s_W W_q: dW_q = -lr s_W^-2 dL/dW_q, db_q = -lr (s_W s_x)^-2 dL/db_q (`update_multipliers`).
Updates round stochastically for weights (int8: small steps must still move them on average)
and to nearest for int32 biases, with random numbers from a counter-based hash (`uniform32`),
so any element's random number is known without generating the ones before it.
"""
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


FORMATS = {"int8": 8, "int16": 16, "float32": None}
UPDATE_BITS = 15          # update multipliers: m in [2^14, 2^15), real = m * 2^(k - 15)
MAX_SHIFT = 62            # the largest right shift applied; larger ones act as this one


class Grad(NamedTuple):
    v: torch.Tensor       # float64 [N, ...]: integers (int formats) or float32 values
    e: torch.Tensor       # int64 [N]: value = v * 2^e


def bits(fmt):
    if fmt not in FORMATS:
        raise ValueError(f"gradient format '{fmt}'; expected one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def _per_sample(t, like):
    """A [N] tensor shaped to broadcast against `like` [N, ...]."""
    return t.reshape((-1,) + (1,) * (like.dim() - 1))


def round_shift(x, s):
    """floor((x + 2^(s-1)) / 2^s): x exact integers (float64), s >= 0 (broadcasts); s = 0 leaves x.

    s is capped at MAX_SHIFT: every |x| < 2^53 shifts to 0 there, as it would for any larger s (an
    all-zero gradient's exponent keeps falling layer after layer, so shifts can be arbitrarily large)."""
    s = torch.as_tensor(s, dtype=torch.float64).clamp(max=MAX_SHIFT)
    half = torch.where(s > 0, torch.exp2(s - 1), torch.zeros_like(s))
    return torch.floor((x + half) / torch.exp2(s))


def bit_length(x):
    """Bits of the non-negative integers x (float64): 0 for 0."""
    return torch.where(x > 0, torch.frexp(x).exponent.to(torch.int64), torch.zeros_like(x, dtype=torch.int64))


def normalize(exact, e, fmt):
    """Round an exact gradient (integers, float64, value exact * 2^e) into the format."""
    b = bits(fmt)
    if b is None:
        return Grad(exact.to(torch.float32).to(torch.float64), e)
    top = exact.abs().reshape(exact.shape[0], -1).amax(dim=1) if exact.numel() else torch.zeros(exact.shape[0])
    s = (bit_length(top) - (b - 1)).clamp(min=0)
    limit = float((1 << (b - 1)) - 1)
    v = round_shift(exact, _per_sample(s, exact).to(torch.float64)).clamp(-limit, limit)
    return Grad(v, e + s)


def scale(g, multiplier, shift, fmt):
    """g times M = multiplier * 2^(shift - 31) (QuantizeMultiplier pairs), per channel of the last axis.

    Exact products v * m are brought to the largest channel exponent (round half up), then normalized."""
    m = torch.as_tensor(np.asarray(multiplier, np.int64)).to(torch.float64)
    shift = torch.as_tensor(np.asarray(shift, np.int64))
    if bits(fmt) is None:
        return Grad((g.v * m * torch.exp2((shift - 31).to(torch.float64))).to(torch.float32).to(torch.float64), g.e)
    live = m != 0
    top = int(shift[live].max()) if bool(live.any()) else 0
    exact = round_shift(g.v * m, (top - shift).clamp(min=0).to(torch.float64))   # |v m| < 2^46: exact
    return normalize(exact, g.e + top - 31, fmt)


def mask(g, y, act_min, act_max):
    """Zero the gradient where the fused activation clamped the int8 output y."""
    y = y.reshape(g.v.shape).to(torch.int64)
    return Grad(g.v * ((y > act_min) & (y < act_max)), g.e)


def align(v, e, target):
    """v * 2^e re-expressed with exponent `target` >= e (per sample), rounding half up."""
    return round_shift(v, _per_sample((target - e).clamp(min=0), v).to(torch.float64))


def add(g1, g2, fmt):
    """The sum of two gradients of one tensor (a tensor read by two ops, e.g. a residual's input)."""
    if bits(fmt) is None:
        return normalize(g1.v + g2.v, g1.e, fmt)
    top = torch.maximum(g1.e, g2.e)
    return normalize(align(g1.v, g1.e, top) + align(g2.v, g2.e, top), top, fmt)


def batch_align(g, fmt):
    """One exponent for the whole batch (the largest), so a weight gradient can sum over samples."""
    if bits(fmt) is None or g.v.shape[0] <= 1:
        return g
    top = g.e.max().expand_as(g.e)
    return Grad(align(g.v, g.e, top), top.clone())


# -- layer backward (NHWC; g_acc is the masked, scaled gradient of the accumulator) ------------


def _nchw(t):
    return t.permute(0, 3, 1, 2)


def _padded_size(op):
    """(H, W) of the input after the forward's padding (model_prep.int8_ops._nchw_padded)."""
    p = op.params
    kh, kw = op.filter_dims[1], op.filter_dims[2]
    oh, ow = op.out_dims[1], op.out_dims[2]
    need_h = (oh - 1) * p.stride_h + (kh - 1) * p.dilation_h + 1
    need_w = (ow - 1) * p.stride_w + (kw - 1) * p.dilation_w + 1
    h, w = op.in_dims[1], op.in_dims[2]
    return max(need_h, p.pad_h + h), max(need_w, p.pad_w + w)


def _float64(a):
    """A float64 torch copy of a NumPy array or tensor."""
    return a.to(torch.float64) if torch.is_tensor(a) else torch.from_numpy(np.array(a, np.float64))


def _weights_oihw(op, weights, depthwise):
    w = _float64(weights)
    return w.permute(3, 0, 1, 2) if depthwise else w.permute(0, 3, 1, 2)


def input_grad_exact(op, g_acc, weights):
    """dL/dx exact (float64 integers), [N, H, W, C] of the op's input, from g_acc [N, ...out]."""
    n = g_acc.shape[0]
    if op.kind == "fully_connected":
        w = _float64(weights)
        return (g_acc.reshape(n, -1) @ w).reshape((n,) + tuple(op.in_dims[1:]))
    depthwise = op.kind == "depthwise_conv2d"
    p = op.params
    w = _weights_oihw(op, weights, depthwise)
    ph, pw = _padded_size(op)
    c_in = op.in_dims[3]
    gx = torch.nn.grad.conv2d_input((n, c_in, ph, pw), w, _nchw(g_acc.reshape((n,) + tuple(op.out_dims[1:]))),
                                    stride=(p.stride_h, p.stride_w), dilation=(p.dilation_h, p.dilation_w),
                                    groups=c_in if depthwise else 1)
    h, wd = op.in_dims[1], op.in_dims[2]
    return gx[:, :, p.pad_h:p.pad_h + h, p.pad_w:p.pad_w + wd].permute(0, 2, 3, 1)


def weight_grad_exact(op, x, g_acc, channels, rows=None):
    """dL/dW_q exact (float64 integers) for the selected channels (the weight's last axis) and kernel rows.

    x: the op's int8 input [N, ...in]; g_acc batch-aligned. Returns [O, len(rows), KW, len(channels)]
    for a conv (OHWI), [1, len(rows), KW, len(channels)] for a depthwise (1HWC), [O, len(channels)]
    for a fully connected layer. Only the selected slices are computed."""
    n = g_acc.shape[0]
    channels = torch.as_tensor(np.asarray(channels, np.int64))
    xo = x.reshape((n,) + tuple(op.in_dims[1:])).to(torch.float64) + op.params.input_offset   # x - zp
    if op.kind == "fully_connected":
        return g_acc.reshape(n, -1).T @ xo.reshape(n, -1)[:, channels]
    p = op.params
    depthwise = op.kind == "depthwise_conv2d"
    kh, kw = op.filter_dims[1], op.filter_dims[2]
    rows = range(kh) if rows is None else rows
    g = _nchw(g_acc.reshape((n,) + tuple(op.out_dims[1:])))
    if depthwise:   # output channel c reads input channel c // depth_multiplier
        g = g[:, channels]
        xin = xo[..., channels // p.depth_multiplier]
    else:
        xin = xo[..., channels]
    ph, pw = _padded_size(op)
    h, wd = op.in_dims[1], op.in_dims[2]
    xp = F.pad(_nchw(xin), (p.pad_w, pw - p.pad_w - wd, p.pad_h, ph - p.pad_h - h))
    oh = op.out_dims[1]
    out = []
    for r in rows:   # one kernel row at a time: unselected rows cost nothing
        start = r * p.dilation_h
        xr = xp[:, :, start:start + (oh - 1) * p.stride_h + 1]
        c = len(channels)
        size = (c, 1, 1, kw) if depthwise else (g.shape[1], c, 1, kw)
        gw = torch.nn.grad.conv2d_weight(xr, size, g, stride=(p.stride_h, p.stride_w),
                                         dilation=(1, p.dilation_w), groups=c if depthwise else 1)
        out.append(gw)
    gw = torch.cat(out, dim=2)                          # [O or C, I or 1, rows, KW]
    return gw.permute(1, 2, 3, 0) if depthwise else gw.permute(0, 2, 3, 1)


def bias_grad_exact(g_acc):
    """dL/db_q exact: g_acc summed over the batch and the output positions, [C]."""
    return g_acc.reshape(-1, g_acc.shape[-1]).sum(dim=0)


def mean_hw_input_grad(g, op, multiplier, shift, fmt):
    """MEAN over H, W: every input position gets g * s_x / (s_y * H * W) (the multiplier passed in)."""
    gs = scale(g, multiplier, shift, fmt)
    n, (h, w, c) = gs.v.shape[0], op.in_dims[1:]
    return Grad(gs.v.reshape(n, 1, 1, c).expand(n, h, w, c).clone(), gs.e)


def pad_input_grad(g, op):
    """PAD: the gradient of the unpadded window."""
    p = op.params
    n = g.v.shape[0]
    v = g.v.reshape((n,) + tuple(op.out_dims[1:]))
    h, w = op.in_dims[1], op.in_dims[2]
    return Grad(v[:, p.before[1]:p.before[1] + h, p.before[2]:p.before[2] + w, p.before[3]:p.before[3] + op.in_dims[3]],
                g.e)


# -- loss ---------------------------------------------------------------------------------------

Q15 = 1 << 15
EXP_TABLE_SIZE = 256
EXP_ONE = 1 << 16


def exp_table(logit_scale):
    """round(2^16 exp(-d s_logits)) for d = 0..255: the softmax weights of int8 logit differences."""
    s = float(np.float32(logit_scale))
    return np.array([math.floor(EXP_ONE * math.exp(-d * s) + 0.5) for d in range(EXP_TABLE_SIZE)], dtype=np.uint32)


def softmax_ce_grad(logits, labels, table, fmt, logit_scale):
    """dL/dq of softmax cross-entropy over int8 logits [N, K]: (p - onehot) in Q15 (exponent -15).

    Integer formats take p from the baked table of round(2^16 exp(-d s)) for logit differences d
    (exp_table); the caller scales by s_logits. float32 computes p."""
    logits = torch.as_tensor(np.asarray(logits)).to(torch.int64).reshape(len(labels), -1)
    labels = torch.as_tensor(np.asarray(labels, np.int64))
    onehot = F.one_hot(labels, logits.shape[1])
    n = logits.shape[0]
    if bits(fmt) is None:
        p = torch.softmax(logits.to(torch.float64) * logit_scale, dim=1)
        return Grad((p - onehot).to(torch.float32).to(torch.float64), torch.zeros(n, dtype=torch.int64))
    top = logits.max(dim=1, keepdim=True).values
    e = torch.as_tensor(np.asarray(table, np.int64))[(top - logits).clamp(max=len(table) - 1)]
    total = e.sum(dim=1, keepdim=True)
    p = torch.div((e << 15) + total // 2, total, rounding_mode="floor")
    return normalize((p - Q15 * onehot).to(torch.float64), torch.full((n,), -15, dtype=torch.int64), fmt)


# -- update -------------------------------------------------------------------------------------


def fixed_multiplier(real, bits=31):
    """(m, e) with real = m * 2^(e - bits), m in [2^(bits-1), 2^bits): like QuantizeMultiplier (bits 31),
    no range clamp; (0, 0) for 0."""
    if real == 0.0:
        return 0, 0
    frac, exp = math.frexp(real)
    m = math.floor(frac * (1 << bits) + 0.5)
    if m == 1 << bits:
        m //= 2
        exp += 1
    return int(m), int(exp)


def update_multiplier(real):
    """(m, k) with real = m * 2^(k - 15), m in [2^14, 2^15); (0, 0) for 0."""
    return fixed_multiplier(real, UPDATE_BITS)


_MASK32 = 0xFFFFFFFF


def hash32(x):
    """A 32-bit integer hash (xor-shift-multiply, 'lowbias32'), elementwise on int64 tensors."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def uniform32(seed, step, stream, n):
    """n uniform uint32 (in int64) for update number `step` of tensor `stream`: element i is
    hash32(key ^ i) with key = hash32(hash32(seed ^ step) ^ stream), so C computes it in place."""
    key = int(hash32(hash32(torch.tensor((seed ^ step) & _MASK32)) ^ stream))
    return hash32(torch.arange(n, dtype=torch.int64) ^ key)


def apply_update(q, grad_exact, e, m, k, lo, hi, rand=None, fmt="int16"):
    """q + round(-grad * m * 2^(k - 15 + e)), clamped to [lo, hi]: stochastic with uint32 `rand`, else nearest.

    q: the int8 weights / int32 biases being updated (int64 tensor); grad_exact: dL/dq exact
    (float64 integers, |grad| < 2^47) at exponent e; m, k: the per-element update multiplier."""
    if bits(fmt) is None:
        step = -grad_exact * m.to(torch.float64) * torch.exp2((k - UPDATE_BITS + e).to(torch.float64))
        step = step.to(torch.float32).to(torch.float64)
        u = 0.5 if rand is None else rand.to(torch.float64) / 2.0**32
        return (q + torch.floor(step + u).to(torch.int64)).clamp(lo, hi)
    p = -(grad_exact.to(torch.int64) * m)                       # < 2^62
    r = (UPDATE_BITS - k - e).clamp(max=MAX_SHIFT)
    left = (-r).clamp(min=0, max=31)
    r = r.clamp(min=0)
    coarse = (r - 32).clamp(min=0)                             # bits dropped before a 32-bit rounding
    fine = r - coarse
    p = p >> coarse
    if rand is None:
        noise = torch.where(fine > 0, torch.ones_like(fine) << (fine - 1).clamp(min=0), torch.zeros_like(fine))
    else:
        noise = rand >> (32 - fine)
        noise = torch.where(fine > 0, noise, torch.zeros_like(noise))
    step = ((p + noise) >> fine).clamp(-(1 << 32), 1 << 32) << left   # a left shift only for huge steps
    return (q + step).clamp(lo, hi)
