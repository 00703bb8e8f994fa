"""Checkpoints: a model's weights together with everything needed to rebuild and feed it.

A checkpoint is a torch file {"format", "model", "config", "dataset", "dataset_options",
"labels", "frontend", "state_dict", "metrics"}; `load` rebuilds the network from its config
alone, and `load_split` reads a dataset split exactly as the model was trained on it (same
options, e.g. the image resolution). Checkpoints written before "dataset_options" existed
load with none.
"""
import dataclasses
from pathlib import Path

import numpy as np
import torch

from model_prep.models.dscnn import DSCNN, DSCNNConfig
from model_prep.models.mcunet import MCUNet, MCUNetConfig
from model_prep.models.mobilenetv2 import MobileNetV2, MobileNetV2Config
from model_prep.models.proxyless import ProxylessConfig, ProxylessNAS

FORMAT = "odt-checkpoint/1"
MODELS = {
    "dscnn": (DSCNN, DSCNNConfig),
    "mobilenetv2": (MobileNetV2, MobileNetV2Config),
    "mcunet": (MCUNet, MCUNetConfig),
    "proxyless": (ProxylessNAS, ProxylessConfig),
}


def config_class(model_name):
    if model_name not in MODELS:
        raise ValueError(f"unknown model '{model_name}'; known: {', '.join(MODELS)}")
    return MODELS[model_name][1]


def make_config(model_name, config=None):
    """The model's config dataclass from a dict of fields (lists become tuples); unknown keys are an error."""
    cfg_cls = config_class(model_name)
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(config or {}) - known)
    if unknown:
        raise ValueError(f"model '{model_name}' has no option {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cfg_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in (config or {}).items()})


def build(model_name, config=None):
    cfg = make_config(model_name, config)
    return MODELS[model_name][0](cfg)


def save(path, model, model_name, dataset, labels, frontend, metrics, dataset_options=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "format": FORMAT, "model": model_name, "config": model.cfg.to_dict(), "dataset": dataset,
        "dataset_options": dict(dataset_options or {}), "labels": list(labels), "frontend": frontend,
        "state_dict": model.state_dict(), "metrics": metrics,
    }, path)


def load(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (expected a file written by model_prep.pretrain)")
    meta = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a checkpoint of format {FORMAT}")
    meta.setdefault("dataset_options", {})
    model = build(meta["model"], meta["config"])
    model.load_state_dict(meta["state_dict"])
    return model.eval(), meta


def load_split(meta, data_root, split, group):
    """(x float32 [N, C, H, W], y int64 [N]) of the checkpoint's dataset, read with its options."""
    from model_prep.data import datasets
    return datasets.load_features(meta["dataset"], data_root, split, group, **meta.get("dataset_options", {}))


def calibration_inputs(meta, data_root, n, seed=0):
    """Up to n real inputs (N, C, H, W float32) from the pre-training split of the dataset."""
    x, _ = load_split(meta, data_root, "train", "pretrain")
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return torch.from_numpy(x[idx])
