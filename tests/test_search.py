"""The scheme search: genome, planner memory, NSGA-II with its repair, random search, Dask evaluations, CLIs."""
import json
import re
import subprocess

import numpy as np
import pytest

from model_prep import scheme as fmt
from model_prep.training_plan import TrainingPlan
from search import contrib, tasks
from search.ga import BudgetRepair, greedy, greedy_seeds, nsga2, random_search, single_ga
from search.space import Space, _with

from conftest import PY, ROOT

TABLE = ROOT / "results" / "contrib-dscnn-kws.json"


@pytest.fixture(scope="module")
def space(kws):
    return Space.from_contrib(kws.tflite, contrib.load(TABLE))


def test_genome_means_the_scheme_and_its_costs(space):
    none = space.classifier_only
    s = space.scheme(none)
    assert [u.layer for u in s.layers] == [space.classifier] and space.gain(none) == 0
    assert space.fits(space.sram(none)) and not space.fits(space.sram(none) - 1)   # the smallest scheme
    top = space.upper
    full = space.scheme(top)
    assert {u.layer for u in full.layers} == set(space.body) | {space.classifier}
    assert all(u.bias for u in full.layers)
    assert space.gain(top) == pytest.approx(space.bias_gain[space.ks[-1]] + sum(
        space.weight_gain[(n, 1.0, None, "magnitude")] for n in space.layers))
    x = none.copy()
    x[0], x[1 + space.layers.index("blocks.0.pw")] = 2, 1   # last 2 biases, blocks.0.pw at 1/8
    s = space.scheme(x)
    by = {u.layer: u for u in s.layers}
    assert by["blocks.0.pw"].weight.ratio == 0.125 and not by["blocks.0.pw"].bias
    assert by[space.body[-1]].bias and by[space.body[-2]].bias and len(by) == 4
    plan = TrainingPlan(space.sim, s)
    assert space.cost(x) == (plan.sram_bytes(), plan.trainer.step_macs())
    assert space.sram(top) > space.sram(x) > space.sram(none)


