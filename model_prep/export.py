"""Export a pre-trained checkpoint to a fully int8 .tflite with litert-torch's PT2E quantizer.

    python -m model_prep.export build/kws/dscnn.pt -o build/kws/dscnn.tflite --data build/kws/corpus
    python -m model_prep.export build/digits/mcunet.pt -o build/digits/mcunet.tflite   # built-in data

Int8 per-channel symmetric weights, int8 activations (residual ADDs included), int8 input and
output, calibrated on real inputs of the pre-training split, read with the checkpoint's dataset
options (e.g. the resolution). Tensors are renamed after the PyTorch modules, because schemes
name layers:

    conv1, blocks.0.dw, blocks.3.pw1, ...    a Conv2d/Linear's output ('.0' of a ConvBN dropped),
    blocks.0.dw.weight, classifier.bias      matched to the weight ops in forward order
    blocks.3.add                             the ADD closing block 3's residual
    pool                                     the global average pool (MEAN)
    blocks.1.dw.pad                          a PAD, after the conv it feeds
    input

A sidecar `MODEL.json` records the model config, dataset and its options, labels, the front
end and the input quantization.
"""
import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from model_prep.cli import at_least
from model_prep import checkpoint
from model_prep.tflite_graph import ModelError, load_graph, rename_tensors

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_CONST_OPERAND = {"PAD": "paddings", "PADV2": "paddings", "MEAN": "axis", "RESHAPE": "shape"}


@dataclass
class Trace:
    """What one forward pass shows of a model, in execution order."""
    layers: list       # (name, module) of every Conv2d/Linear ('.0' of a ConvBN-style Sequential dropped)
    residuals: list    # (block name, name of the block's last layer) of every block that adds its input


def trace(model, example):
    """Run the model once with hooks: its weight layers and residual blocks in forward order.

    A residual block is a module with a true `use_res` attribute (model_prep.models.blocks)."""
    layers, residuals, hooks = [], [], []
    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            layer = name[:-2] if name.endswith(".0") else name
            hooks.append(mod.register_forward_hook(lambda m, i, o, n=layer: layers.append((n, m))))
        elif getattr(mod, "use_res", False):
            # runs after the block's children: the last layer recorded is the one whose output is added
            hooks.append(mod.register_forward_hook(lambda m, i, o, n=name: residuals.append((n, layers[-1][0]))))
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in hooks:
            h.remove()
    return Trace(layers, residuals)


def _weight_shape_nhwc(mod):
    """The shape litert-torch gives this module's weight in the .tflite."""
    w = mod.weight
    if isinstance(mod, torch.nn.Linear):
        return tuple(w.shape)
    o, i, kh, kw = w.shape
    if mod.groups > 1 or mod.in_channels == 1:   # depthwise (a 1-channel input exports as one)
        return (1, kh, kw, o)
    return (o, kh, kw, i)


def check_int8(graph):
    """Fail unless the graph computes in int8 end to end (no QUANTIZE/DEQUANTIZE, no float activations)."""
    for op in graph.ops:
        if op.kind in ("QUANTIZE", "DEQUANTIZE"):
            raise ModelError(f"{graph.path}: op {op.index} is {op.kind}; the model is not fully int8 "
                             f"(export with torch.export strict=True)")
        for i in op.inputs[:1] + op.outputs + ([op.inputs[1]] if op.kind == "ADD" else []):
            t = graph.tensors[i]
            if not t.is_const and t.dtype != "int8":
                raise ModelError(f"{graph.path}: op {op.index} ({op.kind}) has a {t.dtype} activation")


