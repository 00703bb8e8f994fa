"""TFLM's Prepare in Python: the kernels' parameter structs and how a .tflite's scales become them.

Every dataclass here is the twin, field for field, of a struct in firmware/runtime/kernels/kernels.h;
model_prep/lower.py fills them once per op, bake writes them as C++ initializers and
model_prep/int8_ops.py (which re-exports all of this) computes with them. Plain Python and
NumPy only, so bake never needs PyTorch. Each helper names the TFLM function it mirrors; the
facts it relies on are in int8_ops' docstring and proved by tests/test_kernels.py.
"""
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# TFLite ActivationFunctionType values (schema.fbs).
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3

ADD_LEFT_SHIFT = 20           # TFLM's left_shift for int8 ADD (15 for int16)
SOFTMAX_DIFF_INTEGER_BITS = 5   # kScaledDiffIntegerBits: input differences in Q5.26
SOFTMAX_ACCUM_INTEGER_BITS = 12  # kAccumulationIntegerBits: the sum of exps in Q12.19


class ChannelQuant(NamedTuple):
    """Per-output-channel requantization: real = multiplier * 2^(shift - 31)."""
    multiplier: np.ndarray  # int32 [C]
    shift: np.ndarray       # int32 [C]


@dataclass(frozen=True)
class ConvParams:
    input_offset: int      # minus the input zero point
    output_offset: int     # the output zero point
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_h: int             # padding before the first row
    pad_w: int             # padding before the first column
    depth_multiplier: int  # depthwise only: output channels per input channel
    act_min: int           # fused activation clamp in the output's int8 domain
    act_max: int


@dataclass(frozen=True)
class FcParams:
    input_offset: int   # minus the input zero point
    output_offset: int  # the output zero point
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MeanParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int  # QuantizeMultiplier(s_in / s_out); the kernel folds in 1 / (H * W)
    shift: int


@dataclass(frozen=True)
class PadParams:
    before: tuple    # elements before, per dimension N, H, W, C
    after: tuple     # elements after, per dimension N, H, W, C
    pad_value: int   # the output zero point unless the model gives a constant


@dataclass(frozen=True)
class AddParams:
    input1_offset: int      # minus the first input's zero point
    input2_offset: int      # minus the second input's zero point
    output_offset: int      # the output zero point
    left_shift: int         # ADD_LEFT_SHIFT: inputs are scaled by 2^left_shift first
    input1_multiplier: int  # QuantizeMultiplier(s1 / (2 max(s1, s2))), shift <= 0
    input1_shift: int
    input2_multiplier: int  # QuantizeMultiplier(s2 / (2 max(s1, s2))), shift <= 0
    input2_shift: int
    output_multiplier: int  # QuantizeMultiplier(2 max(s1, s2) / (2^left_shift s_out)), shift <= 0
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class PoolParams:
    stride_h: int
    stride_w: int
    filter_h: int
    filter_w: int
    pad_h: int     # padding before the first row (SAME or VALID resolved)
    pad_w: int     # padding before the first column
    act_min: int   # fused activation clamp in the output's int8 domain
    act_max: int


@dataclass(frozen=True)
class SoftmaxParams:
    input_multiplier: int  # QuantizeMultiplierGreaterThanOne(beta * s_in * 2^26), capped at 2^31 - 1
    input_left_shift: int  # >= 0
    diff_min: int          # x - max(row) below this gives exactly 0 (the -128 output)


@dataclass(frozen=True)
class QuantizeParams:
    scale: float     # the int8 output's scale, a float32 value
    zero_point: int  # the int8 output's zero point


@dataclass(frozen=True)
class RequantizeParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int  # QuantizeMultiplier(s_in / s_out)
    shift: int


@dataclass(frozen=True)
class DequantizeParams:
    scale: float     # the int8 input's scale, a float32 value
    zero_point: int  # the int8 input's zero point


