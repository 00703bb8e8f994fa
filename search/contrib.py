"""Contribution analysis (Lin et al. 2022): what each bias and each layer's weights add to the accuracy
of on-device training, measured by real sparse training on the integer simulator.

    python -m search.contrib --model mobilenetv2-w0.35 --dataset digits
    python -m search.contrib --model mobilenetv2-w0.35 --dataset digits --quick     # smoke test, < 1 min
    python -m search.contrib --model dscnn --dataset kws --layers last:6 --ratios 1/4,1 --seeds 3

Every measurement trains a fresh SparseTrainer on the task's device train data and takes its accuracy
on the validation split (search.tasks; the test split stays unseen by any search). With K the
trainable layers before the classifier (the last one):
  classifier only  acc_cls: full weights + bias of the classifier
  bias, k = 1..K   Δacc_b[k] = acc(classifier + biases of the last k layers) - acc_cls
  weight (i, r)    Δacc_W(i, r) = acc(bias-only + layer i's weights, a fraction r of its channels by
                   magnitude) - acc(bias-only); bias-only = classifier + biases of the last --bias-base
  layer bias (i)   with --layer-bias, for each weight layer whose bias the base lacks: Δacc_b(i) = acc(bias-only
                   + layer i's own bias) - acc(bias-only), and each weight entry again with its layer's own
                   bias (`"bias": true`), measured together: a bias alone deep in the network barely moves
                   the accuracy, beside its layer's weights it does (TinyTrain's schemes, which train the
                   biases of the layers they update; the search's genes then offer both)
--select names the channel-selection rules measured: the scheme format's (magnitude, random) and fisher,
TinyTrain's: the channels of largest Fisher information on the first baselines.FISHER_SAMPLES device
train samples (the integer backward, nothing updated), written as explicit indices in the entry's
`channels` and in the schemes the search builds from it (the device gets indices, not a rule).
Each entry also carries Δ per training seed (delta_per_seed: the same seed's accuracy minus its
reference's; their spread is the measurement's training noise) and its scheme's cost: MACs of one
training step per sample (SparseTrainer.step_macs) and the extra memory in Lin et al.'s accounting
(search.baselines.scheme_memory: weights + biases + saved activations). Measurements go to a JSON-lines
cache in --work as they are made, one line per scheme and training seed, in a file named by model,
dataset and a hash of what changes a number (model file, lr, epochs, batch size, gradient format,
train/test sizes); a rerun resumes where it stopped, and more --seeds, layers or ratios reuse what is
there. Writes --out (odt-contrib/1, read by the scheme search through `load`) and a PNG beside it.
"""
import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from model_prep.cli import at_least, positive
from model_prep import scheme as fmt, torch_threads
from model_prep.provenance import run_record
from model_prep.simulate import Simulator
from model_prep.sparse_train import SparseTrainer, TrainConfig
from search import tasks
from search.baselines import FISHER_SAMPLES, scheme_memory, task_potentials, top_channels

FORMAT = "odt-contrib/1"
ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "contrib"
QUICK = {"train": 64, "test": 64, "layers": "last:2", "ratios": "1/4,1"}   # --quick defaults
SELECTS = fmt.SELECT_RULES + ("fisher",)   # fisher: resolved here to explicit channel indices


class ContribError(ValueError):
    """Bad input, or a file that is not a contribution analysis."""


@dataclass(frozen=True)
class Config:
    lr: float = 0.01              # SGD learning rate
    epochs: int = 1               # passes over the device train data per measurement
    batch_size: int = 8
    grad_format: str = "int16"    # int8 | int16 | float32
    train: int = 0                # device train samples (0: all)
    test: int = 0                 # validation samples measured on (0: all)
    seeds: int = 1                # training seeds averaged per measurement (TrainConfig.seed 0..seeds-1)
    bias_base: int = -1           # bias-only baseline: biases of the last N layers (-1: all K)
    k_step: int = 1               # bias curve: k = 1, 1 + k_step, ... and always K
    ratios: tuple = fmt.RATIOS    # weight update ratios
    layers: str = "all"           # weight layers: all | last:N | comma list of .tflite names
    selects: tuple = ("magnitude",)   # channel-selection rules measured (SELECTS)
    rows: str = "all"             # all | middle: also each layer's middle kernel row alone (kernels taller than 1)
    layer_bias: bool = False      # also each weight layer's own bias on the bias-only base (Δacc_b(i))


