"""Bake an int8 .tflite into C++ sources for the firmware: ops, parameters, weights, memory plan.

    python -m model_prep.bake build/kws/dscnn.tflite -o build/kws/baked [--train classifier] [--lr 0.02]
    python -m model_prep.bake build/kws/dscnn.tflite -o build/kws/baked --scheme scheme.json
    python -m model_prep.bake plan build/kws/dscnn.tflite scheme.json     # the SRAM it will use

Writes DIR/model_data.cc (the ModelDesc of firmware/runtime/model.h and, when something is
trained, the Training of firmware/runtime/train.h) and DIR/model.json (a manifest of the same
facts). The device parses no flatbuffer: every padding, multiplier, arena offset and backward
step is decided here, through model_prep.lower (the lowering the simulator runs) and
model_prep.training_plan (the training step SparseTrainer runs). Any int8 .tflite in the
supported op set bakes, with any scheme naming its layers. `--train classifier` is shorthand
for the scheme that updates the last fully connected layer's weights and bias.
"""
import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from model_prep.cli import positive
from model_prep import int8_params
from model_prep import scheme as scheme_fmt
from model_prep.lower import lower
from model_prep.plan import plan_arena
from model_prep.sparse_train import TrainConfig
from model_prep.tflite_graph import ModelError, load_graph
from model_prep.training_plan import FIRMWARE_STACK_BYTES, FIRMWARE_STATIC_BYTES, TrainingPlan, scheme_for

FORMAT = "odt-baked/1"
TRAIN_MODES = ("none", "classifier")
_KIND = {"conv2d": "kOpConv2D", "depthwise_conv2d": "kOpDepthwiseConv2D", "fully_connected": "kOpFullyConnected",
         "mean_hw": "kOpMeanHW", "pad": "kOpPad", "reshape": "kOpReshape", "add": "kOpAdd",
         "avg_pool2d": "kOpAvgPool2D", "max_pool2d": "kOpMaxPool2D", "softmax": "kOpSoftmax",
         "quantize": "kOpQuantize", "requantize": "kOpRequantize", "dequantize": "kOpDequantize"}
# OpDesc's parameter members after `quant`, in order (model.h); an op fills the one of its kind.
_PARAMS = (int8_params.ConvParams, int8_params.FcParams, int8_params.MeanParams, int8_params.PadParams,
           int8_params.AddParams, int8_params.PoolParams, int8_params.SoftmaxParams, int8_params.QuantizeParams,
           int8_params.RequantizeParams, int8_params.DequantizeParams)


def _array(ctype, name, values, const=True, per_line=24):
    vals = [str(int(v)) for v in np.asarray(values).ravel()]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    body = ",\n    ".join(lines)
    return f"alignas(16) {'const ' if const else ''}{ctype} {name}[{len(vals)}] = {{\n    {body}}};\n"


def _dims(d):
    return "{" + ", ".join(str(int(v)) for v in (d or (0, 0, 0, 0))) + "}"


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "{" + ", ".join(_value(x) for x in v) + "}"
    if isinstance(v, (float, np.floating)):   # a float32 scale: a hex literal is exact
        return float.hex(float(np.float32(v))) + "f"
    return str(int(v))


def _struct(params, cls):
    """C++ aggregate initializer of an int8_params parameter dataclass (zeros when absent)."""
    if not isinstance(params, cls):
        return "{}"
    return "{" + ", ".join(_value(getattr(params, f.name)) for f in dataclasses.fields(cls)) + "}"


