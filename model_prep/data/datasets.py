"""One entry point to every dataset: features and labels by (name, root, split, group).

Splits are "train", "validation", "test"; groups are "all", "pretrain" (what the model is
pre-trained on) and "device" (what the device adapts to: a shifted distribution).
"""
import numpy as np

from model_prep.data import frontend, speech_commands

DATASETS = ("kws",)


def labels(name):
    _check(name)
    return list(speech_commands.LABELS)


def load_features(name, root, split, group):
    """(x float32 [N, 1, H, W], y int64 [N]) for one split and group of a dataset."""
    _check(name)
    examples = speech_commands.load_split(root, split, group)
    x, y = speech_commands.features(examples, root, frontend.MFCC)
    return np.ascontiguousarray(x[:, None, :, :], dtype=np.float32), np.asarray(y, dtype=np.int64)


def frontend_config(name):
    _check(name)
    from dataclasses import asdict
    return asdict(frontend.MFCC)


def _check(name):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)}")
