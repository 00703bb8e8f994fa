// Int8 inference kernels with TensorFlow Lite Micro's reference integer arithmetic.
//
// Every kernel is a pure function: the caller owns all memory, nothing allocates, nothing
// keeps state. Tensors are NHWC int8. Quantization parameters are computed once at bake
// time (model_prep/bake.py) and travel in the small structs below. Each kernel is mirrored
// one-to-one by a PyTorch function in model_prep/int8_ops.py; tests/test_kernels.py proves
// the two and the tflite-micro interpreter equal bit for bit. Float32 appears only in
// quantize_f32_s8's input and dequantize_s8_f32's output, in single precision.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace odt {

// Shape of an NHWC tensor. Filters use the same struct: conv OHWI as {o, h, w, i},
// depthwise 1HWC as {1, h, w, c}.
struct Dims {
  int32_t n, h, w, c;
};

// Per-output-channel requantization. The real multiplier s_in * s_w[c] / s_out equals
// multiplier[c] * 2^(shift[c] - 31), with multiplier[c] in [2^30, 2^31) (or 0) and
// shift[c] in [-31, 30], exactly as TFLite's QuantizeMultiplier computes it.
// A per-tensor quantized layer simply repeats the same pair for every channel.
struct ChannelQuant {
  const int32_t* multiplier;
  const int32_t* shift;
};

// The trained part of a conv's or fully connected layer's weights, kept in SRAM while the rest
// stays in flash: the values of the selected channels (the weight's last axis) and kernel rows,
// [O][n_rows][KW][n_channels] for a conv (OHWI), [O][n_channels] for a fully connected layer
// (n_rows 1). Where they fall, they replace the flash tensor's values.
struct WeightSlice {
  int8_t* values;
  const int32_t* channels;
  int32_t n_channels;
  const int32_t* rows;
  int32_t n_rows;
  const int16_t* slot;   // per channel of the last axis: its index in `channels`, or -1
};

// CONV_2D and DEPTHWISE_CONV_2D.
struct ConvParams {
  int32_t input_offset;      // minus the input zero point, in [-127, 128]
  int32_t output_offset;     // the output zero point, in [-128, 127]
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_h, pad_w;      // padding before the first row / column (SAME or VALID resolved at bake)
  int32_t depth_multiplier;  // depthwise only: output channels per input channel
  int32_t act_min, act_max;  // fused activation as a clamp in the output's int8 domain
};

// FULLY_CONNECTED: output[b][o] = requant(sum_i w[o][i] * (x[b][i] + input_offset) + bias[o]).
struct FcParams {
  int32_t input_offset;   // minus the input zero point
  int32_t output_offset;  // the output zero point
  int32_t act_min, act_max;
};

// MEAN over H and W of an NHWC tensor (keep_dims either way: the output is N x C).
// TFLM (this build) takes one integer path for every int8 MEAN, whether or not input and output
// quantization are identical: sum(x - zp_in) times QuantizeMultiplier(s_in / s_out) with
// 1 / (H * W) folded into the multiplier by the kernel, plus zp_out, clamped.
struct MeanParams {
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t multiplier;  // QuantizeMultiplier(double(s_in) / double(s_out)), as ChannelQuant
  int32_t shift;
};

// PAD with a constant: before[d] / after[d] elements on each side of dimension d (N, H, W, C).
struct PadParams {
  int32_t before[4];
  int32_t after[4];
  int8_t pad_value;  // the output zero point unless the model gives a constant
};

// ADD of two int8 tensors of the same shape (reference_integer_ops::Add): each input plus its
// offset, times 2^left_shift, is rescaled to the common scale 2 max(s1, s2); the sum is rescaled
// to the output. Every multiplier is QuantizeMultiplier's, with shift in [-31, 0].
struct AddParams {
  int32_t input1_offset;      // minus the first input's zero point, in [-127, 128]
  int32_t input2_offset;      // minus the second input's zero point
  int32_t output_offset;      // the output zero point
  int32_t left_shift;         // 20 for int8
  int32_t input1_multiplier;  // s1 / (2 max(s1, s2))
  int32_t input1_shift;
  int32_t input2_multiplier;  // s2 / (2 max(s1, s2))
  int32_t input2_shift;
  int32_t output_multiplier;  // 2 max(s1, s2) / (2^left_shift s_out)
  int32_t output_shift;
  int32_t act_min, act_max;   // fused activation as a clamp in the output's int8 domain
};