# -- what to measure ---------------------------------------------------------------------------------

def parse_ratios(text):
    try:
        ratios = tuple(float(Fraction(r.strip())) for r in text.split(",") if r.strip())
    except (ValueError, ZeroDivisionError):
        raise ContribError(f"ratios '{text}': expected a comma list like 1/8,1/4,1/2,1") from None
    bad = [r for r in ratios if r not in fmt.RATIOS]
    if bad or not ratios:
        raise ContribError(f"ratio {bad[0] if bad else text!r}; expected some of 1/8, 1/4, 1/2, 1")
    return ratios


def weight_layers(spec, body):
    """The layers whose weights are measured: all | last:N | a comma list (execution order)."""
    if spec == "all":
        return list(body)
    if spec.startswith("last:"):
        n = spec[5:]
        if not n.isdigit() or not 1 <= int(n) <= len(body):
            raise ContribError(f"--layers {spec}: expected last:N with N in 1..{len(body)}")
        return list(body[-int(n):])
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in body]
    if unknown:
        raise ContribError(f"--layers: no trainable layer '{unknown[0]}' before the classifier "
                           f"(trainable: {', '.join(body)})")
    return [n for n in body if n in names]


def k_values(k_max, step):
    return sorted(set(range(1, k_max + 1, step)) | {k_max}) if k_max else []


def make_scheme(model, classifier, biases, weight=None, ratio=None, select="magnitude", rows=None, channels=None):
    """Classifier (full weights + bias) + the biases of `biases` + `weight`'s channels at `ratio` chosen by
    `select`, or its explicit `channels` (and only kernel `rows`, if given: a sub-tensor)."""
    layers = [{"layer": classifier, "bias": True, "weight": {"kind": "full"}}]
    for name in biases:
        layers.append({"layer": name, "bias": True})
    if weight is not None:
        w = ({"kind": "channels", "ratio": ratio, "select": select} if channels is None else
             {"kind": "channels", "channels": [int(c) for c in channels]})
        if rows is not None:
            w["rows"] = list(rows)
        if weight in biases:
            layers[1 + list(biases).index(weight)]["weight"] = w
        else:
            layers.append({"layer": weight, "bias": False, "weight": w})
    return fmt.from_dict({"format": fmt.FORMAT, "model": model, "name": "contrib", "layers": layers})


def scheme_key(scheme):
    """A short name of what a scheme trains (independent of the order of its layers)."""
    layers = sorted(scheme.to_dict()["layers"], key=lambda u: u["layer"])
    return hashlib.sha256(json.dumps(layers, sort_keys=True).encode()).hexdigest()[:16]


# -- measuring, with a cache on disk -----------------------------------------------------------------

def model_sha256(tflite):
    """The identity of an int8 model: the SHA-256 of its file (what tables and caches are keyed by)."""
    return hashlib.sha256(Path(tflite).read_bytes()).hexdigest()


def cache_path(work, model, dataset, quick, tflite, cfg):
    """The cache file: named by model, dataset and a hash of everything that changes a measured number."""
    numbers = {"cache": 1, "model": model, "dataset": dataset, "quick": quick,
               "tflite_sha256": model_sha256(tflite),
               "lr": cfg.lr, "epochs": cfg.epochs, "batch_size": cfg.batch_size, "grad_format": cfg.grad_format,
               "qas": True, "train": cfg.train, "test": cfg.test, "data_seed": 0,
               "measured_on": "validation"}
    h = hashlib.sha256(json.dumps(numbers, sort_keys=True).encode()).hexdigest()[:10]
    return Path(work) / f"{model}-{dataset}-{h}.jsonl", numbers


