"""Int8 inference kernels in PyTorch, bit-exact with the tflite-micro interpreter.

One function per kernel of firmware/runtime/kernels/kernels.h, same names, same parameter
structs (as dataclasses, field for field), same arithmetic; tests/test_kernels.py proves
PyTorch, C++ and TFLM equal bit for bit. Activations are torch tensors, int8 NHWC (float32 only
for QUANTIZE's input and DEQUANTIZE's output); every function takes a whole batch, so it can
run over a data set. Weights and biases may be torch tensors or NumPy arrays. The parameter
structs and the helpers that compute them from a .tflite's float32 scales, exactly as TFLM's
Prepare does, live in model_prep/int8_params.py (no PyTorch there, for bake) and are re-exported here.

Facts about this TFLM build (tflite-micro 0.dev20261023), checked against the interpreter:
- MultiplyByQuantizedMultiplier rounds twice (SaturatingRoundingDoublingHighMul, then
  RoundingDivideByPOT), not TFLITE_SINGLE_ROUNDING: a FULLY_CONNECTED with effective scale 0.25
  maps an accumulator of 1 to 1 (single rounding gives 0).
- MEAN over H, W of int8 always takes the integer path (the 1/count folded into the
  multiplier, then MultiplyByQuantizedMultiplier), also when input and output quantization
  are identical: neither truncating integer division nor the float32 rescale matches it.
- Per-tensor FULLY_CONNECTED scales are combined like per-channel ones, in double
  (s_in * s_w / s_out); a float32 product s_in * s_w gives other multipliers.
- ADD (int8) scales both inputs by 2^20, rescales each by QuantizeMultiplier(s_i / (2 max(s1, s2))),
  sums, and rescales by QuantizeMultiplier(2 max(s1, s2) / (2^20 s_out)), every step with the
  double-rounding multiply (reference_integer_ops::AddFunc).
- QUANTIZE (float32 -> int8) divides in float32 (x / float(scale)) and rounds the float32
  quotient half away from zero: dividing in double disagrees on near-ties, and so does
  truncating quotient + 0.5 (an older reference_ops::AffineQuantize).
- DEQUANTIZE computes double(scale) * (q - zp) and rounds to float32, which equals the float32
  product: (q - zp) has 9 bits, so the exact product fits a double and is rounded once either way.
- SOFTMAX (int8 -> int8) is reference_ops::Softmax with gemmlowp's fixed-point exp and
  reciprocal (input differences in Q5.26, sum of exps in Q12.19), output scale 1/256, zp -128.
- AVERAGE_POOL_2D sums raw int8 values (no zero point) over the window clipped to the input
  and divides rounding half away from zero; MAX_POOL_2D ignores padding. Both then clamp to
  the fused activation; neither rescales (input and output share quantization).

Convolution and fully-connected sums run as float convolutions / matrix products of integers:
float32 (channels-last, fast) where every partial sum is provably below 2^24 in magnitude (terms
x max|x| x max|w|: depthwise layers, small convolutions), float64 otherwise (below 2^53 for
K < 2^37 terms). Either is exact in any summation order. Requantization and the fixed-point
functions run in int64 tensors holding int32 values.
"""
import numpy as np
import torch
import torch.nn.functional as F

from model_prep.int8_params import *  # noqa: F401,F403 (the parameter structs and helpers, one namespace)
from model_prep.int8_params import (INT32_MAX, INT32_MIN, SOFTMAX_ACCUM_INTEGER_BITS, SOFTMAX_DIFF_INTEGER_BITS,
                                    AddParams, ChannelQuant, ConvParams, DequantizeParams, FcParams, MeanParams,
                                    PadParams, PoolParams, QuantizeParams, RequantizeParams, SoftmaxParams)


# -- arithmetic ------------------------------------------------------------------------------


def _i64(x):
    return torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).to(torch.int64)


def _wrap_int32(x):
    """x (int64) reduced to int32 two's complement, as a C cast does."""
    return ((x + 2**31) & 0xFFFFFFFF) - 2**31


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties up; INT32_MIN^2 saturates."""
    a, b = _i64(a), _i64(b)
    # The nudge and truncating division amount to floor((a * b + 2^30) / 2^31).
    high = (a * b + (1 << 30)) >> 31
    return torch.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT: round(x / 2^exponent), ties away from zero; exponent in [0, 31]."""
    x, e = _i64(x), _i64(exponent)
    half = (torch.ones_like(e) << e) >> 1
    return (x + half - ((x < 0) & (e > 0)).to(torch.int64)) >> e


