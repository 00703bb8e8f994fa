"""Bake an int8 .tflite into C++ sources for the firmware: ops, parameters, weights, memory plan.

    python -m model_prep.bake build/kws/dscnn.tflite -o build/kws/baked [--train classifier] [--lr 0.02]
    python -m model_prep.bake build/kws/dscnn.tflite -o build/kws/baked --scheme scheme.json

Writes DIR/model_data.cc (the ModelDesc of firmware/runtime/model.h and, when the classifier
is trained, its ClassifierTraining) and DIR/model.json (a manifest of the same facts). The
device parses no flatbuffer: every padding, multiplier and arena offset is decided here,
through model_prep.lower, the same lowering the simulator runs.
"""
import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

from model_prep import classifier_sgd, int8_params
from model_prep import scheme as scheme_fmt
from model_prep.lower import lower
from model_prep.plan import plan_arena
from model_prep.tflite_graph import ModelError, load_graph

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

    def __init__(self, tflite, train="classifier", lr=0.02, qas=True, labels=None, model_name=None):
        if train not in TRAIN_MODES:
            raise ModelError(f"--train {train}: expected one of {', '.join(TRAIN_MODES)}")
        self.path = Path(tflite)
        self.graph = load_graph(self.path)
        if len(self.graph.inputs) != 1 or len(self.graph.outputs) != 1:
            raise ModelError(f"{self.path}: {len(self.graph.inputs)} inputs and {len(self.graph.outputs)} outputs; "
                             f"the firmware runs models with one of each")
        self.ops = lower(self.graph)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.train, self.lr, self.qas = train, lr, qas
        sidecar = self.path.with_suffix(".json")
        meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        self.model_name = model_name or meta.get("model") or self.path.stem
        out = self.graph.tensors[self.graph.outputs[0]]
        self.num_classes = int(np.prod(out.shape))
        self.labels = labels or meta.get("labels") or [str(i) for i in range(self.num_classes)]
        self.classifier = self._classifier() if train == "classifier" else None
        keep = [self.classifier.input] if self.classifier else []
        self.plan = plan_arena(self.graph, self.ops, keep=keep)

    def _classifier(self):
        last = self.ops[-1]
        if last.kind != "fully_connected" or last.output != self.graph.outputs[0]:
            raise ModelError(f"{self.path}: --train classifier needs the model to end in FULLY_CONNECTED "
                             f"(it ends in {last.kind})")
        if last.weights.shape[0] > 256:   # labels travel as one byte; the app's gradient scratch holds 256
            raise ModelError(f"{self.path}: --train classifier supports up to 256 classes "
                             f"('{last.name}' has {last.weights.shape[0]})")
        if last.bias is None:   # the converter drops an all-zero bias; a trained one starts from zero
            last.bias = np.zeros(last.weights.shape[0], np.int32)
        return last

    def training_constants(self):
        fc = self.classifier
        x, w, y = self.graph.tensors[fc.input], self.graph.tensors[self.graph.ops[-1].inputs[1]], self.graph.tensors[fc.output]
        return classifier_sgd.training_constants(x.scale[0], x.zero_point[0], w.scale, y.scale[0], self.lr, self.qas)

    def info(self):
        inp = self.graph.tensors[self.graph.inputs[0]]
        trainable = 0
        if self.classifier:
            trainable = self.classifier.weights.size + 4 * self.classifier.bias.size
        return {
            "model": self.model_name, "scheme": self.train, "tflite_sha256": self.sha256[:16],
            "input_shape": list(inp.shape),
            "input_scale": None if inp.scale is None else float(inp.scale[0]),
            "input_zero_point": None if inp.zero_point is None else int(inp.zero_point[0]),
            "num_classes": self.num_classes,
            "labels": self.labels, "arena_bytes": self.plan.arena_bytes, "trainable_bytes": int(trainable),
            "lr": self.lr, "qas": self.qas,
        }

    def manifest(self):
        return {
            "format": FORMAT, "tflite": str(self.path), **self.info(),
            "ops": [{"name": op.name, "kind": op.kind, "input": self.plan.offsets[op.input],
                     "inputs": [self.plan.offsets[t] for t in op.inputs],
                     "output": self.plan.offsets[op.output], "in_dims": list(op.in_dims),
                     "out_dims": list(op.out_dims)} for op in self.ops],
        }

    def cpp(self):
        src = ["// Generated by model_prep/bake.py from " + self.path.name + " (sha256 " + self.sha256[:16] + ").",
               "// Do not edit: re-run bake.", '#include "model.h"', '#include "classifier_sgd.h"', "",
               "namespace odt {", "namespace {", ""]
        entries = []
        for i, op in enumerate(self.ops):
            w = b = m = s = "nullptr"
            if op.weights is not None:
                trained = self.classifier is op
                w = f"w{i}"
                src.append(_array("int8_t", w + ("_init" if trained else ""), op.weights))
                if trained:
                    src.append(f"alignas(16) int8_t {w}[{op.weights.size}];  // SRAM copy, trained\n")
            if op.bias is not None:
                trained = self.classifier is op
                b = f"b{i}"
                src.append(_array("int32_t", b + ("_init" if trained else ""), op.bias))
                if trained:
                    src.append(f"alignas(16) int32_t {b}[{op.bias.size}];  // SRAM copy, trained\n")
            if op.quant is not None:
                m, s = f"m{i}", f"s{i}"
                src.append(_array("int32_t", m, op.quant.multiplier))
                src.append(_array("int32_t", s, op.quant.shift))
            offsets = [self.plan.offsets[t] for t in (op.input, op.output)]
            offsets.append(self.plan.offsets[op.inputs[1]] if len(op.inputs) > 1 else -1)   # input2: ADD's
            entries.append(
                f"    {{{_KIND[op.kind]}, \"{op.name}\", {', '.join(map(str, offsets))},\n"
                f"     {_dims(op.in_dims)}, {_dims(op.out_dims)}, {_dims(op.filter_dims)}, {w}, {b}, {{{m}, {s}}},\n"
                f"     " + ", ".join(_struct(op.params, cls) for cls in _PARAMS) + "},")
        src.append(f"alignas(16) int8_t arena[{self.plan.arena_bytes}];\n")
        src.append("const OpDesc kOps[] = {\n" + "\n".join(entries) + "\n};\n")
        info = json.dumps(self.info())[1:-1].replace("\\", "\\\\").replace('"', '\\"')
        inp, out = self.graph.inputs[0], self.graph.outputs[0]
        src.append("}  // namespace\n")
        src.append(f'extern const ModelDesc kModel = {{"{self.model_name}", kOps, {len(self.ops)}, arena, '
                   f"{self.plan.arena_bytes}, {self.plan.offsets[inp]}, {self.plan.sizes[inp]}, "
                   f'{self.plan.offsets[out]}, {self.plan.sizes[out]},\n    "{info}"}};\n')
        src.append(self._training_cpp())
        src.append("}  // namespace odt\n")
        return "\n".join(src)

    def _training_cpp(self):
        if not self.classifier:
            return ("extern const int32_t kTrainingInputOffset = 0;  // unused: nothing is trained\n"
                    "extern const ClassifierTraining* const kTraining = nullptr;\n")
        i = self.ops.index(self.classifier)
        t = self.training_constants()
        fc = self.classifier
        return "\n".join([
            "namespace {",
            _array("int32_t", "tw_mult", t.w_mult), _array("int32_t", "tw_exp", t.w_exp),
            _array("int32_t", "tb_mult", t.b_mult), _array("int32_t", "tb_exp", t.b_exp),
            _array("uint32_t", "exp_table", t.table),
            f"const ClassifierTraining training = {{{fc.weights.shape[1]}, {fc.weights.shape[0]}, "
            f"{t.input_zero_point}, w{i}, b{i}, w{i}_init, b{i}_init, tw_mult, tw_exp, tb_mult, tb_exp, "
            f"exp_table, {t.seed}ull}};",
            "}  // namespace",
            f"extern const int32_t kTrainingInputOffset = {self.plan.offsets[fc.input]};",
            "extern const ClassifierTraining* const kTraining = &training;", ""])