# -- parameters (TFLM's Prepare) -------------------------------------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier (quantization_util.cc): real = m * 2^(shift - 31), m in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(math.copysign(math.floor(abs(q) * 2.0**31 + 0.5), q))  # TfLiteRound
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def conv_channel_quant(s_in, s_w, s_out, channels: int | None = None) -> ChannelQuant:
    """PopulateConvolutionQuantizationParams (kernel_util.cc): float32 scales, combined in double."""
    s_w = np.atleast_1d(np.asarray(s_w, np.float32))
    if channels is not None:  # a per-tensor scale repeats for every output channel
        s_w = np.broadcast_to(s_w, (channels,))
    pairs = [quantize_multiplier(float(np.float32(s_in)) * float(w) / float(np.float32(s_out)))
             for w in s_w]
    m, s = zip(*pairs)
    return ChannelQuant(np.array(m, np.int32), np.array(s, np.int32))


def _round_half_away(x):
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def activation_range(fused_activation: int, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized (kernel_util.cc), int8 output."""
    def quantize(f):  # zero_point + round(f / scale), divided and rounded in float32
        return zero_point + int(_round_half_away(np.float32(f) / np.float32(scale)))
    lo, hi = -128, 127
    if fused_activation == ACT_RELU:
        return max(lo, quantize(0.0)), hi
    if fused_activation == ACT_RELU6:
        return max(lo, quantize(0.0)), min(hi, quantize(6.0))
    if fused_activation == ACT_RELU_N1_TO_1:
        return max(lo, quantize(-1.0)), min(hi, quantize(1.0))
    if fused_activation == ACT_NONE:
        return lo, hi
    raise ValueError(f"unsupported fused activation {fused_activation}")


def same_padding(in_size: int, filter_size: int, stride: int, dilation: int) -> tuple[int, int]:
    """ComputePaddingHeightWidth (padding.h) for Padding_SAME: (pad before, output size)."""
    out = (in_size + stride - 1) // stride
    effective = (filter_size - 1) * dilation + 1
    return max((out - 1) * stride + effective - in_size, 0) // 2, out


def valid_padding(in_size: int, filter_size: int, stride: int, dilation: int) -> tuple[int, int]:
    """ComputePaddingHeightWidth (padding.h) for Padding_VALID: (0, output size)."""
    return 0, (in_size - (filter_size - 1) * dilation - 1) // stride + 1


def mean_params(s_in: float, zp_in: int, s_out: float, zp_out: int) -> MeanParams:
    """PrepareMeanOrSumHelper (reduce_common.cc): multiplier of s_in / s_out in double."""
    m, s = quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    return MeanParams(int(zp_in), int(zp_out), m, s)


def add_params(s1, zp1, s2, zp2, s_out, zp_out, fused_activation) -> AddParams:
    """CalculateOpDataAdd (add_common.cc), int8: float32 scales combined in double."""
    s1, s2, s_out = (float(np.float32(s)) for s in (s1, s2, s_out))
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * s_out))
    act_min, act_max = activation_range(fused_activation, s_out, int(zp_out))
    return AddParams(-int(zp1), -int(zp2), int(zp_out), ADD_LEFT_SHIFT, m1, sh1, m2, sh2, mo, sho,
                     act_min, act_max)


def softmax_params(beta: float, s_in: float) -> SoftmaxParams:
    """CalculateSoftmaxParams (softmax_common.cc), int8: PreprocessSoftmaxScaling, CalculateInputRadius."""
    bits = SOFTMAX_DIFF_INTEGER_BITS
    real = min(float(np.float32(beta)) * float(np.float32(s_in)) * (1 << (31 - bits)), 2.0**31 - 1.0)
    m, shift = quantize_multiplier(real)
    if real <= 1.0 or shift < 0:
        raise ValueError(f"softmax: beta * input scale = {real / 2**(31 - bits):g} is below 2^-26")
    radius = math.floor(((1 << bits) - 1) * 2.0 ** (31 - bits) / 2.0**shift)
    return SoftmaxParams(m, shift, -radius)


def requantize_params(s_in, zp_in, s_out, zp_out) -> RequantizeParams:
    """PrepareQuantizeReference (quantize_common.cc), int8 -> int8: QuantizeMultiplier(s_in / s_out)."""
    m, s = quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    return RequantizeParams(int(zp_in), int(zp_out), m, s)
