"""On-device training methods compared on the same code path: accuracy, memory and compute per task.

    python -m search.bench_methods                          # every row; results/methods.json + .png
    python -m search.bench_methods --quick                  # smoke test: one tiny task, one seed
    python -m search.bench_methods --row kws/dscnn --seeds 3

For each task (search.tasks: a model pre-trained on one group, adapted on the other) every method
trains the same int8 model on the same device samples with the same SGD (model_prep.sparse_train:
integer simulator forward, integer backward, QAS) and is scored on the same held-out samples:
  None                     the pre-trained model as it is
  LastLayer                the classifier only
  BiasOnly                 TinyTL-style: every bias + the classifier
  SparseUpdate             Lin et al.'s rule (search.baselines.paper_rule), int16 gradients + QAS
  SparseUpdate-noQAS       the same scheme with plain int8 SGD (no Quantization-Aware Scaling)
  SparseUpdate-grad-int8   the same scheme with int8 gradients
  SparseUpdate-grad-fp32   the same scheme with float32 gradients
  TinyTrain                Kwon et al.'s Fisher criterion on a few samples, within SparseUpdate's memory
  FullTrain-fp32           every weight, in float PyTorch (the upper-memory reference)
memory_bytes is the device's SRAM for one training step at batch 1 (search.memory.training_memory:
inference arena + updated weights + biases + saved activations + masks + gradient buffers), and for
FullTrain the bytes PyTorch holds for one step (measured); macs_per_step is per sample
(SparseTrainer.step_macs; FullTrain 3x the forward). Each method's learning rate is chosen from a
small grid by accuracy on the device group's validation split (seed 0); the reported accuracy is on
its test split, the mean over --seeds training seeds (shuffle order and stochastic rounding) at that
rate. Training runs in mini-batches for speed (--batch-size); the device streams batch 1 with the
same arithmetic.
"""
import argparse
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from model_prep.cli import at_least
from model_prep import checkpoint, torch_threads
from model_prep import scheme as fmt
from model_prep.provenance import run_record, write_result
from model_prep.simulate import Simulator
from model_prep.sparse_train import SparseTrainer, TrainConfig
from search import baselines, full_train, memory, tasks

ROOT = Path(__file__).resolve().parent.parent
ROWS = ("kws/dscnn", "kws/mobilenetv2-w0.35", "kws/mcunet", "digits/mobilenetv2-w0.35", "digits/mcunet")
QUICK_ROWS = ("digits/mobilenetv2-w0.35",)


@dataclass(frozen=True)
class Config:
    lrs: str = "0.05,0.01,0.002"  # SGD learning rates tried per int8 method (QAS: real-valued lrs)
    noqas_lrs: str = "0.05,5,500" # plain int8 SGD needs far larger ones to move at all
    full_lrs: str = "0.003,0.001,0.0003"   # FullTrain: SGD (momentum 0.9) learning rates, float
    epochs: int = 2               # passes over the device train data
    batch_size: int = 8
    grad_format: str = "int16"    # the device's gradient format (SparseUpdate-grad-* vary it)
    train: int = 800              # device train samples (0: all)
    test: int = 0                 # validation and test samples (0: all)
    seeds: int = 2                # training seeds averaged at the chosen learning rate
    fisher_samples: int = 32      # TinyTrain: samples of the new task its criterion sees
    tinytrain_ratio: float = 0.25     # TinyTrain: fraction of channels updated in a chosen layer
    tinytrain_combine: str = "product"   # TinyTrain cost: param_share^alpha * mac_share^beta, or "sum"
    tinytrain_alpha: float = 1.0
    tinytrain_beta: float = 1.0


QUICK = {"epochs": 1, "train": 48, "test": 48, "seeds": 1, "fisher_samples": 8, "lrs": "0.05", "noqas_lrs": "0.05",
         "full_lrs": "0.001"}