def bake(tflite, out_dir, **kw):
    baked = Baked(tflite, **kw)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model_data.cc").write_text(baked.cpp())
    (out_dir / "model.json").write_text(json.dumps(baked.manifest(), indent=1) + "\n")
    return baked


def train_mode(scheme, tflite):
    """The runtime's training mode for a scheme: "none" or "classifier" (SchemeError for what it cannot run)."""
    graph = load_graph(tflite)
    scheme_fmt.check_runnable(scheme_fmt.validate(scheme, graph), graph)
    return "classifier" if scheme.layers else "none"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tflite", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True, help="output folder for the C++ sources")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--train", default="classifier", choices=TRAIN_MODES, help="what the device trains")
    which.add_argument("--scheme", type=Path, help="an odt-scheme/1 file saying what the device trains")
    ap.add_argument("--lr", type=float, default=0.02, help="on-device SGD learning rate")
    ap.add_argument("--no-qas", action="store_true", help="plain int8 SGD without Quantization-Aware Scaling")
    args = ap.parse_args(argv)
    try:
        train = args.train if args.scheme is None else train_mode(scheme_fmt.load(args.scheme), args.tflite)
        b = bake(args.tflite, args.out, train=train, lr=args.lr, qas=not args.no_qas)
    except (ModelError, scheme_fmt.SchemeError) as e:
        sys.exit(f"bake: {e}")
    print(f"baked {args.tflite} -> {args.out}: {len(b.ops)} ops, arena {b.plan.arena_bytes} bytes, "
          f"trains {b.train}")


if __name__ == "__main__":
    main()
