"""What TinyTrain's scheme owes to each of its parts: its Fisher-chosen channels, its layers' biases, its weights.

    python -m search.tinytrain_ablation --row digits/mcunet@256 \
        --contrib results/contrib-mcunet-digits-all-avx512.json --train-seeds 3 --evaluations results/evaluations
    python -m search.tinytrain_ablation --quick     # kws/dscnn quick task, 128 KiB, one training run (smoke test)

Per row (search.bench's rows and tables; the table sets how an evaluation trains,
search.evaluate.evaluation_config) and budget: TinyTrain's scheme as search.bench builds it (Fisher
potentials of the first baselines.FISHER_SAMPLES device train samples; layers by potential per cost while
the runtime's planner says the scheme fits; each with its bias and its top quarter of channels by Fisher
information), and that scheme with one part changed:
  magnitude     the same layers and channel counts, the channels of largest weight magnitude (Lin et al.)
  random        the same, the channels at random (seeded)
  biases only   the picked layers' biases (and the classifier), none of their weights
  weights only  the picked layers' channels (and the classifier), none of their biases
each trained for real on the validation and the test split (search.evaluate, `--train-seeds` runs each,
cached with search.bench's evaluations when `--evaluations` names the same folder), with its SRAM from
the runtime's planner. A variant that beats TinyTrain's own scheme names a part it could do without; one
far below it names TinyTrain's edge (what the searched genome lacks, see search.contrib --select fisher).
Writes results/tinytrain_ablation.json, a PNG (accuracy per variant) and a table.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

from model_prep import scheme as fmt
from model_prep.cli import at_least
from model_prep.provenance import run_record, write_result
from search import baselines, tasks
from search.bench import (add_row_arguments, merged, planned_sram, row_space, row_table, tinytrain_scheme,
                          update_base, wanted_rows)
from search.evaluate import Evaluator, add_cluster_arguments, evaluation_config, to_stderr

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"tinytrain": "TinyTrain (Fisher channels, biases)", "magnitude": "channels by magnitude",
            "random": "channels at random", "biases_only": "biases only", "weights_only": "weights only"}


def variants(tiny, classifier, ratio=0.25):
    """{variant: scheme}: TinyTrain's scheme and the four one-part changes of VARIANTS (the classifier untouched)."""
    def changed(name, change):
        d = tiny.to_dict()
        for u in d["layers"]:
            if u["layer"] != classifier:
                change(u)
        return fmt.from_dict({**d, "name": f"TinyTrain, {name}"})

    def channels_by(rule):
        def change(u):
            if u["weight"]["kind"] == "channels":
                u["weight"] = {"kind": "channels", "ratio": ratio, "select": rule}
        return change

    return {"tinytrain": tiny, "magnitude": changed("magnitude", channels_by("magnitude")),
            "random": changed("random", channels_by("random")),
            "biases_only": changed("biases only", lambda u: u.update(weight={"kind": "none"})),
            "weights_only": changed("weights only", lambda u: u.update(bias=False))}


def row_ablation(space, data, potentials, budget, evaluator):
    """One budget of a row (data: its tasks.device_data; potentials: baselines.task_potentials of it): each
    variant's SRAM and accuracy per training seed on validation and test."""
    tiny = tinytrain_scheme(space, budget, potentials)
    schemes = variants(tiny, space.classifier)
    acc = {split: dict(zip(schemes, evaluator.per_seed(list(schemes.values()), split))) for split in ("val", "test")}
    return {"budget_bytes": budget, "training_seeds": evaluator.cfg.seeds, "test_samples": len(data.y_test),
            "val_samples": len(data.y_val),
            "layers": [u.layer for u in tiny.layers if u.layer != space.classifier],
            "channels": {u.layer: len(u.weight.channels) for u in tiny.layers if u.weight.kind == "channels"},
            "sram_bytes": {v: planned_sram(space.sim, s) for v, s in schemes.items()},
            **{f"{split}_acc": {v: float(np.mean(a)) for v, a in acc[split].items()} for split in acc},
            **{f"{split}_acc_per_seed": acc[split] for split in acc}}


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, max(len(rows), 1), figsize=(4.2 * max(len(rows), 1), 3.4), squeeze=False)
    x = np.arange(len(VARIANTS))
    for ax, r in zip(axes[0], rows):
        for k, (split, label) in enumerate((("val", "validation"), ("test", "test"))):
            ax.bar(x + 0.4 * k - 0.2, [100 * r[f"{split}_acc"][v] for v in VARIANTS], 0.4, label=label)
        ax.set_xticks(x, [VARIANTS[v].split(" (")[0] for v in VARIANTS], rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{r['model']} / {r['task']}, {r['budget_bytes'] // 1024} KiB", fontsize=8)
        lo = min(100 * r[f"{s}_acc"][v] for s in ("val", "test") for v in VARIANTS)
        ax.set_ylim(max(0.0, lo - 10), None)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel(f"accuracy (%), mean of {rows[0]['training_seeds'] if rows else 1} run(s)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="kws/dscnn quick task, 128 KiB, one training run")
    add_row_arguments(ap)
    ap.add_argument("--train-seeds", type=at_least(1), default=3, help="training runs averaged per evaluation")
    add_cluster_arguments(ap)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "tinytrain_ablation.json")
    ap.add_argument("--update", action="store_true", help="keep the rows of --out that this run does not measure")
    args = ap.parse_args(argv)
    if args.quick:
        args.train_seeds = 1
    command = " ".join(["python -m search.tinytrain_ablation"] + (argv if argv is not None else sys.argv[1:]))
    old = update_base(args.out, "search.tinytrain_ablation", args.quick) if args.update else {"rows": []}
    wanted = wanted_rows(args.row, args.quick, "search.tinytrain_ablation")
    rows = []
    for dataset, model, budgets in wanted:
        path = row_table(args.contrib, wanted, dataset, model)
        task, table, space = row_space(dataset, model, args.quick, path, "search.tinytrain_ablation")
        cfg = evaluation_config(task, table, args.train_seeds)
        data = tasks.device_data(task, cfg.train, cfg.test, seed=0)
        potentials = baselines.task_potentials(space.sim, data)
        with Evaluator(task, cfg, args.scheduler, args.workers, args.evaluations, to_stderr) as ev:
            for budget in budgets:
                if not space.fits(budget):
                    print(f"{dataset}/{model}: budget {budget // 1024} KiB below the classifier alone; skipped")
                    continue
                t0 = time.time()
                r = {"model": model, "task": dataset, "table": str(path), "run": run_record(command),
                     **row_ablation(space, data, potentials, budget, ev)}
                rows.append(r)
                print(f"\n{dataset}/{model}, {budget // 1024} KiB: TinyTrain picks {', '.join(r['layers'])} "
                      f"({time.time() - t0:.0f} s)")
                print(f"  {'variant':38s} {'SRAM B':>8s} {'val %':>7s} {'test %':>7s}")
                for v, label in VARIANTS.items():
                    print(f"  {label:38s} {r['sram_bytes'][v]:8d} {100 * r['val_acc'][v]:7.1f} "
                          f"{100 * r['test_acc'][v]:7.1f}", flush=True)
    rows = merged(old, rows)
    write_result({**run_record(command), "quick": args.quick, "rows": rows}, args.out, plot, rows)


if __name__ == "__main__":
    main()
