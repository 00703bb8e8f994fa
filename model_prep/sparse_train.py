"""Sparse-update training on the integer simulator, as the device will do it.

    from model_prep.sparse_train import SparseTrainer, TrainConfig
    t = SparseTrainer("build/kws/dscnn.tflite", scheme, TrainConfig(lr=0.05, batch_size=1))
    t.fit(x_int8, y)                  # SGD over the data (batch 1 = the device's stream)
    t.accuracy(x_test_int8, y_test)   # with the trained int8 weights / int32 biases
    t.overrides                       # {layer: (weights, bias)} as the device holds them

Forward: the integer simulator (bit-exact with tflite-micro). Backward: model_prep.grad_ops in
the chosen gradient format, only where the scheme needs it: a tensor gets a gradient only if an
updated layer lies at or above it, so nothing is computed below the lowest updated layer, and a
weight gradient is computed for the scheme's channels / kernel rows only. Updates: SGD with
Quantization-Aware Scaling (or plain int8 SGD with `qas=False`), int8 weights rounded
stochastically, int32 biases to nearest. A mini-batch sums its samples' gradients (brought to one
exponent) and divides the learning rate by its size; batch 1 is the device's streaming update.
"""
import contextlib
import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from model_prep import grad_ops
from model_prep import scheme as fmt
from model_prep.grad_ops import exp_table
from model_prep.int8_params import quantize_multiplier
from model_prep.simulate import Simulator

TRAINABLE = ("conv2d", "depthwise_conv2d", "fully_connected")
PASS_THROUGH = ("softmax", "dequantize", "reshape")   # ops between the logits and the model output
BACKWARD = TRAINABLE + ("add", "mean_hw", "pad", "reshape")


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 0.05
    epochs: int = 1
    batch_size: int = 1          # 1: the device's streaming update
    grad_format: str = "int16"   # int8 | int16 | float32 (model_prep.grad_ops.FORMATS)
    qas: bool = True             # Quantization-Aware Scaling; False: plain int8 SGD
    seed: int = 0


@dataclass
class _Update:
    """One layer's update: what it trains and its fixed-point constants."""
    index: int                   # op index (the random stream of its weights)
    op: object
    bias: bool
    channels: np.ndarray         # weight channels (last axis) updated; empty: no weight update
    rows: tuple | None           # kernel rows updated (None: all)
    s_w: np.ndarray              # per output channel
    s_x: float


def _scales(graph, index, channels):
    t = graph.tensors[index]
    return np.broadcast_to(np.asarray(t.scale, np.float64), (channels,)).copy()


