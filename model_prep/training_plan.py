"""The device's training step, decided at bake time: what the forward saves, the backward's steps, one arena.

    plan = TrainingPlan(tflite, scheme, TrainConfig(lr=0.05))
    plan.steps, plan.saves, plan.params        # what bake writes as C++ (firmware/runtime/train.h)
    plan.arena_bytes, plan.sram_bytes()        # the memory plan: the total SRAM the device will use

It follows model_prep.sparse_train.SparseTrainer (batch 1, int16 gradients) one for one, and
reads its decisions from a trainer built for the same model and scheme (which tensors get a
gradient, channels, kernel rows, update multipliers), so the two cannot disagree:
- the forward saves only what the backward reads: 1-bit clamp masks of the outputs a gradient
  passes through, and the kept channels of an updated layer's input (its weight gradient);
- the backward walks the ops from the loss down to the lowest updated layer (graph pruning:
  nothing below it), applies each layer's update as soon as its gradient exists (weight
  gradients are never stored) and frees every gradient after its last use;
- one timeline (forward ops 0..N-1, the loss at N, backward steps after) places activations,
  saved tensors, gradients and kernel scratch in one static arena (model_prep.plan.place).
"""
from dataclasses import dataclass, field

import numpy as np

from model_prep import scheme as fmt
from model_prep.plan import Buffer, activation_buffers, align, place
from model_prep.sparse_train import SparseTrainer, TrainConfig
from model_prep.tflite_graph import ModelError

GRAD_BYTES = 2          # int16 gradients
# SRAM besides the arena, the trained parameters and the gradient exponents, measured on qemu-m7
# (kept true by results/plan_vs_measured.json): the app's statics (the protocol's two 2 KiB frame
# buffers, the UART's 2 KiB receive ring, counters, newlib's state) and the stack's high-water
# mark through a training step and the protocol's replies (the deepest call chain, the backward's or
# INFO's snprintf, plus the exception frame of an interrupt landing in it: 704-728 bytes measured,
# varying with where the interrupts land).
FIRMWARE_STATIC_BYTES = 6340
FIRMWARE_STACK_BYTES = 760


@dataclass
class Save:
    """What the forward keeps after op `after_op`: the clamp mask of its output, or its input's kept channels."""
    after_op: int
    kind: str                  # "mask" | "channels"
    key: str                   # the arena buffer it fills
    src: int                   # tensor read
    count: int                 # mask: elements; channels: positions
    stride: int = 0            # channels: channels of the source tensor
    channels: np.ndarray = None
    act_min: int = -128
    act_max: int = 127


@dataclass
class Update:
    """One layer's update as the device runs it (the trainer's _Update plus its fixed-point constants)."""
    op: int
    bias: bool
    channels: np.ndarray
    rows: np.ndarray           # kernel rows updated (all when the scheme names none)
    saved: str | None          # buffer of the input's kept channels (None: no weight update)
    sliced: bool               # only the updated slice [O, rows, KW, channels] ([O, channels] FC) lives in
                               # SRAM, the rest of the weights stays in flash (conv and FC; a depthwise
                               # layer's or a fully updated layer's whole tensor is copied)
    w_mult: np.ndarray
    w_exp: np.ndarray
    b_mult: np.ndarray
    b_exp: np.ndarray


@dataclass
class Step:
    """One backward step: the op's output gradient in, its input gradient(s) out, its update applied."""
    kind: str                  # loss | layer | add | mean | pad | copy
    op: int
    g: int                     # gradient buffer id of the op's output (loss: of the logits)
    mask: str | None = None
    gx: list = field(default_factory=lambda: [None, None])          # gradient ids of the inputs
    accumulate: list = field(default_factory=lambda: [False, False])
    tmp: str | None = None     # int16 temporary when an input already holds a gradient
    scratch: str | None = None # int64 rows of the exact sums
    mult: tuple = (0, 0)       # (multiplier, shift) pairs: ADD one per input; MEAN, LOSS one
    shift: tuple = (0, 0)
    update: Update | None = None


def _elements(dims):
    return int(np.prod(dims))


