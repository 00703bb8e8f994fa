"""Int8 inference kernels in NumPy, bit-exact with the tflite-micro interpreter.

One function per kernel of firmware/runtime/kernels/kernels.h, same names, same parameter
structs (as dataclasses), same arithmetic; tests/test_kernels.py proves NumPy, C++ and TFLM
equal bit for bit. Tensors are NHWC int8; every function takes a whole batch, so it can run
over a data set. The parameter helpers below compute, from the float32 scales of a .tflite,
exactly what TFLM's Prepare computes.

Facts about this TFLM build (tflite-micro 0.dev20261023), checked against the interpreter:
- MultiplyByQuantizedMultiplier rounds twice (SaturatingRoundingDoublingHighMul, then
  RoundingDivideByPOT), not TFLITE_SINGLE_ROUNDING: a FULLY_CONNECTED with effective scale 0.25
  maps an accumulator of 1 to 1 (single rounding gives 0).
- MEAN over H, W of int8 always takes the integer path (the 1/count folded into the
  multiplier, then MultiplyByQuantizedMultiplier), also when input and output quantization
  are identical: neither truncating integer division nor the float32 rescale matches it.
- Per-tensor FULLY_CONNECTED scales are combined like per-channel ones, in double
  (s_in * s_w / s_out); a float32 product s_in * s_w gives other multipliers.

Convolution and fully-connected sums run as float64 matrix products (im2col, in chunks of at
most 64 MB): every partial sum is an integer below 2^53 in magnitude (K * 255 * 128 for
K < 2^37 terms), so float64 is exact and BLAS is fast. Depthwise sums accumulate in int32 like
TFLM's. Requantization runs in int64.
"""
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# TFLite ActivationFunctionType values (schema.fbs).
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3


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


# -- arithmetic ------------------------------------------------------------------------------


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """MultiplyByQuantizedMultiplier (common.h, double rounding), elementwise with broadcasting."""
    x = np.asarray(x, np.int64)
    m = np.asarray(multiplier, np.int64)
    shift = np.asarray(shift, np.int64)
    if np.any(shift > 0):  # x * 2^left in int32, wrapping as C does
        x = (x << np.maximum(shift, 0)) & 0xFFFFFFFF
        x -= (x >> 31) << 32
    # SaturatingRoundingDoublingHighMul: its nudge and truncating division amount to
    # floor((x * m + 2^30) / 2^31), i.e. round(x * m / 2^31) with ties up.
    high = x * m
    high += 1 << 30
    high >>= 31
    if np.any(m == INT32_MIN):  # the one overflow, INT32_MIN * INT32_MIN, saturates
        high = np.where((x == INT32_MIN) & (m == INT32_MIN), INT32_MAX, high)
    # RoundingDivideByPOT: round(high / 2^right) with ties away from zero.
    right = np.maximum(-shift, 0)
    negative = high < 0
    negative &= right > 0
    high += (np.int64(1) << right) >> 1
    high -= negative
    high >>= right
    return high


def _requantize(acc, q: ChannelQuant, output_offset, act_min, act_max):
    out = multiply_by_quantized_multiplier(acc, q.multiplier, q.shift)
    out += output_offset
    return np.clip(out, act_min, act_max).astype(np.int8)


def _taps(x, p: ConvParams, kh, kw, out_hw, dtype):
    """For each filter tap (fy, fx): the [N, OH, OW, C] input it meets, offset, 0 outside."""
    n, h, w, c = x.shape
    oh, ow = out_hw
    need_h = (oh - 1) * p.stride_h + (kh - 1) * p.dilation_h + 1
    need_w = (ow - 1) * p.stride_w + (kw - 1) * p.dilation_w + 1
    xp = np.zeros((n, max(need_h, p.pad_h + h), max(need_w, p.pad_w + w), c), dtype)
    xp[:, p.pad_h:p.pad_h + h, p.pad_w:p.pad_w + w] = x.astype(dtype) + p.input_offset
    for fy in range(kh):
        for fx in range(kw):
            y0, x0 = fy * p.dilation_h, fx * p.dilation_w
            yield fy, fx, xp[:, y0:y0 + (oh - 1) * p.stride_h + 1:p.stride_h,
                             x0:x0 + (ow - 1) * p.stride_w + 1:p.stride_w]