def test_sub_tensor_and_selection_rule_genes(kws):
    """A table with middle-row variants and two selection rules: the genome reaches them, the trainer honours them."""
    from model_prep.sparse_train import SparseTrainer
    table = contrib.load(TABLE)
    extra = []
    for w in table["weight"]:
        extra.append({**w, "select": "random", "delta": w["delta"] / 2})
        if w["layer"].endswith(".dw"):
            for sel in ("magnitude", "random"):
                extra.append({**w, "select": sel, "rows": [1], "memory_bytes": w["memory_bytes"] // 3})
    sp = Space.from_contrib(kws.tflite, {**table, "weight": table["weight"] + extra})
    assert sp.n_var == 2 + len(sp.layers) and sp.selects == ["magnitude", "random"]
    i = sp.layers.index("blocks.1.dw")
    x = np.zeros(sp.n_var, int)
    x[1 + i] = sp.options["blocks.1.dw"].index((0.25, (1,), False))
    x[-1] = 1
    (u,) = [u for u in sp.scheme(x).layers if u.layer == "blocks.1.dw"]
    assert (u.weight.kind, u.weight.ratio, u.weight.rows, u.weight.select) == ("channels", 0.25, (1,), "random")
    assert sp.gain(x) == pytest.approx(next(w["delta"] for w in extra if w["layer"] == "blocks.1.dw" and
                                            w["ratio"] == 0.25 and w.get("rows") == [1] and w["select"] == "random"))
    t = SparseTrainer(kws.tflite, sp.scheme(x))
    assert t.updates["blocks.1.dw"].rows == (1,)
    all_rows = x.copy()
    all_rows[1 + i] = sp.options["blocks.1.dw"].index((0.25, None, False))
    assert sp.sram(x) <= sp.sram(all_rows) and sp.macs(x) < sp.macs(all_rows)


def test_fisher_rule_gene_trains_the_tables_channels(kws):
    """A table with fisher entries (contrib --select magnitude,fisher): the rule's gene gives the explicit channels the
    table measured, which the trainer updates, at the memory of the same count chosen by magnitude."""
    from model_prep.simulate import Simulator
    from model_prep.sparse_train import SparseTrainer
    table = contrib.load(TABLE)
    ops = {op.name: op for op in Simulator.from_tflite(kws.tflite).ops}
    n_of = lambda layer: ops[layer].weights.shape[-1]   # noqa: E731
    last = lambda w: list(range(n_of(w["layer"]) - max(1, round(w["ratio"] * n_of(w["layer"]))), n_of(w["layer"])))  # noqa: E731
    fisher = [{**w, "select": "fisher", "delta": w["delta"] + 0.01, "channels": last(w)} for w in table["weight"]]
    sp = Space.from_contrib(kws.tflite, {**table, "weight": table["weight"] + fisher})
    assert sp.selects == ["magnitude", "fisher"] and sp.n_var == 2 + len(sp.layers)
    layer = "blocks.2.pw"
    x = np.zeros(sp.n_var, int)
    x[1 + sp.layers.index(layer)] = sp.options[layer].index((0.25, None, False))
    by_magnitude, x[-1] = x.copy(), 1
    (u,) = [u for u in sp.scheme(x).layers if u.layer == layer]
    want = next(w["channels"] for w in fisher if w["layer"] == layer and w["ratio"] == 0.25)
    assert u.weight.ratio is None and list(u.weight.channels) == want and want[-1] == n_of(layer) - 1
    assert list(SparseTrainer(kws.tflite, sp.scheme(x)).updates[layer].channels) == want
    assert sp.sram(x) == sp.sram(by_magnitude) and sp.gain(x) == pytest.approx(sp.gain(by_magnitude) + 0.01)
    assert "(fisher)" in sp.describe(x)


def test_own_bias_genes_train_the_biases_of_the_updated_layers(kws):
    """A table with the layers' own biases (contrib --layer-bias): a layer's gene offers its bias alone and each weight
    variant with its bias; the scheme trains that bias at the gain measured with it (the weights' own gain when the
    trailing biases hold it), step_gain is the gain a one-step decrement loses, and the repair and greedy path still
    fit the budget. A table without a variant's with-bias entry is refused."""
    table = contrib.load(TABLE)
    own = [{"layer": n, "accuracy": 0.5, "delta": 0.01 * (i + 1), "memory_bytes": 64, "macs_per_step": 0}
           for i, n in enumerate(dict.fromkeys(w["layer"] for w in table["weight"]))]
    with_bias = [{**w, "bias": True, "delta": w["delta"] + 0.02} for w in table["weight"]]
    sp = Space.from_contrib(kws.tflite, {**table, "weight": table["weight"] + with_bias, "layer_bias": own})
    with pytest.raises(ValueError, match="with its bias"):
        Space.from_contrib(kws.tflite, {**table, "weight": table["weight"] + with_bias[1:], "layer_bias": own})
    plain = Space.from_contrib(kws.tflite, table)
    layer = "blocks.1.pw"
    assert sp.n_var == plain.n_var and sp.options[layer][:4] == [None, (0.0, None, True), (0.125, None, False),
                                                                  (0.125, None, True)]
    assert len(sp.options[layer]) == 2 * len(plain.options[layer])
    i, x = 1 + sp.layers.index(layer), sp.classifier_only
    x[i] = sp.options[layer].index((0.25, None, True))
    (u,) = [u for u in sp.scheme(x).layers if u.layer == layer]
    assert u.bias and u.weight.ratio == 0.25
    delta = next(e["delta"] for e in own if e["layer"] == layer)
    without = _with(x, i, sp.options[layer].index((0.25, None, False)))
    assert sp.gain(x) == pytest.approx(sp.gain(without) + 0.02) and sp.gain(without) == plain.gain(
        _with(plain.classifier_only, i, plain.options[layer].index((0.25, None, False))))
    assert sp.sram(x) >= sp.sram(without)
    alone = _with(x, i, 1)
    (u,) = [u for u in sp.scheme(alone).layers if u.layer == layer]
    assert u.bias and u.weight.kind == "none" and sp.gain(alone) == pytest.approx(delta)
    assert "blocks.1.pw +bias" in sp.describe(alone) and "blocks.1.pw@0.25 +bias" in sp.describe(x)
    held = _with(x, 0, len(sp.ks) - 1)                      # every trailing bias: its own bias adds nothing more
    assert sp.gain(held) == pytest.approx(sp.bias_gain[sp.ks[-1]] + sp.gain(without))
    rng = np.random.default_rng(1)
    for _ in range(30):
        y = sp.random(rng)
        for g in range(1 + len(sp.layers)):
            if y[g]:
                assert sp.step_gain(y, g) == pytest.approx(sp.gain(y) - sp.gain(_with(y, g, y[g] - 1)))
    assert sp.best_gain() >= max(sp.gain(sp.random(rng)) for _ in range(50))
    budget = 48 * 1024
    repair = BudgetRepair(sp, budget)
    assert all(sp.sram(repair.fix(sp.random(rng))) <= budget for _ in range(5))
    assert all(sp.sram(g) <= budget for g in sp.greedy_path(budget))


def test_repair_keeps_every_candidate_within_the_budget(space):
    rng, budget = np.random.default_rng(0), 48 * 1024
    repair = BudgetRepair(space, budget)
    for _ in range(40):
        x = space.random(rng)
        fixed = repair.fix(x)
        assert space.sram(fixed) <= budget and (fixed <= x).all()
        if space.sram(x) <= budget:
            assert (fixed == x).all(), "a scheme that fits was changed"


def test_sparse_sampler_draws_schemes_of_every_size(space):
    rng = np.random.default_rng(0)
    uniform = np.array([space.random(rng) for _ in range(3000)])
    sparse = np.array([space.random_sparse(rng) for _ in range(3000)])
    assert (sparse >= 0).all() and (sparse <= space.upper).all()
    on = lambda X: (X > 0).mean(1)   # noqa: E731  share of genes switched on
    # uniform genes pile up around the middle; the sparse sampler covers small and large schemes alike
    assert on(sparse).std() > 2 * on(uniform).std()
    assert (on(sparse) <= 0.2).mean() > 0.15 and (on(uniform) <= 0.2).mean() < 0.05
    assert (on(sparse) == 1).any() and (on(sparse) == 0).any()
    with pytest.raises(ValueError, match="sampler"):
        random_search(space, 64 * 1024, 4, sampler="grid")


def test_greedy_path_climbs_the_gain_per_byte_within_the_budget(space):
    budget = 96 * 1024
    path = space.greedy_path(budget)
    assert (path[0] == space.classifier_only).all() and len(path) > 3
    for a, b in zip(path, path[1:]):   # one gene up per step, the predicted gain up, every scheme within the budget
        assert ((b - a) > 0).sum() == 1 and (b >= a).all()
        assert space.gain(b) > space.gain(a) and space.sram(b) <= budget
    end = path[-1]   # it ends where no single change that fits raises the predicted gain
    for i in range(1 + len(space.layers)):
        for v in range(end[i] + 1, space.upper[i] + 1):
            y = end.copy()
            y[i] = v
            assert space.gain(y) <= space.gain(end) or space.sram(y) > budget
    # the path's first change is the best gain per byte among all single changes that fit (costs taken alone)
    none, base = space.classifier_only, space.sram(space.classifier_only)
    def per_byte(i, v):
        y = none.copy()
        y[i] = v
        return space.gain(y) / max(space.sram(y) - base, 1) if space.sram(y) <= budget else -1
    first = max(((per_byte(i, v), i, v) for i in range(1 + len(space.layers)) for v in range(1, space.upper[i] + 1)))
    i, v = first[1:]
    assert path[1][i] == v
    seeds = greedy_seeds(space, budget, 4)
    assert len(seeds) == 4 and (seeds[0] == path[0]).all() and (seeds[-1] == end).all()
    assert (greedy(space, budget) == end).all() and (greedy(space, space.sram(none)) == none).all()


def test_searches_spend_exactly_their_evaluations_within_budget(space):
    budget = 64 * 1024
    ga = nsga2(space, budget, 72, seed=3, pop_size=12)
    again = nsga2(space, budget, 72, seed=3, pop_size=12)
    rs = random_search(space, budget, 72, seed=3)
    sparse = random_search(space, budget, 72, seed=3, sampler="sparse")
    single = single_ga(space, budget, 72, seed=3, pop_size=12, init="sparse")
    assert len(ga) == len(rs) == len(sparse) == len(single) == 72
    assert np.array_equal(np.array(ga.x), np.array(again.x)), "the same seed gave another search"
    assert np.array_equal(np.array(single.x), np.array(single_ga(space, budget, 72, seed=3, pop_size=12,
                                                                 init="sparse").x))
    # the greedy start: a quarter of the first generation is the greedy path, its end among them; init="sparse"
    # draws none of it (the first generation is random_sparse's)
    seeds = {tuple(x) for x in greedy_seeds(space, budget, 3)}
    assert seeds <= {tuple(x) for x in ga.x[:12]} and ga.best(budget) is not None
    assert space.gain(ga.best(budget)) >= space.gain(greedy(space, budget))
    unseeded = nsga2(space, budget, 72, seed=3, pop_size=12, init="sparse")
    assert not seeds <= {tuple(x) for x in unseeded.x[:12]}
    with pytest.raises(ValueError, match="init"):
        nsga2(space, budget, 12, init="knapsack")
    # one objective: its later generations climb the predicted gain above its first
    gains = -np.array(single.f)[:, 0]
    assert gains[12:].max() > gains[:12].max()
    for a in (ga, rs, sparse, single):
        F = np.array(a.f)
        assert (F[:, 1] <= budget).all()
        assert all(-f[0] == pytest.approx(space.gain(x)) for x, f in zip(a.x, a.f))
    first = {tuple(x) for x in ga.x[:12]}
    assert len(first) == 12, "duplicates in the first generation"
    best = ga.best(budget)
    assert -min(f[0] for f in ga.f) == pytest.approx(space.gain(best))
    front = ga.front()
    F = np.array(ga.f)
    for i in front:   # nothing dominates a front member
        assert not any((F[j] <= F[i]).all() and (F[j] < F[i]).any() for j in range(len(F)))


def test_search_run_writes_a_scheme_bake_accepts(kws, tmp_path):
    out = tmp_path / "scheme.json"
    r = subprocess.run([PY, "-m", "search.run", "--model", "dscnn", "--dataset", "kws", "--budget", "64KB",
                        "--tflite", kws.tflite, "--contrib", TABLE, "--evals", "48", "--out", out],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.with_suffix(".png").stat().st_size > 0 and "chosen:" in r.stdout
    scheme = fmt.load(out)
    plan = subprocess.run([PY, "-m", "model_prep.bake", "plan", kws.tflite, out, "--json"], cwd=ROOT,
                          capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["total_sram_bytes"] <= 64 * 1024 and len(scheme.layers) >= 1
    single = tmp_path / "single.json"   # Lin et al.'s single-objective search, the same budget and output
    r = subprocess.run([PY, "-m", "search.run", "--model", "dscnn", "--dataset", "kws", "--budget", "64KB",
                        "--tflite", kws.tflite, "--contrib", TABLE, "--evals", "48", "--search", "single-ga",
                        "--out", single], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    plan = subprocess.run([PY, "-m", "model_prep.bake", "plan", kws.tflite, single, "--json"], cwd=ROOT,
                          capture_output=True, text=True)
    assert json.loads(plan.stdout)["total_sram_bytes"] <= 64 * 1024
    for bad, says in ((["--budget", "lots"], "budget 'lots'"), (["--budget", "4KB"], "classifier alone"),
                      (["--budget", "64KB", "--contrib", tmp_path / "none.json"], "no contribution analysis")):
        args = ["--model", "dscnn", "--dataset", "kws", "--tflite", kws.tflite, "--contrib", TABLE] + bad
        r = subprocess.run([PY, "-m", "search.run", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode != 0 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_table_of_another_export_is_named_as_such(kws, tmp_path):
    """The gains belong to the weights they were measured on: search.run warns, search.bench refuses."""
    import hashlib
    table = contrib.load(TABLE)
    here = hashlib.sha256(kws.tflite.read_bytes()).hexdigest()
    assert contrib.model_mismatch({**table, "config": {**table["config"], "tflite_sha256": here}}, kws.tflite) is None
    other = {**table, "config": {**table["config"], "tflite_sha256": "0" * 64}}
    says = contrib.model_mismatch(other, kws.tflite)
    assert "000000000000" in says and here[:12] in says and "search.contrib --model dscnn --dataset kws" in says
    assert table["machine"] in says   # where the table came from: pre-training differs between CPUs
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    r = subprocess.run([PY, "-m", "search.run", "--model", "dscnn", "--dataset", "kws", "--budget", "64KB",
                        "--tflite", kws.tflite, "--contrib", path, "--evals", "24", "--out", tmp_path / "s.json"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "warning:" in r.stderr and "re-measure it" in r.stderr, r.stderr
    from search import bench
    task = tasks.Task("kws", "dscnn", False, kws.checkpoint, kws.tflite, kws.corpus)   # as if the full model
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks, "prepare", lambda *a, **k: task)
        with pytest.raises(SystemExit, match="search.bench: .*other.json: the contribution table .* re-measure"):
            bench.row_space("kws", "dscnn", False, path, "search.bench")
        same = tmp_path / "same.json"
        same.write_text(json.dumps({**table, "config": {**table["config"], "tflite_sha256": here}}))
        _, _, plain = bench.row_space("kws", "dscnn", False, same, "search.bench")
        _, _, lowered = bench.row_space("kws", "dscnn", False, same, "search.bench", shrink=True)   # --shrink
    sigma = contrib.entry_noise(table)
    assert sigma > 0 and plain.weight_gain.keys() == lowered.weight_gain.keys()
    assert all(lowered.weight_gain[k] == (max(v - sigma, 0.0) if v > 0 else v) for k, v in plain.weight_gain.items())


def test_search_run_verify_trains_the_front_and_keeps_the_best_on_validation(tmp_path):
    out = tmp_path / "scheme.json"
    r = subprocess.run([PY, "-m", "search.run", "--model", "dscnn", "--dataset", "kws", "--budget", "96KB",
                        "--contrib", TABLE, "--evals", "48", "--verify", "3", "--quick", "--out", out],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    verified = [line for line in r.stdout.splitlines() if line.strip().startswith("verified:")]
    assert len(verified) == 3
    acc = [float(line.rsplit("validation accuracy", 1)[1].strip(" %")) for line in verified]
    chosen = r.stdout.split("chosen: ", 1)[1].splitlines()[0]
    assert chosen == verified[int(np.argmax(acc))].split("verified: ", 1)[1].split(": predicted")[0]
    assert fmt.load(out).name == "dscnn-kws-96KiB"


def test_split_size_counts_what_device_data_reads(kws):
    task = tasks.Task("kws", "dscnn", True, kws.checkpoint, kws.tflite, kws.corpus)
    d = tasks.device_data(task)
    sizes = [tasks.split_size(task, s) for s in ("train", "val", "test")]
    assert sizes == [len(d.y_train), len(d.y_val), len(d.y_test)]
    assert tasks.split_size(task, "val", 5) == len(tasks.device_data(task, 0, 5).y_val) == 5


def test_dask_evaluations_are_cached(kws, tmp_path, space):
    from search.evaluate import Evaluator
    task = tasks.Task("kws", "dscnn", True, kws.checkpoint, kws.tflite, kws.corpus)
    schemes = [space.scheme(space.classifier_only), space.scheme(np.r_[1, np.zeros(space.n_var - 1, int)])]
    cfg = contrib.Config(train=24, test=24)
    progress = []
    with Evaluator(task, cfg, workers=2, work=tmp_path, progress=progress.append) as ev:
        acc = ev.accuracy(schemes, split="val")
        assert ev._client is not None and all(0 <= a <= 1 for a in acc)
    assert len(progress) == 2 and progress[-1].startswith("dscnn/kws val: 2/2 trained (scheme "), progress
    lines = sum(len(p.read_text().splitlines()) for p in tmp_path.glob("*.jsonl"))
    with Evaluator(task, cfg, workers=2, work=tmp_path, progress=progress.append) as ev:
        assert ev.accuracy(schemes, split="val") == acc
        assert ev._client is None, "a cached evaluation started a cluster"
    assert len(progress) == 2, "a cached evaluation reported training"
    assert sum(len(p.read_text().splitlines()) for p in tmp_path.glob("*.jsonl")) == lines
    with Evaluator(task, cfg, workers=2, work=tmp_path) as ev:   # a second seed trains only the new seed
        per_seed = ev.per_seed(schemes, split="val", seeds=2)
        assert [a[0] for a in per_seed] == acc and all(len(a) == 2 for a in per_seed)
        assert ev.accuracy(schemes, split="val", seeds=2) == [float(np.mean(a)) for a in per_seed]
    assert sum(len(p.read_text().splitlines()) for p in tmp_path.glob("*.jsonl")) == lines + len(schemes)


def test_quick_seed_noise_retrains_the_bench_schemes_with_more_seeds(tmp_path):
    out = tmp_path / "seed_noise.json"
    r = subprocess.run([PY, "-m", "search.seed_noise", "--quick", "--out", out], cwd=ROOT, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(out.read_text())
    assert d["commit"] and d["quick"] and out.with_suffix(".png").stat().st_size > 0
    (row,) = d["rows"]
    assert (row["model"], row["task"], row["budgets_bytes"], row["training_seeds"]) == ("dscnn", "kws", [128 * 1024], 2)
    acc = np.asarray(row["accuracy"])
    assert acc.shape == (row["schemes"], 2) and row["schemes"] >= 2 and ((0 <= acc) & (acc <= 1)).all()
    assert row["describe"][0] == "0 biases" and row["predicted_gain"][0] == 0   # the classifier alone first
    assert max(row["sram_bytes"]) <= 128 * 1024 and 0 < row["validation_samples"] <= 64
    assert row["pooled_seed_std"] == pytest.approx(float(np.sqrt(np.mean(acc.std(1, ddof=1) ** 2))))
    assert set(row["picks"]) == {"ga@128KiB", "random@128KiB"} and 0 <= row["picks_agree"] <= 2
    for args, says in ((["--seeds", "1"], "at least 2"), (["--row", "digits/resnet"], "no task 'digits/resnet'"),
                       (["--row", "kws/dscnn@lots"], "budgets must be KiB integers")):
        bad = subprocess.run([PY, "-m", "search.seed_noise", *args], cwd=ROOT, capture_output=True, text=True)
        assert bad.returncode != 0 and bad.stderr.startswith("search.seed_noise: ") and says in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


def test_quick_benchmark_writes_the_comparison(tmp_path):
    out = tmp_path / "search.json"
    r = subprocess.run([PY, "-m", "search.bench", "--quick", "--train-seeds", "2", "--out", out,
                        "--evaluations", tmp_path / "evaluations"],   # trains: the progress lines below
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(out.read_text())
    assert d["commit"] and d["quick"] and out.with_suffix(".png").stat().st_size > 0
    (row,) = d["rows"]
    assert (row["model"], row["task"], row["budget_bytes"], row["seeds"]) == ("dscnn", "kws", 128 * 1024, 2)
    assert row["training_seeds"] == 2   # every real evaluation the mean of two training runs
    assert 0 < row["ga_evals_to_random_final_hv_fraction"] <= 1
    assert 0 < row["ga_evals_to_random_sparse_final_hv_fraction"] <= 1
    assert set(row["best_acc"]) == {"ga", "random", "random_sparse", "single_ga", "greedy", "tinytrain", "paper_rule"}
    assert row["init"] == "greedy" and row["predicted_gain"]["ga"] >= row["predicted_gain"]["greedy"] - 1e-12
    assert all(v is None or 0 <= v <= 1 for v in row["best_acc"].values())
    assert 0 < row["test_samples"] <= 64 and all(len(v) == 2 for v in row["best_acc_per_seed"].values())
    assert row["ga_minus"]["random"]["mean"] == pytest.approx(row["best_acc"]["ga"] - row["best_acc"]["random"])
    assert len(row["hv"]["ga_mean"]) == len(row["hv_evals"]) == row["evals"] // 12
    assert row["sram_bytes"]["ga"] <= 128 * 1024 and row["additivity"]["n"] >= 2
    a = row["additivity"]   # the measured schemes' genomes travel with their gains
    assert len(a["genomes"]) == len(a["measured"]) == a["n"] and a["genes"][0] == "biases"
    assert all(len(g) == len(a["genes"]) for g in a["genomes"])
    # every pick on validation too: a search's is the best of its verified schemes there
    assert set(row["val_acc"]) == set(row["best_acc"]) and all(len(v) == 2 for v in row["val_acc_per_seed"].values())
    assert row["val_acc"]["ga"] == pytest.approx(sum(row["val_acc_per_seed"]["ga"]) / 2)
    assert 0 <= row["val_acc"]["tinytrain"] <= 1 and 2 <= row["val_test"]["n"] <= 4 * 2 + 3
    assert row["run"] == {k: d[k] for k in ("commit", "date", "machine", "command")}
    assert "dscnn/kws test: " in r.stderr and " min left)" in r.stderr and "searching, seed 1" in r.stderr   # progress
    assert "trained (scheme" not in r.stdout   # stdout keeps the table
    assert d["pooled"] == {"random": None, "random_sparse": None, "single_ga": None}   # one row: nothing to pool


def test_bench_update_replaces_its_rows_and_keeps_the_others(tmp_path):
    from search.bench import merged, update_clash
    row = lambda budget, **kw: {"model": "mcunet", "task": "kws", "budget_bytes": budget * 1024, **kw}   # noqa: E731
    old = {"commit": "aaa", "date": "d0", "machine": "m", "command": "python -m search.bench --row kws/mcunet",
           "rows": [row(64, v=0), row(128, v=0)]}
    run = {"commit": "bbb", "date": "d1", "machine": "m", "command": "python -m search.bench --row kws/mcunet@128,256"}
    rows = merged(old, [row(256, v=1, run=run), row(128, v=1, run=run)])
    assert [(r["budget_bytes"] // 1024, r["v"], r["run"]["commit"]) for r in rows] == [
        (64, 0, "aaa"), (128, 1, "bbb"), (256, 1, "bbb")]   # the old row keeps the record of the run behind it
    dscnn = {"model": "dscnn", "task": "kws", "budget_bytes": 96 * 1024, "v": 2}   # a budget run later: in its place
    rows = merged({**old, "rows": rows + [{**dscnn, "budget_bytes": 64 * 1024}]}, [row(96, v=2), dscnn])
    assert [(r["model"], r["budget_bytes"] // 1024) for r in rows] == [
        ("mcunet", 64), ("mcunet", 96), ("mcunet", 128), ("mcunet", 256), ("dscnn", 64), ("dscnn", 96)]
    # rows from before --init were searched from Space.random_sparse alone
    assert update_clash(old, False, 1, False, "sparse") is None and update_clash({"rows": []}, True, 3, True) is None
    for args, says in (((False, 3, False, "sparse"), "1 training seed.* this run with 3"),
                       ((True, 1, False, "sparse"), "with --shrink"),
                       ((False, 1, True, "sparse"), "this run with --quick"),
                       ((False, 1, False, "greedy"), "--init sparse, this run with .*--init greedy")):
        assert re.search(f"its rows were run with .*{says}", update_clash(old, *args))
    out = tmp_path / "shrunk.json"   # the command refuses before it searches anything
    out.write_text(json.dumps({**old, "rows": [row(64, gain_noise_shrink=0.013)]}))
    bad = subprocess.run([PY, "-m", "search.bench", "--quick", "--update", "--out", out], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and bad.stderr.startswith(f"search.bench: --update {out}: its rows were run with")
    assert len(bad.stderr.strip().splitlines()) == 1
    out.write_text("[1, 2]")
    bad = subprocess.run([PY, "-m", "search.bench", "--quick", "--update", "--out", out], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and bad.stderr == f"search.bench: --update {out}: not a search.bench result " \
        '(JSON with a "rows" list)\n'


def test_pooled_difference_takes_each_row_as_one_unit():
    from scipy.stats import t
    from search.bench import pooled
    row = lambda ga, rnd: {"ga_minus": {"random": {"mean": np.mean(np.subtract(ga, rnd))}}}   # noqa: E731
    rows = [row([0.8, 0.7], [0.7, 0.7]), row([0.5, 0.5, 0.5], [0.6, 0.5, 0.4]), row([0.6], [0.64])]
    p = pooled(rows)
    means = [0.05, 0.0, -0.04]   # each row's paired mean, whatever its number of seeds
    sem = (sum((m - 0.01 / 3) ** 2 for m in means) / 2) ** 0.5 / 3 ** 0.5
    assert p["rows"] == 3 and p["rows_at_least_as_accurate"] == 2
    assert p["mean"] == pytest.approx(0.01 / 3) and p["sem"] == pytest.approx(sem)
    assert p["lower_bound"] == pytest.approx(0.01 / 3 - t.ppf(0.95, 2) * sem)
    assert pooled(rows[:1]) is None and pooled(rows, "single_ga") is None   # fewer than two rows ran both
    tie = {"ga_minus": {"random": {"mean": -2.2e-17}}}   # equal picks, float noise of averaged training runs
    assert pooled([tie, tie])["rows_at_least_as_accurate"] == 2


def test_bench_rows_name_their_budgets():
    from search.bench import BUDGETS, parse_row
    assert parse_row("kws/mcunet@128,256", BUDGETS) == ("kws", "mcunet", (128 * 1024, 256 * 1024))
    assert parse_row("kws/dscnn", BUDGETS) == ("kws", "dscnn", BUDGETS)
    for bad in ("kws", "kws/dscnn@big"):
        with pytest.raises(SystemExit, match="--row"):
            parse_row(bad, BUDGETS)


def test_quick_init_benchmark_compares_the_starts(tmp_path):
    out = tmp_path / "search_init.json"
    r = subprocess.run([PY, "-m", "search.bench_init", "--quick", "--out", out], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(out.read_text())
    assert d["commit"] and d["quick"] and out.with_suffix(".png").stat().st_size > 0
    (row,) = d["rows"]
    assert (row["model"], row["task"], row["budget_bytes"], row["seeds"]) == ("dscnn", "kws", 128 * 1024, 2)
    g = row["predicted_gain"]
    assert set(g) == {"greedy", "ga_greedy", "ga_sparse", "single_greedy", "single_sparse", "random", "random_sparse"}
    # the greedy pick is in the greedy start's first generation: neither GA started there ends below it, seed by seed
    for m in ("ga_greedy", "single_greedy"):
        assert min(row["predicted_gain_per_seed"][m]) >= g["greedy"] - 1e-12
    assert all(0 < f <= 1 for v in row["hv_fraction_per_seed"].values() for f in v)
    assert "best predicted gain" in r.stdout
    # --update: a second run's row joins the file, the first run's row keeps its own run record
    r = subprocess.run([PY, "-m", "search.bench_init", "--quick", "--row", "kws/dscnn@64", "--update", "--out", out],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    both = json.loads(out.read_text())["rows"]
    assert [x["budget_bytes"] for x in both] == [64 * 1024, 128 * 1024] and both[1] == row
    assert both[0]["run"]["command"].endswith("--update --out " + str(out))


def test_init_benchmark_update_refuses_other_results(tmp_path):
    out = tmp_path / "search_init.json"
    for text, why in (("[1, 2]", "not a search.bench_init result"),
                      ('{"quick": false, "rows": []}', "its rows were run without --quick, this run with")):
        out.write_text(text)
        r = subprocess.run([PY, "-m", "search.bench_init", "--quick", "--update", "--out", out], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and r.stderr.startswith(f"search.bench_init: --update {out}: {why}"), r.stderr
        assert out.read_text() == text


def test_fraction_to_reach_counts_the_evaluations_until_the_target():
    from search.bench import fraction_to_reach
    curve = [0.1, 0.4, 0.4, 0.7]   # after 24, 48, 72, 96 of 96 evaluations
    assert fraction_to_reach(curve, 0.4, 24, 96) == 0.5 and fraction_to_reach(curve, 0.1, 24, 96) == 0.25
    assert fraction_to_reach(curve, 0.8, 24, 96) == 1.0   # never reached


def test_tinytrain_ablation_variants_change_one_part():
    """search.tinytrain_ablation's variants: TinyTrain's layers with channels by another rule (the same counts, the
    same planner bytes), without their weights, or without their biases; the classifier untouched."""
    from model_prep.simulate import Simulator
    from search import baselines, tasks
    from search.tinytrain_ablation import VARIANTS, variants
    task = tasks.prepare("kws", "dscnn", quick=True)   # the quick benchmarks' task
    sim, data = Simulator.from_tflite(task.tflite), tasks.device_data(task, 64, 64)
    plan_of = lambda s: TrainingPlan(sim, s).sram_bytes()   # noqa: E731
    tiny = baselines.tinytrain(sim, data.q_train[:32], data.y_train[:32], 96 * 1024, model="dscnn", memory_of=plan_of)
    v = variants(tiny, "classifier")
    assert list(v) == list(VARIANTS) and v["tinytrain"] is tiny
    layers = lambda s: {u.layer: u for u in s.layers}   # noqa: E731
    picked = [n for n in layers(tiny) if n != "classifier"]
    assert picked and all(set(layers(s)) == set(layers(tiny)) for s in v.values())
    for name in ("magnitude", "random"):
        for n in picked:
            u = layers(v[name])[n]
            assert (u.bias, u.weight.kind, u.weight.ratio, u.weight.select) == (True, "channels", 0.25, name)
        assert plan_of(v[name]) == plan_of(tiny)
    assert all(layers(v["biases_only"])[n].bias and layers(v["biases_only"])[n].weight.kind == "none" for n in picked)
    assert all(not layers(v["weights_only"])[n].bias and layers(v["weights_only"])[n].weight == layers(tiny)[n].weight
               for n in picked)
    assert all(layers(s)["classifier"] == layers(tiny)["classifier"] for s in v.values())
    assert plan_of(v["biases_only"]) < plan_of(tiny)


def test_quick_tinytrain_ablation_writes_its_table(tmp_path):
    out = tmp_path / "tinytrain_ablation.json"
    r = subprocess.run([PY, "-m", "search.tinytrain_ablation", "--quick", "--out", out, "--evaluations",
                        tmp_path / "evaluations"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(out.read_text())
    assert d["commit"] and d["quick"] and out.with_suffix(".png").stat().st_size > 0
    (row,) = d["rows"]
    assert (row["model"], row["task"], row["budget_bytes"], row["training_seeds"]) == ("dscnn", "kws", 128 * 1024, 1)
    for split in ("val", "test"):
        assert set(row[f"{split}_acc"]) == {"tinytrain", "magnitude", "random", "biases_only", "weights_only"}
        assert all(0 <= a <= 1 and [a] == row[f"{split}_acc_per_seed"][v] for v, a in row[f"{split}_acc"].items())
    assert row["layers"] and max(row["sram_bytes"].values()) <= 128 * 1024
    assert "channels by magnitude" in r.stdout and "TinyTrain picks" in r.stdout
