"""How much of a real evaluation is the training seed? The noise floor under search.bench's numbers.

    python -m search.seed_noise --row kws/dscnn --row kws/mcunet@128,256 --row digits/mcunet@256   # 3 seeds
    python -m search.seed_noise --quick         # kws/dscnn quick task, 2 seeds, few schemes (smoke test)

search.bench verifies each search's top schemes with one training run each (training seed 0), and its
additivity check compares the table's predictions with those single runs. This benchmark takes, per
row (the bench's rows and budgets), exactly the schemes the bench verified for NSGA-II and uniform
random search at search seed 0 (the --verify of highest predicted gain on each final front within each
budget) and the classifier alone, trains each again with more training seeds (the same data, config and
cache as the bench: only the new seeds train) and reports on the validation split: each scheme's
accuracy per seed and its standard deviation over seeds (pooled: the root mean variance); the
additivity correlation against one seed and against the mean over seeds; and whether the
best-on-validation pick among each search's verified schemes is the same by one seed as by the mean.
Writes results/seed_noise.json, a PNG (measured gain per seed against predicted gain) and a table.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from model_prep.cli import at_least
from model_prep.provenance import run_record, write_result
from search import tasks
from search.bench import ROWS, add_row_arguments, correlation, row_space, wanted_rows
from search.evaluate import Evaluator, add_cluster_arguments, evaluation_config, to_stderr
from search.ga import INITS, nsga2, random_search

ROOT = Path(__file__).resolve().parent.parent


def row_noise(space, budgets, seeds, evals, pop, verify, evaluator, init="greedy"):
    """The row's verified schemes (seed-0 searches, every budget) trained with `seeds` training seeds on validation."""
    classifier_only = tuple(int(v) for v in space.classifier_only)
    budgets = [b for b in budgets if space.fits(b)]   # as the bench skips
    cands = {}
    for budget in budgets:
        for m, a in (("ga", nsga2(space, budget, evals, seed=0, pop_size=pop, init=init)),
                     ("random", random_search(space, budget, evals, seed=0))):
            cands[f"{m}@{budget // 1024}KiB"] = [tuple(int(v) for v in a.x[i]) for i in a.top_of_front(budget, verify)]
    xs = list(dict.fromkeys([classifier_only] + [x for c in cands.values() for x in c]))
    acc = np.asarray(evaluator.per_seed([space.scheme(x) for x in xs], split="val", seeds=seeds))   # [scheme, seed]
    gain = acc - acc[0]                       # per seed, over the classifier alone trained with the same seed
    predicted = [space.gain(x) for x in xs]
    at = {x: i for i, x in enumerate(xs)}
    picks = {m: {"by_one_seed": space.describe(max(c, key=lambda x: acc[at[x], 0])),
                 "by_mean": space.describe(max(c, key=lambda x: acc[at[x]].mean()))} for m, c in cands.items()}
    std = acc.std(1, ddof=1)
    return {"model": space.model, "budgets_bytes": budgets, "training_seeds": seeds, "schemes": len(xs),
            "describe": [space.describe(x) for x in xs], "sram_bytes": [space.sram(x) for x in xs],
            "predicted_gain": predicted, "accuracy": acc.tolist(), "seed_std": std.tolist(),
            "pooled_seed_std": float(np.sqrt(np.mean(std ** 2))),
            "classifier_only_seed_std": float(std[0]),
            "additivity_r_one_seed": correlation(predicted[1:], gain[1:, 0]),
            "additivity_r_mean": correlation(predicted[1:], gain[1:].mean(1)),
            "picks": picks, "picks_agree": sum(p["by_one_seed"] == p["by_mean"] for p in picks.values())}


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, max(len(rows), 1), figsize=(3.6 * max(len(rows), 1), 3.2), squeeze=False)
    for ax, r in zip(axes[0], rows):
        acc = np.asarray(r["accuracy"])
        gain, pred = 100 * (acc - acc[0]), 100 * np.asarray(r["predicted_gain"])
        for s in range(gain.shape[1]):
            ax.scatter(pred[1:], gain[1:, s], s=8, color="tab:gray", alpha=0.6, label="one seed" if s == 0 else None)
        ax.errorbar(pred[1:], gain[1:].mean(1), yerr=gain[1:].std(1, ddof=1), fmt="o", color="tab:blue", ms=4,
                    capsize=2, label="mean ± std over seeds")
        kib = "/".join(str(b // 1024) for b in r["budgets_bytes"])
        ax.set_title(f"{r['model']} / {r['task']}, {kib} KiB", fontsize=8)
        ax.set_xlabel("predicted gain (points)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("measured gain on validation (points)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="kws/dscnn quick task, 2 seeds, 48 evaluations, 2 verified")
    add_row_arguments(ap, contrib=False)
    ap.add_argument("--seeds", type=at_least(1), default=3, help="training seeds per scheme (seed 0 is the bench's)")
    ap.add_argument("--evals", type=at_least(1), default=480,
                    help="the bench's search evaluations (to find its schemes)")
    ap.add_argument("--pop", type=at_least(4), default=24)
    ap.add_argument("--verify", type=at_least(1), default=4, help="the bench's verified schemes per search")
    ap.add_argument("--init", choices=INITS, default="greedy", help="the bench's --init (sparse: the bench before "
                    "the greedy start, as results/seed_noise.json was measured)")
    add_cluster_arguments(ap)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "seed_noise.json")
    args = ap.parse_args(argv)
    if args.seeds < 2:
        sys.exit(f"search.seed_noise: --seeds {args.seeds}: the spread over seeds needs at least 2")
    if args.quick:
        args.seeds, args.evals, args.pop, args.verify = 2, 48, 12, 2
    rows = []
    for dataset, model, budgets in wanted_rows(args.row, args.quick, "search.seed_noise"):
        task, table, space = row_space(dataset, model, args.quick, ROWS.get((dataset, model)), "search.seed_noise")
        with Evaluator(task, evaluation_config(task, table), args.scheduler, args.workers, args.evaluations,
                       to_stderr) as ev:
            r = {**row_noise(space, budgets, args.seeds, args.evals, args.pop, args.verify, ev, args.init),
                 "init": args.init,
                 "task": dataset, "validation_samples": tasks.split_size(task, "val", ev.cfg.test)}
        rows.append(r)
        one = lambda v: "—" if v is None else f"{v:.2f}"   # noqa: E731
        print(f"{dataset}/{model:8s} {','.join(str(b // 1024) for b in budgets)} KiB  {r['schemes']} schemes x "
              f"{args.seeds} seeds: seed std {100 * r['pooled_seed_std']:.1f} points (classifier alone "
              f"{100 * r['classifier_only_seed_std']:.1f}; one validation sample {100 / r['validation_samples']:.1f}); "
              f"additivity r one seed {one(r['additivity_r_one_seed'])}, mean {one(r['additivity_r_mean'])}; "
              f"picks agree {r['picks_agree']}/{len(r['picks'])}", flush=True)
    command = " ".join(["python -m search.seed_noise"] + (argv if argv is not None else sys.argv[1:]))
    write_result({**run_record(command), "quick": args.quick, "rows": rows}, args.out, plot, rows)


if __name__ == "__main__":
    main()