class Cache:
    """JSON lines {"key", "seed", "accuracy", "seconds"}; a line that does not parse (killed mid-write) is skipped."""

    def __init__(self, path, header):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.results, self.skipped = {}, 0
        text = self.path.read_text() if self.path.exists() else ""
        for line in text.splitlines():
            try:
                d = json.loads(line)
                if "key" in d:
                    self.results[(d["key"], d["seed"])] = d["accuracy"]
            except (json.JSONDecodeError, KeyError, TypeError):
                self.skipped += 1
        if text and not text.endswith("\n"):
            self._append("")                 # never append to a truncated line
        if not text:
            self._append(json.dumps({"config": header}))

    def _append(self, line):
        with self.path.open("a") as f:
            f.write(line + "\n")

    def add(self, key, seed, accuracy, seconds, what):
        self.results[(key, seed)] = accuracy
        self._append(json.dumps({"key": key, "seed": seed, "accuracy": accuracy, "seconds": round(seconds, 3),
                                 "what": what}))


def train_accuracy(sim, scheme, data, cfg, seed):
    t = SparseTrainer(sim, scheme, TrainConfig(cfg.lr, cfg.epochs, cfg.batch_size, cfg.grad_format, seed=seed))
    t.fit(data.q_train, data.y_train)
    return t.accuracy(data.q_val, data.y_val)


def costs(sim, scheme):
    """(extra memory bytes, MACs of one training step per sample) of a scheme."""
    return int(scheme_memory(scheme, sim.ops)), int(SparseTrainer(sim, scheme).step_macs())


def measure_all(jobs, sim, data, cfg, cache):
    """{key: mean accuracy over seeds} for the (what, scheme, reference key) jobs; a progress line per job."""
    seeds = range(cfg.seeds)
    keys = [scheme_key(s) for _, s, _ in jobs]
    todo = sum((k, s) not in cache.results for k in keys for s in seeds)
    print(f"{len(jobs)} measurements x {cfg.seeds} seed(s): {len(jobs) * cfg.seeds - todo} cached, {todo} to train "
          f"({len(data.y_train)} train / {len(data.y_val)} validation samples); cache {cache.path}", flush=True)
    if cache.skipped:
        print(f"  (skipped {cache.skipped} unreadable line(s) of the cache)", flush=True)
    acc, spent, done = {}, 0.0, 0
    for i, ((what, scheme, ref), key) in enumerate(zip(jobs, keys)):
        t_job, trained = time.time(), False
        for s in seeds:
            if (key, s) not in cache.results:
                trained = True
                t0 = time.time()
                cache.add(key, s, train_accuracy(sim, scheme, data, cfg, s), time.time() - t0, what)
                spent, done = spent + time.time() - t0, done + 1
        acc[key] = float(np.mean([cache.results[(key, s)] for s in seeds]))
        delta = "" if ref is None else f"  Δ {100 * (acc[key] - acc[ref]):+6.2f}"
        tail = f"  {time.time() - t_job:5.1f} s  ETA {spent / done * (todo - done):.0f} s" if trained else "  (cached)"
        print(f"[{i + 1:{len(str(len(jobs)))}d}/{len(jobs)}] {what:32s} acc {100 * acc[key]:6.2f}%{delta}{tail}",
              flush=True)
    return acc


# -- the analysis ------------------------------------------------------------------------------------

