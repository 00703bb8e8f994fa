"""Can the gain model be refitted on the bench's own training runs? A check, from a search.bench result alone.

    python -m search.gain_refit                                    # results/search_shrink.json
    python -m search.gain_refit --bench results/search.json --out /tmp/refit.json
    python -m search.gain_refit --quick                            # one ridge strength (smoke test)

search.bench trains each search's top schemes on the validation split and keeps, per row, their
genomes, the contribution table's predicted gain and the measured gain over the classifier alone
(`additivity`). The refit keeps Lin et al.'s additive form but re-estimates its entries from those
schemes trained together, not one layer at a time: the measured gain is the table's prediction
scaled by least squares plus a ridge regression on indicators "gene g at level >= v" (one per gene
and level: still an additive model, one value per gene level). Scored per model and task, as the
Pearson r of predicted and measured gain within each budget, against the table's own r:
  - leave one scheme out: the other schemes (every budget) fit it;
  - leave one budget out: only schemes verified at other budgets, and not at this one, fit it. This
    is how a refit fares where the search has not been yet; leaving one out keeps near-copies of the
    left-out scheme (the same search, one gene apart) among the fitting data, which flatters it.
The ridge strength is the grid's best by leave-one-budget-out r (what a refit could do at best).
Writes results/gain_refit.json, a PNG (r per budget: table, leave one out, leave one budget out) and a table.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from model_prep.provenance import run_record, write_result
from search.bench import correlation

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = (1.0, 3.0, 10.0, 30.0)


def indicators(X, levels):
    """[n, sum(levels)] 0/1 features: for gene g and level v in 1..levels[g], whether X[:, g] >= v."""
    X = np.asarray(X, int)
    cols = [(X[:, g] >= v) for g in range(X.shape[1]) for v in range(1, levels[g] + 1)]
    return np.column_stack(cols).astype(float) if cols else np.zeros((len(X), 0))


def fit(X, predicted, measured, levels, lam):
    """The refitted model on these schemes: a function of (genomes, table predictions) -> predicted gain."""
    p, y = np.asarray(predicted, float), np.asarray(measured, float)
    slope = float(p @ y / (p @ p)) if p @ p > 0 else 0.0
    rest = y - slope * p
    mean = float(rest.mean())
    A = indicators(X, levels)
    w = np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ (rest - mean))
    return lambda Xn, pn: mean + indicators(Xn, levels) @ w + slope * np.asarray(pn, float)


def schemes_of(rows):
    """{(model, task): {genome: [budgets, predicted, measured]}} from bench rows; a scheme verified at
    several budgets is one point (its training run is cached, the same at every budget)."""
    out = {}
    for r in rows:
        a = r["additivity"]
        for x, p, m in zip(a["genomes"], a["predicted"], a["measured"]):
            entry = out.setdefault((r["model"], r["task"]), {}).setdefault(tuple(x), [set(), p, m])
            entry[0].add(r["budget_bytes"])
    return out


def model_refit(points, lam):
    """Per budget: schemes, the table's r, leave-one-out r and leave-one-budget-out r (with its fitting count)."""
    xs = list(points)
    X = np.array(xs, int)
    p = np.array([points[x][1] for x in xs])
    y = np.array([points[x][2] for x in xs])
    levels = X.max(0)
    loo = np.empty(len(xs))
    for i in range(len(xs)):
        keep = np.arange(len(xs)) != i
        loo[i] = fit(X[keep], p[keep], y[keep], levels, lam)(X[i:i + 1], p[i:i + 1])[0]
    budgets = []
    for b in sorted({b for x in xs for b in points[x][0]}):
        here = np.array([b in points[x][0] for x in xs])
        row = {"budget_bytes": b, "schemes": int(here.sum()), "table_r": correlation(p[here], y[here]),
               "loo_r": correlation(loo[here], y[here]), "lobo_r": None, "lobo_fit_schemes": int((~here).sum())}
        if (~here).sum() >= 3:
            refit = fit(X[~here], p[~here], y[~here], levels, lam)
            row["lobo_r"] = correlation(refit(X[here], p[here]), y[here])
        budgets.append(row)
    return {"schemes": len(xs), "table_r": correlation(p, y), "loo_r": correlation(loo, y), "budgets": budgets}


