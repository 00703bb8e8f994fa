"""README.md's measured-results tables are generated from results/: the committed README must be what they give."""
import shutil
import subprocess

from conftest import PY, ROOT


def test_committed_readme_matches_results():
    r = subprocess.run([PY, "scripts/readme_results.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_check_catches_a_stale_table(tmp_path):
    # a copy of the script, README and results, one figure edited: --check must refuse, then regenerate fixes it
    for part in ("scripts", "results"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("evaluations", "*.png"))
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    for part in ("model_prep", "search", "host_tools"):
        (tmp_path / part).symlink_to(ROOT / part)
    demo = tmp_path / "results" / "kws_demo.json"
    demo.write_text(demo.read_text().replace('"flash_bytes": ', '"flash_bytes": 1', 1))
    stale = subprocess.run([PY, "scripts/readme_results.py", "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert stale.returncode != 0 and "README.md is not what results/ give" in stale.stderr
    assert "Traceback" not in stale.stderr
    subprocess.run([PY, "scripts/readme_results.py"], cwd=tmp_path, check=True, capture_output=True)
    again = subprocess.run([PY, "scripts/readme_results.py", "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_selection_rules_are_compared_entry_by_entry():
    import runpy
    rules_lines = runpy.run_path(str(ROOT / "scripts" / "readme_results.py"))["rules_lines"]
    w = lambda layer, ratio, select, delta: {"layer": layer, "ratio": ratio, "select": select, "delta": delta}  # noqa: E731
    weights = [w("a", 0.5, "magnitude", 0.02), w("b", 0.5, "magnitude", 0.04),
               w("a", 0.5, "fisher", 0.03), w("b", 0.5, "fisher", 0.04)]
    lines = rules_lines(weights)
    assert lines[3] == "| magnitude | +3.00 | +4.0 | — |"
    assert lines[4] == "| fisher | +3.50 | +4.0 | 1 of 2 / 1 |"
    assert rules_lines(weights[:2]) == []   # one rule: nothing to compare


def test_own_bias_entries_equal_up_to_float_noise_count_as_equal():
    import runpy
    own_bias_lines = runpy.run_path(str(ROOT / "scripts" / "readme_results.py"))["own_bias_lines"]
    w = lambda delta, bias, layer="a": {"layer": layer, "ratio": 0.5, "select": "magnitude", "delta": delta,  # noqa: E731
                                        **({"bias": True} if bias else {})}
    # the same three accuracies averaged in another order: 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1 in floats
    table = {"layer_bias": [{"layer": "a", "delta": -0.01}, {"layer": "b", "delta": 0.02}],
             "weight": [w((0.1 + 0.2 + 0.3) / 3, False), w((0.3 + 0.2 + 0.1) / 3, True),
                        w(0.01, False, "b"), w(0.03, True, "b")]}
    assert (0.1 + 0.2 + 0.3) != (0.3 + 0.2 + 0.1)
    line = own_bias_lines(table)[1]
    assert "2 measured, mean Δ +0.50 pp, above zero on 1 (best b +2.0, a -1.0)" in line
    assert line.endswith("2 entries, mean Δ +11.50 pp against +10.50 without the bias, above on 1, equal on 1.")
    assert own_bias_lines({"weight": []}) == []


def test_at_a_glance_lists_every_search_row_with_its_own_table():
    import runpy
    at_a_glance = runpy.run_path(str(ROOT / "scripts" / "readme_results.py"))["at_a_glance"]

    def row(model, frac, ga, random, tinytrain, run=None, **more):
        return {"model": model, "task": "kws", "budget_bytes": 131072, "ga_evals_to_random_final_hv_fraction": frac,
                "best_acc": {"ga": ga, "random": random, "tinytrain": tinytrain},
                "ga_minus": {"random": {"mean": ga - random, "sem": 0.01}}, **({"run": run} if run else {}), **more}

    updated = {"command": "python -m search.bench --row kws/mcunet --contrib results/contrib-b.json --update"}
    results = {
        "search_x.json": {"command": "python -m search.bench --contrib results/contrib-a.json",
                          "rows": [row("dscnn", 0.05, 0.80, 0.78, 0.81, init="greedy", training_seeds=3),
                                   row("mcunet", 0.25, 0.70, 0.72, 0.69, run=updated, gain_noise_shrink=0.01)]},
        "seed_noise.json": {"rows": [{"model": "dscnn"}]},   # not a search file: left out
    }
    lines = at_a_glance(results).splitlines()
    body = [x for x in lines if x.startswith("| `")]
    assert body == [
        "| `search_x.json` | `contrib-a` | greedy | 3 | dscnn | kws | 128 KiB | 5 % | 80.0 | 78.0 | +2.0 ± 1.0 | 81.0 "
        "| -1.0 |",
        "| `search_x.json` | `contrib-b`, `--shrink` | sparse | 1 | mcunet | kws | 128 KiB | 25 % | 70.0 | 72.0 "
        "| -2.0 ± 1.0 | 69.0 | +1.0 |"]
    assert lines[-1].startswith("Over these 2 rows") and lines[-1].endswith(
        "the hypervolume goal is met on 1; NSGA-II's pick is at least as accurate as uniform random search's "
        "(paired mean over seeds) on 1, and as TinyTrain's on 1.")
    assert at_a_glance({"seed_noise.json": {"rows": []}}) is None
