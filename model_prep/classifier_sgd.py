"""On-device training of the classifier, in integers: the Python twin of firmware/runtime/classifier_sgd.cc.

One step, batch size 1, after a forward pass that produced the classifier's int8 input x and
int8 logits:
  1. softmax cross-entropy gradient in Q15 fixed point: p = softmax(logits) from a baked
     exp table, g = p - onehot(label)                                     (softmax_grad_q15)
  2. Quantization-Aware Scaling (Lin et al. 2022): the int8 weight's gradient is scaled by
     s_W^-2 and the int32 bias's by (s_W * s_x)^-2, so the SGD step on the integers is
        dq_W[o][i] = -lr * g[o] * (x[i] - zp_x) * s_x / s_W[o]
        dq_b[o]    = -lr * g[o] / (s_W[o] * s_x)
     with the constant factors folded into one fixed-point multiplier per output channel.
  3. Weights are updated in place with stochastic rounding (unbiased: small steps still move
     int8 weights on average) from a xorshift64 stream; biases round to nearest.
Every function is pure integer arithmetic, so the C++ build reproduces it bit for bit.
"""
import math
from dataclasses import dataclass

import numpy as np

Q15 = 1 << 15
EXP_TABLE_SIZE = 256
EXP_ONE = 1 << 16
MAX_SHIFT = 62


def exp_table(logit_scale):
    """round(2^16 * exp(-d * s_logits)) for d = 0..255: softmax weights of logit differences."""
    s = float(np.float32(logit_scale))
    return np.array([math.floor(EXP_ONE * math.exp(-d * s) + 0.5) for d in range(EXP_TABLE_SIZE)], dtype=np.uint32)


def fixed_multiplier(real, bits=31):
    """(m, e) with real = m * 2^(e - bits), m in [2^(bits-1), 2^bits): like QuantizeMultiplier (bits 31),
    no range clamp."""
    if real == 0.0:
        return 0, 0
    frac, exp = math.frexp(real)
    m = math.floor(frac * (1 << bits) + 0.5)
    if m == 1 << bits:
        m //= 2
        exp += 1
    return int(m), int(exp)


def xorshift64(state):
    """(next state, output) of Marsaglia's xorshift64 (13, 7, 17); state is a nonzero uint64."""
    mask = (1 << 64) - 1
    state ^= (state << 13) & mask
    state ^= state >> 7
    state ^= (state << 17) & mask
    return state, state


def softmax_grad_q15(logits, label, table):
    """Gradient of cross-entropy w.r.t. the logits, in Q15: p_i - [i == label]."""
    logits = [int(v) for v in logits]
    top = max(logits)
    e = [int(table[top - v]) for v in logits]
    total = sum(e)
    return [((ei << 15) + total // 2) // total - (Q15 if i == label else 0) for i, ei in enumerate(e)]


def scaled_step(acc, m, e, rand=None):
    """-acc * m * 2^(e-31) saturated to int32: stochastically rounded with 64-bit `rand`, or to nearest."""
    p = -acc * m
    r = min(31 - e, MAX_SHIFT)
    if r <= 0:
        v = _clamp32(p) * (1 << min(-r, 31))
    elif rand is None:
        v = (p + (1 << (r - 1))) >> r
    else:
        v = (p + (rand >> (64 - r))) >> r
    return _clamp32(v)


def _clamp32(v):
    return max(-(1 << 31), min((1 << 31) - 1, v))


@dataclass
class ClassifierTraining:
    """The baked training constants of the classifier (one entry per output channel)."""
    input_zero_point: int
    w_mult: list
    w_exp: list
    b_mult: list
    b_exp: list
    table: np.ndarray
    seed: int


def training_constants(s_x, zp_x, s_w, s_logits, lr, qas=True, seed=0x9E3779B97F4A7C15):
    """Fold lr, QAS and the Q15 gradient scale into per-channel fixed-point multipliers."""
    s_x = float(np.float32(s_x))
    w_mult, w_exp, b_mult, b_exp = [], [], [], []
    for sw in (float(v) for v in np.asarray(s_w, dtype=np.float32)):
        w_real = lr * s_x / sw if qas else lr * sw * s_x
        b_real = lr / (sw * s_x) if qas else lr * sw * s_x
        for real, ms, es in ((w_real / Q15, w_mult, w_exp), (b_real / Q15, b_mult, b_exp)):
            m, e = fixed_multiplier(real)
            ms.append(m)
            es.append(e)
    return ClassifierTraining(int(zp_x), w_mult, w_exp, b_mult, b_exp, exp_table(s_logits), seed)


def sgd_step(t, weights, bias, x, logits, label, state):
    """One in-place SGD step on int8 weights [out][in] and int32 bias [out]; returns the new RNG state."""
    grad = softmax_grad_q15(logits, label, t.table)
    out_features, in_features = weights.shape
    xs = [int(v) - t.input_zero_point for v in x]
    for o in range(out_features):
        g = grad[o]
        for i in range(in_features):
            state, rand = xorshift64(state)
            step = scaled_step(g * xs[i], t.w_mult[o], t.w_exp[o], rand)
            weights[o, i] = max(-127, min(127, int(weights[o, i]) + step))
        b = int(bias[o]) + scaled_step(g, t.b_mult[o], t.b_exp[o])
        bias[o] = _clamp32(b)
    return state