# method -> (scheme builder, TrainConfig changes); FullTrain-fp32 is not a scheme
SCHEMES = {
    "None": (baselines.none_scheme, {}),
    "LastLayer": (baselines.last_layer, {}),
    "BiasOnly": (baselines.bias_only, {}),
    "SparseUpdate": (baselines.paper_rule, {}),
    "SparseUpdate-noQAS": (baselines.paper_rule, {"qas": False}),
    "SparseUpdate-grad-int8": (baselines.paper_rule, {"grad_format": "int8"}),
    "SparseUpdate-grad-fp32": (baselines.paper_rule, {"grad_format": "float32"}),
}
METHODS = tuple(SCHEMES) + ("TinyTrain", "FullTrain-fp32")


def grid(text):
    return [float(v) for v in text.split(",") if v.strip()]


def select_and_repeat(run, lrs, seeds):
    """Learning rate with the best validation accuracy (seed 0), then the test accuracy over seeds there.

    run(lr, seed) -> (validation accuracy, test accuracy). Returns (mean test, std test, lr, validation)."""
    tried = {lr: run(lr, 0) for lr in lrs}
    best = max(lrs, key=lambda lr: tried[lr][0])       # first of equals: the grid's order
    tests = [tried[best][1]] + [run(best, seed)[1] for seed in range(1, seeds)]
    return float(np.mean(tests)), float(np.std(tests)), best, tried[best][0]


def train_int8(sim, scheme, cfg, train_cfg, data, lrs):
    """(mean test accuracy, std, chosen lr, its validation accuracy, macs per step) of a scheme."""
    macs = []

    def run(lr, seed):
        trainer = SparseTrainer(sim, scheme, replace(train_cfg, lr=lr, seed=seed))
        if scheme.layers:
            trainer.fit(data.q_train, data.y_train)
        macs.append(trainer.step_macs() if scheme.layers else 0)
        return trainer.accuracy(data.q_val, data.y_val), trainer.accuracy(data.q_test, data.y_test)

    return (*select_and_repeat(run, lrs if scheme.layers else lrs[:1], cfg.seeds), macs[0])


