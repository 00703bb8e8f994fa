"""The one scheme format: which parts of a model the device trains. Versioned, with a JSON form.

    {"format": "odt-scheme/1", "model": "dscnn", "tflite_sha256": null, "name": "last-2",
     "layers": [{"layer": "classifier", "bias": true, "weight": {"kind": "full"}},
                {"layer": "blocks.3.pw", "bias": true,
                 "weight": {"kind": "channels", "ratio": 0.25, "select": "magnitude"}}]}

Layers are named by their name in the .tflite, never by position. Per layer: the bias is updated
or not, and the weight update is one of
  none        no weight update
  full        every weight of the layer
  channels    a fraction `ratio` of the channels (input channels; output channels of a depthwise
              layer), chosen by `select` ("magnitude": largest L2 norm, as Lin et al.; "random":
              seeded), or the explicit `channels` indices
  subtensor   the channel `groups` (indices of groups of `group_size` channels) and/or the kernel
              `rows` (indices of kernel rows) of the layer
Written by search, read by bake and the tests; `validate` checks a scheme against a model.
"""
import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "odt-scheme/1"
RATIOS = (0.125, 0.25, 0.5, 1.0)
WEIGHT_KINDS = ("none", "full", "channels", "subtensor")
SELECT_RULES = ("magnitude", "random")
TRAINABLE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


class SchemeError(ValueError):
    """A scheme that is malformed, or does not fit its model."""


@dataclass(frozen=True)
class WeightUpdate:
    kind: str = "none"                # none | full | channels | subtensor
    ratio: float | None = None        # channels: fraction in RATIOS
    select: str = "magnitude"         # channels: magnitude | random
    channels: tuple | None = None     # channels: explicit indices instead of ratio + select
    groups: tuple | None = None       # subtensor: indices of channel groups
    group_size: int | None = None     # subtensor: channels per group
    rows: tuple | None = None         # subtensor or channels: indices of kernel rows (None: all)
    seed: int = 0                     # select "random"


@dataclass(frozen=True)
class LayerUpdate:
    layer: str                        # layer name in the .tflite
    bias: bool = False
    weight: WeightUpdate = field(default_factory=WeightUpdate)


@dataclass(frozen=True)
class Scheme:
    model: str                        # model name (the sidecar's), for people
    layers: tuple                     # LayerUpdate, one per updated layer
    name: str = ""
    tflite_sha256: str | None = None  # the model file this scheme was made for, if pinned

    def to_dict(self):
        layers = [{"layer": u.layer, "bias": u.bias, "weight": _weight_dict(u.weight)} for u in self.layers]
        return {"format": FORMAT, "model": self.model, "name": self.name, "tflite_sha256": self.tflite_sha256,
                "layers": layers}

    def save(self, path):
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")


def _weight_dict(w):
    """The weight update's kind and its fields that differ from their defaults."""
    d = {"kind": w.kind}
    for f in dataclasses.fields(w):
        v = getattr(w, f.name)
        if f.name != "kind" and v != f.default:
            d[f.name] = list(v) if isinstance(v, tuple) else v
    return d


def _fields(d, cls, where):
    if not isinstance(d, dict):
        raise SchemeError(f"{where}: expected an object with keys {', '.join(cls.__dataclass_fields__)}, "
                          f"got {type(d).__name__}")
    unknown = set(d) - set(cls.__dataclass_fields__)
    if unknown:
        raise SchemeError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"expected {', '.join(cls.__dataclass_fields__)}")
    return d


def _is_int(v):   # numpy's integers too (schemes built in code), never a bool
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_indices(v):
    return isinstance(v, (list, tuple)) and all(_is_int(i) and i >= 0 for i in v)


_NULLABLE = {f.name for cls in (WeightUpdate, LayerUpdate, Scheme) for f in dataclasses.fields(cls)
             if f.default is None}   # null stands for "not set" where that is the field's default
_TYPES = {   # key -> (what it must be, test)
    "layer": ("a string (the layer's name in the .tflite)", lambda v: isinstance(v, str) and v != ""),
    "bias": ("true or false", lambda v: isinstance(v, (bool, np.bool_))),
    "kind": ("a string", lambda v: isinstance(v, str)),
    "ratio": ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))),
    "select": ("a string", lambda v: isinstance(v, str)),
    "channels": ("a list of indices >= 0", _is_indices),
    "groups": ("a list of indices >= 0", _is_indices),
    "rows": ("a list of indices >= 0", _is_indices),
    "group_size": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "seed": ("an integer", _is_int),
    "model": ("a string", lambda v: isinstance(v, str)),
    "name": ("a string", lambda v: isinstance(v, str)),
    "tflite_sha256": ("a hex string", lambda v: isinstance(v, str)),
}


def _typed(d, where):
    """d, after checking each value's JSON type (a float where a list belongs is an error here, not a crash later)."""
    for k, v in d.items():
        if v is None and k in _NULLABLE:
            continue
        what, ok = _TYPES[k]
        if not ok(v):
            raise SchemeError(f"{where}: \"{k}\" is {json.dumps(v, default=str)}; expected {what}")
    return d