class TrainingPlan:
    def __init__(self, tflite, scheme, config=TrainConfig()):
        if config.grad_format != "int16" or config.batch_size != 1:
            raise ModelError(f"the device trains with int16 gradients at batch 1 (got {config.grad_format}, "
                             f"batch {config.batch_size})")
        self.trainer = SparseTrainer(tflite, scheme, config)
        self.config = config
        self.graph, self.ops = self.trainer.sim.graph, self.trainer.ops
        self.saves, self.steps, self.updates = [], [], {}
        self.grad_size, self.grad_first, self.grad_last = [], [], []
        self.extra = []   # Buffers of saves, temporaries and scratch
        if self.trainer.updates:
            self._walk()
        keep = {self.trainer.logits: len(self.ops)}
        acts, self.alias = activation_buffers(self.graph, self.ops, keep)
        grads = [Buffer(f"g{i}", align(size), first, last) for i, (size, first, last) in
                 enumerate(zip(self.grad_size, self.grad_first, self.grad_last))]
        self.offsets, self.arena_bytes = place(acts + grads + self.extra)
        self.sizes = {b.key: b.size for b in acts + grads + self.extra}
        for t, r in self.alias.items():
            self.offsets[t] = self.offsets[r]
            self.sizes[t] = self.graph.tensors[t].nbytes
        self.params = self._params()

    # -- the walk: SparseTrainer._backward, symbolically -----------------------------------------

    def _grad(self, elements, time):
        self.grad_size.append(GRAD_BYTES * elements)
        self.grad_first.append(time)
        self.grad_last.append(time)
        return len(self.grad_size) - 1

    def _use(self, gid, time):
        self.grad_last[gid] = max(self.grad_last[gid], time)

    def _buffer(self, key, size, first, last):
        self.extra.append(Buffer(key, align(size), first, last))
        return key

    def _walk(self):
        tr, needs = self.trainer, self.trainer.needs
        n = len(self.ops)
        producer = {op.output: i for i, op in enumerate(self.ops)}
        grads = {tr.logits: self._grad(_elements(self.ops[producer[tr.logits]].out_dims), n)}
        self.steps.append(Step("loss", producer[tr.logits], grads[tr.logits], mult=(tr.logit_mult[0], 0),
                               shift=(tr.logit_mult[1], 0)))
        time = n
        for i in reversed(range(n)):
            op = self.ops[i]
            if op.output not in grads:
                continue
            g = grads.pop(op.output)
            if op.kind == "reshape" and op.input not in grads:   # the same bytes: no step
                grads[op.input] = g
                continue
            time += 1
            self._use(g, time)
            step = Step({"add": "add", "mean_hw": "mean", "pad": "pad", "reshape": "copy"}.get(op.kind, "layer"), i, g)
            if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected", "add"):
                step.mask = self._save_mask(i, op, time)
            if op.kind == "add":
                step.mult, step.shift = zip(*tr._backward_consts[op.name])
            if op.kind == "mean_hw":
                m, s = tr._backward_consts[op.name]
                step.mult, step.shift = (m, 0), (s, 0)
            for j, t in enumerate(op.inputs):
                if not needs.get(t, False):
                    continue
                size = _elements(op.in_dims)
                if t in grads:
                    self._use(grads[t], time)
                    step.accumulate[j] = True
                    step.tmp = self._buffer(f"tmp{time}", GRAD_BYTES * size, time, time)
                else:
                    grads[t] = self._grad(size, time)
                step.gx[j] = grads[t]
            if op.name in tr.updates:
                step.update = self._update(i, op, tr.updates[op.name], time)
            scratch = 0
            if op.kind in ("conv2d", "depthwise_conv2d") and step.gx[0] is not None:
                scratch = 8 * op.in_dims[3]                      # one input position's exact sums
            if step.update is not None and len(step.update.channels) and op.kind != "fully_connected":
                scratch = max(scratch, 8 * len(step.update.channels))   # one kernel tap's weight gradients
            if scratch:
                step.scratch = self._buffer(f"scratch{time}", scratch, time, time)
            self.steps.append(step)

    def _save_mask(self, i, op, time):
        key = self._buffer(f"mask{i}", (_elements(op.out_dims) + 7) // 8, i, time)
        self.saves.append(Save(i, "mask", key, op.output, _elements(op.out_dims),
                               act_min=op.params.act_min, act_max=op.params.act_max))
        return key

    def _update(self, i, op, u, time):
        (wm, wk), (bm, bk) = self.trainer._compute_multipliers(u, 1)
        rows = np.arange(op.filter_dims[1]) if u.rows is None else np.asarray(u.rows, np.int64)
        saved = None
        if len(u.channels):
            fc = op.kind == "fully_connected"   # features: the input flattened
            positions, stride = (1, _elements(op.in_dims[1:])) if fc else (op.in_dims[1] * op.in_dims[2], op.in_dims[3])
            src_channels = u.channels // op.params.depth_multiplier if op.kind == "depthwise_conv2d" else u.channels
            saved = self._buffer(f"x{i}", positions * len(u.channels), i, time)
            self.saves.append(Save(i, "channels", saved, op.input, positions, stride, src_channels))
        if op.bias is None:   # the converter drops an all-zero bias; a trained one starts from zero
            op.bias = np.zeros(op.out_dims[3], np.int32)
        partial = len(u.channels) < op.weights.shape[-1] or len(rows) < op.filter_dims[1]
        sliced = bool(len(u.channels)) and partial and op.kind in ("conv2d", "fully_connected")
        update = Update(i, u.bias, np.asarray(u.channels, np.int64), rows, saved, sliced,
                        *(np.asarray(a, np.int64) for a in (wm, wk, bm, bk)))
        self.updates[i] = update
        return update

    # -- parameters and totals -------------------------------------------------------------------

    def _params(self):
        """[(op index, "weights" | "bias")]: the tensors copied to SRAM, in the PARAMS blob's order."""
        out = []
        for i, u in sorted(self.updates.items()):
            if len(u.channels):
                out.append((i, "weights"))
            if u.bias:
                out.append((i, "bias"))
        return out

    def param_shape(self, i, what):
        """Shape of a trained tensor as the device holds it in SRAM (a sliced weight: its slice)."""
        op, u = self.ops[i], self.updates[i]
        if what == "bias":
            return op.bias.shape
        if not u.sliced:
            return op.weights.shape
        if op.kind == "fully_connected":
            return (op.weights.shape[0], len(u.channels))
        return (op.weights.shape[0], len(u.rows), op.weights.shape[2], len(u.channels))

    def param_nbytes(self, i, what):
        """Bytes of a trained tensor in SRAM (int8 weights or their slice, int32 biases)."""
        return int(np.prod(self.param_shape(i, what))) * (4 if what == "bias" else 1)

    def param_bytes(self):
        return sum(self.param_nbytes(i, w) for i, w in self.params)

    def sram_parts(self):
        """What the device's SRAM holds, as `bake plan` prints it: arena, trained parameters, gradient exponents,
        firmware statics, stack, and the total (which counts each trained tensor 16-aligned)."""
        params = sum(align(self.param_nbytes(i, w)) for i, w in self.params)
        exponents = 4 * len(self.grad_size)
        total = self.arena_bytes + params + exponents + FIRMWARE_STATIC_BYTES + FIRMWARE_STACK_BYTES
        return {"arena_bytes": self.arena_bytes, "param_bytes": self.param_bytes(),
                "gradient_exponent_bytes": exponents, "firmware_static_bytes": FIRMWARE_STATIC_BYTES,
                "stack_bytes": FIRMWARE_STACK_BYTES, "total_sram_bytes": total}

    def sram_bytes(self):
        """Total SRAM the device uses: arena, trained parameters (16-aligned), gradient exponents, firmware."""
        return self.sram_parts()["total_sram_bytes"]

    def offset(self, key):
        return self.offsets[key]

    def grad_offset(self, gid):
        return -1 if gid is None else self.offsets[f"g{gid}"]


def scheme_for(train, graph):
    """The scheme of bake's --train shorthand: "none" updates nothing, "classifier" the last layer's weights
    and bias."""
    if train == "none":
        return fmt.Scheme(model="", layers=(), name="none")
    last = graph.ops[-1]
    if last.kind != "FULLY_CONNECTED":
        raise ModelError(f"{graph.path}: --train classifier needs the model to end in FULLY_CONNECTED "
                         f"(it ends in {last.kind})")
    name = graph.tensors[last.outputs[0]].name
    return fmt.Scheme(model="", layers=(fmt.LayerUpdate(name, True, fmt.WeightUpdate("full")),), name="classifier")