def _add_bias(acc, bias):
    acc = acc.astype(np.int64)
    if bias is not None:
        acc += np.asarray(bias, np.int64)
    return acc


def conv2d_s8(p: ConvParams, q: ChannelQuant, input, weights, bias, out_hw):
    """reference_integer_ops::ConvPerChannel: input [N,H,W,I], weights [O,KH,KW,I] -> [N,OH,OW,O]."""
    o, kh, kw, i = weights.shape
    w = weights.reshape(o, -1).T.astype(np.float64)                  # [(KH, KW, I), O]
    acc = np.empty((input.shape[0], *out_hw, o), np.float64)
    step = max(1, (1 << 23) // (out_hw[0] * out_hw[1] * w.shape[0]))  # im2col of <= 64 MB
    for b in range(0, input.shape[0], step):
        cols = np.stack([t for _, _, t in _taps(input[b:b + step], p, kh, kw, out_hw, np.float64)], 3)
        acc[b:b + step] = cols.reshape(*cols.shape[:3], -1) @ w      # exact: integers < 2^53
    return _requantize(_add_bias(acc, bias), q, p.output_offset, p.act_min, p.act_max)


def depthwise_conv2d_s8(p: ConvParams, q: ChannelQuant, input, weights, bias, out_hw):
    """reference_integer_ops::DepthwiseConvPerChannel: weights [1,KH,KW,I*M], channel i*M + m."""
    _, kh, kw, oc = weights.shape
    c, mult = input.shape[3], p.depth_multiplier
    if c == 1:  # one input channel: the same sums as a convolution, which BLAS does faster
        return conv2d_s8(p, q, input, weights.transpose(3, 1, 2, 0), bias, out_hw)
    w = weights.reshape(kh, kw, c, mult).astype(np.int32)
    acc = np.zeros((input.shape[0], *out_hw, c, mult), np.int32)  # TFLM's int32 accumulator
    for fy, fx, tap in _taps(input, p, kh, kw, out_hw, np.int32):
        acc += tap[..., None] * w[fy, fx]
    acc = acc.reshape(*acc.shape[:3], oc)
    return _requantize(_add_bias(acc, bias), q, p.output_offset, p.act_min, p.act_max)


def fully_connected_s8(p: FcParams, q: ChannelQuant, input, weights, bias):
    """reference_integer_ops::FullyConnected(PerChannel): input [B, I], weights [O, I] -> [B, O]."""
    x = input.reshape(input.shape[0], -1).astype(np.float64) + p.input_offset
    acc = x @ weights.T.astype(np.float64)  # exact: integers < 2^53
    return _requantize(_add_bias(acc, bias), q, p.output_offset, p.act_min, p.act_max)


def mean_hw_s8(p: MeanParams, input):
    """reference_ops::QuantizedMeanOrSum (reduce.h), mean over H and W: [N,H,W,C] -> [N,C]."""
    count = input.shape[1] * input.shape[2]
    shift = min(count.bit_length() - 1, 32, 31 + p.shift)          # fold 1 / count in
    multiplier = (p.multiplier << shift) // count
    acc = input.astype(np.int64).sum(axis=(1, 2)) - p.input_zero_point * count
    out = multiply_by_quantized_multiplier(acc, multiplier, p.shift - shift)
    return np.clip(out + p.output_zero_point, -128, 127).astype(np.int8)


def pad_s8(p: PadParams, input):
    """reference_ops::Pad with a constant: [N,H,W,C] -> padded [N,H,W,C]."""
    return np.pad(input, list(zip(p.before, p.after)), constant_values=np.int8(p.pad_value))