def from_dict(d, where="scheme"):
    """A Scheme from its JSON form, with one clear error for anything malformed."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise SchemeError(f"{where}: not a scheme (expected \"format\": \"{FORMAT}\")")
    if not isinstance(d.get("layers", []), list):
        raise SchemeError(f"{where}: \"layers\" is {type(d['layers']).__name__}; expected a list of "
                          f"{{\"layer\", \"bias\", \"weight\"}} objects")
    layers = []
    for i, item in enumerate(d.get("layers", [])):
        at = f"{where}: layers[{i}]"
        item = dict(_fields(item, LayerUpdate, at))
        if "layer" not in item:
            raise SchemeError(f"{at}: missing \"layer\" (the layer's name in the .tflite)")
        w = dict(_typed(_fields(item.pop("weight", {}), WeightUpdate, f"{at}.weight"), f"{at}.weight"))
        _typed(item, at)
        if "bias" in item:
            item["bias"] = bool(item["bias"])
        for k in ("channels", "groups", "rows"):
            if w.get(k) is not None:
                w[k] = tuple(int(i) for i in w[k])
        update = LayerUpdate(weight=WeightUpdate(**w), **item)
        _check_update(update, at)
        layers.append(update)
    names = [u.layer for u in layers]
    if len(set(names)) != len(names):
        raise SchemeError(f"{where}: a layer is listed twice")
    body = {k: v for k, v in d.items() if k not in ("format", "layers")}
    if "model" not in body:
        raise SchemeError(f"{where}: missing \"model\" (the model's name, e.g. \"dscnn\")")
    return Scheme(layers=tuple(layers), **_typed(_fields(body, Scheme, where), where))


def load(path):
    path = Path(path)
    if not path.is_file():
        raise SchemeError(f"{path}: no such scheme file (expected {FORMAT} JSON)")
    try:
        d = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SchemeError(f"{path}: not JSON ({e})") from None
    return from_dict(d, str(path))


def _check_update(u, at):
    w = u.weight
    if w.kind not in WEIGHT_KINDS:
        raise SchemeError(f"{at}: weight kind '{w.kind}'; expected one of {', '.join(WEIGHT_KINDS)}")
    if w.kind == "channels":
        if (w.ratio is None) == (w.channels is None):
            raise SchemeError(f"{at}: a channel update needs either a ratio or explicit channels")
        if w.ratio is not None and w.ratio not in RATIOS:
            raise SchemeError(f"{at}: ratio {w.ratio}; expected one of {', '.join(map(str, RATIOS))}")
        if w.select not in SELECT_RULES:
            raise SchemeError(f"{at}: select '{w.select}'; expected one of {', '.join(SELECT_RULES)}")
    if w.kind == "subtensor":
        if w.groups is None and w.rows is None:
            raise SchemeError(f"{at}: a sub-tensor update needs channel groups and/or kernel rows")
        if w.groups is not None and not w.group_size:
            raise SchemeError(f"{at}: channel groups need a group_size")


def trainable_layers(graph):
    """{layer name: op} of the ops a scheme may update."""
    return {graph.tensors[op.outputs[0]].name: op for op in graph.ops if op.kind in TRAINABLE_OPS}


def selected_channels(update, weights):
    """Indices of the channels a weight update touches (all for 'full', none for 'none').

    Channels are the weight tensor's last axis: input channels of a conv (OHWI) or fully
    connected layer ([out, in]), the channels of a depthwise layer (1HWC)."""
    w = update.weight
    n = weights.shape[-1] if weights.ndim > 1 else 1
    if w.kind == "none":
        return np.zeros(0, np.int64)
    if w.kind == "full" or w.kind == "subtensor" and w.groups is None:
        return np.arange(n)
    if w.kind == "subtensor":
        return np.concatenate([np.arange(g * w.group_size, (g + 1) * w.group_size) for g in w.groups])
    if w.channels is not None:
        return np.asarray(w.channels, np.int64)
    k = max(1, int(round(w.ratio * n)))
    if w.select == "random":
        return np.sort(np.random.default_rng(w.seed).permutation(n)[:k])
    norms = np.sqrt((weights.astype(np.float64) ** 2).reshape(-1, n).sum(axis=0))
    return np.sort(np.argsort(-norms, kind="stable")[:k])


def validate(scheme, graph):
    """Raise SchemeError if the scheme names unknown layers or channels outside a layer."""
    layers = trainable_layers(graph)
    for u in scheme.layers:
        if u.layer not in layers:
            raise SchemeError(f"scheme '{scheme.name}': no trainable layer '{u.layer}' in {graph.path} "
                              f"(trainable: {', '.join(layers)})")
        op = layers[u.layer]
        weights = graph.tensors[op.inputs[1]].data
        n = weights.shape[-1]
        idx = selected_channels(u, weights)
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise SchemeError(f"scheme '{scheme.name}': layer '{u.layer}' has {n} channels; "
                              f"the update selects {idx.max()}")
        rows = u.weight.rows or ()
        kh = weights.shape[1] if weights.ndim == 4 else 1
        if any(r < 0 or r >= kh for r in rows):
            raise SchemeError(f"scheme '{scheme.name}': layer '{u.layer}' has {kh} kernel rows")
    return scheme