class SparseTrainer:
    def __init__(self, model, scheme, config=TrainConfig()):
        self.sim = model if isinstance(model, Simulator) else Simulator.from_tflite(model)
        self.cfg = config
        grad_ops.bits(config.grad_format)
        graph = self.sim.graph
        fmt.validate(scheme, graph)
        self.scheme = scheme
        self.ops = self.sim.ops
        by_name = {op.name: i for i, op in enumerate(self.ops)}
        self.logits = self._logits_tensor()
        s_logits = float(graph.tensors[self.logits].scale[0])
        self.table = exp_table(s_logits)
        self.logit_scale = s_logits
        self.logit_mult = quantize_multiplier(float(np.float32(s_logits)))
        self.updates = {}
        self.overrides = {}
        for u in scheme.layers:
            i = by_name[u.layer]
            op = self.ops[i]
            tflite_op = graph.ops[i]
            out_ch = op.out_dims[3]
            channels = fmt.selected_channels(u, op.weights)
            rows = u.weight.rows if u.weight.kind in ("channels", "subtensor") else None   # kernel rows
            self.updates[op.name] = _Update(i, op, u.bias, channels, rows,
                                            _scales(graph, tflite_op.inputs[1], out_ch),
                                            float(graph.tensors[op.input].scale[0]))
            bias = op.bias if op.bias is not None else np.zeros(out_ch, np.int32)
            self.overrides[op.name] = (torch.as_tensor(np.array(op.weights)), torch.as_tensor(np.array(bias)))
        self.needs = self._needs_grad(set(self.updates))
        self._backward_consts = self._constants()
        self.steps = 0
        self._multipliers = {}
        # ops whose output the training changes (at or after an updated layer); the rest is the
        # frozen prefix, computed once per data set (frozen_activations) and read from there
        self.live = [(op, layer) for op, layer in self.sim._layers if self.needs.get(op.output, False)]
        live_out = {op.output for op, _ in self.live}
        self.frozen_inputs = {i for op, _ in self.live for i in op.inputs if i not in live_out}
        self.frozen_inputs.add(self.logits)   # read from the frozen activations when nothing is updated

    # -- structure ------------------------------------------------------------------------------

    def _logits_tensor(self):
        t = self.sim.graph.outputs[0]
        producers = {op.output: op for op in self.ops}
        while t in producers and producers[t].kind in PASS_THROUGH:
            t = producers[t].input
        if t not in producers or producers[t].kind != "fully_connected":
            raise fmt.SchemeError(f"{self.sim.graph.path}: training needs the model to end in a fully connected "
                                  f"layer (logits), optionally followed by softmax / dequantize")
        return t

    def _needs_grad(self, updated):
        """gradient_flow from the updated layers' outputs; an op without a backward on the way is refused."""
        needs = gradient_flow(self.ops, {op.output for op in self.ops if op.name in updated}, self.logits)
        for op in self.ops:
            if needs.get(op.output, False) and op.kind not in BACKWARD:
                raise fmt.SchemeError(f"layer '{op.name}' ({op.kind}) lies between an updated layer and the loss; "
                                      f"its backward is not implemented (ops with one: {', '.join(BACKWARD)})")
        return needs

    def _constants(self):
        """Fixed-point multipliers of the backward of ADD and MEAN (from the tensors' scales)."""
        graph, consts = self.sim.graph, {}
        for op in (op for op in self.ops if op.kind in ("add", "mean_hw")):
            s = [float(np.float32(graph.tensors[i].scale[0])) for i in op.inputs + (op.output,)]
            if op.kind == "add":
                consts[op.name] = [quantize_multiplier(s[0] / s[2]), quantize_multiplier(s[1] / s[2])]
            elif op.kind == "mean_hw":
                consts[op.name] = quantize_multiplier(s[0] / (s[1] * op.in_dims[1] * op.in_dims[2]))
        return consts

    def _update_multipliers(self, u, n):
        """Per output channel (m, k) of the weight and the bias update, lr / n and QAS folded in."""
        key = (u.index, n)
        if key not in self._multipliers:
            self._multipliers[key] = self._compute_multipliers(u, n)
        return self._multipliers[key]

    def _compute_multipliers(self, u, n):
        lr = self.cfg.lr / n
        w = [grad_ops.update_multiplier(lr / s**2 if self.cfg.qas else lr) for s in u.s_w]
        b = [grad_ops.update_multiplier(lr / (s * u.s_x) ** 2 if self.cfg.qas else lr) for s in u.s_w]
        as_t = lambda pairs: tuple(torch.tensor(c, dtype=torch.int64) for c in zip(*pairs))   # noqa: E731
        return as_t(w), as_t(b)

    # -- training -------------------------------------------------------------------------------

    def _backward(self, acts, labels, needs, on_layer):
        """Gradients from the loss down through the tensors in `needs`; on_layer(op, g_acc) per trainable op."""
        f = self.cfg.grad_format
        if not needs.get(self.logits, False):
            return {}
        g = grad_ops.softmax_ce_grad(acts[self.logits], labels, self.table, f, self.logit_scale)
        grads = {self.logits: grad_ops.scale(g, *self.logit_mult, f)}

        def give(t, gt):
            if needs.get(t, False):
                grads[t] = grad_ops.add(grads[t], gt, f) if t in grads else gt

        for op in reversed(self.ops):
            if op.output not in grads:
                continue
            g = grads.pop(op.output)
            n = g.v.shape[0]
            y = acts[op.output]
            if op.kind in TRAINABLE:
                g = grad_ops.mask(_reshaped(g, (n,) + tuple(op.out_dims[1:])), y, op.params.act_min,
                                  op.params.act_max)
                g_acc = grad_ops.scale(g, op.quant.multiplier, op.quant.shift, f)
                if needs.get(op.input, False):
                    w = self.overrides[op.name][0] if op.name in self.overrides else op.weights
                    exact = grad_ops.input_grad_exact(op, g_acc.v, w)
                    give(op.input, grad_ops.normalize(exact, g_acc.e, f))
                on_layer(op, g_acc, acts[op.input])
            elif op.kind == "add":
                g = grad_ops.mask(g, y.reshape(g.v.shape), op.params.act_min, op.params.act_max)
                for t, (m, s) in zip(op.inputs, self._backward_consts[op.name]):
                    if needs.get(t, False):
                        give(t, grad_ops.scale(g, m, s, f))
            elif op.kind == "mean_hw":
                give(op.input, grad_ops.mean_hw_input_grad(g, op, *self._backward_consts[op.name], f))
            elif op.kind == "pad":
                give(op.input, grad_ops.pad_input_grad(g, op))
            elif op.kind == "reshape":
                give(op.input, _reshaped(g, (n,) + tuple(op.in_dims[1:])))
        return grads

    def _forward(self, frozen, idx):
        """Activations of samples idx: the frozen prefix's from `frozen`, the rest computed with the trained weights."""
        acts = {t: frozen[t][idx] for t in self.frozen_inputs if t in frozen}
        for op, layer in self.live:
            w, b = self.overrides.get(op.name, (None, None))
            acts[op.output] = self.sim._shaped(op.output, layer(*(acts[i] for i in op.inputs), weight=w, bias=b))
        return acts

    def step(self, x, labels, frozen=None, idx=None):
        """One SGD step on a batch: x int8 [N, ...input], labels [N] (or rows idx of frozen_activations(x))."""
        labels = np.asarray(labels, np.int64)
        n = len(labels)
        with torch.no_grad():
            if frozen is None:
                frozen, idx = frozen_activations(self.sim, x), slice(None)
            acts = self._forward(frozen, idx)
            self._backward(acts, labels, self.needs, lambda op, g, x_in: self._apply(op, g, x_in, n))
        self.steps += 1

    def _apply(self, op, g_acc, x_in, n):
        u = self.updates.get(op.name)
        if u is None:
            return
        f = self.cfg.grad_format
        g = grad_ops.batch_align(g_acc, f)
        e = g.e[0]
        (wm, wk), (bm, bk) = self._update_multipliers(u, n)
        w, b = self.overrides[op.name]
        if len(u.channels):
            exact = grad_ops.weight_grad_exact(op, x_in, g.v, u.channels, u.rows)
            ch = torch.as_tensor(u.channels)
            rows = list(range(op.filter_dims[1])) if u.rows is None else list(u.rows)
            if op.kind == "fully_connected":
                sub, m, k = w[:, ch], wm[:, None], wk[:, None]
            elif op.kind == "depthwise_conv2d":
                sub, m, k = w[:, rows][..., ch], wm[ch], wk[ch]
            else:
                sub, m, k = w[:, rows][..., ch], wm[:, None, None, None], wk[:, None, None, None]
            rand = grad_ops.uniform32(self.cfg.seed, self.steps, 2 * u.index, sub.numel()).reshape(sub.shape)
            new = grad_ops.apply_update(sub.to(torch.int64), exact, e, m, k, -127, 127, rand, f).to(torch.int8)
            if op.kind == "fully_connected":
                w[:, ch] = new
            else:
                idx = torch.as_tensor(rows)[:, None, None], torch.arange(w.shape[2])[None, :, None], ch[None, None, :]
                w[:, idx[0], idx[1], idx[2]] = new
        if u.bias:
            exact = grad_ops.bias_grad_exact(g.v)
            b[:] = grad_ops.apply_update(b.to(torch.int64), exact, e, bm, bk, -(1 << 31), (1 << 31) - 1,
                                         None, f).to(torch.int32)

    def fit(self, x, y, epochs=None):
        """SGD over (x, y) for cfg.epochs, batches of cfg.batch_size in a seeded shuffled order."""
        x, y = np.asarray(x), np.asarray(y)
        frozen = frozen_activations(self.sim, x)
        rng = np.random.default_rng(self.cfg.seed)
        with single_thread(self.cfg.batch_size < SMALL_BATCH):
            for _ in range(self.cfg.epochs if epochs is None else epochs):
                order = rng.permutation(len(x))
                for i in range(0, len(x), self.cfg.batch_size):
                    idx = torch.as_tensor(order[i:i + self.cfg.batch_size])
                    self.step(None, y[idx.numpy()], frozen, idx)
        return self

    # -- inference ------------------------------------------------------------------------------

    def logits_of(self, x, batch=256):
        frozen = frozen_activations(self.sim, x)
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                acts = self._forward(frozen, slice(i, i + batch))
                out.append(acts[self.logits].reshape(len(acts[self.logits]), -1).numpy())
        return np.concatenate(out)

    def predict(self, x):
        return self.logits_of(x).argmax(axis=1)

    def accuracy(self, x, y):
        return float((self.predict(x) == np.asarray(y)).mean()) if len(y) else 0.0

    def input_gradients(self, x, labels, layers):
        """{layer: (x - zp_x, dL/dx)} as float64 [N, H, W, C] for the named trainable layers (no update).

        The real-valued pair TinyTrain's Fisher criterion reads; dL/dx is per integer input value."""
        needs = gradient_flow(self.ops, {op.input for op in self.ops if op.name in layers}, self.logits)
        got = {}

        def record(op, g_acc, x_in):
            if op.name in layers:
                exact = grad_ops.input_grad_exact(op, g_acc.v, self.overrides.get(op.name, (op.weights,))[0])
                gx = exact * torch.exp2(g_acc.e.to(torch.float64)).reshape((-1,) + (1,) * (exact.dim() - 1))
                xo = x_in.reshape(gx.shape).to(torch.float64) + op.params.input_offset
                got[op.name] = (xo, gx)

        with torch.no_grad():
            acts = self.sim.activations(np.asarray(x), overrides=self.overrides)
            self._backward(acts, np.asarray(labels, np.int64), needs, record)
        return got

    # -- cost -----------------------------------------------------------------------------------

    def step_macs(self):
        """Multiply-accumulates of one training step per sample: the forward, the input gradients the
        scheme needs and the weight gradients of its channels / rows."""
        total = 0
        for op in self.ops:
            fwd = forward_macs(op)
            total += fwd
            if op.kind in TRAINABLE and self.needs.get(op.output, False):
                if self.needs.get(op.input, False):
                    total += fwd
                u = self.updates.get(op.name)
                if u is not None and len(u.channels):
                    total += fwd * len(u.channels) // op.weights.shape[-1] * (
                        len(u.rows) if u.rows is not None else op.filter_dims[1]) // op.filter_dims[1]
        return total


