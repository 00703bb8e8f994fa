// Equivalence test of the tuned int8 kernels (tests/test_kernels_dsp.py).
// Runs pseudo-random cases (fixed seed) through conv2d_s8, depthwise_conv2d_s8 and
// fully_connected_s8 and through their <name>_plain reference loops, then reports over the
// UART one JSON line per kernel and one timing line, and exits with status 0:
//   {"kernel": "conv2d_s8", "dsp": 1, "cases": 1200, "mismatches": 0, "checksum": N}
//   {"bench": "dscnn", "tick_hz": N, "pointwise": [plain, tuned], ...}
// dsp: 1 where the DSP paths are compiled in (ODT_KERNELS_DSP); elsewhere both calls run the plain
// path. checksum: FNV-1a over every output of the tuned path, the same on every board.
// A case mismatches if any byte of the whole output buffer differs (catching writes past the
// output too). Inputs and weights start at random byte offsets (unaligned word loads).
// bench: hal_ticks for DS-CNN's layer shapes, plain and tuned; under QEMU with -icount shift=0 a
// tick is 40 instructions.
#include <stdio.h>
#include <string.h>

#include "hal.h"
#include "kernels/dsp_s8.h"
#include "kernels/kernels.h"

namespace {

using namespace odt;

constexpr int32_t kCases = 1200;  // per kernel
constexpr int32_t kMaxChannels = 64;
int8_t g_input[16384], g_weights[16384];
int8_t g_out_plain[16384], g_out_tuned[16384];
int32_t g_bias[kMaxChannels], g_mult[kMaxChannels], g_shift[kMaxChannels];

uint32_t g_rng = 12345u;  // xorshift32, the same sequence on every board

uint32_t next() {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 17;
  g_rng ^= g_rng << 5;
  return g_rng;
}

// Uniform in [lo, hi].
int32_t uniform(int32_t lo, int32_t hi) {
  return lo + static_cast<int32_t>(next() % static_cast<uint32_t>(hi - lo + 1));
}

// n int8 values: uniform, or only the extremes -128 / 127 in one case of four (largest sums).
void fill(int8_t* p, int32_t n) {
  const bool extremes = uniform(0, 3) == 0;
  for (int32_t i = 0; i < n; ++i) {
    p[i] = static_cast<int8_t>(extremes ? (next() & 1 ? 127 : -128) : uniform(-128, 127));
  }
}

int32_t ilog2(int32_t v) {
  int32_t r = 0;
  while (v >>= 1) ++r;
  return r;
}

// Per-channel requantization, scaled so that a dot product of `terms` products mostly lands
// inside int8 (clamps alone would hide accumulator differences); an occasional zero multiplier.
ChannelQuant random_quant(int32_t channels, int32_t terms) {
  for (int32_t c = 0; c < channels; ++c) {
    g_mult[c] = uniform(0, 63) == 0 ? 0 : static_cast<int32_t>(0x40000000u | (next() >> 2));
    g_shift[c] = -(7 + ilog2(terms) / 2) + uniform(-2, 2);
    g_bias[c] = uniform(-100000, 100000);
  }
  return {g_mult, g_shift};
}

void random_clamp(int32_t* act_min, int32_t* act_max) {
  const bool clamp = uniform(0, 1) == 0;
  *act_min = clamp ? uniform(-128, 0) : -128;
  *act_max = clamp ? uniform(0, 127) : 127;
}

struct Result {
  int32_t cases = 0, mismatches = 0;
  uint32_t checksum = 2166136261u;
};

// Compares the two output buffers after a case; both were filled with the same sentinel before.
void check(Result& r, int32_t out_bytes) {
  ++r.cases;
  if (memcmp(g_out_plain, g_out_tuned, sizeof(g_out_plain)) != 0) ++r.mismatches;
  for (int32_t i = 0; i < out_bytes; ++i) {
    r.checksum = (r.checksum ^ static_cast<uint8_t>(g_out_tuned[i])) * 16777619u;
  }
}

void clear_outputs() {
  memset(g_out_plain, 0x5A, sizeof(g_out_plain));
  memset(g_out_tuned, 0x5A, sizeof(g_out_tuned));
}

// Output size along one dimension for padding `before` + `after`; < 1 if the filter does not fit.
int32_t out_size(int32_t in, int32_t filter, int32_t stride, int32_t dilation, int32_t before,
                 int32_t after) {
  return (in + before + after - dilation * (filter - 1) - 1) / stride + 1;
}

// Random geometry shared by conv and depthwise: strides 1/2, dilations 1/2, any padding.
// (Depthwise: multipliers 1, 2, 3, 4, 8 and 12.)
bool random_geometry(ConvParams& p, Dims& in, Dims& filter, Dims& out) {
  in.n = uniform(1, 2), in.h = uniform(1, 9), in.w = uniform(1, 9);
  filter.h = uniform(1, 4), filter.w = uniform(1, 4);
  p.stride_h = uniform(1, 2), p.stride_w = uniform(1, 2);
  p.dilation_h = uniform(0, 3) == 0 ? 2 : 1, p.dilation_w = uniform(0, 3) == 0 ? 2 : 1;
  p.pad_h = uniform(0, p.dilation_h * (filter.h - 1));
  p.pad_w = uniform(0, p.dilation_w * (filter.w - 1));
  out.n = in.n;
  out.h = out_size(in.h, filter.h, p.stride_h, p.dilation_h, p.pad_h,
                   uniform(0, p.dilation_h * (filter.h - 1)));
  out.w = out_size(in.w, filter.w, p.stride_w, p.dilation_w, p.pad_w,
                   uniform(0, p.dilation_w * (filter.w - 1)));
  p.input_offset = uniform(-127, 128);
  p.output_offset = uniform(-128, 127);
  random_clamp(&p.act_min, &p.act_max);
  return out.h >= 1 && out.w >= 1;
}

Result test_conv() {
  Result r;
  while (r.cases < kCases) {
    ConvParams p{};
    Dims in, filter, out;
    if (!random_geometry(p, in, filter, out)) continue;
    in.c = uniform(0, 1) ? uniform(1, 9) : uniform(10, 40);  // odd and small, or wide
    out.c = uniform(1, 17);
    filter.n = out.c, filter.c = in.c;
    const int32_t shift_in = uniform(0, 3), shift_w = uniform(0, 3);
    int8_t* x = g_input + shift_in;
    int8_t* w = g_weights + shift_w;
    const int32_t in_bytes = in.n * in.h * in.w * in.c;
    const int32_t w_bytes = out.c * filter.h * filter.w * in.c;
    if (in_bytes + 3 > int32_t(sizeof(g_input)) || w_bytes + 3 > int32_t(sizeof(g_weights)) ||
        out.n * out.h * out.w * out.c > int32_t(sizeof(g_out_plain))) {
      continue;
    }
    fill(x, in_bytes);
    fill(w, w_bytes);
    const ChannelQuant q = random_quant(out.c, filter.h * filter.w * in.c);
    const int32_t* bias = uniform(0, 7) == 0 ? nullptr : g_bias;
    clear_outputs();
    conv2d_s8_plain(p, q, in, x, filter, w, bias, out, g_out_plain);
    conv2d_s8(p, q, in, x, filter, w, bias, out, g_out_tuned);
    check(r, out.n * out.h * out.w * out.c);
  }
  return r;
}

Result test_depthwise() {
  Result r;
  while (r.cases < kCases) {
    ConvParams p{};
    Dims in, filter, out;
    if (!random_geometry(p, in, filter, out)) continue;
    static const int32_t kMultipliers[] = {1, 1, 1, 1, 2, 3, 4, 8, 12};
    p.depth_multiplier = kMultipliers[uniform(0, 8)];
    in.c = p.depth_multiplier > 1 ? uniform(1, 5) : uniform(0, 1) ? uniform(1, 9) : uniform(10, 32);
    out.c = in.c * p.depth_multiplier;
    filter.n = 1, filter.c = out.c;
    const int32_t shift_in = uniform(0, 3), shift_w = uniform(0, 3);
    int8_t* x = g_input + shift_in;
    int8_t* w = g_weights + shift_w;
    const int32_t in_bytes = in.n * in.h * in.w * in.c;
    if (out.n * out.h * out.w * out.c > int32_t(sizeof(g_out_plain))) continue;
    fill(x, in_bytes);
    fill(w, filter.h * filter.w * out.c);
    const ChannelQuant q = random_quant(out.c, filter.h * filter.w);
    const int32_t* bias = uniform(0, 7) == 0 ? nullptr : g_bias;
    clear_outputs();
    depthwise_conv2d_s8_plain(p, q, in, x, filter, w, bias, out, g_out_plain);
    depthwise_conv2d_s8(p, q, in, x, filter, w, bias, out, g_out_tuned);
    check(r, out.n * out.h * out.w * out.c);
  }
  return r;
}

Result test_fully_connected() {
  Result r;
  while (r.cases < kCases) {
    FcParams p{};
    p.input_offset = uniform(-127, 128);
    p.output_offset = uniform(-128, 127);
    random_clamp(&p.act_min, &p.act_max);
    const int32_t batches = uniform(1, 3);
    const int32_t in_features = uniform(0, 1) ? uniform(1, 12) : uniform(13, 300);
    const int32_t out_features = uniform(1, 40);
    int8_t* x = g_input + uniform(0, 3);
    int8_t* w = g_weights + uniform(0, 3);
    fill(x, batches * in_features);
    fill(w, out_features * in_features);
    // Per-tensor (one pair repeated, as bake does) or per-channel.
    const ChannelQuant q = random_quant(out_features, in_features);
    if (uniform(0, 1) == 0) {
      for (int32_t o = 1; o < out_features; ++o) g_mult[o] = g_mult[0], g_shift[o] = g_shift[0];
    }
    const int32_t* bias = uniform(0, 7) == 0 ? nullptr : g_bias;
    clear_outputs();
    fully_connected_s8_plain(p, q, batches, in_features, x, out_features, w, bias, g_out_plain);
    fully_connected_s8(p, q, batches, in_features, x, out_features, w, bias, g_out_tuned);
    check(r, batches * out_features);
  }
  return r;
}

void print(const char* line, int n) {
  hal_write(reinterpret_cast<const uint8_t*>(line), static_cast<size_t>(n));
}

void report(const char* kernel, const Result& r) {
  char line[160];
  print(line, snprintf(line, sizeof(line),
                       "{\"kernel\": \"%s\", \"dsp\": %d, \"cases\": %ld, \"mismatches\": %ld, "
                       "\"checksum\": %lu}\n",
                       kernel, ODT_KERNELS_DSP, static_cast<long>(r.cases),
                       static_cast<long>(r.mismatches), static_cast<unsigned long>(r.checksum)));
}

// hal_ticks() of one call of plain and one of tuned.
template <typename Plain, typename Tuned>
void time_both(Plain plain, Tuned tuned, unsigned long ticks[2]) {
  uint32_t t0 = hal_ticks();
  plain();
  uint32_t t1 = hal_ticks();
  tuned();
  uint32_t t2 = hal_ticks();
  ticks[0] = t1 - t0, ticks[1] = t2 - t1;
}

// The layers of DS-CNN (MLPerf Tiny KWS) as bake lowers them: the input layer, a 10x4 stride-2
// depthwise conv with multiplier 64 on the padded 59x12x1 MFCCs, one 3x3 depthwise and one
// pointwise conv at 25x5x64, the 64 -> 12 classifier.
void bench() {
  fill(g_input, 25 * 5 * 64);
  fill(g_weights, 64 * 64);
  const ChannelQuant q = random_quant(64, 64);
  unsigned long first[2], dw[2], pw[2], fc[2];
  ConvParams p{};
  p.input_offset = 3, p.output_offset = -5, p.act_min = -128, p.act_max = 127;
  p.stride_h = p.stride_w = 2, p.dilation_h = p.dilation_w = 1, p.depth_multiplier = 64;
  const Dims mfcc{1, 59, 12, 1}, feat{1, 25, 5, 64}, in_f{1, 10, 4, 64};
  const Dims dw_f{1, 3, 3, 64}, pw_f{64, 1, 1, 64};
  const int32_t* b = g_bias;
  int8_t *y0 = g_out_plain, *y1 = g_out_tuned;
  time_both([&] { depthwise_conv2d_s8_plain(p, q, mfcc, g_input, in_f, g_weights, b, feat, y0); },
            [&] { depthwise_conv2d_s8(p, q, mfcc, g_input, in_f, g_weights, b, feat, y1); }, first);
  p.stride_h = p.stride_w = 1, p.pad_h = p.pad_w = 1, p.depth_multiplier = 1;
  time_both([&] { depthwise_conv2d_s8_plain(p, q, feat, g_input, dw_f, g_weights, b, feat, y0); },
            [&] { depthwise_conv2d_s8(p, q, feat, g_input, dw_f, g_weights, b, feat, y1); }, dw);
  p.pad_h = p.pad_w = 0;
  time_both([&] { conv2d_s8_plain(p, q, feat, g_input, pw_f, g_weights, b, feat, y0); },
            [&] { conv2d_s8(p, q, feat, g_input, pw_f, g_weights, b, feat, y1); }, pw);
  const FcParams f{3, -5, -128, 127};
  time_both([&] { fully_connected_s8_plain(f, q, 1, 64, g_input, 12, g_weights, b, y0); },
            [&] { fully_connected_s8(f, q, 1, 64, g_input, 12, g_weights, b, y1); }, fc);
  char line[256];
  print(line, snprintf(line, sizeof(line),
                       "{\"bench\": \"dscnn\", \"tick_hz\": %lu, "
                       "\"depthwise_10x4_x64\": [%lu, %lu], \"depthwise_3x3\": [%lu, %lu], "
                       "\"pointwise\": [%lu, %lu], "
                       "\"fully_connected\": [%lu, %lu]}\n",
                       static_cast<unsigned long>(hal_ticks_per_second()), first[0], first[1],
                       dw[0], dw[1], pw[0], pw[1], fc[0], fc[1]));
}

}  // namespace

int main(int argc, char** argv) {
  hal_init(argc, argv);
  report("conv2d_s8", test_conv());
  report("depthwise_conv2d_s8", test_depthwise());
  report("fully_connected_s8", test_fully_connected());
  bench();
  hal_exit(0);
}