def analyse(task, cfg, work=WORK, command=None):
    """Run (or resume) the analysis of a prepared task; returns the odt-contrib/1 dict."""
    sim = Simulator.from_tflite(task.tflite)
    names = list(fmt.trainable_layers(sim.graph))
    classifier, body = names[-1], names[:-1]
    k_max = len(body)
    base = k_max if cfg.bias_base < 0 else cfg.bias_base
    if not 0 <= base <= k_max:
        raise ContribError(f"--bias-base {cfg.bias_base}: expected 0..{k_max} (the trainable layers before the "
                           f"classifier)")
    chosen = weight_layers(cfg.layers, body)

    def last(k):
        return body[len(body) - k:]               # the last k layers before the classifier, execution order

    path, numbers = cache_path(work, task.model, task.dataset, task.quick, task.tflite, cfg)
    data = tasks.device_data(task, cfg.train, cfg.test, seed=0)

    cls = make_scheme(task.model, classifier, [])
    bias_only = make_scheme(task.model, classifier, last(base))
    c, b = scheme_key(cls), scheme_key(bias_only)
    jobs = [("classifier only", cls, None), (f"bias-only (last {base} biases)", bias_only, c)]
    bias = [(k, make_scheme(task.model, classifier, last(k))) for k in k_values(k_max, cfg.k_step)]
    jobs += [(f"bias k={k}", s, c) for k, s in bias]
    kernel_h = {n: sim.graph.tensors[fmt.trainable_layers(sim.graph)[n].inputs[1]].shape[1] for n in chosen}
    variants = lambda n: [None] + ([[kernel_h[n] // 2]] if cfg.rows == "middle" and kernel_h[n] > 1 else [])  # noqa: E731
    fisher = {}
    if "fisher" in cfg.selects:              # TinyTrain's rule: the channels of largest Fisher information
        potentials = task_potentials(sim, data)
        fisher = {(n, r): top_channels(potentials[n], r) for n in chosen for r in cfg.ratios}
    own = [n for n in chosen if cfg.layer_bias and n not in last(base)]   # layers whose own bias is measured
    weights = [(n, r, sel, rows, bias, make_scheme(task.model, classifier, last(base) + ([n] if bias else []), n, r,
                                                   sel, rows, fisher.get((n, r)) if sel == "fisher" else None))
               for n in chosen for bias in ((False, True) if n in own else (False,)) for sel in cfg.selects
               for rows in variants(n) for r in cfg.ratios]
    label = lambda n, r, sel, rows, bias: (f"weight {n} r={r:g}" + ("" if sel == "magnitude" else f" {sel}")  # noqa: E731
                                           + ("" if rows is None else f" rows {rows}") + (" +bias" if bias else ""))
    jobs += [(label(n, r, sel, rows, bias), s, b) for n, r, sel, rows, bias, s in weights]
    own_bias = [(n, make_scheme(task.model, classifier, last(base) + [n])) for n in own]
    jobs += [(f"bias of {n}", s, b) for n, s in own_bias]
    unique = {}                                   # a scheme is measured once (bias k=K is the bias-only)
    for what, s, ref in jobs:
        unique.setdefault(scheme_key(s), (what, s, ref))
    jobs = list(unique.values())
    cache = Cache(path, numbers)
    acc = measure_all(jobs, sim, data, cfg, cache)

    def entry(scheme, ref):
        memory, macs = costs(sim, scheme)
        key = scheme_key(scheme)
        # the same seed trains both schemes in the same sample order: the per-seed differences show
        # how much of a delta is training noise
        per_seed = [cache.results[(key, s)] - cache.results[(ref, s)] for s in range(cfg.seeds)]
        return {"accuracy": acc[key], "delta": acc[key] - acc[ref], "delta_per_seed": per_seed,
                "memory_bytes": memory, "macs_per_step": macs}

    config = {**asdict(cfg), "bias_base": base, "ratios": list(cfg.ratios), "selects": list(cfg.selects),
              "layers": chosen, "quick": task.quick,
              "train": len(data.y_train), "test": len(data.y_val), "tflite": str(task.tflite),
              "tflite_sha256": numbers["tflite_sha256"], "cache": str(path)}
    if fisher:
        config["fisher_samples"] = min(FISHER_SAMPLES, len(data.y_train))
    return {"format": FORMAT, **run_record(command, f"{torch.get_num_threads()} threads"),
            "model": task.model, "dataset": task.dataset, "config": config,
            "classifier_only": acc[c], "bias_only": acc[b],
            "bias": [{"k": k, "layers": last(k), **entry(s, c)} for k, s in bias],
            "weight": [{"layer": n, "ratio": r, "select": sel, "rows": rows, **entry(s, b)}
                       | ({"channels": fisher[(n, r)]} if sel == "fisher" else {}) | ({"bias": True} if bias else {})
                       for n, r, sel, rows, bias, s in weights],
            **({"layer_bias": [{"layer": n, **entry(s, b)} for n, s in own_bias]} if cfg.layer_bias else {})}


def load(path):
    """A contribution analysis written by this module (odt-contrib/1), checked."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ContribError(f"{path}: cannot read a contribution analysis ({e})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ContribError(f"{path}: not a contribution analysis (expected \"format\": \"{FORMAT}\")")
    keys = {"model", "dataset", "config", "classifier_only", "bias_only", "bias", "weight"}
    entry = {"accuracy", "delta", "memory_bytes", "macs_per_step"}
    missing = keys - set(d)
    missing |= {f"bias[].{k}" for e in d.get("bias", []) for k in entry | {"k", "layers"} if k not in e}
    missing |= {f"weight[].{k}" for e in d.get("weight", []) for k in entry | {"layer", "ratio"} if k not in e}
    missing |= {f"layer_bias[].{k}" for e in d.get("layer_bias", []) for k in entry | {"layer"} if k not in e}
    if missing:
        raise ContribError(f"{path}: missing {', '.join(sorted(missing))}")
    return d


def entry_noise(table):
    """The standard deviation of one entry's Δ (accuracy): with several training seeds, their pooled spread over
    the entries divided by sqrt(seeds); with one, read off the negative entries (a layer's true contribution is
    rarely below zero, so a negative Δ is mostly noise: |Δ| half-normal, σ = median / 0.674); 0 without either."""
    entries = table["weight"] + table["bias"] + table.get("layer_bias", [])
    per_seed = [e["delta_per_seed"] for e in entries if len(e.get("delta_per_seed") or []) > 1]
    if per_seed:
        return float(np.sqrt(np.mean([np.var(d, ddof=1) for d in per_seed])) / np.sqrt(len(per_seed[0])))
    negative = [-e["delta"] for e in entries if e["delta"] < 0]
    return float(np.median(negative) / 0.6745) if negative else 0.0


def shrunk(table, sigma=None):
    """The table with every positive Δ lowered by sigma (default: its entry_noise), to zero at most (a soft
    threshold): summed over many layers, Δs within the noise add up to a gain the scheme does not have, and a
    search maximizing the sum collects them (the winner's curse). Negative Δs stay: nothing picks those anyway."""
    sigma = entry_noise(table) if sigma is None else sigma
    lower = lambda e: {**e, "delta": max(e["delta"] - sigma, 0.0)} if e["delta"] > 0 else e   # noqa: E731
    return {**table, "bias": [lower(e) for e in table["bias"]], "weight": [lower(e) for e in table["weight"]],
            **({"layer_bias": [lower(e) for e in table["layer_bias"]]} if "layer_bias" in table else {})}


def model_mismatch(table, tflite):
    """None when the table was measured on this int8 model (its SHA-256), else a sentence saying it was not:
    the gains are a property of the weights, so a table of another export predicts nothing for this one."""
    measured = table["config"].get("tflite_sha256")
    here = model_sha256(tflite)
    if measured is None or measured == here:
        return None
    return (f"the contribution table ({table['model']} on {table['dataset']}) was measured on an int8 model with "
            f"SHA-256 {measured[:12]}..., not on {tflite} ({here[:12]}...); re-measure it with `python -m "
            f"search.contrib --model {table['model']} --dataset {table['dataset']}` (float pre-training is "
            f"reproducible on one machine but not across CPUs: the table's run record names the one it came from, "
            f"{table.get('machine', 'unknown')})")


# -- reporting ---------------------------------------------------------------------------------------

def table(result, top=10):
    print(f"\n{result['model']} on {result['dataset']}: classifier only {100 * result['classifier_only']:.2f}%, "
          f"bias-only (last {result['config']['bias_base']}) {100 * result['bias_only']:.2f}%")
    print(f"{'bias k':>6s} {'deepest layer':22s} {'acc %':>7s} {'Δ pp':>7s} {'memory B':>10s} {'MACs/step':>11s}")
    for e in result["bias"]:
        print(f"{e['k']:6d} {e['layers'][0]:22s} {100 * e['accuracy']:7.2f} {100 * e['delta']:+7.2f} "
              f"{e['memory_bytes']:10d} {e['macs_per_step']:11d}")
    best = sorted(result["weight"], key=lambda e: -e["delta"])[:top]
    print(f"\n{'weights (top ' + str(len(best)) + ' by Δ)':22s} {'ratio':>6s} {'acc %':>7s} {'Δ pp':>7s} "
          f"{'memory B':>10s} {'MACs/step':>11s}")
    for e in best:
        variant = ("" if e.get("select", "magnitude") == "magnitude" else " " + e["select"]) + (
            "" if e.get("rows") is None else f" rows {e['rows']}") + (" +bias" if e.get("bias") else "")
        print(f"{e['layer'] + variant:22s} {e['ratio']:6.3f} {100 * e['accuracy']:7.2f} {100 * e['delta']:+7.2f} "
              f"{e['memory_bytes']:10d} {e['macs_per_step']:11d}")
    own = sorted(result.get("layer_bias", []), key=lambda e: -e["delta"])[:top]
    if own:
        print(f"\n{'own biases (top ' + str(len(own)) + ' by Δ)':29s} {'acc %':>7s} {'Δ pp':>7s} {'memory B':>10s} "
              f"{'MACs/step':>11s}")
        for e in own:
            print(f"{e['layer']:29s} {100 * e['accuracy']:7.2f} {100 * e['delta']:+7.2f} {e['memory_bytes']:10d} "
                  f"{e['macs_per_step']:11d}")


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    layers = result["config"]["layers"]
    ratios = result["config"]["ratios"]
    grid = np.full((len(layers), len(ratios)), np.nan)
    for e in result["weight"]:   # the heat map: magnitude selection, every kernel row
        if e.get("select", "magnitude") == "magnitude" and e.get("rows") is None and not e.get("bias"):
            grid[layers.index(e["layer"]), ratios.index(e["ratio"])] = 100 * e["delta"]
    fig, (ax, hm) = plt.subplots(1, 2, figsize=(10, max(3.5, 1.5 + 0.22 * len(layers))),
                                 gridspec_kw={"width_ratios": [3, 2]})
    ax.plot([e["k"] for e in result["bias"]], [100 * e["delta"] for e in result["bias"]], "o-")
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel("biases of the last k layers trained (+ classifier)")
    ax.set_ylabel("Δ accuracy vs classifier only (pp)")
    ax.set_title(f"{result['model']} / {result['dataset']}: bias contribution", fontsize=9)
    ax.grid(alpha=0.3)
    lim = max(1e-9, float(np.nanmax(np.abs(grid)))) if grid.size and not np.isnan(grid).all() else 1
    im = hm.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    hm.set_xticks(range(len(ratios)), [str(Fraction(r)) for r in ratios])
    hm.set_yticks(range(len(layers)), layers, fontsize=7)
    hm.set_xlabel("weight ratio (channels by magnitude)")
    hm.set_title("Δ accuracy vs bias-only (pp)", fontsize=9)
    fig.colorbar(im, ax=hm)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model label of a task (search.tasks.ROWS)")
    ap.add_argument("--dataset", required=True, help="dataset of a task (kws, digits)")
    ap.add_argument("--quick", action="store_true", help="the task's quick pre-training and few samples (smoke test)")
    ap.add_argument("--layers", help="weight layers: all | last:N | comma list of names (default all; --quick last:2)")
    ap.add_argument("--ratios", help="weight ratios, e.g. 1/8,1/4,1/2,1 (the default; --quick 1/4,1)")
    ap.add_argument("--k-step", type=at_least(1), help="bias curve: every n-th k, K always (default 1; --quick K/2)")
    ap.add_argument("--select", default="magnitude", help="channel-selection rules, comma list of "
                    f"{', '.join(SELECTS)} (default magnitude; fisher: TinyTrain's, on the first "
                    f"{FISHER_SAMPLES} train samples, written as channel indices)")
    ap.add_argument("--rows", default="all", choices=("all", "middle"),
                    help="middle: also measure each layer's middle kernel row alone (sub-tensor)")
    ap.add_argument("--bias-base", type=at_least(-1), default=-1,
                    help="bias-only baseline, the weights' context: classifier + biases of the last N layers "
                         "(default: all, as Lin et al.; 0: the classifier alone, the context of the few-bias "
                         "schemes a tight budget admits)")
    ap.add_argument("--layer-bias", action="store_true",
                    help="also measure each weight layer's own bias on the bias-only base, alone and with each of "
                         "its weight entries, so the search may train the biases of the layers whose weights it "
                         "updates (TinyTrain's schemes); with a --bias-base below the layer count")
    ap.add_argument("--train", type=at_least(1), help="device train samples (default all; --quick 64)")
    ap.add_argument("--test", type=at_least(1), help="validation samples measured on (default all; --quick 64)")
    ap.add_argument("--epochs", type=at_least(1), default=Config.epochs)
    ap.add_argument("--lr", type=positive, default=Config.lr)
    ap.add_argument("--batch-size", type=at_least(1), default=Config.batch_size)
    ap.add_argument("--grad-format", default=Config.grad_format)
    ap.add_argument("--seeds", type=at_least(1), default=Config.seeds, help="training seeds averaged per measurement")
    ap.add_argument("--threads", type=at_least(1), default=1, help="torch threads (the simulator's small integer ops "
                    "gain little from more; run analyses side by side instead)")
    ap.add_argument("--work", type=Path, default=WORK, help="cache of measurements")
    ap.add_argument("--tasks-work", type=Path, default=tasks.WORK, help="cache of pre-trained task models")
    ap.add_argument("--tflite", type=Path, help="analyse this int8 model instead of the task's (with --checkpoint, "
                    "its float checkpoint, which names its dataset's layout, and --data, the dataset folder)")
    ap.add_argument("--checkpoint", type=Path, help="with --tflite: the float checkpoint it was exported from")
    ap.add_argument("--data", type=Path, help="with --tflite: the dataset folder (default: the checkpoint's)")
    ap.add_argument("--out", type=Path, help="default WORK/<model>-<dataset>[-quick].json")
    args = ap.parse_args(argv)
    quick = QUICK if args.quick else {}
    try:
        if (args.dataset, args.model) not in tasks.ROWS:
            known = ", ".join(f"--dataset {d} --model {m}" for d, m in tasks.ROWS)
            raise ContribError(f"no task for dataset '{args.dataset}' with model '{args.model}'; known: {known}")
        ratios = parse_ratios(args.ratios or quick.get("ratios", "1/8,1/4,1/2,1"))
        selects = tuple(x.strip() for x in args.select.split(",") if x.strip())
        if not selects or any(x not in SELECTS for x in selects):
            raise ContribError(f"--select {args.select}: expected a comma list of {', '.join(SELECTS)}")
        numbers = {"epochs": args.epochs, "batch size": args.batch_size, "seeds": args.seeds,
                   "threads": args.threads, "k step": 1 if args.k_step is None else args.k_step}
        for what, n in numbers.items():
            if n < 1:
                raise ContribError(f"--{what.replace(' ', '-')} {n}: expected a positive number")
        if args.grad_format not in ("int8", "int16", "float32"):
            raise ContribError(f"--grad-format {args.grad_format}: expected int8, int16 or float32")
        torch_threads.set_threads(args.threads)
        if args.tflite is not None:
            for what, path in (("--tflite", args.tflite), ("--checkpoint", args.checkpoint)):
                if path is None or not path.is_file():
                    raise ContribError(f"{what} {path}: no such file (--tflite needs --checkpoint too)")
            task = tasks.Task(args.dataset, args.model, args.quick, args.checkpoint, args.tflite, args.data)
        else:
            task = tasks.prepare(args.dataset, args.model, quick=args.quick, work=args.tasks_work)
        k_max = len(fmt.trainable_layers(Simulator.from_tflite(task.tflite).graph)) - 1
        train = args.train if args.train is not None else quick.get("train", 0)
        test = args.test if args.test is not None else quick.get("test", 0)
        cfg = Config(args.lr, args.epochs, args.batch_size, args.grad_format, train, test, args.seeds,
                     args.bias_base, args.k_step or (max(1, k_max // 2) if args.quick else 1), ratios,
                     args.layers or quick.get("layers", "all"), selects, args.rows, args.layer_bias)
        command = " ".join(["python -m search.contrib"] + (argv if argv is not None else sys.argv[1:]))
        result = analyse(task, cfg, args.work, command)
    except (ContribError, fmt.SchemeError) as e:
        sys.exit(f"contrib: {e}")
    out = args.out or args.work / f"{args.model}-{args.dataset}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out.with_suffix(".png"))
    table(result)
    print(f"\nwrote {out} and {out.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