def _saturating_shift_left(x, exponent: int):
    """gemmlowp SaturatingRoundingMultiplyByPOT with a positive exponent: x * 2^exponent, saturated."""
    return (x << exponent).clamp(INT32_MIN, INT32_MAX)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier (common.h, double rounding), elementwise with broadcasting."""
    x, m, shift = _i64(x), _i64(multiplier), _i64(shift)
    if bool((shift > 0).any()):  # x * 2^left in int32, wrapping as C does
        x = _wrap_int32(x << shift.clamp(min=0))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, m), (-shift).clamp(min=0))


def _requantize(acc, q: ChannelQuant, output_offset, act_min, act_max):
    out = multiply_by_quantized_multiplier(acc, q.multiplier, q.shift) + output_offset
    return out.clamp(act_min, act_max).to(torch.int8)


def _add_bias(acc, bias):
    acc = acc.to(torch.int64)  # exact: the float64 sums are integers
    if bias is not None:
        acc = acc + _i64(bias)
    return acc


def _nchw_padded(x, p, kh, kw, out_hw, value=0.0, offset=0):
    """x [N,H,W,C] as float64 NCHW (plus offset), padded so the window sweep covers out_hw."""
    n, h, w, c = x.shape
    sh, sw = p.stride_h, p.stride_w
    dh, dw = getattr(p, "dilation_h", 1), getattr(p, "dilation_w", 1)
    need_h = (out_hw[0] - 1) * sh + (kh - 1) * dh + 1
    need_w = (out_hw[1] - 1) * sw + (kw - 1) * dw + 1
    x = x.to(torch.float64).permute(0, 3, 1, 2) + offset
    pads = (p.pad_w, max(need_w - p.pad_w - w, 0), p.pad_h, max(need_h - p.pad_h - h, 0))
    return F.pad(x, pads, value=value)


def _nhwc(y, out_hw):
    return y[:, :, :out_hw[0], :out_hw[1]].permute(0, 2, 3, 1)


def _weights(w):
    return torch.as_tensor(np.asarray(w) if not torch.is_tensor(w) else w).to(torch.float64)


FLOAT32_EXACT = 1 << 24     # integers below this are exact in float32


def exact_conv2d(x, w, x_max=255, w_max=128, **kw):
    """F.conv2d of integer-valued float64 tensors, exactly: in float32 (channels-last, fast) when every
    partial sum stays below 2^24 in magnitude (terms per output x max|x| x max|w|), else in float64.
    x_max, w_max: bounds of |x| and |w| (default: int8 values minus an int8 zero point, int8 weights)."""
    if w.shape[1] * w.shape[2] * w.shape[3] * x_max * w_max >= FLOAT32_EXACT:
        return F.conv2d(x, w, **kw)
    cl = torch.channels_last
    return F.conv2d(x.to(torch.float32).contiguous(memory_format=cl), w.to(torch.float32).contiguous(memory_format=cl),
                    **kw).to(torch.float64)


def conv2d_s8(p: ConvParams, q: ChannelQuant, input, weights, bias, out_hw):
    """reference_integer_ops::ConvPerChannel: input [N,H,W,I], weights [O,KH,KW,I] -> [N,OH,OW,O]."""
    w = _weights(weights).permute(0, 3, 1, 2)                          # OIHW
    x = _nchw_padded(input, p, w.shape[2], w.shape[3], out_hw, offset=p.input_offset)
    acc = exact_conv2d(x, w, stride=(p.stride_h, p.stride_w), dilation=(p.dilation_h, p.dilation_w))
    return _requantize(_add_bias(_nhwc(acc, out_hw), bias), q, p.output_offset, p.act_min, p.act_max)


def depthwise_conv2d_s8(p: ConvParams, q: ChannelQuant, input, weights, bias, out_hw):
    """reference_integer_ops::DepthwiseConvPerChannel: weights [1,KH,KW,I*M], channel i*M + m."""
    w = _weights(weights).permute(3, 0, 1, 2)                          # [I*M, 1, KH, KW]
    x = _nchw_padded(input, p, w.shape[2], w.shape[3], out_hw, offset=p.input_offset)
    acc = exact_conv2d(x, w, stride=(p.stride_h, p.stride_w), dilation=(p.dilation_h, p.dilation_w),
                       groups=x.shape[1])                             # group i -> outputs i*M .. i*M+M-1
    return _requantize(_add_bias(_nhwc(acc, out_hw), bias), q, p.output_offset, p.act_min, p.act_max)


def fully_connected_s8(p: FcParams, q: ChannelQuant, input, weights, bias):
    """reference_integer_ops::FullyConnected(PerChannel): input [B, I], weights [O, I] -> [B, O]."""
    x = input.reshape(input.shape[0], -1).to(torch.float64) + p.input_offset
    acc = x @ _weights(weights).T  # exact: integers < 2^53
    return _requantize(_add_bias(acc, bias), q, p.output_offset, p.act_min, p.act_max)


def mean_hw_s8(p: MeanParams, input):
    """reference_ops::QuantizedMeanOrSum (reduce.h), mean over H and W: [N,H,W,C] -> [N,C]."""
    count = input.shape[1] * input.shape[2]
    shift = min(count.bit_length() - 1, 32, 31 + p.shift)          # fold 1 / count in
    multiplier = (p.multiplier << shift) // count
    acc = input.to(torch.int64).sum(dim=(1, 2)) - p.input_zero_point * count
    out = multiply_by_quantized_multiplier(acc, multiplier, p.shift - shift)
    return (out + p.output_zero_point).clamp(-128, 127).to(torch.int8)


def pad_s8(p: PadParams, input):
    """reference_ops::Pad with a constant: [N,H,W,C] -> padded [N,H,W,C]."""
    pads = [v for d in (3, 2, 1, 0) for v in (p.before[d], p.after[d])]
    return F.pad(input, pads, value=p.pad_value)


def add_s8(p: AddParams, input1, input2):
    """reference_integer_ops::Add (AddFunc), same shapes: input1 + input2 in the output's quantization."""
    def scaled(x, offset, multiplier, shift):
        shifted = (x.to(torch.int64) + offset) << p.left_shift
        return multiply_by_quantized_multiplier(shifted, multiplier, shift)
    raw_sum = (scaled(input1, p.input1_offset, p.input1_multiplier, p.input1_shift)
               + scaled(input2, p.input2_offset, p.input2_multiplier, p.input2_shift))
    out = multiply_by_quantized_multiplier(raw_sum, p.output_multiplier, p.output_shift) + p.output_offset
    return out.clamp(p.act_min, p.act_max).to(torch.int8)


