"""Regenerate the measured-results section of README.md from results/*.json.

    .venv/bin/python scripts/readme_results.py
    .venv/bin/python scripts/readme_results.py --check   # exit 1 when README.md is not what results/ give

Everything between the markers `<!-- results:begin -->` and `<!-- results:end -->` is
rewritten; each table says which command, commit, date and machine produced it. The dataset
table between `<!-- datasets:begin/end -->` comes from model_prep.data.datasets.info.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))   # the project's own definitions (search.bench, model_prep.data)
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
DATA_BEGIN, DATA_END = "<!-- datasets:begin -->", "<!-- datasets:end -->"


def replace_between(text, begin, end, body):
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def two(v):
    """A correlation (or any fraction) to two decimals; None as a dash."""
    return "—" if v is None else f"{v:.2f}"


def heading(title, r, source=""):
    """A table's title and the run that produced it (command, commit, date, machine)."""
    return [f"### {title}", "", f"`{r['command']}` — commit {r['commit']}, {r['date']}, {r['machine']}{source}", ""]


def run_lines(r):
    """The commands behind a result's rows: rows merged from several runs (`--update`) each carry their own run
    record ("run"); rows without one are the file's own run."""
    record = lambda x: x.get("run", r)   # noqa: E731
    runs = list({record(x)["command"] + record(x)["commit"]: record(x) for x in r["rows"]}.values()) or [r]
    return [f"`{x['command']}` — commit {x['commit']}, {x['date']}, {x['machine']}" + ("  " if len(runs) > 1 else "")
            for x in runs]


def model_named(r):
    """The model's name and, where the run recorded it, the SHA-256 prefix of the .tflite the board ran."""
    return f"{r['model']} (sha256 {r['tflite_sha256']})" if r.get("tflite_sha256") else r["model"]


def kws_demo(r):
    return "\n".join([
        "### On-device training, keyword spotting (`make demo`)",
        "",
        f"`{r['command']}` — commit {r['commit']}, {r['date']}, {r['machine']}",
        "",
        "| board | model | trains | samples trained | held-out acc. before | after | peak SRAM | flash | arena |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {r['board']} | {model_named(r)} | {r['scheme']} | {r['samples_trained']} | {100 * r['acc_before']:.1f} % "
        f"| {100 * r['acc_after']:.1f} % | {r['peak_sram_bytes'] / 1024:.1f} KiB | {r['flash_bytes'] / 1024:.1f} KiB "
        f"| {r['arena_bytes'] / 1024:.1f} KiB |",
        "",
        *pulled_model(r.get("saved_model")),
        "![accuracy curve](results/kws_demo.png)",
    ])


def pulled_model(m):
    """The demo's line on the trained model pulled off the board (stream.py --save-model), when it has one."""
    if not m:
        return []
    return [f"The trained model pulled off the board (`--save-model`, an int8 .tflite) gives the board's outputs "
            f"byte for byte in tflite-micro on {m['agree']} of {m['samples']} held-out samples "
            f"(accuracy {100 * m['tflm_acc']:.1f} %).", ""]


