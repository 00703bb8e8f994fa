"""What the GAs' greedy start buys, in the objectives they search (no training): every row, both starts.

    python -m search.bench_init                 # every row with a table, budgets 64/128/256 KB, 5 seeds
    python -m search.bench_init --row kws/mcunet@128,256 --contrib results/contrib-mcunet-kws.json
    python -m search.bench_init --quick         # kws/dscnn quick task, 128 KiB, 2 seeds, 96 evaluations
    python -m search.bench_init --row digits/mcunet@256 --contrib T.json --update --out F.json   # add a row

Per row (model, task: search.bench's rows and tables) and budget, for each seed, with the same number of
evaluations: NSGA-II and the single-objective GA started from the greedy knapsack path (--init greedy,
search.ga.GreedySampling) and from random schemes alone (--init sparse), uniform random search and random
search with the GA's random sampler; beside them the greedy pick alone (search.ga.greedy). Reported: the
highest predicted gain within the budget (what search.bench then verifies; mean over seeds) and, for
NSGA-II with either start, the share of the evaluations it needs to reach uniform random search's final
hypervolume (search.bench's measure). Nothing is trained, so a row runs in minutes. The planner plans on
the row's model as this machine pre-trains it; where that export is not the one the table was measured
on (search.bench refuses those rows, see the README's "Real evaluations"), the table's gains are still
the objective every search here shares, and the row says so (table_model_matches: false).
Writes results/search_init.json, a PNG (predicted gain per method) and a table.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

from model_prep.cli import at_least
from model_prep.provenance import run_record, write_result
from search import contrib
from search.bench import (add_row_arguments, fraction_to_reach, hv_curve, merged, normalizer, row_space, row_table,
                          update_base, wanted_rows)
from search.ga import greedy, nsga2, random_search, single_ga

ROOT = Path(__file__).resolve().parent.parent
METHODS = {   # name -> (label, search(space, budget, evals, seed, pop))
    "ga_greedy": ("NSGA-II, greedy start", lambda s, b, n, seed, pop: nsga2(s, b, n, seed, pop, init="greedy")),
    "ga_sparse": ("NSGA-II, random start", lambda s, b, n, seed, pop: nsga2(s, b, n, seed, pop, init="sparse")),
    "single_greedy": ("single-objective GA, greedy start",
                      lambda s, b, n, seed, pop: single_ga(s, b, n, seed, pop, init="greedy")),
    "single_sparse": ("single-objective GA, random start",
                      lambda s, b, n, seed, pop: single_ga(s, b, n, seed, pop, init="sparse")),
    "random": ("random search (uniform)", lambda s, b, n, seed, pop: random_search(s, b, n, seed)),
    "random_sparse": ("random search (GA's sampler)",
                      lambda s, b, n, seed, pop: random_search(s, b, n, seed, sampler="sparse")),
}


def row_init(space, table, budget, seeds, evals, pop):
    """One budget of a row: each method's best predicted gain within it per seed, and NSGA-II's hypervolume
    fractions against uniform random search (1.0 where it never reaches it)."""
    norm = normalizer(space, table)
    gains, fractions = {m: [] for m in METHODS}, {m: [] for m in ("ga_greedy", "ga_sparse")}
    for seed in seeds:
        archives = {m: search(space, budget, evals, seed, pop) for m, (_, search) in METHODS.items()}
        for m, a in archives.items():
            gains[m].append(space.gain(a.best(budget)))
        target = hv_curve(archives["random"], norm, budget, pop)[-1]
        for m in fractions:
            fractions[m].append(fraction_to_reach(hv_curve(archives[m], norm, budget, pop), target, pop, evals))
    return {"budget_bytes": budget, "seeds": len(seeds), "evals": evals,
            "predicted_gain": {m: float(np.mean(v)) for m, v in gains.items()} | {"greedy": space.gain(
                greedy(space, budget))},
            "predicted_gain_per_seed": gains, "hv_fraction": {m: float(np.mean(v)) for m, v in fractions.items()},
            "hv_fraction_per_seed": fractions}


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = ["greedy", *METHODS]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 3.6))
    width = 0.8 / len(names)
    for k, m in enumerate(names):
        ax.bar(np.arange(len(rows)) + k * width, [100 * r["predicted_gain"][m] for r in rows], width,
               label="greedy pick alone" if m == "greedy" else METHODS[m][0])
    ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{r['model']}/{r['task']}\n{r['budget_bytes'] // 1024} KiB" for r in rows], fontsize=7)
    ax.set_ylabel("best predicted gain within the budget (points)", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="kws/dscnn quick task, 128 KiB, 2 seeds, 96 evaluations")
    add_row_arguments(ap)
    ap.add_argument("--seeds", type=at_least(1), default=5)
    ap.add_argument("--evals", type=at_least(1), default=480)
    ap.add_argument("--pop", type=at_least(4), default=24)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "search_init.json")
    ap.add_argument("--update", action="store_true", help="keep the rows of --out that this run does not measure "
                    "(other model, task or budget), so rows of separate runs (each its own --contrib) share a file")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.evals, args.pop = 2, 96, 12
    old = update_base(args.out, "search.bench_init", args.quick) if args.update else {"rows": []}
    wanted = wanted_rows(args.row, args.quick, "search.bench_init")
    rows = []
    for dataset, model, budgets in wanted:
        path = row_table(args.contrib, wanted, dataset, model)
        task, table, space = row_space(dataset, model, args.quick, path, "search.bench_init", strict=False)
        matches = contrib.model_mismatch(table, task.tflite) is None
        for budget in budgets:
            if not space.fits(budget):
                print(f"{dataset}/{model}: budget {budget // 1024} KiB below the classifier alone; skipped")
                continue
            t0 = time.time()
            r = {"model": model, "task": dataset, "table": str(path), "table_model_matches": matches,
                 "run": run_record(command(argv)),
                 **row_init(space, table, budget, list(range(args.seeds)), args.evals, args.pop)}
            rows.append(r)
            g = r["predicted_gain"]
            print(f"{dataset}/{model:8s} {budget // 1024:4d} KiB  best predicted gain (points): greedy alone "
                  + f"{100 * g['greedy']:.1f}, " + ", ".join(f"{label} {100 * g[m]:.1f}" for m, (label, _) in
                                                              METHODS.items())
                  + f"; NSGA-II reaches random's final HV at {100 * r['hv_fraction']['ga_greedy']:.0f} % (greedy "
                  f"start) / {100 * r['hv_fraction']['ga_sparse']:.0f} % (random start) of the evaluations "
                  f"({time.time() - t0:.0f} s{'' if matches else '; table measured on another export'})", flush=True)
    rows = merged(old, rows)
    write_result({**run_record(command(argv)), "quick": args.quick, "rows": rows}, args.out, plot, rows)


def command(argv):
    return " ".join(["python -m search.bench_init"] + (argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
