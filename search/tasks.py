"""Transfer tasks for sparse-update experiments: a model pre-trained on one group, adapted on the other.

    from search import tasks
    t = tasks.prepare("kws", "mobilenetv2-w0.35", quick=False)   # pre-trains and exports once (cached)
    d = tasks.device_data(t, n_train=400, n_test=400)           # int8 inputs of the on-device group

A task is (dataset, model): the model is pre-trained in float on the dataset's "pretrain" group,
exported to int8, and then trained on the "device" group (KWS: speakers it never heard; digits:
ink on paper instead of the pre-training rendering); settings are chosen on that group's validation
split and results reported on its test split.
Checkpoints and corpora are cached in the work folder (model_prep.verify's cache), keyed by configuration.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_prep import checkpoint, export, verify
from model_prep.verify import SMALL, Row

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "verify"   # shared with model_prep.verify: the same rows reuse its checkpoints

# (dataset, model label) -> how to pre-train it (full and --quick), as model_prep.verify rows.
_MFCC = {"reduce_strides": 2}   # 49x10 MFCCs: keep the resolution through the first two stride-2 layers
ROWS = {
    ("kws", "dscnn"): Row("dscnn", "dscnn", "kws", {"epochs": 30}, {}, {"epochs": 3}),
    ("kws", "mobilenetv2-w0.35"): Row("mobilenetv2-w0.35", "mobilenetv2", "kws", {"epochs": 20, "width": 0.35},
                                      _MFCC, {"epochs": 2, "width": 0.35}),
    ("kws", "mcunet"): Row("mcunet", "mcunet", "kws", {"epochs": 20}, _MFCC, {"epochs": 2}),
    ("digits", "mobilenetv2-w0.35"): Row("mobilenetv2-w0.35", "mobilenetv2", "digits", {"epochs": 20, "width": 0.35},
                                         SMALL, {"epochs": 3, "width": 0.35}),
    ("digits", "mcunet"): Row("mcunet", "mcunet", "digits", {"epochs": 20, "resolution": 32}, SMALL,
                              {"epochs": 3, "resolution": 32}),
}
TASK_NAMES = {"kws": "KWS speakers", "digits": "digits ink"}


@dataclass(frozen=True)
class Task:
    dataset: str
    model: str            # the row label, e.g. mobilenetv2-w0.35
    quick: bool
    checkpoint: Path      # float pre-trained model
    tflite: Path          # its int8 export
    data_root: Path | None

    @property
    def name(self):
        return TASK_NAMES.get(self.dataset, self.dataset)


def _unknown(what):
    return ValueError(f"no task {what}; known: {', '.join(f'{d}/{m}' for d, m in ROWS)}")


def parse_row(text):
    """'kws/dscnn' -> ("kws", "dscnn"), a row of ROWS; ValueError naming the known rows otherwise."""
    dataset, _, model = text.partition("/")
    if (dataset, model) not in ROWS:
        raise _unknown(f"'{text}' (dataset/model)")
    return dataset, model


def prepare(dataset, model, quick=False, work=WORK):
    """Pre-train (once) and export (once) the task's model; returns the Task."""
    if (dataset, model) not in ROWS:
        raise _unknown(f"for dataset '{dataset}' with model '{model}'")
    row = ROWS[(dataset, model)]
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    root = verify.data_root(row, quick, work)
    ckpt = verify.pretrained(row, quick, root, work)
    tflite = ckpt.with_suffix(".tflite")
    if not tflite.exists():
        export.export(ckpt, tflite, root, calib_samples=100 if quick else 400)
    return Task(dataset, model, quick, ckpt, tflite, root)


@dataclass
class DeviceData:
    """The on-device group: train (to adapt on), validation (to choose settings), test (to report)."""
    x_train: np.ndarray   # float features [N, C, H, W] (for float training)
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    q_train: np.ndarray   # the same, quantized into the int8 model's input [N, H, W, C]
    q_val: np.ndarray
    q_test: np.ndarray


def _device_split(task, meta, split):
    """(x float, y) of the on-device group's split: "train", "val" or "test"."""
    return checkpoint.load_split(meta, task.data_root, "validation" if split == "val" else split, "device")


def split_size(task, split, n=0):
    """Samples device_data reads of the on-device group's split ("train", "val", "test"): all, or n when fewer."""
    _, y = _device_split(task, checkpoint.load(task.checkpoint)[1], split)
    return min(len(y), n or len(y))


def device_data(task, n_train=0, n_test=0, seed=0):
    """The on-device group's splits, each a seeded random subset (n_train of train, n_test of validation
    and of test; 0: all)."""
    from model_prep.tflite_graph import load_graph
    _, meta = checkpoint.load(task.checkpoint)
    graph = load_graph(task.tflite)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("val", n_test), ("test", n_test)):
        x, y = _device_split(task, meta, split)
        keep = rng.permutation(len(x))[:n or len(x)]
        out[f"x_{split}"], out[f"y_{split}"], out[f"q_{split}"] = x[keep], y[keep], graph.quantize_input(x[keep])
    return DeviceData(**out)
