"""search.gain_refit: the additive gain model refitted on the bench's training runs, and how it is scored."""
import json
import subprocess

import numpy as np
import pytest

from search import gain_refit
from search.bench import correlation

from conftest import PY, ROOT


def additive(X, values):
    """Sum over genes of values[g][level] (level 0 worth 0)."""
    return np.array([sum(values[g][v] for g, v in enumerate(x)) for x in X])


def test_refit_learns_entries_the_table_got_wrong():
    rng = np.random.default_rng(0)
    levels = np.array([3, 4, 2, 4, 3, 2])
    X = np.array([[rng.integers(0, top + 1) for top in levels] for _ in range(160)])
    # the table measured every entry alone; trained together, the entries are worth other amounts
    table = [np.concatenate([[0], np.sort(rng.uniform(0, 0.05, top))]) for top in levels]
    truth = [t * f for t, f in zip(table, [0.0, 3.0, 1.0, 0.2, 2.0, 0.5])]
    p, y = additive(X, table), additive(X, truth)
    model = gain_refit.fit(X[:120], p[:120], y[:120], levels, lam=0.1)
    held_out = model(X[120:], p[120:])
    assert correlation(held_out, y[120:]) > 0.98 > correlation(p[120:], y[120:]) + 0.1
    # measured exactly as the table says: the refit is the table
    same = gain_refit.fit(X, p, p, levels, lam=1.0)
    assert np.allclose(same(X, p), p)


def test_leaving_a_budget_out_drops_every_scheme_verified_there():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 3, (30, 4))
    points = {}
    for i, x in enumerate(X):
        budgets = {64} if i < 10 else {128} if i < 20 else {64, 128}   # the last ten verified at both
        points[tuple(int(v) for v in x)] = [budgets, float(x.sum()) / 10, float(x @ [1, 2, 0, 1]) / 10]
    r = gain_refit.model_refit(points, lam=1.0)
    by = {b["budget_bytes"]: b for b in r["budgets"]}
    n64 = sum(64 in v[0] for v in points.values())
    n128 = sum(128 in v[0] for v in points.values())
    assert by[64]["schemes"] == n64 and by[64]["lobo_fit_schemes"] == len(points) - n64
    assert by[128]["schemes"] == n128 and by[128]["lobo_fit_schemes"] == len(points) - n128
    assert r["schemes"] == len(points)
    assert all(b[k] is None or -1 <= b[k] <= 1 for b in r["budgets"] for k in ("table_r", "loo_r", "lobo_r"))


def test_cli_on_the_committed_shrink_bench(tmp_path):
    out = tmp_path / "refit.json"
    p = subprocess.run([PY, "-m", "search.gain_refit", "--quick", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    d = json.loads(out.read_text())
    bench = json.loads((ROOT / "results" / "search_shrink.json").read_text())
    assert {(r["model"], r["task"]) for r in d["rows"]} == {(r["model"], r["task"]) for r in bench["rows"]}
    for r in d["rows"]:
        mine = [b for b in bench["rows"] if (b["model"], b["task"]) == (r["model"], r["task"])]
        assert [b["budget_bytes"] for b in r["budgets"]] == sorted(b["budget_bytes"] for b in mine)
        assert r["lambda"] == 10.0 and r["schemes"] <= sum(b["additivity"]["n"] for b in mine)
    assert out.with_suffix(".png").is_file() and d["commit"] and d["bench"] == "results/search_shrink.json"
    assert "leave one budget out" in p.stdout


@pytest.mark.parametrize("text, says", [("not json", "not a readable search.bench result"),
                                        ('{"rows": [{"model": "m", "task": "t", "budget_bytes": 65536, '
                                         '"additivity": {"n": 3}}]}', "rows without additivity.genomes (m/t 64 KiB)")])
def test_cli_names_a_result_it_cannot_use(tmp_path, text, says):
    bad = tmp_path / "bench.json"
    bad.write_text(text)
    p = subprocess.run([PY, "-m", "search.gain_refit", "--bench", str(bad), "--out", str(tmp_path / "o.json")],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode != 0 and says in p.stderr and str(bad) in p.stderr
    assert not (tmp_path / "o.json").exists()
