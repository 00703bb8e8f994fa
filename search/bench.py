"""NSGA-II against random search (and the paper's rule, and TinyTrain) for sparse-update schemes.

    python -m search.bench                 # every row with a contribution table, budgets 64/128/256 KB, 5 seeds
    python -m search.bench --quick         # kws/dscnn, one budget, 2 seeds, few evaluations (smoke test)

Per row (model, task) and SRAM budget, for each seed: NSGA-II and random search with the same number
of evaluations (search.ga), random search twice: uniform genes ("random", the textbook baseline) and
the GA's own initial sampler ("random_sparse", Space.random_sparse: every scheme size equally likely,
a stronger baseline), and the single-objective GA of Lin et al. ("single_ga": the predicted gain alone,
the budget a constraint, the same operators); hypervolume after every generation (objectives normalized:
1 - gain / the table's largest possible gain, SRAM / budget, MACs / MACs of updating every layer;
reference point (1, 1, 1)). Reported: ga_evals_to_random_final_hv_fraction (the evaluations NSGA-II
needs to reach random search's final hypervolume, over the total; mean over seeds, 1.0 when it never
does; the same against random_sparse), and the best scheme per budget of each method re-evaluated by
real sparse training on the test split (search.evaluate, through Dask): for each search (per seed) the best
on the validation split of the --verify schemes of highest predicted gain on the final front within the
budget (the pick by predicted gain alone is reported beside it), TinyTrain's greedy criterion and
Lin et al.'s rule under the same planner budget (the rule's SRAM is fixed: None when over the
budget). Every real evaluation is one training run (training seed 0), or the mean of --train-seeds runs
(search.seed_noise measures the spread). Additivity: those validation measurements, measured gain (over
the classifier alone) against the table's prediction, Pearson correlation (with the genomes, so a
better gain model can be fitted and tested on them later). Every method's pick is also
trained on the validation split (val_acc: a search's is the best of its verified schemes there, so
optimistic) and val_test says how far validation and test rank the picks alike (Pearson r over the
distinct schemes). Over every row of the file, NSGA-II minus each other search (pooled: each row's
paired mean one unit; mean, standard error, one-sided 95 % lower bound) reads "at least as accurate" as a
non-inferiority test. --shrink: every search runs on the table's gains lowered by their noise
(search.contrib.shrunk; the rows say by how much). Writes
results/search.json, a PNG (hypervolume curves, Pareto fronts) and a table; --update keeps the file's rows of
other (model, task, budget), so rows measured in separate runs land in one file (each row records its run).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from pymoo.indicators.hv import HV

from model_prep.cli import at_least
from model_prep.provenance import git_commit, run_record, write_result
from model_prep.training_plan import TrainingPlan
from search import baselines, contrib, tasks
from search.evaluate import Evaluator, add_cluster_arguments, evaluation_config, to_stderr
from search.ga import INITS, greedy, nsga2, random_search, single_ga
from search.space import Space

ROOT = Path(__file__).resolve().parent.parent
ROWS = {   # (dataset, model) -> contribution table (search.contrib's output)
    ("kws", "dscnn"): ROOT / "results" / "contrib-dscnn-kws.json",
    ("kws", "mcunet"): ROOT / "results" / "contrib-mcunet-kws.json",
    ("digits", "mcunet"): ROOT / "results" / "contrib-mcunet-digits.json",
}
BUDGETS = (64 * 1024, 128 * 1024, 256 * 1024)
SEARCHES = ("ga", "random", "random_sparse", "single_ga")   # NSGA-II first: every other is compared with it


def normalizer(space, table):
    """Objectives -> [0, 1]-ish for the hypervolume (see the module doc)."""
    top = space.best_gain()
    full = space.macs(space.upper)
    return lambda F, budget: np.column_stack([1 + F[:, 0] / top, F[:, 1] / budget, F[:, 2] / full])


def correlation(a, b):
    """Pearson r of two sequences; None where it is undefined (fewer than three pairs, or one side constant)."""
    return float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and np.std(a) > 0 and np.std(b) > 0 else None


def pooled(rows, other="random", level=0.95):
    """NSGA-II minus `other` in test accuracy over every row: the goal "at least as accurate" read as a
    non-inferiority test. Each row (a model, task and budget) gives its paired mean over seeds (ga_minus); the rows
    are the independent units (a row's seeds share its test split and its contribution table), so the mean of the
    rows' means, its standard error and a one-sided `level` lower bound (Student's t, rows - 1 degrees of freedom).
    None with fewer than two rows that ran both searches."""
    from scipy.stats import t
    means = [r["ga_minus"][other]["mean"] for r in rows if other in r.get("ga_minus", {})]
    if len(means) < 2:
        return None
    mean, sem = float(np.mean(means)), float(np.std(means, ddof=1) / np.sqrt(len(means)))
    return {"other": other, "rows": len(means), "rows_at_least_as_accurate": sum(m >= -1e-12 for m in means),
            "mean": mean, "sem": sem, "level": level,
            "lower_bound": mean - float(t.ppf(level, len(means) - 1)) * sem}


def hv_curve(archive, norm, budget, every):
    hv, F = HV(ref_point=np.ones(3)), norm(np.asarray(archive.f), budget)
    return [float(hv(F[:n])) for n in range(every, len(F) + 1, every)]


def planned_sram(sim, scheme):
    """The total SRAM the runtime's planner gives a scheme (what a budget bounds)."""
    return TrainingPlan(sim, scheme).sram_bytes()