class Baked:
    """Everything bake decides about a model, ready to be written as C++ and JSON."""

    def __init__(self, tflite, train="classifier", lr=0.02, qas=True, labels=None, model_name=None, scheme=None,
                 seed=0):
        if train not in TRAIN_MODES:
            raise ModelError(f"--train {train}: expected one of {', '.join(TRAIN_MODES)}")
        self.path = Path(tflite)
        self.graph = load_graph(self.path)
        if len(self.graph.inputs) != 1 or len(self.graph.outputs) != 1:
            raise ModelError(f"{self.path}: {len(self.graph.inputs)} inputs and {len(self.graph.outputs)} outputs; "
                             f"the firmware runs models with one of each")
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.scheme = scheme if scheme is not None else scheme_for(train, self.graph)
        self.lr, self.qas, self.seed = lr, qas, seed
        sidecar = self.path.with_suffix(".json")
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        self.model_name = model_name or meta.get("model") or self.path.stem
        out = self.graph.tensors[self.graph.outputs[0]]
        self.num_classes = int(np.prod(out.shape))
        self.labels = labels or meta.get("labels") or [str(i) for i in range(self.num_classes)]
        if self.scheme.layers:
            if self.num_classes > 256:   # labels travel as one byte
                raise ModelError(f"{self.path}: training supports up to 256 classes (the model has {self.num_classes})")
            self.training = TrainingPlan(self.path, self.scheme, TrainConfig(lr=lr, qas=qas, seed=seed))
            self.ops, self.plan = self.training.ops, self.training
        else:
            self.training = None
            self.ops = lower(self.graph)
            self.plan = plan_arena(self.graph, self.ops)

    @property
    def train(self):
        """The scheme's name ("none", "classifier", or the scheme file's)."""
        return self.scheme.name or ("none" if not self.scheme.layers else "scheme")

    def sram_parts(self):
        """The planned SRAM of the firmware, part by part (as `bake plan` prints it): arena, trained parameters,
        gradient exponents, firmware statics, stack, and the total."""
        if self.training:
            return self.training.sram_parts()
        total = self.plan.arena_bytes + FIRMWARE_STATIC_BYTES + FIRMWARE_STACK_BYTES
        return {"arena_bytes": self.plan.arena_bytes, "param_bytes": 0, "gradient_exponent_bytes": 0,
                "firmware_static_bytes": FIRMWARE_STATIC_BYTES, "stack_bytes": FIRMWARE_STACK_BYTES,
                "total_sram_bytes": total}

    def sram_bytes(self):
        """The planned SRAM of the firmware: arena, trained parameters, gradient exponents, firmware statics, stack."""
        return self.sram_parts()["total_sram_bytes"]

    def params(self):
        """[{layer, tensor, dtype, shape, offset, bytes}]: the PARAMS blob (trained tensors, SRAM copies)."""
        out, offset = [], 0
        for i, what in (self.training.params if self.training else []):
            op, u = self.ops[i], self.training.updates[i]
            dtype = (op.weights if what == "weights" else op.bias).dtype
            shape = [int(d) for d in self.training.param_shape(i, what)]
            entry = {"layer": op.name, "tensor": what, "dtype": str(dtype), "shape": shape, "offset": offset,
                     "bytes": int(np.prod(shape)) * dtype.itemsize}
            if what == "weights" and u.sliced:   # the slice [O, rows, KW, channels] ([O, channels]) of the weights
                entry.update(sliced=True, channels=u.channels.tolist(), rows=u.rows.tolist())
            out.append(entry)
            offset += entry["bytes"]
        return out

    def info(self):
        inp = self.graph.tensors[self.graph.inputs[0]]
        updates = [{"layer": self.ops[i].name, "bias": u.bias, "channels": len(u.channels),
                    "of": int(self.ops[i].weights.shape[-1]), "rows": len(u.rows) if len(u.channels) else 0,
                    "rows_of": int(self.ops[i].filter_dims[1])}
                   for i, u in sorted(self.training.updates.items())] if self.training else []
        return {
            "model": self.model_name, "scheme": self.train, "tflite_sha256": self.sha256[:16],
            "input_shape": list(inp.shape),
            "input_scale": None if inp.scale is None else float(inp.scale[0]),
            "input_zero_point": None if inp.zero_point is None else int(inp.zero_point[0]),
            "num_classes": self.num_classes,
            "labels": self.labels, "arena_bytes": self.plan.arena_bytes,
            "trainable_bytes": int(sum(p["bytes"] for p in self.params())),
            "planned_sram_bytes": int(self.sram_bytes()), "updates": updates,
            "lr": self.lr, "qas": self.qas,
        }

    def manifest(self):
        return {
            "format": FORMAT, "tflite": str(self.path), **self.info(), "params": self.params(),
            "ops": [{"name": op.name, "kind": op.kind, "input": self.plan.offsets[op.input],
                     "inputs": [self.plan.offsets[t] for t in op.inputs],
                     "output": self.plan.offsets[op.output], "in_dims": list(op.in_dims),
                     "out_dims": list(op.out_dims)} for op in self.ops],
        }

    def cpp(self):
        src = ["// Generated by model_prep/bake.py from " + self.path.name + " (sha256 " + self.sha256[:16] + ").",
               "// Do not edit: re-run bake.", '#include "model.h"', '#include "train.h"', "",
               "namespace odt {", "namespace {", ""]
        entries = []
        updates = self.training.updates if self.training else {}
        trained = {(i, what) for i, what in (self.training.params if self.training else [])
                   if not (what == "weights" and updates[i].sliced)}   # whole tensors copied to SRAM
        for i, op in enumerate(self.ops):
            w = b = m = s = sl = "nullptr"
            if i in updates:
                src += update_arrays(self.training, i)
                sl = f"&slice{i}" if updates[i].sliced else "nullptr"
            if op.weights is not None:
                w = f"w{i}"
                src.append(_array("int8_t", w + ("_init" if (i, "weights") in trained else ""), op.weights))
                if (i, "weights") in trained:
                    src.append(f"alignas(16) int8_t {w}[{op.weights.size}];  // SRAM copy, trained\n")
            if op.bias is not None:
                b = f"b{i}"
                src.append(_array("int32_t", b + ("_init" if (i, "bias") in trained else ""), op.bias))
                if (i, "bias") in trained:
                    src.append(f"alignas(16) int32_t {b}[{op.bias.size}];  // SRAM copy, trained\n")
            if op.quant is not None:
                m, s = f"m{i}", f"s{i}"
                src.append(_array("int32_t", m, op.quant.multiplier))
                src.append(_array("int32_t", s, op.quant.shift))
            offsets = [self.plan.offsets[t] for t in (op.input, op.output)]
            offsets.append(self.plan.offsets[op.inputs[1]] if len(op.inputs) > 1 else -1)   # input2: ADD's
            entries.append(
                f"    {{{_KIND[op.kind]}, \"{op.name}\", {', '.join(map(str, offsets))},\n"
                f"     {_dims(op.in_dims)}, {_dims(op.out_dims)}, {_dims(op.filter_dims)}, {w}, {b}, {sl}, "
                f"{{{m}, {s}}},\n"
                f"     " + ", ".join(_struct(op.params, cls) for cls in _PARAMS) + "},")
        src.append(f"alignas(16) int8_t arena[{self.plan.arena_bytes}];\n")
        src.append("const OpDesc kOps[] = {\n" + "\n".join(entries) + "\n};\n")
        info = json.dumps(self.info())[1:-1].replace("\\", "\\\\").replace('"', '\\"')
        inp, out = self.graph.inputs[0], self.graph.outputs[0]
        src.append("}  // namespace\n")
        src.append(f'extern const ModelDesc kModel = {{"{self.model_name}", kOps, {len(self.ops)}, arena, '
                   f"{self.plan.arena_bytes}, {self.plan.offsets[inp]}, {self.plan.sizes[inp]}, "
                   f'{self.plan.offsets[out]}, {self.plan.sizes[out]},\n    "{info}"}};\n')
        src.append(training_cpp(self.training) if self.training else
                   "extern const Training* const kTraining = nullptr;  // nothing is trained\n")
        src.append("}  // namespace odt\n")
        return "\n".join(src)


