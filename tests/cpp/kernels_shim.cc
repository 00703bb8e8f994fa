// extern "C" entry points over firmware/runtime/kernels for tests/test_kernels.py (ctypes).
// Parameter structs are passed by pointer with the layout of kernels.h; ChannelQuant as two arrays.
#include "kernels.h"

extern "C" {

void shim_multiply_by_quantized_multiplier(const int32_t* x, const int32_t* multiplier,
                                           const int32_t* shift, int32_t* out, int32_t n) {
  for (int32_t i = 0; i < n; ++i) {
    out[i] = odt::multiply_by_quantized_multiplier(x[i], multiplier[i], shift[i]);
  }
}

void shim_conv2d_s8(const odt::ConvParams* p, const int32_t* multiplier, const int32_t* shift,
                    const odt::Dims* in, const int8_t* input, const odt::Dims* filter,
                    const int8_t* weights, const int32_t* bias, const odt::Dims* out,
                    int8_t* output) {
  odt::conv2d_s8(*p, {multiplier, shift}, *in, input, *filter, weights, bias, *out, output);
}

void shim_depthwise_conv2d_s8(const odt::ConvParams* p, const int32_t* multiplier,
                              const int32_t* shift, const odt::Dims* in, const int8_t* input,
                              const odt::Dims* filter, const int8_t* weights,
                              const int32_t* bias, const odt::Dims* out, int8_t* output) {
  odt::depthwise_conv2d_s8(*p, {multiplier, shift}, *in, input, *filter, weights, bias, *out,
                           output);
}

void shim_fully_connected_s8(const odt::FcParams* p, const int32_t* multiplier,
                             const int32_t* shift, int32_t batches, int32_t in_features,
                             const int8_t* input, int32_t out_features, const int8_t* weights,
                             const int32_t* bias, int8_t* output) {
  odt::fully_connected_s8(*p, {multiplier, shift}, batches, in_features, input, out_features,
                          weights, bias, output);
}

void shim_mean_hw_s8(const odt::MeanParams* p, const odt::Dims* in, const int8_t* input,
                     int8_t* output) {
  odt::mean_hw_s8(*p, *in, input, output);
}

void shim_pad_s8(const odt::PadParams* p, const odt::Dims* in, const int8_t* input,
                 const odt::Dims* out, int8_t* output) {
  odt::pad_s8(*p, *in, input, *out, output);
}

void shim_add_s8(const odt::AddParams* p, int32_t size, const int8_t* input1,
                 const int8_t* input2, int8_t* output) {
  odt::add_s8(*p, size, input1, input2, output);
}

void shim_avg_pool2d_s8(const odt::PoolParams* p, const odt::Dims* in, const int8_t* input,
                        const odt::Dims* out, int8_t* output) {
  odt::avg_pool2d_s8(*p, *in, input, *out, output);
}

void shim_max_pool2d_s8(const odt::PoolParams* p, const odt::Dims* in, const int8_t* input,
                        const odt::Dims* out, int8_t* output) {
  odt::max_pool2d_s8(*p, *in, input, *out, output);
}

void shim_softmax_s8(const odt::SoftmaxParams* p, int32_t rows, int32_t depth,
                     const int8_t* input, int8_t* output) {
  odt::softmax_s8(*p, rows, depth, input, output);
}

void shim_quantize_f32_s8(const odt::QuantizeParams* p, int32_t size, const float* input,
                          int8_t* output) {
  odt::quantize_f32_s8(*p, size, input, output);
}

void shim_requantize_s8(const odt::RequantizeParams* p, int32_t size, const int8_t* input,
                        int8_t* output) {
  odt::requantize_s8(*p, size, input, output);
}

void shim_dequantize_s8_f32(const odt::DequantizeParams* p, int32_t size, const int8_t* input,
                            float* output) {
  odt::dequantize_s8_f32(*p, size, input, output);
}

}  // extern "C"
