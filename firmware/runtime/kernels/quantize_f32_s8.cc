// quantize_f32_s8: TFLM's QUANTIZE of float32 to int8 (reference_ops::AffineQuantize as this
// TFLM build computes it): q = x / scale in float32, rounded half away from zero, + zero_point,
// clamped to int8. Single precision only: no double, no libm.
#include "kernels.h"

namespace odt {

void quantize_f32_s8(const QuantizeParams& p, int32_t size, const float* input, int8_t* output) {
  for (int32_t i = 0; i < size; ++i) {
    float q = input[i] / p.scale;
    // Beyond +-512 every result clamps; bounding q first keeps the int conversion defined.
    q = q > 512.0f ? 512.0f : (q < -512.0f ? -512.0f : q);
    int32_t v = static_cast<int32_t>(q);             // truncates towards zero
    const float frac = q - static_cast<float>(v);  // exact for |q| <= 512
    if (frac >= 0.5f) ++v;
    if (frac <= -0.5f) --v;
    v += p.zero_point;
    output[i] = static_cast<int8_t>(v < -128 ? -128 : (v > 127 ? 127 : v));
  }
}

}  // namespace odt