def avg_pool2d_s8(p: PoolParams, input, out_hw):
    """reference_integer_ops::AveragePool (int8): window sums of raw values, rounded division by the count."""
    sweep = dict(kernel_size=(p.filter_h, p.filter_w), stride=(p.stride_h, p.stride_w), divisor_override=1)
    x = _nchw_padded(input, p, p.filter_h, p.filter_w, out_hw)
    ones = _nchw_padded(torch.ones_like(input[:1, ..., :1]), p, p.filter_h, p.filter_w, out_hw)
    acc = _nhwc(F.avg_pool2d(x, **sweep), out_hw).to(torch.int64)      # exact integer sums
    count = _nhwc(F.avg_pool2d(ones, **sweep), out_hw).to(torch.int64)  # taps inside the input
    half = count // 2
    out = torch.where(acc > 0, (acc + half) // count, -((half - acc) // count))  # C division truncates
    return out.clamp(p.act_min, p.act_max).to(torch.int8)


def max_pool2d_s8(p: PoolParams, input, out_hw):
    """reference_integer_ops::MaxPool (int8): the window maximum over taps inside the input."""
    x = _nchw_padded(input, p, p.filter_h, p.filter_w, out_hw, value=-128.0)
    out = _nhwc(F.max_pool2d(x, (p.filter_h, p.filter_w), (p.stride_h, p.stride_w)), out_hw)
    return out.clamp(p.act_min, p.act_max).to(torch.int8)


# gemmlowp's fixed-point exp and reciprocal, on int64 tensors holding int32 raw values.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))  # exp(-2^k) in Q0.31


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl: Q0.31 in [-1/4, 0) -> exp."""
    srdhm = saturating_rounding_doubling_high_mul
    constant_term, one_third = 1895147668, 715827883     # exp(-1/8), 1/3
    x = a + (1 << 28)                                     # Taylor expansion around -1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(srdhm(x4_over_4 + x3, one_third) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


def exp_on_negative_values(a):
    """gemmlowp exp_on_negative_values for Q5.26 input a <= 0: exp(a) in Q0.31."""
    frac = 31 - SOFTMAX_DIFF_INTEGER_BITS
    quarter = 1 << (frac - 2)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _saturating_shift_left(a_mod_quarter_minus_quarter, SOFTMAX_DIFF_INTEGER_BITS))
    remainder = a_mod_quarter_minus_quarter - a
    for exponent, multiplier in _EXP_BARREL:
        if SOFTMAX_DIFF_INTEGER_BITS > exponent:
            hit = (remainder & (1 << (frac + exponent))) != 0
            result = torch.where(hit, saturating_rounding_doubling_high_mul(result, multiplier), result)
    return torch.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 a in [0, 1) -> 1 / (1 + a), Newton-Raphson in Q2.29."""
    srdhm = saturating_rounding_doubling_high_mul
    s = a + INT32_MAX                                      # RoundingHalfSum(a, One)
    half_denominator = torch.div(s + torch.where(s >= 0, 1, -1), 2, rounding_mode="trunc")
    x = 1515870810 + srdhm(half_denominator, -1010580540)  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus_half_denominator_times_x = (1 << 29) - srdhm(half_denominator, x)
        x = x + _saturating_shift_left(srdhm(x, one_minus_half_denominator_times_x), 2)
    return _saturating_shift_left(x, 1)                    # Rescale<0>(ExactMulByPot<-1>(x))


def get_reciprocal(x, integer_digits: int):
    """GetReciprocal (common.h): 1 / x for x > 0 with integer_digits integer bits -> (Q0.31, bits over unit)."""
    headroom_plus_one = 32 - torch.frexp(x.to(torch.float64)).exponent.to(torch.int64)  # clz, exact
    shifted_sum_minus_one = (x << headroom_plus_one) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), integer_digits - headroom_plus_one


