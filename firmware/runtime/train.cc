#include "train.h"

#include <string.h>

#include "grad_ops.h"

namespace odt {

namespace {

int32_t elements(const Dims& d) { return d.n * d.h * d.w * d.c; }

int16_t* grad_at(const ModelDesc& m, int32_t offset) { return reinterpret_cast<int16_t*>(m.arena + offset); }

// dL/dx of a conv or depthwise layer from g (the accumulator's gradient), normalized into gx.
int32_t conv_input_grad(const OpDesc& op, const int16_t* g, int32_t e, int64_t* scratch, int16_t* gx) {
  const Dims& in = op.in;
  const bool depthwise = op.kind == kOpDepthwiseConv2D;
  auto row = [&](int32_t pos, int64_t* acc) {
    const int32_t iy = pos / in.w, ix = pos % in.w;
    if (depthwise) depthwise_conv2d_grad_input_at(op.conv, in, op.filter, op.weights, op.out, g, iy, ix, acc);
    else conv2d_grad_input_at(op.conv, in, op.filter, op.weights, op.slice, op.out, g, iy, ix, acc);
  };
  return grad_normalize_rows_s16(row, in.h * in.w, in.c, e, scratch, gx);
}

// dL/dx of a fully connected layer, one input feature at a time (no scratch).
int32_t fc_input_grad(const OpDesc& op, const int16_t* g, int32_t e, int16_t* gx) {
  const int32_t in = elements(op.in), out = elements(op.out);
  auto row = [&](int32_t i, int64_t* acc) { *acc = fully_connected_grad_input_at(in, out, op.weights, op.slice, g, i); };
  int64_t one;
  return grad_normalize_rows_s16(row, in, 1, e, &one, gx);
}

// Weight gradients of the kept channels / rows, each applied the moment it is summed.
void update_weights(const OpDesc& op, const LayerUpdate& u, const int8_t* x, const int16_t* g, int32_t e,
                    uint32_t key, int64_t* acc) {
  const int32_t nc = u.n_channels;
  if (op.kind == kOpFullyConnected) {
    const int32_t in = elements(op.in), out = elements(op.out);
    for (int32_t o = 0; o < out; ++o) {
      for (int32_t c = 0; c < nc; ++c) {
        const int64_t grad = fully_connected_grad_weight(g[o], x[c], op.fc.input_offset);
        int8_t* w = u.weights + (u.sliced ? o * nc + c : o * in + u.channels[c]);
        *w = static_cast<int8_t>(apply_update(*w, grad, e, u.w_mult[o], u.w_exp[o], -127, 127,
                                              uniform32(key, static_cast<uint32_t>(o * nc + c)), true));
      }
    }
    return;
  }
  const Dims& f = op.filter;
  const bool depthwise = op.kind == kOpDepthwiseConv2D;
  const int32_t n_out = depthwise ? 1 : f.n;
  for (int32_t o = 0; o < n_out; ++o) {
    for (int32_t r = 0; r < u.n_rows; ++r) {
      for (int32_t kx = 0; kx < f.w; ++kx) {
        if (depthwise) {
          depthwise_conv2d_grad_weight_at(op.conv, op.in, x, u.channels, nc, op.out, g, u.rows[r], kx, acc);
        } else {
          conv2d_grad_weight_at(op.conv, op.in, x, nc, op.out, g, o, u.rows[r], kx, acc);
        }
        for (int32_t c = 0; c < nc; ++c) {
          const int32_t ch = u.channels[c];
          const int32_t m = depthwise ? ch : o;   // the output channel of the multiplier
          const uint32_t flat = static_cast<uint32_t>(((o * u.n_rows + r) * f.w + kx) * nc + c);
          int8_t* w = u.weights + (u.sliced ? flat : ((o * f.h + u.rows[r]) * f.w + kx) * f.c + ch);
          *w = static_cast<int8_t>(apply_update(*w, acc[c], e, u.w_mult[m], u.w_exp[m], -127, 127,
                                                uniform32(key, flat), true));
        }
      }
    }
  }
}

void update_bias(const LayerUpdate& u, const int16_t* g, int32_t positions, int32_t channels, int32_t e) {
  for (int32_t c = 0; c < channels; ++c) {
    u.bias[c] = static_cast<int32_t>(apply_update(u.bias[c], bias_grad_at(g, positions, channels, c), e,
                                                  u.b_mult[c], u.b_exp[c], INT32_MIN, INT32_MAX, 0, false));
  }
}

void apply_mask(int16_t* g, const uint8_t* bits, int32_t count) {
  for (int32_t i = 0; i < count; ++i) {
    if (!((bits[i >> 3] >> (i & 7)) & 1)) g[i] = 0;
  }
}

// Hands gradient `value` (exponent e, count values) to input j: written in place, or added to
// the gradient that input already holds.
void deliver(const ModelDesc& m, const Training& t, const BackStep& s, int32_t j, int32_t e, int32_t count) {
  if (!s.accumulate[j]) {
    t.exponents[s.gx[j].slot] = e;
    return;
  }
  int16_t* into = grad_at(m, s.gx[j].offset);
  int32_t& into_e = t.exponents[s.gx[j].slot];
  into_e = grad_add_s16(into, into_e, grad_at(m, s.tmp), e, count, into);
}

// Where input j's new gradient goes: its own buffer, or the temporary when it already holds one.
int16_t* target(const ModelDesc& m, const BackStep& s, int32_t j) {
  return grad_at(m, s.accumulate[j] ? s.tmp : s.gx[j].offset);
}

}  // namespace

void training_reset(const ModelDesc& m, const Training& t) {
  for (int32_t i = 0; i < t.n_params; ++i) {
    if (t.params[i].src) memcpy(t.params[i].dst, t.params[i].src, static_cast<size_t>(t.params[i].bytes));
  }
  for (int32_t i = 0; i < m.num_ops; ++i) {   // slices: gathered from the flash weights they overlay
    const OpDesc& op = m.ops[i];
    const WeightSlice* sl = op.slice;
    if (sl == nullptr) continue;
    const int32_t outs = op.kind == kOpFullyConnected ? elements(op.out) : op.filter.n;
    const int32_t taps = op.kind == kOpFullyConnected ? 1 : op.filter.w, depth = op.kind == kOpFullyConnected ? elements(op.in) : op.filter.c;
    const int32_t height = op.kind == kOpFullyConnected ? 1 : op.filter.h;
    int8_t* v = sl->values;
    for (int32_t o = 0; o < outs; ++o) {
      for (int32_t r = 0; r < sl->n_rows; ++r) {
        for (int32_t kx = 0; kx < taps; ++kx) {
          const int8_t* w = op.weights + ((o * height + sl->rows[r]) * taps + kx) * depth;
          for (int32_t k = 0; k < sl->n_channels; ++k) *v++ = w[sl->channels[k]];
        }
      }
    }
  }
}

int32_t training_param_bytes(const Training* t) {
  int32_t total = 0;
  for (int32_t i = 0; t != nullptr && i < t->n_params; ++i) total += t->params[i].bytes;
  return total;
}

int32_t backward_scratch_bytes(const OpDesc& op, const BackStep& s) {
  if (s.kind != kBackLayer || op.kind == kOpFullyConnected) return 0;
  int32_t bytes = s.gx[0].offset >= 0 ? 8 * op.in.c : 0;
  const int32_t weights = s.update && s.update->weights ? 8 * s.update->n_channels : 0;
  return weights > bytes ? weights : bytes;
}

int32_t training_check(const ModelDesc& m, const Training& t) {
  for (int32_t k = 0; k < t.n_steps; ++k) {
    if (t.steps[k].scratch_bytes < backward_scratch_bytes(m.ops[t.steps[k].op], t.steps[k])) return k;
  }
  return -1;
}

void forward_with_saves(const ModelDesc& m, const Training* t) {
  int32_t next = 0;
  for (int32_t i = 0; i < m.num_ops; ++i) {
    invoke_op(m, i);
    for (; t != nullptr && next < t->n_saves && t->saves[next].after_op == i; ++next) {
      const SaveDesc& s = t->saves[next];
      const int8_t* src = m.arena + s.src;
      uint8_t* dst = reinterpret_cast<uint8_t*>(m.arena + s.dst);
      if (s.kind == kSaveMask) {
        memset(dst, 0, static_cast<size_t>((s.count + 7) / 8));
        for (int32_t k = 0; k < s.count; ++k) {
          if (src[k] > s.act_min && src[k] < s.act_max) dst[k >> 3] |= static_cast<uint8_t>(1u << (k & 7));
        }
      } else {
        for (int32_t p = 0; p < s.count; ++p) {
          for (int32_t c = 0; c < s.n_channels; ++c) dst[p * s.n_channels + c] = static_cast<uint8_t>(src[p * s.stride + s.channels[c]]);
        }
      }
    }
  }
}

void train_step(const ModelDesc& m, const Training& t, int32_t label, int64_t step) {
  for (int32_t k = 0; k < t.n_steps; ++k) {
    const BackStep& s = t.steps[k];
    const OpDesc& op = m.ops[s.op];
    int16_t* g = grad_at(m, s.g.offset);
    int32_t& e = t.exponents[s.g.slot];
    int64_t* scratch = s.scratch < 0 ? nullptr : reinterpret_cast<int64_t*>(m.arena + s.scratch);
    const uint8_t* mask = s.mask < 0 ? nullptr : reinterpret_cast<const uint8_t*>(m.arena + s.mask);
    const int32_t count = elements(op.out), in_count = elements(op.in);
    switch (s.kind) {
      case kBackLoss:
        e = softmax_ce_grad_s16(m.arena + t.logits_offset, t.num_classes, label, t.exp_table, t.table_size, g);
        e = grad_scale_s16(g, t.num_classes, 1, e, &s.mult[0], &s.shift[0], g);
        break;
      case kBackLayer: {
        if (mask) apply_mask(g, mask, count);
        e = grad_scale_s16(g, count, op.out.c, e, op.quant.multiplier, op.quant.shift, g);
        if (s.gx[0].offset >= 0) {   // with the weights as they were in the forward: before the update
          const int32_t ex = op.kind == kOpFullyConnected ? fc_input_grad(op, g, e, target(m, s, 0))
                                                          : conv_input_grad(op, g, e, scratch, target(m, s, 0));
          deliver(m, t, s, 0, ex, in_count);
        }
        if (s.update == nullptr) break;
        const LayerUpdate& u = *s.update;
        if (u.weights != nullptr) {
          const uint32_t key = uniform32_key(t.seed, step, u.stream);
          update_weights(op, u, m.arena + u.saved_x, g, e, key, scratch);
        }
        if (u.bias != nullptr) update_bias(u, g, count / op.out.c, op.out.c, e);
        break;
      }
      case kBackAdd:
        if (mask) apply_mask(g, mask, count);
        for (int32_t j = 0; j < 2; ++j) {
          if (s.gx[j].offset < 0) continue;
          deliver(m, t, s, j, grad_scale_s16(g, count, 1, e, &s.mult[j], &s.shift[j], target(m, s, j)), count);
        }
        break;
      case kBackMean:
        deliver(m, t, s, 0,
                mean_hw_grad_input_s16(g, op.in.c, e, s.mult[0], s.shift[0], op.in.h, op.in.w, target(m, s, 0)),
                in_count);
        break;
      case kBackPad:
        pad_grad_input_s16(op.pad, op.in, op.out, g, target(m, s, 0));
        deliver(m, t, s, 0, e, in_count);
        break;
      case kBackCopy:
        memcpy(target(m, s, 0), g, sizeof(int16_t) * static_cast<size_t>(count));
        deliver(m, t, s, 0, e, count);
        break;
    }
  }
}

}  // namespace odt