def tinytrain_scheme(space, budget, potentials):
    """TinyTrain's scheme as the bench builds it: the task's potentials (baselines.task_potentials), the budget
    bounding the scheme's planned_sram."""
    return baselines.tinytrain(space.sim, None, None, budget, model=space.model, potentials=potentials,
                               memory_of=lambda s: planned_sram(space.sim, s))


def fraction_to_reach(curve, target, every, evals):
    """The share of `evals` after which a hypervolume curve (one point per `every` evaluations) first reaches
    `target`; 1.0 when it never does."""
    reach = next((i for i, h in enumerate(curve) if h >= target - 1e-12), None)
    return 1.0 if reach is None else (reach + 1) * every / evals


def row_bench(label, space, table, task, budgets, seeds, evals, pop, evaluator, log, verify=4, init="greedy"):
    """Yields the row of each budget as it is finished."""
    norm = normalizer(space, table)
    sim = space.sim
    data = tasks.device_data(task, evaluator.cfg.train, evaluator.cfg.test, seed=0)
    potentials = baselines.task_potentials(sim, data)
    for budget in budgets:
        if not space.fits(budget):
            log(f"{label}: budget {budget // 1024} KiB below the classifier alone; skipped")
            continue
        t0 = time.time()
        methods = SEARCHES
        curves, fractions = {m: [] for m in methods}, {m: [] for m in ("random", "random_sparse")}
        picks, cands = {m: [] for m in methods}, {m: [] for m in methods}
        for seed in seeds:
            if evaluator.progress:
                evaluator.progress(f"{label} {budget // 1024} KiB: searching, seed {seed} ({len(seeds)} seeds)")
            archives = {"ga": nsga2(space, budget, evals, seed=seed, pop_size=pop, init=init),
                        "random": random_search(space, budget, evals, seed=seed),
                        "random_sparse": random_search(space, budget, evals, seed=seed, sampler="sparse"),
                        "single_ga": single_ga(space, budget, evals, seed=seed, pop_size=pop, init=init)}
            for name, a in archives.items():
                curves[name].append(hv_curve(a, norm, budget, pop))
                picks[name].append(a.best(budget))
                cands[name].append([a.x[i] for i in a.top_of_front(budget, verify)])
            for name in fractions:
                fractions[name].append(fraction_to_reach(curves["ga"][-1], curves[name][-1][-1], pop, evals))
        tiny = tinytrain_scheme(space, budget, potentials)
        rule = baselines.paper_rule(sim.graph, space.model)
        rule_fits = planned_sram(sim, rule) <= budget
        knapsack = greedy(space, budget)
        knapsack_scheme = space.scheme(knapsack)
        # the top of each final front trained for real on the validation split; the best there is the pick.
        # TinyTrain's and the rule's schemes in the same batch: not chosen on validation, only reported there
        classifier_only = space.classifier_only
        pool = {tuple(x): x for m in cands for c in cands[m] for x in c} | {tuple(classifier_only): classifier_only}
        xs = list(pool.values())
        fixed = {"tinytrain": tiny, "greedy": knapsack_scheme} | ({"paper_rule": rule} if rule_fits else {})
        got = evaluator.accuracy([space.scheme(x) for x in xs] + list(fixed.values()), split="val")
        val, fixed = dict(zip(pool, got)), dict(zip(fixed, got[len(xs):]))
        verified = {m: [max(c, key=lambda x: val[tuple(x)]) for c in cands[m]] for m in cands}
        schemes = {f"{m}:{s}": space.scheme(x) for m in verified for s, x in zip(seeds, verified[m])}
        schemes |= {f"{m}-predicted:{s}": space.scheme(x) for m in picks for s, x in zip(seeds, picks[m])}
        schemes["tinytrain"], schemes["paper_rule"], schemes["greedy"] = tiny, rule, knapsack_scheme
        acc = dict(zip(schemes, evaluator.accuracy(list(schemes.values()), split="test")))
        per_seed = {m: [acc[f"{m}:{s}"] for s in seeds] for m in verified}
        best = {m: float(np.mean(v)) for m, v in per_seed.items()}
        # NSGA-II minus each other search, seed by seed (the same seed's budget and evaluations): mean and its
        # standard error; one test sample is 1 / test_samples of accuracy
        # (rounded: accuracies averaged over training runs differ by float noise where the picks score the same)
        diff = {m: np.round(np.subtract(per_seed["ga"], per_seed[m]), 12) for m in methods[1:]}
        paired = {m: {"mean": float(d.mean()), "sem": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None}
                  for m, d in diff.items()}
        best["tinytrain"], best["greedy"] = acc["tinytrain"], acc["greedy"]
        best["paper_rule"] = acc["paper_rule"] if rule_fits else None
        predicted_best = {m: float(np.mean([acc[f"{m}-predicted:{s}"] for s in seeds])) for m in picks}
        # every pick on validation too (a search's is the best of its verified schemes there, so its figure is
        # optimistic), and how far the two splits rank the picks alike: r over the distinct schemes
        val_per_seed = {m: [val[tuple(x)] for x in verified[m]] for m in verified}
        both = {contrib.scheme_key(schemes[f"{m}:{s}"]): (val_per_seed[m][i], acc[f"{m}:{s}"])
                for m in verified for i, s in enumerate(seeds)}
        both |= {contrib.scheme_key(schemes[m]): (fixed[m], acc[m]) for m in fixed}
        val_test_r = correlation(*zip(*both.values()))
        # additivity: predicted vs measured gain (over the classifier alone, validation, as the table)
        predicted = [space.gain(x) for x in xs]
        gains = [val[tuple(x)] - val[tuple(classifier_only)] for x in xs]
        corr = correlation(predicted, gains)
        row = {"model": space.model, "task": task.dataset, "budget_bytes": budget, "seeds": len(seeds),
               "evals": evals, "init": init,
               "ga_evals_to_random_final_hv_fraction": float(np.mean(fractions["random"])),
               "ga_evals_to_random_sparse_final_hv_fraction": float(np.mean(fractions["random_sparse"])),
               "best_acc": best, "best_acc_per_seed": per_seed, "ga_minus": paired,
               "test_samples": len(data.y_test), "training_seeds": evaluator.cfg.seeds,
               "best_acc_predicted_pick": predicted_best, "verified_per_seed": verify,
               "val_acc": {m: float(np.mean(v)) for m, v in val_per_seed.items()}
               | {"tinytrain": fixed["tinytrain"], "greedy": fixed["greedy"], "paper_rule": fixed.get("paper_rule")},
               "val_acc_per_seed": val_per_seed, "val_test": {"n": len(both), "pearson": val_test_r},
               "hv_evals": list(range(pop, evals + 1, pop)),
               "hv": {f"{m}_{stat}": getattr(np.asarray(curves[m]), stat)(0).tolist()
                      for m in methods for stat in ("mean", "std")},
               "fractions": fractions,
               "predicted_gain": {m: float(np.mean([space.gain(x) for x in verified[m]])) for m in verified}
               | {"greedy": space.gain(knapsack)},
               "sram_bytes": {m: float(np.mean([space.sram(x) for x in verified[m]])) for m in verified}
               | {"tinytrain": planned_sram(sim, tiny), "greedy": space.sram(knapsack),
                  "paper_rule": planned_sram(sim, rule)},
               "schemes": {m: space.describe(verified[m][0]) for m in verified},
               "additivity": {"n": len(xs), "pearson": corr, "predicted": predicted, "measured": gains,
                              "genes": space.gene_names, "genomes": [[int(v) for v in x] for x in xs]}}
        pct = lambda v: "—" if v is None else f"{100 * v:.1f}"   # noqa: E731
        log(f"{label:28s} {budget // 1024:4d} KiB  GA reaches random's final HV at "
            f"{100 * row['ga_evals_to_random_final_hv_fraction']:5.1f} % of the evaluations; test accuracy GA "
            f"{pct(best['ga'])} random {pct(best['random'])} / {pct(best['random_sparse'])} "
            f"single-objective GA {pct(best['single_ga'])} "
            f"greedy {pct(best['greedy'])} TinyTrain {pct(best['tinytrain'])} "
            f"rule {pct(best['paper_rule'])} (validation GA {pct(row['val_acc']['ga'])} random "
            f"{pct(row['val_acc']['random'])} TinyTrain {pct(row['val_acc']['tinytrain'])}, validation-test r = "
            f"{'—' if val_test_r is None else round(val_test_r, 2)}); "
            f"additivity r = {'—' if corr is None else round(corr, 2)} "
            f"({time.time() - t0:.0f} s)")
        yield row


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, max(len(rows), 1), figsize=(3.6 * max(len(rows), 1), 3.2), squeeze=False)
    for ax, r in zip(axes[0], rows):
        n = np.asarray(r["hv_evals"])
        for name, color, label in (("ga", "tab:blue", "NSGA-II"), ("random", "tab:orange", "random search"),
                                   ("random_sparse", "tab:green", "random search, GA's sampler"),
                                   ("single_ga", "tab:red", "single-objective GA")):
            if f"{name}_mean" not in r["hv"]:
                continue
            m, s = np.asarray(r["hv"][f"{name}_mean"]), np.asarray(r["hv"][f"{name}_std"])
            ax.plot(n, m, color=color, label=label)
            ax.fill_between(n, m - s, m + s, color=color, alpha=0.2)
        ax.set_title(f"{r['model']} / {r['task']}, {r['budget_bytes'] // 1024} KiB", fontsize=8)
        ax.set_xlabel("evaluations", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("hypervolume (mean ± std over seeds)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_row(text, default, prog="search.bench"):
    """'kws/mcunet@128,256' -> ("kws", "mcunet", (131072, 262144)); no @: the default budgets."""
    name, _, kib = text.partition("@")
    try:
        budgets = tuple(int(k) * 1024 for k in kib.split(",")) if kib else default
    except ValueError:
        sys.exit(f"{prog}: --row {text}: budgets must be KiB integers, e.g. kws/mcunet@128,256")
    try:
        return (*tasks.parse_row(name), budgets)
    except ValueError as e:
        sys.exit(f"{prog}: --row {text}: {e}")


def wanted_rows(row_args, quick, prog="search.bench"):
    """--row arguments as (dataset, model, budgets); none: every row with a table (--quick: kws/dscnn, 128 KiB)."""
    default = (128 * 1024,) if quick else BUDGETS
    if row_args:
        return [parse_row(r, default, prog) for r in row_args]
    return [("kws", "dscnn", default)] if quick else [(*k, default) for k, p in ROWS.items() if p.is_file()]


def row_space(dataset, model, quick, table_path, prog, shrink=False, strict=True):
    """(task, table, space) of a row, the task pre-trained once; exits naming `prog` when the table is missing,
    or (strict, but for --quick, a smoke test on the quick model) was measured on another export of the model.
    shrink: the space's gains are the table's soft-thresholded by its noise (contrib.shrunk, entry_noise)."""
    if table_path is None or not Path(table_path).is_file():
        sys.exit(f"{prog}: no contribution table for {dataset}/{model} ({table_path}); run search.contrib first")
    task = tasks.prepare(dataset, model, quick=quick)
    table = contrib.load(table_path)
    mismatch = None if quick or not strict else contrib.model_mismatch(table, task.tflite)
    if mismatch:
        sys.exit(f"{prog}: {table_path}: {mismatch}")
    gains = contrib.shrunk(table) if shrink else table
    return task, table, Space.from_contrib(task.tflite, gains)


def update_clash(old, shrink, training_seeds, quick, init="greedy"):
    """Why rows of this run cannot join `old` (a result of --out), or None: other settings, other rows."""
    noun = lambda q, sh, n, i: (f"{'--quick, ' if q else ''}{'--shrink, ' if sh else ''}{n} training seed(s), "   # noqa: E731
                                f"--init {i}")
    ours = (quick, shrink, training_seeds, init)
    for r in old["rows"]:   # rows from before --init: NSGA-II started from Space.random_sparse alone
        theirs = (old.get("quick", False), r.get("gain_noise_shrink", 0.0) > 0, r.get("training_seeds", 1),
                  r.get("init", "sparse"))
        if theirs != ours:
            return f"its rows were run with {noun(*theirs)}, this run with {noun(*ours)}; write to another --out"
    return None


def update_base(out, prog, quick=None):
    """The result in `out` that --update adds rows to ({"rows": []} where there is none); exits naming `prog`
    and the file where it is not a result with a "rows" list, or (quick given) was run with the other --quick."""
    if not out.is_file():
        return {"rows": []}
    try:
        result = json.loads(out.read_text())
        ok = isinstance(result.get("rows"), list)
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        sys.exit(f"{prog}: --update {out}: not a {prog} result (JSON with a \"rows\" list)")
    if quick is not None and bool(result.get("quick")) != quick:
        sys.exit(f"{prog}: --update {out}: its rows were run {'with' if result.get('quick') else 'without'} "
                 f"--quick, this run {'with' if quick else 'without'}; write to another --out")
    return result


def add_row_arguments(ap, contrib=True):
    """--row (repeatable) and, with `contrib`, --contrib: the rows and tables of search.bench and the commands
    that measure its rows (row_table reads them)."""
    ap.add_argument("--row", action="append", help="dataset/model[@KiB,KiB...] (budgets of that row; default "
                    "64,128,256), repeatable (default: every row with a table)")
    if contrib:
        ap.add_argument("--contrib", type=Path, help="the table of a single --row (default: search.bench's ROWS)")


def row_table(contrib_arg, wanted, dataset, model):
    """The contribution table of a row: --contrib where it names the table of a single --row, else ROWS'."""
    return contrib_arg if contrib_arg and len(wanted) == 1 else ROWS.get((dataset, model))


def merged(old, new):
    """The rows of `old` (a result of --out) with those of `new` at the same (model, task, budget) replaced, the
    others added; old rows keep the record of the run behind them. Rows of one model and task stay together, by
    budget, the pairs in the order they first appear (a budget run later lands in its place in the table)."""
    key = lambda r: (r["model"], r["task"], r["budget_bytes"])   # noqa: E731
    record = {k: old[k] for k in ("commit", "date", "machine", "command") if k in old}
    fresh = {key(r): r for r in new}
    rows = [fresh.pop(key(r), {"run": record, **r}) for r in old["rows"]]
    rows += [r for r in new if key(r) in fresh]
    pairs = list(dict.fromkeys(key(r)[:2] for r in rows))
    return sorted(rows, key=lambda r: (pairs.index(key(r)[:2]), r["budget_bytes"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="kws/dscnn, 128 KiB, 2 seeds, 48 evaluations, 64 samples")
    add_row_arguments(ap)
    ap.add_argument("--seeds", type=at_least(1), default=5)
    ap.add_argument("--evals", type=at_least(1), default=480)
    ap.add_argument("--pop", type=at_least(4), default=24)
    ap.add_argument("--verify", type=at_least(1), default=4, help="front schemes per search trained on validation")
    ap.add_argument("--train-seeds", type=at_least(1), default=1, help="training seeds averaged per real evaluation "
                    "(validation and test; search.seed_noise measures what one seed leaves)")
    ap.add_argument("--shrink", action="store_true", help="search on the table's gains lowered by their noise "
                    "(search.contrib.shrunk): Δs within the noise stop adding up")
    ap.add_argument("--init", choices=INITS, default="greedy", help="the GAs' initial population: a quarter from "
                    "the greedy knapsack path (default), or sparse: Space.random_sparse alone (as before --init)")
    add_cluster_arguments(ap)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "search.json")
    ap.add_argument("--update", action="store_true", help="keep the rows of --out that this run does not "
                    "measure (other model, task or budget); replace those it does")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.evals, args.pop, args.verify = 2, 48, 12, 2
    wanted = wanted_rows(args.row, args.quick)
    command = " ".join(["python -m search.bench"] + (argv if argv is not None else sys.argv[1:]))
    commit = git_commit()   # the code that runs is the checkout's at the start, whatever is committed meanwhile
    def old():   # read again at every write: a run beside this one may have written its rows meanwhile
        return update_base(args.out, "search.bench") if args.update else {"rows": []}
    clash = update_clash(old(), args.shrink, args.train_seeds, args.quick, args.init)
    if clash:
        sys.exit(f"search.bench: --update {args.out}: {clash}")
    rows = []
    for dataset, model, budgets in wanted:
        path = row_table(args.contrib, wanted, dataset, model)
        task, table, space = row_space(dataset, model, args.quick, path, "search.bench", args.shrink)
        cfg = evaluation_config(task, table, args.train_seeds)
        noise = contrib.entry_noise(table) if args.shrink else 0.0
        with Evaluator(task, cfg, args.scheduler, args.workers, args.evaluations, to_stderr) as ev:
            for row in row_bench(f"{dataset}/{model}", space, table, task, budgets, list(range(args.seeds)),
                                 args.evals, args.pop, ev, lambda s: print(s, flush=True), args.verify,
                                 args.init):
                # written after every budget: an interrupted bench keeps the budgets it finished
                record = {**run_record(command), "commit": commit}   # {"commit", "date", "machine", "command"}
                rows.append({**row, "gain_noise_shrink": noise, "run": record})
                result = {**record, "quick": args.quick, "rows": merged(old(), rows)}
                result["pooled"] = {m: pooled(result["rows"], m) for m in SEARCHES[1:]}
                write_result(result, args.out, plot, result["rows"])
    p = result["pooled"]["random"] if rows else None   # over the rows the file holds now
    if p:
        print(f"NSGA-II minus uniform random search over {p['rows']} rows: {100 * p['mean']:+.1f} +- "
              f"{100 * p['sem']:.1f} points (one-sided {100 * p['level']:.0f} % lower bound "
              f"{100 * p['lower_bound']:+.1f}); at least as accurate on {p['rows_at_least_as_accurate']} of "
              f"{p['rows']} rows")
    if not rows:   # every budget below the classifier alone
        write_result({**run_record(command), "commit": commit, "quick": args.quick, "rows": merged(old(), [])},
                     args.out, plot, [])


if __name__ == "__main__":
    main()