def _ints(name, values, ctype="int32_t"):
    return _array(ctype, name, values) if len(values) else f"const {ctype}* const {name} = nullptr;\n"


def _grad_ref(plan, gid):
    return f"{{{plan.grad_offset(gid)}, {-1 if gid is None else gid}}}"


def update_arrays(plan, i):
    """Channels, rows and update multipliers of op i's update; for a sliced weight its SRAM slice too."""
    u = plan.updates[i]
    src = [_ints(f"ch{i}", u.channels), _ints(f"rows{i}", u.rows), _ints(f"wm{i}", u.w_mult),
           _ints(f"wk{i}", u.w_exp), _ints(f"bm{i}", u.b_mult), _ints(f"bk{i}", u.b_exp)]
    if u.sliced:
        slot = np.full(plan.ops[i].weights.shape[-1], -1, np.int16)
        slot[u.channels] = np.arange(len(u.channels))
        size = int(np.prod(plan.param_shape(i, "weights")))
        src += [_ints(f"slot{i}", slot, "int16_t"),
                f"alignas(16) int8_t ws{i}[{size}];  // SRAM, the trained slice of w{i}\n",
                f"const WeightSlice slice{i} = {{ws{i}, ch{i}, {len(u.channels)}, rows{i}, {len(u.rows)}, slot{i}}};\n"]
    return src


