"""Search a sparse-update scheme for a model, task and SRAM budget; write it for bake.

    python -m search.run --model dscnn --dataset kws --budget 64KB
    python -m search.run --model dscnn --dataset kws --budget 64KB --tflite build/kws/dscnn.tflite \
        --contrib results/contrib-dscnn-kws.json --out build/kws/scheme.json
    python -m search.run --model mcunet --dataset digits --budget 256KB --verify 6 --scheduler tcp://host:8786
    python -m search.run --model dscnn --dataset kws --budget 128KB --search single-ga   # Lin et al.'s search

NSGA-II (search.ga; --search single-ga: the single-objective GA of Lin et al., the predicted gain
alone under the budget) over the genome of search.space, started from the greedy knapsack path within the
budget and random schemes (--init sparse: random schemes alone), gains from the model's contribution analysis
(search.contrib; --contrib, default build/contrib/<model>-<dataset>.json; --shrink: lowered by the
table's noise, search.contrib.shrunk), SRAM from the runtime's planner. The chosen scheme is the one
of highest predicted gain within the budget; with --verify K, the K best of the final front within
the budget are trained for real (search.evaluate, through Dask) and the best on the validation split
wins. Writes --out (odt-scheme/1, what `bake --scheme` reads) and a Pareto plot beside it (.png).
"""
import argparse
import re
import sys
from pathlib import Path

import numpy as np

from model_prep.cli import at_least
from model_prep.tflite_graph import ModelError
from search import contrib, tasks
from search.ga import INITS, nsga2, single_ga
from search.space import Space

ROOT = Path(__file__).resolve().parent.parent
SEARCHES = {"nsga2": ("NSGA-II", nsga2), "single-ga": ("single-objective GA", single_ga)}