// AVERAGE_POOL_2D and MAX_POOL_2D (input and output share quantization: no rescale). The window
// is clipped to the input: an average divides by the taps inside it, rounding half away from 0.
struct PoolParams {
  int32_t stride_h, stride_w;
  int32_t filter_h, filter_w;
  int32_t pad_h, pad_w;      // padding before the first row / column (SAME or VALID resolved)
  int32_t act_min, act_max;  // fused activation as a clamp in the output's int8 domain
};

// SOFTMAX of int8 over the innermost dimension (reference_ops::Softmax with gemmlowp's
// fixed-point exp): output scale 1/256, zero point -128.
struct SoftmaxParams {
  // QuantizeMultiplier(min(beta * s_in * 2^26, 2^31 - 1)), shift >= 0: (x - max) becomes Q5.26.
  int32_t input_multiplier;
  int32_t input_left_shift;
  int32_t diff_min;          // x - max below this contributes exp = 0 (output -128)
};

// QUANTIZE float32 -> int8 (reference_ops::AffineQuantize as this TFLM computes it):
// q = round(x / scale) in float32, ties away from zero, + zero_point, clamped.
struct QuantizeParams {
  float scale;  // the output scale
  int32_t zero_point;
};

// QUANTIZE int8 -> int8 (reference_ops::Requantize).
struct RequantizeParams {
  int32_t input_zero_point;
  int32_t output_zero_point;
  int32_t multiplier;  // QuantizeMultiplier(double(s_in) / double(s_out)), as ChannelQuant
  int32_t shift;
};

// DEQUANTIZE int8 -> float32: scale * (q - zero_point), one float32 rounding.
struct DequantizeParams {
  float scale;  // the input scale
  int32_t zero_point;
};

// Reference integer multiply of TFLite: round(x * multiplier * 2^(shift - 31)) with
// TFLite's rounding (saturating rounding doubling high multiply, then rounding right shift).
int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);

// conv2d_s8, depthwise_conv2d_s8 and fully_connected_s8 take a tuned path on Cortex-M targets
// with the DSP extension (SIMD multiply-accumulate; not with -DODT_PLAIN_KERNELS) and are their
// <name>_plain reference loop elsewhere; both give the same bits (firmware/tests/kernels_dsp).
void conv2d_s8(const ConvParams& p, const ChannelQuant& q, const Dims& in, const int8_t* input,
               const Dims& filter, const int8_t* weights, const int32_t* bias, const Dims& out,
               int8_t* output, const WeightSlice* slice = nullptr);
// With a slice, the weights are the flash tensor overlaid with it (weight_slice.h).
void conv2d_s8_plain(const ConvParams& p, const ChannelQuant& q, const Dims& in,
                     const int8_t* input, const Dims& filter, const int8_t* weights,
                     const int32_t* bias, const Dims& out, int8_t* output,
                     const WeightSlice* slice = nullptr);

void depthwise_conv2d_s8(const ConvParams& p, const ChannelQuant& q, const Dims& in,
                         const int8_t* input, const Dims& filter, const int8_t* weights,
                         const int32_t* bias, const Dims& out, int8_t* output);
void depthwise_conv2d_s8_plain(const ConvParams& p, const ChannelQuant& q, const Dims& in,
                               const int8_t* input, const Dims& filter, const int8_t* weights,
                               const int32_t* bias, const Dims& out, int8_t* output);

void fully_connected_s8(const FcParams& p, const ChannelQuant& q, int32_t batches,
                        int32_t in_features, const int8_t* input, int32_t out_features,
                        const int8_t* weights, const int32_t* bias, int8_t* output,
                        const WeightSlice* slice = nullptr);
void fully_connected_s8_plain(const FcParams& p, const ChannelQuant& q, int32_t batches,
                              int32_t in_features, const int8_t* input, int32_t out_features,
                              const int8_t* weights, const int32_t* bias, int8_t* output,
                              const WeightSlice* slice = nullptr);

void mean_hw_s8(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output);

void pad_s8(const PadParams& p, const Dims& in, const int8_t* input, const Dims& out,
            int8_t* output);

void add_s8(const AddParams& p, int32_t size, const int8_t* input1, const int8_t* input2,
            int8_t* output);

void avg_pool2d_s8(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                   int8_t* output);

void max_pool2d_s8(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                   int8_t* output);

// rows x depth: softmax over each row of `depth` values.
void softmax_s8(const SoftmaxParams& p, int32_t rows, int32_t depth, const int8_t* input,
                int8_t* output);

void quantize_f32_s8(const QuantizeParams& p, int32_t size, const float* input, int8_t* output);

void requantize_s8(const RequantizeParams& p, int32_t size, const int8_t* input, int8_t* output);

void dequantize_s8_f32(const DequantizeParams& p, int32_t size, const int8_t* input,
                       float* output);

}  // namespace odt
