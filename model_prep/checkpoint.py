"""Checkpoints: a model's weights together with everything needed to rebuild and feed it.

A checkpoint is a torch file {"format", "model", "config", "dataset", "labels", "frontend",
"state_dict", "metrics"}; `load` rebuilds the network from its config alone.
"""
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from model_prep.models.dscnn import DSCNN, DSCNNConfig

FORMAT = "odt-checkpoint/1"
MODELS = {"dscnn": (DSCNN, DSCNNConfig)}


def build(model_name, config=None):
    if model_name not in MODELS:
        raise ValueError(f"unknown model '{model_name}'; known: {', '.join(MODELS)}")
    net, cfg_cls = MODELS[model_name]
    cfg = cfg_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in (config or {}).items()})
    return net(cfg)


def save(path, model, model_name, dataset, labels, frontend, metrics):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "format": FORMAT, "model": model_name, "config": asdict(model.cfg), "dataset": dataset,
        "labels": list(labels), "frontend": frontend, "state_dict": model.state_dict(), "metrics": metrics,
    }, path)


def load(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (expected a file written by model_prep.pretrain)")
    meta = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a checkpoint of format {FORMAT}")
    model = build(meta["model"], meta["config"])
    model.load_state_dict(meta["state_dict"])
    return model.eval(), meta


def calibration_inputs(meta, data_root, n, seed=0):
    """Up to n real inputs (N, C, H, W float32) from the pre-training split of the dataset."""
    from model_prep.data import datasets
    x, _ = datasets.load_features(meta["dataset"], data_root, "train", "pretrain")
    idx = np.random.default_rng(seed).permutation(len(x))[:n]
    return torch.from_numpy(x[idx])