def parse_bytes(text):
    """'256KB' / '256KiB' / '256k' -> 262144 (KB = 1024 bytes, as the chip's datasheet counts SRAM); '1000' -> 1000."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(k|kb|kib|m|mb|mib|b)?\s*", text.lower())
    if not m:
        raise ValueError(f"budget '{text}': expected bytes, e.g. 256KB, 64KiB or 100000")
    unit = {"k": 1024, "kb": 1024, "kib": 1024, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}.get(m.group(2), 1)
    return int(float(m.group(1)) * unit)


def plot(space, archive, chosen, budget, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    F = np.asarray(archive.f)
    front = archive.front()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sc = ax.scatter(F[:, 1] / 1024, -100 * F[:, 0], c=F[:, 2] / 1e6, s=10, cmap="viridis", alpha=0.5)
    ax.scatter(F[front, 1] / 1024, -100 * F[front, 0], facecolors="none", edgecolors="k", s=30, label="Pareto front")
    if chosen is not None:
        ax.scatter([space.sram(chosen) / 1024], [100 * space.gain(chosen)], marker="*", s=220, c="tab:red",
                   label="chosen")
    ax.axvline(budget / 1024, color="tab:red", ls=":", lw=1, label="budget")
    fig.colorbar(sc, label="MACs per training step (M)")
    ax.set_xlabel("SRAM on the device (KiB, planner)")
    ax.set_ylabel("predicted accuracy gain (points)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a search.tasks model row, e.g. dscnn, mobilenetv2-w0.35, mcunet")
    ap.add_argument("--dataset", required=True, help="kws | digits | ...")
    ap.add_argument("--budget", required=True, help="SRAM budget of the whole training firmware, e.g. 256KB")
    ap.add_argument("--tflite", type=Path, help="the int8 model to plan for (default: the task's)")
    ap.add_argument("--contrib", type=Path, help="odt-contrib/1 table (default build/contrib/<model>-<dataset>.json)")
    ap.add_argument("--shrink", action="store_true", help="search on the table's gains lowered by their noise "
                    "(search.contrib.shrunk)")
    ap.add_argument("--search", choices=SEARCHES, default="nsga2", help="the search (default nsga2)")
    ap.add_argument("--evals", type=at_least(1), default=600, help="the search's evaluations")
    ap.add_argument("--init", choices=INITS, default="greedy", help="the initial population: a quarter from the "
                    "greedy knapsack path within the budget (default), or sparse: random schemes of every size alone")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verify", type=at_least(0), default=0, metavar="K", help="train the K best of the front for real")
    ap.add_argument("--train-seeds", type=at_least(1), default=1, help="--verify: training seeds averaged per scheme")
    ap.add_argument("--scheduler", help="Dask scheduler address for --verify (default: a local cluster)")
    ap.add_argument("--workers", type=at_least(1), default=2, help="local Dask workers for --verify")
    ap.add_argument("--quick", action="store_true", help="the task's quick pre-training, --verify on 64 samples "
                    "(smoke test)")
    ap.add_argument("--out", type=Path, default=Path("scheme.json"))
    args = ap.parse_args(argv)
    try:
        budget = parse_bytes(args.budget)
        table_path = args.contrib or ROOT / "build" / "contrib" / f"{args.model}-{args.dataset}.json"
        if not table_path.is_file():
            raise ValueError(f"no contribution analysis at {table_path}: run `python -m search.contrib --model "
                             f"{args.model} --dataset {args.dataset}` first, or pass --contrib")
        table = contrib.load(table_path)
        task = None
        if args.tflite is None or args.verify:
            task = tasks.prepare(args.dataset, args.model, quick=args.quick)
        tflite = args.tflite or task.tflite
        if not Path(tflite).is_file():
            raise ValueError(f"no model at {tflite}")
        gains = contrib.shrunk(table) if args.shrink else table
        space = Space.from_contrib(tflite, gains)
    except (ValueError, KeyError, ModelError, contrib.ContribError) as e:
        sys.exit(f"search.run: {e}")
    cls = space.sram(space.classifier_only)
    if not space.fits(budget):
        sys.exit(f"search.run: even training the classifier alone needs {cls:,} bytes of SRAM on {tflite}; "
                 f"the budget is {budget:,}")
    mismatch = contrib.model_mismatch(table, tflite)
    if mismatch:   # a search still runs (e.g. a table of the full model for a quick one), its gains are suspect
        print(f"search.run: warning: {table_path}: {mismatch}", file=sys.stderr)
    title, search = SEARCHES[args.search]
    archive = search(space, budget, args.evals, seed=args.seed, init=args.init)
    chosen = archive.best(budget)
    if args.verify:
        from search.evaluate import Evaluator, evaluation_config, to_stderr
        inside = archive.top_of_front(budget, args.verify)
        schemes = [space.scheme(archive.x[i]) for i in inside]
        with Evaluator(task, evaluation_config(task, table, args.train_seeds), args.scheduler, args.workers,
                       progress=to_stderr) as ev:
            acc = ev.accuracy(schemes, split="val")
        for i, a in zip(inside, acc):
            print(f"  verified: {space.describe(archive.x[i])}: predicted {-100 * archive.f[i][0]:+.1f} pp, "
                  f"validation accuracy {100 * a:.1f} %")
        chosen = archive.x[inside[int(np.argmax(acc))]]
    name = f"{args.model}-{args.dataset}-{budget // 1024}KiB"
    scheme = space.scheme(chosen, name=name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scheme.save(args.out)
    plot(space, archive, chosen, budget, args.out.with_suffix(".png"),
         f"{args.model} / {args.dataset}: {len(archive)} {title} evaluations, budget {budget // 1024} KiB")
    sram, macs = space.cost(chosen)
    print(f"searched {len(archive)} schemes ({args.model} on {args.dataset}, budget {budget:,} bytes)")
    print(f"chosen: {space.describe(chosen)}")
    print(f"  predicted gain {100 * space.gain(chosen):+.1f} points over the classifier alone; SRAM {sram:,} bytes; "
          f"{macs / 1e6:.2f} M MACs per training step")
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