def training_cpp(plan):
    """The Training of firmware/runtime/train.h for a TrainingPlan: saves, backward steps, updates, copies."""
    off = lambda key: -1 if key is None else plan.offset(key)   # noqa: E731
    src = ["namespace {"]
    for i, u in sorted(plan.updates.items()):
        weights = (f"ws{i}" if u.sliced else f"w{i}") if len(u.channels) else "nullptr"
        bias = f"b{i}" if u.bias else "nullptr"
        src.append(f"const LayerUpdate u{i} = {{{weights}, {_value(u.sliced)}, {bias}, ch{i}, {len(u.channels)}, "
                   f"rows{i}, {len(u.rows)}, {off(u.saved)}, wm{i}, wk{i}, bm{i}, bk{i}, {2 * i}u}};\n")
    saves = sorted(plan.saves, key=lambda s: s.after_op)
    for k, s in enumerate(saves):
        if s.kind == "channels":
            src.append(_ints(f"save_ch{k}", s.channels))
    src.append("const SaveDesc saves[] = {\n" + "\n".join(
        f"    {{{s.after_op}, {'kSaveMask' if s.kind == 'mask' else 'kSaveChannels'}, {plan.offsets[s.src]}, "
        f"{plan.offset(s.key)}, {s.count}, {s.stride}, {f'save_ch{k}' if s.kind == 'channels' else 'nullptr'}, "
        f"{0 if s.channels is None else len(s.channels)}, {s.act_min}, {s.act_max}}}," for k, s in enumerate(saves))
        + "\n};\n")
    kinds = {"loss": "kBackLoss", "layer": "kBackLayer", "add": "kBackAdd", "mean": "kBackMean", "pad": "kBackPad",
             "copy": "kBackCopy"}
    src.append("const BackStep steps[] = {\n" + "\n".join(
        f"    {{{kinds[s.kind]}, {s.op}, {_grad_ref(plan, s.g)}, {off(s.mask)}, "
        f"{{{_grad_ref(plan, s.gx[0])}, {_grad_ref(plan, s.gx[1])}}}, "
        f"{{{_value(s.accumulate[0])}, {_value(s.accumulate[1])}}}, {off(s.tmp)}, {off(s.scratch)}, "
        f"{plan.sizes[s.scratch] if s.scratch else 0}, "
        f"{{{int(s.mult[0])}, {int(s.mult[1])}}}, {{{int(s.shift[0])}, {int(s.shift[1])}}}, "
        f"{'&u%d' % s.op if s.update else 'nullptr'}}}," for s in plan.steps) + "\n};\n")
    src.append(f"int32_t exponents[{len(plan.grad_size)}];\n")
    src.append(_array("uint32_t", "exp_table", plan.trainer.table))
    def copy(i, what):   # a slice is gathered from its op's flash weights: no source of its own
        sliced = what == "weights" and plan.updates[i].sliced
        name = (f"ws{i}" if sliced else f"w{i}") if what == "weights" else f"b{i}"
        return f"    {{{name}, {'nullptr' if sliced else name + '_init'}, {plan.param_nbytes(i, what)}}},"
    copies = [copy(i, what) for i, what in plan.params]
    src.append("const ParamCopy params[] = {\n" + "\n".join(copies) + "\n};\n")
    logits = plan.trainer.logits
    src.append(f"const Training training = {{saves, {len(saves)}, steps, {len(plan.steps)}, exponents, exp_table, "
               f"{len(plan.trainer.table)}, {plan.offsets[logits]}, {int(np.prod(plan.graph.tensors[logits].shape))}, "
               f"params, {len(copies)}, {int(plan.config.seed)}}};")
    src.append("}  // namespace")
    src.append("extern const Training* const kTraining = &training;\n")
    return "\n".join(src)


def bake(tflite, out_dir, **kw):
    baked = Baked(tflite, **kw)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model_data.cc").write_text(baked.cpp())
    (out_dir / "model.json").write_text(json.dumps(baked.manifest(), indent=1) + "\n")
    return baked


def plan_main(argv):
    """`bake plan MODEL.tflite SCHEME.json`: the SRAM the device will use, without writing anything."""
    ap = argparse.ArgumentParser(prog="python -m model_prep.bake plan",
                                 description="print the total SRAM the device will use to train SCHEME")
    ap.add_argument("tflite", type=Path)
    ap.add_argument("scheme", type=Path)
    ap.add_argument("--json", action="store_true", help="print the breakdown as JSON")
    args = ap.parse_args(argv)
    try:
        b = Baked(args.tflite, scheme=scheme_fmt.load(args.scheme))
    except (ModelError, scheme_fmt.SchemeError) as e:
        sys.exit(f"bake plan: {e}")
    parts = b.sram_parts()
    if args.json:
        print(json.dumps(parts))
        return
    for k, v in parts.items():
        print(f"{k:24s} {v:9d}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["plan"]:
        return plan_main(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tflite", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True, help="output folder for the C++ sources")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--train", default="classifier", choices=TRAIN_MODES, help="what the device trains")
    which.add_argument("--scheme", type=Path, help="an odt-scheme/1 file saying what the device trains")
    ap.add_argument("--lr", type=positive, default=0.02, help="on-device SGD learning rate")
    ap.add_argument("--no-qas", action="store_true", help="plain int8 SGD without Quantization-Aware Scaling")
    ap.add_argument("--seed", type=int, default=0, help="seed of the stochastic rounding")
    args = ap.parse_args(argv)
    try:
        scheme = scheme_fmt.load(args.scheme) if args.scheme else None
        b = bake(args.tflite, args.out, train=args.train, scheme=scheme, lr=args.lr, qas=not args.no_qas,
                 seed=args.seed)
    except (ModelError, scheme_fmt.SchemeError) as e:
        sys.exit(f"bake: {e}")
    print(f"baked {args.tflite} -> {args.out}: {len(b.ops)} ops, arena {b.plan.arena_bytes} bytes, "
          f"trains {b.train} ({len(b.training.updates) if b.training else 0} layers), "
          f"planned SRAM {b.sram_bytes()} bytes")


if __name__ == "__main__":
    main()