def gradient_flow(ops, seeds, logits):
    """{op output: bool} up to the logits: True for the seed tensors and everything computed from them.

    With the updated layers' outputs as seeds these are the tensors the backward gives a gradient
    (an updated layer lies at or below them); with some layers' inputs, the tensors a gradient must
    pass to reach those inputs. Model inputs never get one."""
    flows = set(seeds)
    needs = {}
    for op in ops:
        needs[op.output] = op.output in flows or any(i in flows for i in op.inputs)
        if needs[op.output]:
            flows.add(op.output)
        if op.output == logits:
            break
    return needs


_FROZEN_CACHE_SIZE = 4
SMALL_BATCH = 16   # below this, tensors are so small that waking more threads costs more than it saves


@contextlib.contextmanager
def single_thread(enabled=True):
    """Run torch on one thread inside the block (small tensors), restoring the thread count after."""
    n = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def frozen_activations(sim, x, batch=256):
    """Every activation of the unmodified model for inputs x (int8 torch tensors by tensor index).

    Cached on the simulator by the bytes of x (the last few data sets): the layers a scheme
    leaves frozen compute exactly these, so every trainer of every scheme reads them from here."""
    x = np.ascontiguousarray(x)
    key = (x.shape, hashlib.sha1(x.tobytes()).hexdigest())
    cache = sim.__dict__.setdefault("_frozen_cache", {})
    if key not in cache:
        parts = []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                parts.append(sim.activations(x[i:i + batch]))
        cache[key] = {t: torch.cat([p[t] for p in parts]) for t in parts[0]} if parts else {}
        while len(cache) > _FROZEN_CACHE_SIZE:
            cache.pop(next(iter(cache)))
    return cache[key]


def forward_macs(op):
    """MACs of one inference of a conv / depthwise / fully connected op (0 for the others)."""
    if op.kind not in TRAINABLE:
        return 0
    out = int(np.prod(op.out_dims[1:]))
    w = op.weights
    if op.kind == "fully_connected":
        return out * w.shape[1]
    if op.kind == "depthwise_conv2d":
        return out * w.shape[1] * w.shape[2]
    return out * w.shape[1] * w.shape[2] * w.shape[3]


def _reshaped(g, shape):
    """A Grad with its values reshaped."""
    return grad_ops.Grad(g.v.reshape(shape), g.e)