def bench_task(dataset, model, cfg, quick, work):
    task = tasks.prepare(dataset, model, quick=quick, work=work)
    data = tasks.device_data(task, cfg.train, cfg.test)
    sim = Simulator.from_tflite(task.tflite)
    graph = sim.graph
    base = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, grad_format=cfg.grad_format)
    rows = []

    def row(method, scheme, result, mem, t0, train_cfg=base):
        acc, std, lr, val, macs = result
        r = {"task": task.name, "dataset": dataset, "model": model, "method": method, "accuracy": acc,
             "accuracy_std": std, "memory_bytes": int(mem), "macs_per_step": int(macs), "lr": lr,
             "val_accuracy": val, "grad_format": train_cfg.grad_format if scheme is not None else "float32",
             "qas": train_cfg.qas if scheme is not None else None,
             "layers_updated": len(scheme.layers) if scheme is not None else len(fmt.trainable_layers(graph)),
             "seconds": round(time.time() - t0, 1)}
        rows.append(r)
        print(f"{task.name:14s} {model:18s} {method:24s} {100 * acc:6.1f}% ±{100 * std:4.1f} {lr:7g} "
              f"{mem / 1024:9.1f} KiB {macs / 1e6:8.2f} M  ({r['seconds']:.0f} s)", flush=True)

    paper = None
    for method, (build, changes) in SCHEMES.items():
        t0 = time.time()
        scheme = build(graph, model)
        train_cfg = replace(base, **changes)
        lrs = grid(cfg.lrs if train_cfg.qas else cfg.noqas_lrs)
        mem = memory.training_memory(graph, scheme, train_cfg.grad_format).total
        row(method, scheme, train_int8(sim, scheme, cfg, train_cfg, data, lrs), mem, t0, train_cfg)
        if method == "SparseUpdate":
            paper = mem

    t0 = time.time()
    n = cfg.fisher_samples
    scheme = baselines.tinytrain(sim, data.q_train[:n], data.y_train[:n], budget_bytes=paper, model=model,
                                 ratio=cfg.tinytrain_ratio, alpha=cfg.tinytrain_alpha, beta=cfg.tinytrain_beta,
                                 combine=cfg.tinytrain_combine,
                                 memory_of=lambda s: memory.training_memory(graph, s, cfg.grad_format).total)
    mem = memory.training_memory(graph, scheme, cfg.grad_format).total
    row("TinyTrain", scheme, train_int8(sim, scheme, cfg, base, data, grid(cfg.lrs)), mem, t0)

    t0 = time.time()

    def run_float(lr, seed):
        return full_train.full_train_float(task, data, epochs=cfg.epochs, lr=lr, batch_size=cfg.batch_size, seed=seed)

    float_model, _ = checkpoint.load(task.checkpoint)
    mem = memory.pytorch_full_train_bytes(float_model, full_train.input_shape(task), batch_size=1)
    result = (*select_and_repeat(run_float, grid(cfg.full_lrs), cfg.seeds), full_train.full_train_macs(task))
    row("FullTrain-fp32", None, result, mem, t0)
    return rows


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = list(dict.fromkeys((r["task"], r["model"]) for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    colors = {m: plt.cm.tab10(i) for i, m in enumerate(METHODS)}
    for ax, (task, model) in zip(axes[0], panels):
        for r in (r for r in rows if (r["task"], r["model"]) == (task, model)):
            ax.scatter(max(r["memory_bytes"], 1) / 1024, 100 * r["accuracy"], color=colors[r["method"]],
                       label=r["method"], s=36)
        ax.set_xscale("log")
        ax.set_xlabel("training memory (KiB, log)")
        ax.set_title(f"{task}\n{model}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=7)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_row(text):
    try:
        return tasks.parse_row(text)
    except ValueError as e:
        raise SystemExit(f"bench_methods: {e}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--row", action="append", help="dataset/model (repeatable; default: all)")
    ap.add_argument("--quick", action="store_true", help="one tiny task, one seed (smoke test)")
    for f, default in asdict(Config()).items():
        ap.add_argument(f"--{f.replace('_', '-')}", type=type(default), default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "methods.json")
    ap.add_argument("--work", type=Path, default=tasks.WORK, help="cache of pre-trained task models")
    ap.add_argument("--threads", type=at_least(1), default=2)
    args = ap.parse_args(argv)
    overrides = {f: getattr(args, f) for f in asdict(Config()) if getattr(args, f) is not None}
    cfg = Config(**{**(QUICK if args.quick else {}), **overrides})
    if cfg.seeds < 1 or cfg.epochs < 1 or cfg.batch_size < 1:
        sys.exit("bench_methods: --seeds, --epochs and --batch-size must be at least 1")
    if cfg.tinytrain_combine not in ("product", "sum"):
        sys.exit(f"bench_methods: --tinytrain-combine {cfg.tinytrain_combine}; expected product or sum")
    try:
        [grid(g) for g in (cfg.lrs, cfg.noqas_lrs, cfg.full_lrs)]
    except ValueError:
        sys.exit("bench_methods: --lrs, --noqas-lrs and --full-lrs are comma lists of numbers")
    torch_threads.set_threads(args.threads)
    which = [parse_row(r) for r in args.row] if args.row else [parse_row(r) for r in
                                                                  (QUICK_ROWS if args.quick else ROWS)]
    print(f"{'task':14s} {'model':18s} {'method':24s} {'accuracy':>14s} {'lr':>7s} {'memory':>13s} {'MACs/step':>10s}")
    rows = []
    for dataset, model in which:
        rows += bench_task(dataset, model, cfg, args.quick, args.work)
    command = " ".join(["python -m search.bench_methods"] + (argv if argv is not None else sys.argv[1:]))
    result = {**run_record(command, f"{args.threads} threads"), "quick": args.quick, "config": asdict(cfg),
              "rows": rows}
    write_result(result, args.out, plot, rows)


if __name__ == "__main__":
    main()
