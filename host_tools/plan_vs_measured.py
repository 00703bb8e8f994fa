"""Planned SRAM (bake's static plan) against the SRAM measured on the emulated Cortex-M7, for random schemes.

    python -m host_tools.plan_vs_measured                 # 30 schemes x 2 models; results/plan_vs_measured.json + .png
    python -m host_tools.plan_vs_measured --quick         # 3 schemes on kws/dscnn
    python -m host_tools.plan_vs_measured --quick --tflite build/kws/dscnn.tflite --out /tmp/pvm.json

A random scheme takes a random subset of the model's trainable layers (its size uniform in 1..12) and
gives each a random bias flag and a random weight update (none, channels at a random ratio and
selection, full, or sub-tensor with random kernel rows); a layer left with nothing to update gets its
bias. Each scheme is baked (planned = model.json's planned_sram_bytes, checked equal to
`python -m model_prep.bake plan`), built for qemu-m7 in one build folder per model, and trained for
--trains steps on random inputs and labels under QEMU; measured = INFO's peak_sram_bytes (static data
+ bss + the stack's high-water mark by stack painting) after the last step. Schemes the linker refuses
(they do not fit the STM32F746) are counted as skipped with the linker's reason, and more schemes are
drawn until --schemes of them are measured (at most 3x as many drawn).
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from model_prep.cli import at_least
from host_tools import firmware_bench as fb
from model_prep import scheme as fmt
from model_prep.provenance import run_record
from model_prep.tflite_graph import load_graph

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("kws/dscnn", "digits/mobilenetv2-w0.35")
WORK = ROOT / "build" / "bench-firmware" / "plan"
TOLERANCE = 0.01
MAX_LAYERS = 12     # a random scheme updates 1..12 layers (more rarely fits 320 KB on MobileNetV2)


def random_scheme(graph, model, rng, name):
    """A random valid scheme with at least one update (see the module's docstring)."""
    layers = fmt.trainable_layers(graph)
    k = int(rng.integers(1, min(len(layers), MAX_LAYERS) + 1))
    chosen = [str(n) for n in rng.choice(list(layers), size=k, replace=False)]
    items = []
    for n in chosen:
        w = graph.tensors[layers[n].inputs[1]].data
        kind = str(rng.choice(fmt.WEIGHT_KINDS))
        weight = {"kind": kind}
        if kind == "channels":
            weight.update(ratio=float(rng.choice(fmt.RATIOS)), select=str(rng.choice(fmt.SELECT_RULES)),
                          seed=int(rng.integers(1000)))
        elif kind == "subtensor":
            kh = w.shape[1] if w.ndim == 4 else 1
            rows = sorted(rng.choice(kh, size=int(rng.integers(1, kh + 1)), replace=False).tolist())
            weight.update(rows=rows)
        bias = bool(rng.random() < 0.5) or kind == "none"
        items.append({"layer": n, "bias": bias, "weight": weight})
    return fmt.validate(fmt.from_dict({"format": fmt.FORMAT, "model": model, "name": name, "layers": items}), graph)


def plan_cli(tflite, scheme_path):
    """Total SRAM printed by `python -m model_prep.bake plan --json`."""
    r = subprocess.run([sys.executable, "-m", "model_prep.bake", "plan", str(tflite), str(scheme_path), "--json"],
                       cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["total_sram_bytes"]


def measure_model(label, tflite, n, trains, seed, work):
    """Rows of n measured random schemes on one model (drawing at most 3n), and the skipped ones."""
    graph = load_graph(tflite)
    rng = np.random.default_rng(seed)
    work = Path(work) / label.replace("/", "-")
    work.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    for i in range(3 * n):
        if len(rows) == n:
            break
        t0 = time.time()
        scheme = random_scheme(graph, label, rng, f"random-{i}")
        scheme_path = work / f"scheme-{i}.json"
        scheme.save(scheme_path)
        info = fb.bake(tflite, scheme, work / "baked")
        planned = info["planned_sram_bytes"]
        cli = plan_cli(tflite, scheme_path)
        if cli != planned:
            raise SystemExit(f"plan_vs_measured: {label} {scheme.name}: bake plan says {cli}, model.json {planned}")
        try:
            fw = fb.build("qemu-m7", work / "baked", work / "fw")
        except fb.DoesNotFit as e:
            skipped.append({"model": label, "scheme": scheme.name, "planned": planned, "reason": str(e),
                            "layers": scheme.to_dict()["layers"]})
            print(f"{label:26s} {scheme.name:10s} {len(scheme.layers):3d} {planned:10d} {'skipped':>10s}  {e}",
                  flush=True)
            continue
        run = fb.run_qemu(fw["elf"], info, trains=trains, seed=seed + i)
        measured = run["info"]["peak_sram_bytes"]
        row = {"model": label, "scheme": scheme.name, "planned": planned, "measured": measured,
               "rel_error": (planned - measured) / measured, "layers_updated": len(scheme.layers),
               "static_sram_bytes": run["info"]["static_sram_bytes"],
               "stack_bytes_used": run["info"]["stack_bytes_used"],
               "arena_bytes": info["arena_bytes"], "flash_bytes": fw["flash_bytes"],
               "layers": scheme.to_dict()["layers"]}
        rows.append(row)
        print(f"{label:26s} {scheme.name:10s} {len(scheme.layers):3d} {planned:10d} {measured:10d} "
              f"{100 * row['rel_error']:+7.2f}%  ({time.time() - t0:.0f} s)", flush=True)
    return rows, skipped


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    for k, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
        mine = [r for r in rows if r["model"] == model]
        ax.scatter([r["measured"] / 1024 for r in mine], [r["planned"] / 1024 for r in mine], s=18,
                   color=plt.cm.tab10(k), label=model)
    hi = max([max(r["planned"], r["measured"]) for r in rows] + [1]) / 1024 * 1.05
    xs = np.linspace(0, hi, 2)
    ax.plot(xs, xs, "k-", lw=0.8)
    ax.fill_between(xs, xs * (1 - TOLERANCE), xs * (1 + TOLERANCE), color="gray", alpha=0.3, label="±1 %")
    ax.set_xlabel("measured peak SRAM on qemu-m7 (KiB)")
    ax.set_ylabel("planned SRAM (KiB)")
    ax.set_title("bake's plan vs the device, random schemes", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def resolve_models(args):
    """[(label, tflite)]: --tflite as given, else the search.tasks models (pre-trained once, cached)."""
    if args.tflite:
        if not args.tflite.is_file():
            sys.exit(f"plan_vs_measured: no model at {args.tflite}")
        return [(args.tflite.stem, args.tflite)]
    from search import tasks
    out = []
    for label in args.model or (MODELS[:1] if args.quick else MODELS):
        dataset, _, model = label.partition("/")
        if (dataset, model) not in tasks.ROWS:
            sys.exit(f"plan_vs_measured: no model '{label}'; known: {', '.join(f'{d}/{m}' for d, m in tasks.ROWS)}")
        out.append((label, tasks.prepare(dataset, model, quick=args.quick).tflite))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 schemes on one model (smoke test)")
    ap.add_argument("--model", action="append", help="dataset/model of search.tasks (repeatable)")
    ap.add_argument("--tflite", type=Path, help="measure this int8 model instead of the task models")
    ap.add_argument("--schemes", type=at_least(1), help="measured random schemes per model (default 30, --quick 3)")
    ap.add_argument("--trains", type=at_least(1), default=3, help="TRAIN steps before INFO is read")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=WORK, help="bake and build folders")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "plan_vs_measured.json")
    args = ap.parse_args(argv)
    n = args.schemes if args.schemes is not None else (3 if args.quick else 30)
    print(f"{'model':26s} {'scheme':10s} {'upd':>3s} {'planned':>10s} {'measured':>10s} {'error':>8s}")
    rows, skipped = [], []
    for label, tflite in resolve_models(args):
        r, s = measure_model(label, tflite, n, args.trains, args.seed, args.work)
        rows, skipped = rows + r, skipped + s
    worst = max((abs(r["rel_error"]) for r in rows), default=None)
    within = sum(abs(r["rel_error"]) <= TOLERANCE for r in rows)
    command = " ".join(["python -m host_tools.plan_vs_measured"] + (argv if argv is not None else sys.argv[1:]))
    result = {**run_record(command), "quick": args.quick, "board": "qemu-m7", "trains": args.trains,
              "tolerance": TOLERANCE, "max_rel_error": worst, "within_tolerance": within, "measured_rows": len(rows),
              "skipped": skipped, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    plot(rows, args.out.with_suffix(".png"))
    if worst is not None:
        print(f"{within}/{len(rows)} within {100 * TOLERANCE:.0f} %, max |error| {100 * worst:.2f} %; "
              f"{len(skipped)} skipped (do not fit)")
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