def best_for_refit(f):
    """How a ridge strength is chosen: the mean leave-one-budget-out r over budgets (what a refit could do at
    best where the search has not been); leave-one-out r for a model verified at one budget only."""
    lobo = [b["lobo_r"] for b in f["budgets"] if b["lobo_r"] is not None]
    return float(np.mean(lobo)) if lobo else (f["loo_r"] if f["loo_r"] is not None else -1.0)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels, series = [], {"table": [], "leave one out": [], "leave one budget out": []}
    for r in rows:
        for b in r["budgets"]:
            labels.append(f"{r['model']}/{r['task']}\n{b['budget_bytes'] // 1024} KiB")
            for name, key in zip(series, ("table_r", "loo_r", "lobo_r")):
                series[name].append(np.nan if b[key] is None else b[key])
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(labels)), 3.2))
    at = np.arange(len(labels))
    for k, (name, v) in enumerate(series.items()):
        ax.bar(at + (k - 1) * 0.27, v, 0.27, label=name)
    ax.set_xticks(at, labels, fontsize=7)
    ax.set_ylabel("r, predicted vs measured gain", fontsize=8)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylim(min(0.0, np.nanmin([v for s in series.values() for v in s] + [0.0])) - 0.05, 1.25)
    ax.legend(fontsize=7, ncol=3, loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def load_rows(path, prog="search.gain_refit"):
    """The bench result's rows; exits with one clear message when it is not one or predates the genomes."""
    try:
        rows = json.loads(Path(path).read_text())["rows"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{prog}: --bench {path}: not a readable search.bench result (JSON with a \"rows\" list): {e}")
    old = [f"{r.get('model')}/{r.get('task')} {r.get('budget_bytes', 0) // 1024} KiB" for r in rows
           if "genomes" not in r.get("additivity", {})]
    if old or not rows:
        sys.exit(f"{prog}: --bench {path}: " + (f"rows without additivity.genomes ({', '.join(old)}): they predate "
                 "search.bench keeping them; rerun those rows of the bench" if old else "no rows"))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", type=Path, default=ROOT / "results" / "search_shrink.json",
                    help="a search.bench result whose rows keep their genomes")
    ap.add_argument("--quick", action="store_true", help="one ridge strength (10) instead of the grid")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "gain_refit.json")
    args = ap.parse_args(argv)
    rows = load_rows(args.bench)
    lambdas = (10.0,) if args.quick else LAMBDAS
    out = []
    r2 = lambda v: "—" if v is None else f"{v:.2f}"   # noqa: E731
    for (model, task), points in schemes_of(rows).items():
        fits = [{"lambda": lam, **model_refit(points, lam)} for lam in lambdas]
        best = max(fits, key=best_for_refit)
        out.append({"model": model, "task": task, **best})
        print(f"{model}/{task}: {best['schemes']} schemes, ridge {best['lambda']:g}; r table {r2(best['table_r'])}, "
              f"leave one out {r2(best['loo_r'])}")
        for b in best["budgets"]:
            print(f"  {b['budget_bytes'] // 1024:4d} KiB  {b['schemes']:3d} schemes  r table {r2(b['table_r'])}  "
                  f"leave one out {r2(b['loo_r'])}  leave one budget out {r2(b['lobo_r'])} "
                  f"(fitted on {b['lobo_fit_schemes']})")
    command = " ".join(["python -m search.gain_refit"] + (argv if argv is not None else sys.argv[1:]))
    bench = args.bench.resolve()
    bench = bench.relative_to(ROOT) if bench.is_relative_to(ROOT) else bench
    write_result({**run_record(command), "quick": args.quick, "bench": str(bench), "lambdas": list(lambdas),
                  "rows": out}, args.out, plot, out)


if __name__ == "__main__":
    main()
