"""The model a device trained, back as an int8 .tflite: the baked model with the device's parameters written in.

    manifest = json.loads(Path("build/kws/baked/model.json").read_text())       # bake's odt-baked/1
    trained = dev.read_trained(manifest["params"])                              # host_tools.protocol.Device
    adapted.write(manifest, trained, "build/demo/adapted.tflite", samples_trained=400)

The device trains int8 weights and int32 biases in the scales bake gave them (QAS keeps the
quantization fixed), so the adapted model is the baked .tflite with those tensors' data replaced:
a sliced weight (only the updated channels / kernel rows live in SRAM) is written into the
original tensor, a bias the converter had dropped (all zero) gets a tensor of its own. The
result runs anywhere an int8 .tflite runs: tflite-micro gives the device's outputs bit for bit,
and bake takes it again (with its sidecar: labels, model name), so an adaptation can be flashed
and survive a power cycle. The sidecar records what it was adapted from.
"""
import hashlib
import json
from pathlib import Path

import numpy as np

from model_prep.scheme import trainable_layers
from model_prep.tflite_graph import load_graph, set_parameters

ROOT = Path(__file__).resolve().parent.parent


class AdaptedError(ValueError):
    """Parameters that do not belong to the baked model they are said to come from."""


def full_tensors(graph, params, trained):
    """{op index: {"weights": array, "bias": array}} of the trained tensors, whole: a sliced weight's
    slice written into the model's weights. params: model.json's "params"; trained: {(layer, tensor): array}."""
    by_name = trainable_layers(graph)
    out = {}
    for p in params:
        layer, what = p["layer"], p["tensor"]
        op = by_name.get(layer)
        if op is None:
            raise AdaptedError(f"the parameters name layer '{layer}', which {graph.path} lacks")
        if (layer, what) not in trained:
            raise AdaptedError(f"no trained {what} of layer '{layer}' (read {len(trained)} tensors)")
        value = np.asarray(trained[layer, what])
        if p.get("sliced"):
            whole = np.array(graph.tensors[op.inputs[1]].data)
            rows, channels = np.asarray(p["rows"]), np.asarray(p["channels"])
            if whole.ndim == 2:
                whole[:, channels] = value
            else:   # the slice is [O, rows, KW, channels]; index arrays split by a slice put their axes first
                whole[:, rows[:, None], :, channels[None, :]] = value.transpose(1, 3, 0, 2)
            value = whole
        out.setdefault(op.index, {})[what] = value
    return out


def source(manifest, tflite=None):
    """The .tflite a baked model was baked from, checked by its hash: `tflite`, else the path model.json names
    (relative to the working folder, else to the repository, as bake was run from it)."""
    return _baked_from(manifest, tflite)[0]


def _baked_from(manifest, tflite):
    """(path, bytes, sha256) of source()'s file, read once."""
    named = Path(manifest["tflite"])
    tries = [Path(tflite)] if tflite else [named] + ([ROOT / named] if not named.is_absolute() else [])
    path = next((p for p in tries if p.is_file()), None)
    if path is None:
        raise AdaptedError(f"{tries[0]}: the .tflite the firmware was baked from is missing (pass it as --tflite)")
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if not sha.startswith(manifest["tflite_sha256"]):
        raise AdaptedError(f"{path} (sha256 {sha[:16]}) is not the model the firmware was baked from "
                           f"(sha256 {manifest['tflite_sha256']})")
    return path, data, sha


def write(manifest, trained, out, tflite=None, **record):
    """Write the adapted model to `out` (a .tflite and its .json sidecar); returns the path.

    manifest: the baked model's model.json; tflite: the .tflite it was baked from (default: source(manifest));
    record: what to note in the sidecar (board, samples trained, ...)."""
    tflite, data, sha = _baked_from(manifest, tflite)
    graph = load_graph(tflite)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(set_parameters(data, full_tensors(graph, manifest["params"], trained)))
    sidecar = tflite.with_suffix(".json")
    meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    meta.setdefault("model", manifest.get("model"))
    meta.setdefault("labels", manifest.get("labels"))
    meta["adapted"] = {"from": str(tflite), "from_sha256": sha, "scheme": manifest.get("scheme"),
                       "layers": sorted({p["layer"] for p in manifest["params"]}), **record}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