def softmax_s8(p: SoftmaxParams, input):
    """reference_ops::Softmax (softmax.h), int8 -> int8 (scale 1/256, zero point -128), over the last axis."""
    x = input.to(torch.int64)
    diff = x - x.max(dim=-1, keepdim=True).values
    valid = diff >= p.diff_min
    rescaled = saturating_rounding_doubling_high_mul(torch.where(valid, diff, 0) << p.input_left_shift,
                                                     p.input_multiplier)  # Q5.26
    exps = exp_on_negative_values(rescaled)                                # Q0.31
    accum_shift = SOFTMAX_ACCUM_INTEGER_BITS
    sum_of_exps = torch.where(valid, rounding_divide_by_pot(exps, accum_shift), 0).sum(-1, keepdim=True)
    scale, bits_over_unit = get_reciprocal(sum_of_exps, accum_shift)
    out = rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scale, exps), bits_over_unit + 31 - 8)
    return torch.where(valid, (out - 128).clamp(-128, 127), -128).to(torch.int8)


def quantize_f32_s8(p: QuantizeParams, input):
    """reference_ops::AffineQuantize (quantize.h), float32 -> int8: round(x / scale) in float32, + zp."""
    q = (input.to(torch.float32) / torch.tensor(p.scale, dtype=torch.float32)).to(torch.float64)
    q = torch.sign(q) * torch.floor(q.abs() + 0.5)   # TfLiteRound of the float32 quotient: ties away
    return (q + p.zero_point).clamp(-128, 127).to(torch.int8)


def requantize_s8(p: RequantizeParams, input):
    """reference_ops::Requantize (requantize.h), int8 -> int8."""
    out = multiply_by_quantized_multiplier(input.to(torch.int64) - p.input_zero_point, p.multiplier, p.shift)
    return (out + p.output_zero_point).clamp(-128, 127).to(torch.int8)


def dequantize_s8_f32(p: DequantizeParams, input):
    """reference_ops::Dequantize (dequantize.h), int8 -> float32: scale * (q - zp), one float32 rounding."""
    return (input.to(torch.int32) - p.zero_point).to(torch.float32) * torch.tensor(p.scale, dtype=torch.float32)
