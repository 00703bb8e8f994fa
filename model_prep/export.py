"""Export a pre-trained checkpoint to a fully int8 .tflite with litert-torch's PT2E quantizer.

    python -m model_prep.export build/kws/dscnn.pt -o build/kws/dscnn.tflite --data build/kws/corpus

Int8 per-channel symmetric weights, int8 activations, int8 input and output, calibrated on
real features of the pre-training split. Tensors are renamed after the PyTorch modules
(`conv1`, `blocks.0.dw`, `blocks.0.dw.weight`, `classifier.bias`, ...) because schemes name
layers. A sidecar `MODEL.json` records labels, the front end and the input quantization.
"""
import argparse
import json
import sys
from pathlib import Path

import torch

from model_prep import checkpoint
from model_prep.tflite_graph import ModelError, load_graph, rename_tensors

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def layer_order(model, example):
    """Names of the Conv2d/Linear modules in forward execution order ('.0' of ConvBNReLU dropped)."""
    order, hooks = [], []
    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            layer = name[:-2] if name.endswith(".0") else name
            hooks.append(mod.register_forward_hook(lambda m, i, o, n=layer: order.append((n, m))))
    with torch.no_grad():
        model(example)
    for h in hooks:
        h.remove()
    return order


def _weight_shape_nhwc(mod):
    """The shape litert-torch gives this module's weight in the .tflite."""
    w = mod.weight
    if isinstance(mod, torch.nn.Linear):
        return tuple(w.shape)
    o, i, kh, kw = w.shape
    if mod.groups > 1 or mod.in_channels == 1:   # depthwise (a 1-channel input exports as one)
        return (1, kh, kw, o)
    return (o, kh, kw, i)


def layer_names(graph, order):
    """{tensor index: name} naming weight ops' outputs, weights and biases after their modules."""
    weight_ops = [op for op in graph.ops if op.kind in WEIGHT_OPS]
    if len(weight_ops) != len(order):
        raise ModelError(f"{graph.path}: {len(weight_ops)} weight ops in the .tflite but "
                         f"{len(order)} Conv2d/Linear modules in the model")
    names = {}
    for op, (name, mod) in zip(weight_ops, order):
        w = graph.tensors[op.inputs[1]]
        if w.shape != _weight_shape_nhwc(mod):
            raise ModelError(f"{graph.path}: op {op.index} ({op.kind}) weight shape {w.shape} does not "
                             f"match module '{name}' ({_weight_shape_nhwc(mod)})")
        names[op.outputs[0]] = name
        names[op.inputs[1]] = f"{name}.weight"
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            names[op.inputs[2]] = f"{name}.bias"
    counts = {}
    for op in graph.ops:
        if op.outputs[0] not in names:
            k = op.kind.lower()
            names[op.outputs[0]] = f"{k}_{counts.setdefault(k, 0)}"
            counts[k] += 1
    names[graph.inputs[0]] = "input"
    return names


def quantize_to_tflite(model, calib, out_path):
    """PT2E int8 quantization (per-channel weights) and litert-torch conversion (notes/platform.md)."""
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model = model.eval()
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    exported = torch.export.export(model, (calib[:1],), strict=True).module()
    prepared = prepare_pt2e(exported, quantizer)
    with torch.no_grad():
        for x in calib:             # the exported program has batch size 1
            prepared(x[None])
    converted = convert_pt2e(prepared, fold_quantize=False)
    channel_last = litert_torch.to_channel_last_io(converted, args=[0])
    sample = calib[:1].permute(0, 2, 3, 1).contiguous()
    edge = litert_torch.convert(channel_last, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer))
    edge.export(str(out_path))


def export(ckpt_path, out_path, data_root, calib_samples=400):
    model, meta = checkpoint.load(ckpt_path)
    calib = checkpoint.calibration_inputs(meta, data_root, calib_samples)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    raw = out_path.with_suffix(".raw.tflite")
    quantize_to_tflite(model, calib, raw)
    graph = load_graph(raw)
    rename_tensors(raw, out_path, layer_names(graph, layer_order(model, calib[:1])))
    raw.unlink()
    graph = load_graph(out_path)
    inp = graph.tensors[graph.inputs[0]]
    sidecar = {
        "format": "odt-model/1",
        "model": meta["model"],
        "config": meta["config"],
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
    ap.add_argument("--data", type=Path, required=True, help="dataset root (calibration inputs)")
    ap.add_argument("--calib", type=int, default=400, help="calibration samples")
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