def verify(r):
    lines = [
        "### Float vs int8, and bit-exactness of every model (`python -m model_prep.verify --all`)",
        "",
        f"`{r['command']}` — commit {r['commit']}, {r['date']}, {r['machine']}",
        "",
        "| model | dataset | input | test samples | float acc. | int8 acc. (tflite-micro) | int8 arena | .tflite "
        "| simulator = C++ runtime = tflite-micro |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        res = "x".join(str(v) for v in row.get("resolution", []))
        lines.append(f"| {row['model']} | {row['dataset']} | {res} | {row['samples']} | {100 * row['float_acc']:.1f} % "
                     f"| {100 * row['int8_acc']:.1f} % | {row['arena_bytes'] / 1024:.1f} KiB "
                     f"| {row['tflite_bytes'] / 1024:.1f} KiB | {'yes' if row['bit_exact'] else 'NO'} |")
    return "\n".join(lines + ["", "![verify](results/verify.png)"])


def methods(r):
    """Papers' layout: one row per method, one column group (accuracy, memory, compute) per task."""
    panels = list(dict.fromkeys((row["task"], row["model"]) for row in r["rows"]))
    cells = {(row["task"], row["model"], row["method"]): row for row in r["rows"]}
    order = list(dict.fromkeys(row["method"] for row in r["rows"]))
    head = "| method | " + " | ".join(f"{t}, {m}: acc. / SRAM / MACs per step" for t, m in panels) + " |"
    lines = [
        "### On-device training methods compared (`python -m search.bench_methods`)",
        "",
        f"`{r['command']}` — commit {r['commit']}, {r['date']}, {r['machine']}",
        "",
        "Accuracy on the device group's test split (mean of the seeds; learning rate per method chosen on its "
        "validation split); memory: device SRAM of one batch-1 training step (arena + updated weights + biases + "
        "saved activations + masks + gradient buffers), PyTorch's measured bytes for FullTrain.",
        "",
        head,
        "|---|" + "---|" * len(panels),
    ]
    for method in order:
        row_cells = []
        for t, m in panels:
            c = cells.get((t, m, method))
            row_cells.append("" if c is None else f"{100 * c['accuracy']:.1f} % / {c['memory_bytes'] / 1024:,.0f} KiB"
                             f" / {c['macs_per_step'] / 1e6:.1f} M")
        lines.append(f"| {method} | " + " | ".join(row_cells) + " |")
    return "\n".join(lines + ["", "![methods](results/methods.png)"])


def contrib(r):
    """Lin et al.'s contribution analysis of one model: the bias curve and the best weight updates."""
    cfg = r["config"]
    bias = r["bias"]
    if len(bias) > 16:   # a long curve: every n-th k, and the last
        bias = bias[::-(-len(bias) // 15)]
        bias = bias if bias[-1] is r["bias"][-1] else bias + [r["bias"][-1]]
    lines = [
        f"### Contribution analysis, {r['model']} on {r['dataset']} (`python -m search.contrib`)",
        "",
        f"`{r['command']}` — commit {r['commit']}, {r['date']}, {r['machine']}",
        "",
        f"Validation accuracy after training (lr {cfg['lr']}, {cfg['epochs']} epoch(s), mean of {cfg['seeds']} "
        f"seed(s), {cfg['test'] or 'all'} validation samples): classifier only "
        f"{100 * r['classifier_only']:.1f} %, bias-only (the last {cfg['bias_base']} biases) "
        f"{100 * r['bias_only']:.1f} %.",
        "",
        "| last k biases | " + " | ".join(str(b["k"]) for b in bias) + " |",
        "|---|" + "---|" * len(bias),
        "| Δacc over classifier only (pp) | " + " | ".join(f"{100 * b['delta']:+.1f}" for b in bias) + " |",
        "",
        "| layer (weights, on top of bias-only) | ratio | Δacc (pp) | extra SRAM | MACs per step |",
        "|---|---|---|---|---|",
    ]
    for w in sorted(r["weight"], key=lambda w: -w["delta"])[:8]:
        named = (w["layer"] + ("" if select_rule(w) == "magnitude" else f" ({select_rule(w)})")
                 + (" + its bias" if w.get("bias") else ""))
        lines.append(f"| {named} | {w['ratio']:g} | {100 * w['delta']:+.1f} | {w['memory_bytes']:,} B "
                     f"| {w['macs_per_step'] / 1e6:.1f} M |")
    png = f"results/{Path(r['file']).with_suffix('.png')}"
    plain = [w for w in r["weight"] if not w.get("bias")]
    return "\n".join(lines + rules_lines(plain) + own_bias_lines(r) + ["", f"![contribution]({png})"])


def own_bias_lines(r):
    """Where a table measured the layers' own biases (search.contrib --layer-bias): alone, and beside their weights
    (each weight entry's Δ with its layer's bias against the same entry's without)."""
    own = sorted(r.get("layer_bias", []), key=lambda e: -e["delta"])
    if not own:
        return []
    key = lambda w: (w["layer"], w["ratio"], select_rule(w), str(w.get("rows")))   # noqa: E731
    without = {key(w): w["delta"] for w in r["weight"] if not w.get("bias")}
    pairs = [(w["delta"], without[key(w)]) for w in r["weight"] if w.get("bias") and key(w) in without]
    above, equal = above_and_equal(pairs)
    mean = lambda xs: 100 * sum(xs) / max(len(xs), 1)   # noqa: E731
    best = ", ".join(f"{e['layer']} {100 * e['delta']:+.1f}" for e in own[:3])
    return ["", f"Own biases (`--layer-bias`), on top of bias-only: each weight layer's bias alone, {len(own)} "
                f"measured, mean Δ {mean([e['delta'] for e in own]):+.2f} pp, above zero on "
                f"{sum(e['delta'] > 0 for e in own)} (best {best}); with its layer's weights, {len(pairs)} entries, "
                f"mean Δ {mean([a for a, _ in pairs]):+.2f} pp against {mean([b for _, b in pairs]):+.2f} without "
                f"the bias, above on {above}, equal on {equal}."]


def above_and_equal(pairs):
    """Of (Δ, Δ of the entry it is compared with) pairs: how many above, how many equal. Δs are means over training
    runs, and the same accuracies summed in another order differ by float noise, so equal means within 1e-12."""
    return sum(a > b + 1e-12 for a, b in pairs), sum(abs(a - b) <= 1e-12 for a, b in pairs)


def select_rule(w):
    """A weight entry's channel-selection rule (tables from before --select: magnitude)."""
    return w.get("select", "magnitude")


def rules_lines(weights):
    """Where a table measured several channel-selection rules: each rule's Δ over the same (layer, ratio, rows)
    entries, and on how many it beats magnitude selection (Lin et al.'s)."""
    by = {}
    for w in weights:
        by.setdefault(select_rule(w), {})[(w["layer"], w["ratio"], str(w.get("rows")))] = w["delta"]
    if len(by) < 2 or "magnitude" not in by:
        return []
    base = by["magnitude"]
    lines = ["", "| channel-selection rule | mean Δacc (pp) | best Δacc (pp) | entries above magnitude's / equal |",
             "|---|---|---|---|"]
    for name, d in by.items():
        above, equal = above_and_equal([(d[k], base[k]) for k in d])
        lines.append(f"| {name} | {100 * sum(d.values()) / len(d):+.2f} | {100 * max(d.values()):+.1f} | "
                     + ("—" if name == "magnitude" else f"{above} of {len(d)} / {equal}") + " |")
    return lines


def firmware(r):
    """Flash, SRAM and instructions per model x scheme, measured on the firmware."""
    lines = [
        "### Training on the firmware: flash, SRAM, instructions (`python -m host_tools.bench_firmware`)",
        "",
        f"`{r['command']}` — commit {r['commit']}, {r['date']}, {r['machine']}",
        "",
        "qemu-m7: the STM32F746 build under QEMU, SRAM = static + stack high-water after the training steps, "
        "instructions = Cortex-M7 instructions (icount); host: the x86-64 build, for pairs the linker refused for "
        "the chip and the sparse scheme beside them, SRAM as planned, instructions counted by callgrind. A training "
        "step is a TRAIN request (forward included). PyTorch full BP: the peak resident memory of a process running "
        "one fp32 full-backprop SGD step of the float model at batch 1 (what PyTorch needs to train it, as Lin et al. "
        "compare), and in brackets its tensors alone (parameters, gradients, momentum, saved activations).",
        "",
        "| model | scheme | board | input | flash | SRAM | fits 256 KB | instr. inference | instr. train step "
        "| MACs train step | PyTorch full BP | PyTorch / SRAM |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        flash = "—" if x["flash_bytes"] is None else f"{x['flash_bytes'] / 1024:.1f} KiB"
        step = "—" if x["instructions_train_step"] is None else f"{x['instructions_train_step'] / 1e6:.2f} M"
        macs = "—" if x["macs_train_step"] is None else f"{x['macs_train_step'] / 1e6:.2f} M"
        torch_bytes = "—" if x["pytorch_full_bp_bytes"] is None else (
            f"{x['pytorch_full_bp_bytes'] / 2 ** 20:.0f} MiB "
            f"({x.get('pytorch_full_bp_tensor_bytes', 0) / 2 ** 20:.1f})")
        ratio = "—" if x["pytorch_over_sram"] is None else f"{x['pytorch_over_sram']:.0f}x"
        lines.append(f"| {x['model']} | {x['scheme']} | {x['board']} | {x['resolution']} | {flash} "
                     f"| {x['sram_bytes'] / 1024:.1f} KiB | {'yes' if x['fits_256k'] else 'no'} "
                     f"| {x['instructions_inference'] / 1e6:.2f} M | {step} | {macs} | {torch_bytes} | {ratio} |")
    lines.append("")
    for q in r.get("ratios", []):
        lines.append(f"- {q['model']}, {q['board']}: updating every layer costs "
                     f"{q['full_over_sparse_instructions']:.1f}x the instructions of the sparse scheme per training "
                     f"step ({q['full_over_sparse_macs']:.1f}x MACs); "
                     f"backward and updates alone (train step minus inference): "
                     f"{q['full_over_sparse_backward_instructions']:.1f}x.")
    return "\n".join(lines + ["", "![firmware](results/firmware.png)"])


def plan_vs_measured(r):
    """bake's planned SRAM against the SRAM measured under QEMU, random schemes."""
    worst = r["max_rel_error"]
    lines = [
        "### Planned vs measured SRAM, random schemes (`python -m host_tools.plan_vs_measured`)",
        "",
        f"`{r['command']}` — commit {r['commit']}, {r['date']}, {r['machine']}",
        "",
        f"{r['within_tolerance']} of {r['measured_rows']} schemes within {100 * r['tolerance']:.0f} % "
        f"(max |error| {100 * (worst or 0):.2f} %); {len(r['skipped'])} drawn schemes skipped: the linker refused "
        "them (over 320 KB).",
        "",
        "| model | schemes | planned (KiB, min–max) | max relative error (planned vs measured) "
        "| planned − measured (bytes, min–max) | stack high-water measured (bytes, min–max) |",
        "|---|---|---|---|---|---|",
    ]
    span = lambda v: f"{min(v):+,}–{max(v):+,}" if min(v) < 0 else f"{min(v):,}–{max(v):,}"   # noqa: E731
    for model in dict.fromkeys(x["model"] for x in r["rows"]):
        mine = [x for x in r["rows"] if x["model"] == model]
        lines.append(f"| {model} | {len(mine)} | {min(x['planned'] for x in mine) / 1024:.1f}–"
                     f"{max(x['planned'] for x in mine) / 1024:.1f} | "
                     f"{100 * max(abs(x['rel_error']) for x in mine):.2f} % | "
                     f"{span([x['planned'] - x['measured'] for x in mine])} | "
                     f"{span([x['stack_bytes_used'] for x in mine])} |")
    return "\n".join(lines + ["", "![plan vs measured](results/plan_vs_measured.png)"])


def points(v):
    """A difference of accuracies in points, signed, one decimal (no '-0.0')."""
    return f"{round(100 * v, 1) + 0.0:+.1f}"


def paired_points(d):
    """A row's paired difference over seeds ({"mean", "sem"}): '+1.2 ± 0.4', no s.e. with one seed."""
    return points(d["mean"]) + ("" if d["sem"] is None else f" ± {100 * d['sem']:.1f}")


def search(r):
    """NSGA-II against random search, TinyTrain and the paper's rule, per model, task and budget."""
    pct = lambda v: "—" if v is None else f"{100 * v:.1f} %"   # noqa: E731
    pp = lambda x, m: (f" ({100 * x['best_acc_predicted_pick'][m]:.1f})"   # noqa: E731
                       if m in x.get("best_acc_predicted_pick", {}) else "")
    def paired(x, m):
        d = x.get("ga_minus", {}).get(m)
        return "—" if d is None else paired_points(d)

    runs = lambda x: x.get("training_seeds", 1)   # noqa: E731 (results before --train-seeds: one run)
    greedy = any("greedy" in x["best_acc"] for x in r["rows"])   # results since --init: the greedy pick beside
    trained = lambda x: f" ({runs(x)} training seeds)" if runs(x) > 1 else ""   # noqa: E731
    every = {runs(x) for x in r["rows"]}
    shrink = {f"{x['model']}/{x['task']}": x["gain_noise_shrink"] for x in r["rows"] if x.get("gain_noise_shrink")}
    lines = [
        "### Scheme search: NSGA-II vs random search and a single-objective GA (`python -m search.bench`)"
        + (f", every real evaluation the mean of {min(every)} training runs" if len(every) == 1 and min(every) > 1
           else "")
        + (", gains lowered by their noise (`--shrink`: "
           + ", ".join(f"{k} {100 * v:.1f} points" for k, v in shrink.items()) + ")" if shrink else "")
        + (", the GAs started from the greedy knapsack path (`--init greedy`)"
           if all(x.get("init") == "greedy" for x in r["rows"]) else ""),
        "",
        *run_lines(r),
        "",
        "Per budget (total SRAM of the training firmware, the runtime's planner): evaluations NSGA-II needs to reach "
        "random search's final hypervolume (same number of evaluations, mean over seeds; 100 % = never) -- random "
        "search with uniform genes / with the GA's random sampler (every scheme size equally likely) -- and the "
        "test accuracy after real sparse training of each method's scheme: for NSGA-II, random search and the "
        "single-objective GA of Lin et al. (predicted gain alone, the budget a constraint) the best on the "
        "validation split of the few highest-predicted-gain schemes of the final front within the budget (mean over "
        "seeds; in brackets: the single highest-predicted-gain scheme), TinyTrain's and the paper rule's under the "
        "same budget" + (", and the greedy knapsack pick alone (the best predicted gain per byte that still fits, "
                         "one gene at a time: the GAs' top seed)" if greedy else "")
        + ". Additivity: Pearson r of predicted vs measured gain of those fronts' schemes (validation).",
        "",
        "| model | task | budget | seeds x evals | GA evals to random's final HV (uniform / GA's sampler) | GA "
        "| random (uniform) | random (GA's sampler) | GA − random, paired (± s.e.; uniform / GA's sampler) "
        "| single-objective GA | GA − single-objective GA |" + (" greedy |" if greedy else "")
        + " TinyTrain | paper rule | test samples | additivity r |",
        "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if greedy else "") + "---|---|---|---|",
    ]
    for x in r["rows"]:
        b, a = x["best_acc"], x["additivity"]["pearson"]
        sparse = x.get("ga_evals_to_random_sparse_final_hv_fraction")
        lines.append(f"| {x['model']} | {x['task']} | {x['budget_bytes'] // 1024} KiB "
                     f"| {x['seeds']} x {x['evals']}{trained(x)} "
                     f"| {100 * x['ga_evals_to_random_final_hv_fraction']:.0f} % / "
                     f"{'—' if sparse is None else f'{100 * sparse:.0f} %'} | {pct(b['ga'])}{pp(x, 'ga')} "
                     f"| {pct(b['random'])}{pp(x, 'random')} | {pct(b.get('random_sparse'))}{pp(x, 'random_sparse')} "
                     f"| {paired(x, 'random')} / {paired(x, 'random_sparse')} "
                     f"| {pct(b.get('single_ga'))}{pp(x, 'single_ga')} | {paired(x, 'single_ga')} "
                     + (f"| {pct(b.get('greedy'))} " if greedy else "")
                     + f"| {pct(b['tinytrain'])} | {pct(b['paper_rule'])} | {x.get('test_samples', '—')} "
                     f"| {two(a)} |")
    plot = f"![search](results/{Path(r['file']).with_suffix('.png')})"
    return "\n".join(lines + pooled_lines(r["rows"]) + val_test_table(r["rows"]) + ["", plot])


def pooled_lines(rows):
    """NSGA-II minus each other search over every row of the table (search.bench.pooled: a non-inferiority reading
    of "at least as accurate")."""
    said = pooled_sentence(rows)
    return ["", f"Over every row of this table ({POOLED_HOW}): {said}"] if said else []


def pooled_sentence(rows):
    """'NSGA-II minus <search> <mean> ± <s.e.> points (lower bound ...; at least as accurate on k of n rows); ...'."""
    from search.bench import pooled
    names = {"random": "uniform random search", "random_sparse": "random search with the GA's sampler",
             "single_ga": "the single-objective GA"}
    found = [p for p in (pooled(rows, m) for m in names) if p]
    if not found:
        return None
    return "NSGA-II minus " + "; minus ".join(
        f"{names[p['other']]} {100 * p['mean']:+.1f} ± {100 * p['sem']:.1f} points (lower bound "
        f"{100 * p['lower_bound']:+.1f}; at least as accurate on {p['rows_at_least_as_accurate']} of {p['rows']} rows)"
        for p in found) + "."


POOLED_HOW = "each row's paired mean over seeds is one unit; mean ± s.e. of the rows, one-sided 95 % lower bound by " \
             "Student's t"
# the search files of both pre-trainings, pooled: one training run per evaluation or the mean of three, with either
# start of the GAs
ACROSS = {"one training run per evaluation, the GAs started from random schemes alone": (
              "search.json", "search_avx512.json"),
          "one training run per evaluation, the GAs started from the greedy knapsack path": (
              "search_greedy.json", "search_avx512_greedy.json"),
          "every evaluation the mean of 3 training runs, the GAs started from random schemes alone": (
              "search_train_seeds.json", "search_avx512_train_seeds.json"),
          "every evaluation the mean of 3 training runs, the GAs started from the greedy knapsack path": (
              "search_greedy_train_seeds.json", "search_avx512_greedy_train_seeds.json")}


def across_pretrainings(results):
    """NSGA-II minus the other searches over the rows of both pre-trainings' files, where both are in `results`
    (file name -> its JSON)."""
    lines = []
    for what, names in ACROSS.items():
        if all(n in results for n in names):
            said = pooled_sentence([row for n in names for row in results[n]["rows"]])
            if said:
                lines.append(f"- {what} ({', '.join(f'`results/{n}`' for n in names)}): {said}")
    return "\n".join(["### Scheme search, both pre-trainings pooled", "",
                      f"NSGA-II's pick minus the other searches' over the rows of both pre-trainings ({POOLED_HOW}):",
                      "", *lines]) if lines else None


def table_used(r, x):
    """The contribution table row x of search file r ran on: the --contrib file of the run that measured it (its own
    `run`, which --update keeps per row), or search.bench's default tables."""
    words = (x.get("run") or r).get("command", "").split()
    named = words[words.index("--contrib") + 1] if "--contrib" in words[:-1] else None
    return f"`{Path(named).stem}`" if named else "the default tables"


def at_a_glance(results):
    """One line per row of every search.bench file in `results` (file name -> its JSON): the hypervolume goal and
    NSGA-II's pick against uniform random search and TinyTrain, with how many rows meet each."""
    found = [(name, r, x) for name, r in results.items() for x in r.get("rows", [])
             if "ga_evals_to_random_final_hv_fraction" in x]
    if not found:
        return None
    pct = lambda v: f"{100 * v:.1f}"   # noqa: E731
    lines = ["### Scheme search at a glance: every `search.bench` row", "",
             "Each row of every scheme-search table above, in one place: the evaluations NSGA-II needs to reach "
             "uniform random search's final hypervolume (goal: at most 20 %), and the test accuracy (%) of NSGA-II's "
             "pick, uniform random search's (paired difference over seeds ± s.e.) and TinyTrain's under the same "
             "budget. Start: the GAs' first generation (`--init`); runs: training runs per real evaluation. Files "
             "named `*_avx512*` searched the second pre-training (an AVX-512 Intel VM), the others the first.", "",
             "| file | contribution table | start | runs | model | task | budget | GA evals to random's final HV "
             "| NSGA-II | random (uniform) | NSGA-II − random | TinyTrain | NSGA-II − TinyTrain |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    hv_goal = beats_random = beats_tinytrain = 0
    for name, r, x in found:
        b, frac, d = x["best_acc"], x["ga_evals_to_random_final_hv_fraction"], x["ga_minus"]["random"]
        shrink = ", `--shrink`" if x.get("gain_noise_shrink") else ""
        hv_goal += frac <= 0.2 + 1e-12
        beats_random += d["mean"] >= -1e-12
        beats_tinytrain += b["ga"] >= b["tinytrain"] - 1e-12
        lines.append(f"| `{name}` | {table_used(r, x)}{shrink} | {x.get('init') or 'sparse'} "
                     f"| {x.get('training_seeds', 1)} | {x['model']} | {x['task']} | {x['budget_bytes'] // 1024} KiB "
                     f"| {100 * frac:.0f} % | {pct(b['ga'])} | {pct(b['random'])} "
                     f"| {paired_points(d)} | {pct(b['tinytrain'])} | {points(b['ga'] - b['tinytrain'])} |")
    n = len(found)
    lines += ["", f"Over these {n} rows (one model, task and budget can appear in several files: other tables, starts "
              f"or training runs, so the rows are not independent): the hypervolume goal is met on {hv_goal}; "
              f"NSGA-II's pick is at least as accurate as uniform random search's (paired mean over seeds) on "
              f"{beats_random}, and as TinyTrain's on {beats_tinytrain}."]
    return "\n".join(lines)


def val_test_table(rows):
    """Each method's pick on the validation and the test split, for the rows that measured both."""
    rows = [x for x in rows if "val_acc" in x]
    if not rows:
        return []
    pct = lambda v: "—" if v is None else f"{100 * v:.1f}"   # noqa: E731
    greedy = (("greedy", "greedy"),) if any("greedy" in x["val_acc"] for x in rows) else ()
    methods = (("ga", "NSGA-II"), ("random", "random (uniform)"), ("random_sparse", "random (GA's sampler)"),
               ("single_ga", "single-objective GA"), *greedy, ("tinytrain", "TinyTrain"), ("paper_rule", "paper rule"))
    lines = ["", "Validation / test accuracy (%) of each method's pick: a search's pick is the best of its verified "
             "schemes on validation, so its validation figure is optimistic; TinyTrain's" + (", the greedy pick's"
             if greedy else "") + " and the rule's are not "
             "chosen on it. r: Pearson correlation of validation and test accuracy over the distinct schemes picked.",
             "", "| model | task | budget | " + " | ".join(name for _, name in methods) + " | r (schemes) |",
             "|---|---|---|" + "---|" * (len(methods) + 1)]
    for x in rows:
        v, t, r = x["val_acc"], x["best_acc"], x["val_test"]["pearson"]
        lines.append(f"| {x['model']} | {x['task']} | {x['budget_bytes'] // 1024} KiB | "
                     + " | ".join(f"{pct(v.get(m))} / {pct(t.get(m))}" for m, _ in methods)
                     + f" | {two(r)} ({x['val_test']['n']}) |")
    return lines


def search_init(r):
    """What the GAs' greedy start buys, in the objectives they search (search.bench_init)."""
    from search.bench_init import METHODS
    names = ["greedy", *METHODS]
    label = lambda m: "greedy pick alone" if m == "greedy" else METHODS[m][0]   # noqa: E731
    lines = ["### The GAs' greedy start, search only (`python -m search.bench_init`)", "", *run_lines(r), "", (
        "Highest predicted gain within the budget (points over the classifier alone; mean over seeds, the same "
        "evaluations for every search) of NSGA-II and the single-objective GA started from the greedy knapsack path "
        "(`--init greedy`) and from random schemes alone (`--init sparse`), of both random searches and of the "
        "greedy pick alone; and the evaluations NSGA-II needs to reach uniform random search's final hypervolume "
        "with either start. Nothing trained. Table: \"other\" where this machine's export of the model is not "
        "the one the table was measured on (its gains are still the objective all searches share)."),
        "",
        "| model | task | budget | seeds x evals | table | " + " | ".join(label(m) for m in names)
        + " | NSGA-II evals to random's final HV (greedy / random start) |",
        "|---|---|---|---|---|" + "---|" * (len(names) + 1),
    ]
    for x in r["rows"]:
        g, f = x["predicted_gain"], x["hv_fraction"]
        lines.append(f"| {x['model']} | {x['task']} | {x['budget_bytes'] // 1024} KiB | {x['seeds']} x {x['evals']} "
                     f"| {'its model' if x['table_model_matches'] else 'other'} | "
                     + " | ".join(f"{100 * g[m]:.1f}" for m in names)
                     + f" | {100 * f['ga_greedy']:.0f} % / {100 * f['ga_sparse']:.0f} % |")
    return "\n".join(lines + ["", f"![greedy start](results/{Path(r['file']).with_suffix('.png')})"])


def seed_noise(r):
    """The training-seed noise of the bench's real evaluations."""
    lines = heading("Training-seed noise of real evaluations (`python -m search.seed_noise`)", r) + [
        "The schemes `search.bench` verified at seed 0 (NSGA-II's and uniform random search's highest-predicted "
        "front members within the budget) and the classifier alone, each trained again with more training seeds "
        "on the same data and config (validation split). Seed std: standard deviation of a scheme's accuracy over "
        "training seeds, pooled over the schemes (root mean variance). Additivity r: predicted vs measured gain "
        "over the classifier alone, with one seed (what the bench reports) and with the mean over seeds. Picks "
        "agree: of the searches (NSGA-II and random per budget), how many pick the same best-on-validation "
        "scheme by one seed as by the mean.",
        "",
        "| model | task | budgets | schemes x seeds | seed std (points) | classifier alone | one validation sample "
        "| additivity r, one seed | additivity r, mean | picks agree |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        kib = " / ".join(str(b // 1024) for b in x["budgets_bytes"])
        lines.append(f"| {x['model']} | {x['task']} | {kib} KiB "
                     f"| {x['schemes']} x {x['training_seeds']} | {100 * x['pooled_seed_std']:.1f} "
                     f"| {100 * x['classifier_only_seed_std']:.1f} | {100 / x['validation_samples']:.1f} "
                     f"| {two(x['additivity_r_one_seed'])} | {two(x['additivity_r_mean'])} "
                     f"| {x['picks_agree']} / {len(x['picks'])} |")
    return "\n".join(lines + ["", "![seed noise](results/seed_noise.png)"])


def gain_refit(r):
    """The additive gain model refitted on the bench's training runs, scored within each budget."""
    lines = heading("The gain model refitted on the bench's training runs (`python -m search.gain_refit`)", r,
                    f"; from `{r['bench']}`") + [
        "Pearson r of predicted and measured gain (validation, over the classifier alone) among the schemes the "
        "bench trained at each budget: the contribution table as it is, and its entries refitted on the other "
        "schemes (ridge strength chosen for the best leave-one-budget-out r; leave-one-out where a model has one "
        "budget), leaving out one scheme or the whole budget.",
        "",
        "| model | task | budget | schemes | table | refit, leave one out | refit, leave one budget out "
        "(fitted on) |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        for b in x["budgets"]:
            lines.append(f"| {x['model']} | {x['task']} | {b['budget_bytes'] // 1024} KiB | {b['schemes']} "
                         f"| {two(b['table_r'])} | {two(b['loo_r'])} | {two(b['lobo_r'])} ({b['lobo_fit_schemes']}) |")
    return "\n".join(lines + ["", "![gain refit](results/gain_refit.png)"])


def tinytrain_ablation(r):
    """What TinyTrain's scheme owes to each of its parts (search.tinytrain_ablation)."""
    from search.tinytrain_ablation import VARIANTS
    lines = ["### What TinyTrain's scheme owes to its parts (`python -m search.tinytrain_ablation`)", "",
             *run_lines(r), "", (
                 "TinyTrain's scheme under the budget (as `search.bench` builds it), and the same scheme with one part "
                 "changed: its layers' channels chosen by weight magnitude or at random instead of by Fisher "
                 "information (the same counts and SRAM), its layers' biases only, or their weights only (the "
                 "classifier as ever). Accuracy (%) on validation / test, each the mean of the runs shown; SRAM "
                 "from the runtime's planner."),
             "",
             "| model | task | budget | runs | TinyTrain's layers | " + " | ".join(VARIANTS.values()) + " |",
             "|---|---|---|---|---|" + "---|" * len(VARIANTS)]
    for x in r["rows"]:
        cells = [f"{100 * x['val_acc'][v]:.1f} / {100 * x['test_acc'][v]:.1f} ({x['sram_bytes'][v] / 1024:.0f} KiB)"
                 for v in VARIANTS]
        lines.append(f"| {x['model']} | {x['task']} | {x['budget_bytes'] // 1024} KiB | {x['training_seeds']} "
                     f"| {len(x['layers'])}: {x['layers'][0]} .. {x['layers'][-1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", f"![TinyTrain ablation](results/{Path(r['file']).with_suffix('.png')})"])


def titled(render, note):
    """render, with ", note" after its table's title (note: a string, or a function of the result): a file
    measured on a second pre-training says so."""
    def render_titled(r):
        title, rest = render(r).split("\n", 1)
        return f"{title}, {note(r) if callable(note) else note}\n{rest}"
    return render_titled


# the pipeline again on an AVX-512 VM, whose pre-training gives other models (see README)
SECOND = "second pre-training (AVX-512 VM)"
MODEL_NAMES = {("dscnn", "kws"): "DS-CNN", ("mcunet", "kws"): "MCUNet-KWS", ("mcunet", "digits"): "MCUNet-digits"}


def on_second(r):
    """'DS-CNN and MCUNet-digits on a second pre-training (AVX-512 VM)': the rows' models, in order."""
    names = [MODEL_NAMES.get(k, f"{k[0]} on {k[1]}") for k in dict.fromkeys((x["model"], x["task"]) for x in r["rows"])]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{listed} on a {SECOND}"


def on_second_with(table):
    """on_second, for a search on one of this VM's contribution tables, which `table` describes (its layers,
    its bias base, its channel-selection rules)."""
    return lambda r: f"{on_second(r)}, {table}"


EVERY_LAYER_TABLE = "its table over every layer"                                  # search.contrib --layers all
EVERY_LAYER = on_second_with(EVERY_LAYER_TABLE)
FISHER = on_second_with("its table over every layer with channels by magnitude or by Fisher information")
FEW_BIAS = on_second_with("its table of blocks 3-14 measured on top of the classifier alone, channels by magnitude "
                          "or by Fisher information")                              # --bias-base 0
FEW_BIAS_TABLE = "its table over every layer measured on top of the classifier alone, channels by magnitude or " \
                 "by Fisher information"                                          # --bias-base 0 --layers all
FEW_BIAS_EVERY_LAYER = on_second_with(FEW_BIAS_TABLE)
ON_CLASSIFIER = "on top of the classifier alone, channels by magnitude and by Fisher information"
OWN_BIAS = on_second_with("its table of blocks 3-14 measured on top of the classifier alone, channels by magnitude "
                          "or by Fisher information, each layer's own bias a gene value")   # --layer-bias
OWN_BIAS_TABLE = f"{FEW_BIAS_TABLE}, each layer's own bias a gene value"
OWN_BIAS_EVERY_LAYER = on_second_with(OWN_BIAS_TABLE)

AT_PICKS_BIASES = "the last 12 layers measured on top of the last 25 biases (`--bias-base 25`: the bias count " \
                  "of every search's pick at 256 KiB on the all-biases table)"


TABLES = {"kws_demo.json": kws_demo, "verify.json": verify, "methods.json": methods,
          "contrib-dscnn-kws.json": contrib, "contrib-mcunet-kws.json": contrib,
          "contrib-mcunet-digits.json": contrib, "firmware.json": firmware, "plan_vs_measured.json": plan_vs_measured,
          "search.json": search, "search_train_seeds.json": search, "search_shrink.json": search,
          "search_greedy.json": search, "search_greedy_train_seeds.json": search,
          "seed_noise.json": seed_noise, "gain_refit.json": gain_refit,
          "contrib-dscnn-kws-avx512.json": titled(contrib, SECOND),
          "contrib-mcunet-kws-avx512.json": titled(contrib, SECOND),
          "contrib-mcunet-digits-avx512.json": titled(contrib, SECOND),
          "search_avx512.json": titled(search, on_second),
          "search_avx512_train_seeds.json": titled(search, on_second),
          "search_avx512_greedy.json": titled(search, on_second),
          "search_avx512_greedy_train_seeds.json": titled(search, on_second),
          "contrib-mcunet-digits-all-avx512.json": titled(contrib, f"every layer, {SECOND}"),
          "search_avx512_greedy_all_layers.json": titled(search, EVERY_LAYER),
          "search_avx512_greedy_all_layers_train_seeds.json": titled(search, EVERY_LAYER),
          "search_init.json": search_init,
          "search_init_avx512.json": titled(search_init, on_second),
          "tinytrain_ablation_avx512.json": titled(tinytrain_ablation, on_second),
          "contrib-mcunet-digits-fisher-avx512.json": titled(contrib, f"every layer, channels by magnitude and by "
                                                                      f"Fisher information, {SECOND}"),
          "search_avx512_greedy_fisher.json": titled(search, FISHER),
          "contrib-mcunet-digits-b0-avx512.json": titled(contrib, f"blocks 3-14 {ON_CLASSIFIER}, {SECOND}"),
          "search_avx512_greedy_b0.json": titled(search, FEW_BIAS),
          "search_avx512_greedy_b0_train_seeds.json": titled(search, FEW_BIAS),
          "contrib-mcunet-kws-b0-avx512.json": titled(contrib, f"blocks 3-14 {ON_CLASSIFIER}, {SECOND}"),
          "search_avx512_greedy_b0_kws.json": titled(search, FEW_BIAS),
          "contrib-dscnn-kws-b0-avx512.json": titled(contrib, f"every layer {ON_CLASSIFIER}, {SECOND}"),
          "search_avx512_greedy_b0_dscnn.json": titled(search, FEW_BIAS_EVERY_LAYER),
          "contrib-mcunet-digits-b0-own-avx512.json": titled(contrib, f"blocks 3-14 {ON_CLASSIFIER}, with the "
                                                                      f"layers' own biases, {SECOND}"),
          "search_avx512_greedy_b0_own_train_seeds.json": titled(search, OWN_BIAS),
          "contrib-dscnn-kws-b0-own-avx512.json": titled(contrib, f"every layer {ON_CLASSIFIER}, with the layers' "
                                                                  f"own biases, {SECOND}"),
          "search_avx512_greedy_b0_own_dscnn.json": titled(search, OWN_BIAS_EVERY_LAYER),
          # first pre-training: the weights measured on top of the bias count the 256 KiB picks keep
          "contrib-mcunet-digits-b25.json": titled(contrib, AT_PICKS_BIASES),
          "search_greedy_digits_b25.json": titled(search, f"MCUNet-digits, its table {AT_PICKS_BIASES}"),
          # first pre-training: DS-CNN's weights measured on top of the classifier alone (its picks keep 0-1 biases)
          "contrib-dscnn-kws-b0.json": titled(contrib, f"every layer {ON_CLASSIFIER}"),
          "contrib-dscnn-kws-b0-own.json": titled(contrib, f"every layer {ON_CLASSIFIER}, with the layers' own biases"),
          "search_greedy_b0_dscnn.json": titled(search, f"DS-CNN, {FEW_BIAS_TABLE}"),
          "search_greedy_b0_dscnn_train_seeds.json": titled(search, f"DS-CNN, {FEW_BIAS_TABLE}"),
          "search_greedy_b0_own_dscnn.json": titled(search, f"DS-CNN, {OWN_BIAS_TABLE}"),
          "search_greedy_b0_own_dscnn_train_seeds.json": titled(search, f"DS-CNN, {OWN_BIAS_TABLE}"),
          # first pre-training: digits over every layer (TinyTrain's scheme sits in blocks 3-10)
          "contrib-mcunet-digits-all.json": titled(contrib, "every layer"),
          "search_greedy_all_layers.json": titled(search, f"MCUNet-digits, {EVERY_LAYER_TABLE}")}


def datasets_table():
    from model_prep.data import datasets
    lines = ["| name | kind | input | layout read | on-device group (distribution shift) |", "|---|---|---|---|---|"]

    def cell(text):
        return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")

    for name in datasets.DATASETS:
        i = datasets.info(name)
        lines.append(f"| `{name}` | {i.kind} | {'x'.join(map(str, i.input_shape))} | {cell(i.layout)} "
                     f"| {cell(i.transfer)} |")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["--check"]):
        sys.exit(f"readme_results: unknown arguments {' '.join(argv)}; usage: readme_results.py [--check]")
    results = {name: json.loads((ROOT / "results" / name).read_text()) for name in TABLES
               if (ROOT / "results" / name).exists()}
    parts = [TABLES[name]({**r, "file": name}) for name, r in results.items()]
    parts += [p for p in [across_pretrainings(results), at_a_glance(results)] if p]
    readme = ROOT / "README.md"
    old = readme.read_text()
    body = "\n\n".join(parts) if parts else "_No results yet: run the benchmark commands._"
    text = replace_between(old, BEGIN, END, body)
    text = replace_between(text, DATA_BEGIN, DATA_END, datasets_table())
    if argv == ["--check"]:
        if text != old:
            sys.exit(f"readme_results: {readme} is not what results/ give (a benchmark wrote results/ "
                     "without regenerating it); run .venv/bin/python scripts/readme_results.py")
        print(f"{readme} matches its {len(results)} result file(s)")
        return
    readme.write_text(text)
    print(f"updated {readme} from {len(results)} result file(s)")


if __name__ == "__main__":
    main()
