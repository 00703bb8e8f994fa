"""Float and int8 accuracy of every model on its default dataset, and whether it runs bit-exactly.

    python -m model_prep.verify --all              # every row below; writes results/verify.json + .png
    python -m model_prep.verify --all --quick      # tiny configurations, a smoke test in minutes
    python -m model_prep.verify --row mcunet       # one row

For each row: pre-train (cached under build/verify/), export to int8 .tflite, accuracy of the
float model (PyTorch) and of the int8 model (tflite-micro) on the test split of the
pre-training group, and `bit_exact`: the simulator, the C++ host runtime and tflite-micro give
the same bytes on every evaluated test input (model_prep.check).
"""
import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model_prep.cli import at_least
from model_prep import check, checkpoint, export, pretrain, torch_threads
from model_prep.bake import Baked
from model_prep.provenance import run_record, write_result
from model_prep.tflite_graph import load_graph
from model_prep.tflm import run_tflm

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    name: str                  # row label
    model: str                 # model_prep.checkpoint.MODELS
    dataset: str               # model_prep.data.datasets.DATASETS
    train: dict                # TrainConfig overrides of the full configuration
    model_opts: dict           # model config overrides of the full configuration
    quick: dict                # TrainConfig overrides of the --quick smoke configuration
    quick_model_opts: dict = None   # model config overrides with --quick (default: model_opts)


SMALL = {"reduce_strides": 2}   # 32x32 inputs: the first two stride-2 layers keep the resolution
ROWS = [
    Row("dscnn", "dscnn", "kws", {"epochs": 30}, {}, {"epochs": 3}),
    Row("mobilenetv2-w0.35", "mobilenetv2", "digits", {"epochs": 20, "width": 0.35}, SMALL,
        {"epochs": 3, "width": 0.35}),
    Row("mobilenetv2-w0.5", "mobilenetv2", "digits", {"epochs": 20, "width": 0.5}, SMALL, {"epochs": 3, "width": 0.5}),
    Row("mobilenetv2-w1.0", "mobilenetv2", "digits", {"epochs": 15, "width": 1.0}, {"reduce_strides": 1},
        {"epochs": 2, "width": 1.0}),
    Row("mcunet", "mcunet", "shapes", {"epochs": 20, "resolution": 96}, {}, {"epochs": 3, "resolution": 32}, SMALL),
    Row("proxyless-w0.3", "proxyless", "digits", {"epochs": 20, "width": 0.3}, SMALL, {"epochs": 3, "width": 0.3}),
]


def data_root(row, quick, work):
    """The dataset's folder (None for built-in ones); the KWS corpus is generated on first use."""
    if row.dataset != "kws":
        return None
    root = work / ("kws-quick" if quick else "kws")
    if not (root / "corpus.json").exists():
        per_word = ["--per-word", "60"] if quick else []
        subprocess.run([sys.executable, "-m", "model_prep.data.synth_kws", "--out", str(root), "--seed", "0",
                        *per_word], check=True, cwd=ROOT)
    return root


def pretrained(row, quick, root, work):
    """The row's checkpoint, trained once per configuration."""
    overrides = row.quick if quick else row.train
    model_opts = row.quick_model_opts if quick and row.quick_model_opts is not None else row.model_opts
    cfg = pretrain.parse_config([("dataset", row.dataset), ("model", row.model)] + list(overrides.items()))
    key = hashlib.sha256(json.dumps([vars(cfg), model_opts], sort_keys=True, default=str).encode()).hexdigest()[:10]
    path = work / f"{row.name}-{'quick' if quick else 'full'}-{key}.pt"
    if not path.exists():
        pretrain.train(cfg, root, path, dict(model_opts))
    return path


def verify_row(row, quick, samples, work):
    root = data_root(row, quick, work)
    ckpt = pretrained(row, quick, root, work)
    tflite = ckpt.with_suffix(".tflite")
    if not tflite.exists():
        export.export(ckpt, tflite, root, calib_samples=100 if quick else 400)
    model, meta = checkpoint.load(ckpt)
    x, y = checkpoint.load_split(meta, root, "test", "pretrain")
    x, y = x[:samples], y[:samples]
    with torch.no_grad():
        float_acc = float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    graph = load_graph(tflite)
    q = graph.quantize_input(x)
    tflm_out = run_tflm(tflite, q[:, None]).reshape(len(q), -1)
    engines = check.check(tflite, q)
    bit_exact = all(np.array_equal(engines[e].reshape(len(q), -1), tflm_out) for e in ("simulator", "runtime"))
    return {"model": row.name, "dataset": row.dataset, "float_acc": float_acc,
            "int8_acc": float((tflm_out.argmax(1) == y).mean()), "bit_exact": bool(bit_exact), "samples": int(len(y)),
            "resolution": list(x.shape[2:]), "config": {**meta["config"]}, "tflite_bytes": tflite.stat().st_size,
            "arena_bytes": Baked(tflite, train="none").plan.arena_bytes}


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.5))
    idx = np.arange(len(rows))
    ax.bar(idx - 0.2, [100 * r["float_acc"] for r in rows], 0.4, label="float (PyTorch)")
    ax.bar(idx + 0.2, [100 * r["int8_acc"] for r in rows], 0.4, label="int8 (tflite-micro)")
    ax.set_xticks(idx, [f"{r['model']}\n{r['dataset']}" for r in rows], fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every row")
    which.add_argument("--row", choices=[r.name for r in ROWS], action="append", help="one row (repeatable)")
    ap.add_argument("--quick", action="store_true", help="tiny configurations (smoke test)")
    ap.add_argument("--samples", type=at_least(0), default=0, help="test samples per row (0: all; --quick: 40)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "verify.json")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "verify", help="cache of corpora and checkpoints")
    args = ap.parse_args(argv)
    torch_threads.set_threads(2)
    samples = args.samples or (40 if args.quick else 1 << 30)
    rows = []
    print(f"{'model':20s} {'dataset':8s} {'samples':>7s} {'float':>7s} {'int8':>7s}  bit-exact")
    for row in (ROWS if args.all else [r for r in ROWS if r.name in args.row]):
        t0 = time.time()
        r = verify_row(row, args.quick, samples, args.work)
        rows.append(r)
        print(f"{r['model']:20s} {r['dataset']:8s} {r['samples']:7d} {100 * r['float_acc']:6.2f}% "
              f"{100 * r['int8_acc']:6.2f}%  {'yes' if r['bit_exact'] else 'NO'}  ({time.time() - t0:.0f} s)",
              flush=True)
    command = " ".join(["python -m model_prep.verify"] + (argv if argv is not None else sys.argv[1:]))
    result = {**run_record(command, f"{torch.get_num_threads()} threads"), "quick": args.quick, "rows": rows}
    write_result(result, args.out, plot, rows)
    sys.exit(0 if all(r["bit_exact"] for r in rows) else 1)


if __name__ == "__main__":
    main()
