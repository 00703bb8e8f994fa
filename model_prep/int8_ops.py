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

Integer sums of int8 products are carried in float64 matrix products: every partial sum is an
integer below 2^53 in magnitude (K * 255 * 128 for K < 2^37 terms), so float64 is exact and
BLAS is fast.
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
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    x = ((x << left) + 2**31) % 2**32 - 2**31           # x * 2^left in int32, wrapping as C does
    # SaturatingRoundingDoublingHighMul: round(x * m / 2^31), ties up, truncating division.
    ab = x * m
    ab = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(ab >= 0, ab >> 31, -((-ab) >> 31))
    high = np.where((x == INT32_MIN) & (m == INT32_MIN), INT32_MAX, high)
    # RoundingDivideByPOT: round(high / 2^right), ties away from zero.
    mask = (np.int64(1) << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def _requantize(acc, q: ChannelQuant, output_offset, act_min, act_max):
    out = multiply_by_quantized_multiplier(acc, q.multiplier, q.shift) + output_offset
    return np.clip(out, act_min, act_max).astype(np.int8)


def _windows(x, p: ConvParams, kh, kw, out_hw):
    """[N, OH, OW, C, KH, KW] view of the offset input, zero outside the image."""
    n, h, w, c = x.shape
    oh, ow = out_hw
    need_h = (oh - 1) * p.stride_h + (kh - 1) * p.dilation_h + 1
    need_w = (ow - 1) * p.stride_w + (kw - 1) * p.dilation_w + 1
    xp = np.zeros((n, max(need_h, p.pad_h + h), max(need_w, p.pad_w + w), c), np.float64)
    xp[:, p.pad_h:p.pad_h + h, p.pad_w:p.pad_w + w] = x.astype(np.float64) + p.input_offset
    win = np.lib.stride_tricks.sliding_window_view(
        xp[:, :need_h, :need_w], ((kh - 1) * p.dilation_h + 1, (kw - 1) * p.dilation_w + 1),
        axis=(1, 2))
    return win[:, ::p.stride_h, ::p.stride_w, :, ::p.dilation_h, ::p.dilation_w]


def conv2d_s8(p: ConvParams, q: ChannelQuant, input, weights, bias, out_hw):
    """reference_integer_ops::ConvPerChannel: input [N,H,W,I], weights [O,KH,KW,I] -> [N,OH,OW,O]."""
    o, kh, kw, i = weights.shape
    win = _windows(input, p, kh, kw, out_hw)                       # N OH OW I KH KW
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw * i)
    acc = cols @ weights.reshape(o, -1).T.astype(np.float64)
    acc = acc.astype(np.int64) + (0 if bias is None else np.asarray(bias, np.int64))
    out = _requantize(acc, q, p.output_offset, p.act_min, p.act_max)
    return out.reshape(input.shape[0], out_hw[0], out_hw[1], o)


def depthwise_conv2d_s8(p: ConvParams, q: ChannelQuant, input, weights, bias, out_hw):
    """reference_integer_ops::DepthwiseConvPerChannel: weights [1,KH,KW,I*M], channel i*M + m."""
    _, kh, kw, oc = weights.shape
    c, mult = input.shape[3], p.depth_multiplier
    win = _windows(input, p, kh, kw, out_hw)                       # N OH OW I KH KW
    w = weights.reshape(kh, kw, c, mult).astype(np.float64)
    acc = np.einsum("nhwckl,klcm->nhwcm", win, w, optimize=True).reshape(*win.shape[:3], oc)
    acc = acc.astype(np.int64) + (0 if bias is None else np.asarray(bias, np.int64))
    return _requantize(acc, q, p.output_offset, p.act_min, p.act_max)


def fully_connected_s8(p: FcParams, q: ChannelQuant, input, weights, bias):
    """reference_integer_ops::FullyConnected(PerChannel): input [B, I], weights [O, I] -> [B, O]."""
    x = input.reshape(input.shape[0], -1).astype(np.float64) + p.input_offset
    acc = (x @ weights.T.astype(np.float64)).astype(np.int64)
    acc = acc + (0 if bias is None else np.asarray(bias, np.int64))
    return _requantize(acc, q, p.output_offset, p.act_min, p.act_max)


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