def layer_names(graph, tr):
    """{tensor index: name}: weight ops' outputs, weights and biases after their modules; a residual
    ADD `{block}.add`; the MEAN `pool`; a PAD `{name of the conv it feeds}.pad`; the input `input`.
    Fails on any mismatch between the .tflite and the traced model."""
    weight_ops = [op for op in graph.ops if op.kind in WEIGHT_OPS]
    if len(weight_ops) != len(tr.layers):
        raise ModelError(f"{graph.path}: {len(weight_ops)} weight ops in the .tflite but "
                         f"{len(tr.layers)} Conv2d/Linear modules in the model")
    names = {}
    for op, (name, mod) in zip(weight_ops, tr.layers):
        w = graph.tensors[op.inputs[1]]
        if w.shape != _weight_shape_nhwc(mod):
            raise ModelError(f"{graph.path}: op {op.index} ({op.kind}) weight shape {w.shape} does not "
                             f"match module '{name}' ({_weight_shape_nhwc(mod)})")
        names[op.outputs[0]] = name
        names[op.inputs[1]] = f"{name}.weight"
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            names[op.inputs[2]] = f"{name}.bias"
    output_of = {name: t for t, name in names.items()}

    adds = [op for op in graph.ops if op.kind == "ADD"]
    if len(adds) != len(tr.residuals):
        raise ModelError(f"{graph.path}: {len(adds)} ADD ops in the .tflite but {len(tr.residuals)} "
                         f"residual blocks in the model")
    for op, (block, last) in zip(adds, tr.residuals):
        if output_of[last] not in op.inputs:
            raise ModelError(f"{graph.path}: ADD op {op.index} does not add the output of '{last}' "
                             f"(residual of '{block}'): the ADDs are not in block order")
        names[op.outputs[0]] = f"{block}.add"

    means = [op for op in graph.ops if op.kind == "MEAN"]
    if len(means) > 1:
        raise ModelError(f"{graph.path}: {len(means)} MEAN ops; export names one global pool only")
    for op in means:
        names[op.outputs[0]] = "pool"

    for op in graph.ops:
        if op.kind in ("PAD", "PADV2"):
            users = [u for u in graph.ops if op.outputs[0] in u.inputs]
            if len(users) != 1 or users[0].kind not in WEIGHT_OPS:
                raise ModelError(f"{graph.path}: PAD op {op.index} does not feed exactly one conv")
            names[op.outputs[0]] = f"{names[users[0].outputs[0]]}.pad"

    counts = {}
    for op in graph.ops:
        if op.outputs[0] not in names:
            k = op.kind.lower()
            names[op.outputs[0]] = f"{k}_{counts.setdefault(k, 0)}"
            counts[k] += 1
    users = {}
    for op in graph.ops:
        for i in op.inputs:
            users[i] = users.get(i, 0) + 1
    for op in graph.ops:   # a non-weight op's constant operand, when no other op shares it
        role = _CONST_OPERAND.get(op.kind)
        if role and len(op.inputs) > 1 and op.inputs[1] not in names and users[op.inputs[1]] == 1:
            names[op.inputs[1]] = f"{names[op.outputs[0]]}.{role}"
    names[graph.inputs[0]] = "input"
    return names


def quantize_to_tflite(model, calib, out_path):
    """PT2E int8 quantization (per-channel weights) and litert-torch conversion (notes/platform.md)."""
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model = model.eval()
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    exported = torch.export.export(model, (calib[:1],), strict=True).module()
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for x in calib:             # the exported program has batch size 1
            prepared(x[None])
    converted = convert_pt2e(prepared, fold_quantize=False)
    allow_exported_model_train_eval(converted)   # so that .eval() below reaches it (captured in eval mode)
    channel_last = litert_torch.to_channel_last_io(converted, args=[0]).eval()
    sample = calib[:1].permute(0, 2, 3, 1).contiguous()
    edge = litert_torch.convert(channel_last, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
    edge.export(str(out_path))


def export_model(model, calib, out_path):
    """Quantize `model` (calibrated on `calib`, float [N, C, H, W]) to an int8 .tflite at out_path,
    tensors named after the modules (layer_names). Returns the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    raw = out_path.with_suffix(".raw.tflite")
    try:
        quantize_to_tflite(model, calib, raw)
        graph = load_graph(raw)
        check_int8(graph)
        rename_tensors(raw, out_path, layer_names(graph, trace(model, calib[:1])))
    finally:
        raw.unlink(missing_ok=True)
    return out_path


def export(ckpt_path, out_path, data_root=None, calib_samples=400):
    model, meta = checkpoint.load(ckpt_path)
    calib = checkpoint.calibration_inputs(meta, data_root, calib_samples)
    out_path = export_model(model, calib, out_path)
    graph = load_graph(out_path)
    inp = graph.tensors[graph.inputs[0]]
    sidecar = {
        "format": "odt-model/1",
        "model": meta["model"],
        "config": meta["config"],
        "dataset": meta["dataset"],
        "dataset_options": meta["dataset_options"],   # load inputs with these (e.g. the resolution)
        "labels": meta["labels"],
        "frontend": meta.get("frontend"),
        "input_scale": float(inp.scale[0]),
        "input_zero_point": int(inp.zero_point[0]),
        "checkpoint": str(ckpt_path),
    }
    out_path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return out_path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True, help="output .tflite")
    ap.add_argument("--data", type=Path, default=None,
                    help="dataset root for calibration inputs (not needed for built-in datasets such as digits)")
    ap.add_argument("--calib", type=at_least(1), default=400, help="calibration samples")
    args = ap.parse_args(argv)
    try:
        path = export(args.checkpoint, args.out, args.data, args.calib)
    except (ModelError, ValueError, FileNotFoundError) as e:
        sys.exit(f"export: {e}")
    g = load_graph(path)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(g.ops)} ops: "
          f"{', '.join(sorted({op.kind for op in g.ops}))})")


if __name__ == "__main__":
    main()
