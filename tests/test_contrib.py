"""search.contrib: the contribution analysis writes a valid odt-contrib/1 file, resumes from its cache
without training, survives a truncated cache line and rejects bad input with one line."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from model_prep.sparse_train import SparseTrainer
from search import contrib

from conftest import PY, ROOT, run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cli_args(task, work, *extra):
    """A tiny analysis: 8 train / 8 test samples (one step), k = 1, 27, 52 (--quick), the last layer at 1/2 and 1."""
    return ["--model", task.model, "--dataset", task.dataset, "--quick", "--tasks-work", str(task.tflite.parent),
            "--train", "8", "--test", "8", "--layers", "last:1", "--ratios", "1/2,1", "--work", str(work),
            "--out", str(work / "out.json"), *extra]


@pytest.fixture(scope="module")
def first_run(digits_task, tmp_path_factory):
    work = tmp_path_factory.mktemp("contrib")
    r = run(PY, "-m", "search.contrib", *cli_args(digits_task, work))
    return work, r.stdout


def count_fits(monkeypatch):
    calls, fit = [], SparseTrainer.fit

    def counted(self, *a, **k):
        calls.append(1)
        return fit(self, *a, **k)

    monkeypatch.setattr(SparseTrainer, "fit", counted)
    return calls


def test_cli_writes_the_analysis(first_run):
    work, out = first_run
    d = contrib.load(work / "out.json")
    assert (work / "out.png").stat().st_size > 0
    assert d["model"] == "mobilenetv2-w0.35" and d["dataset"] == "digits" and d["commit"]
    assert [e["k"] for e in d["bias"]] == [1, 27, 52] and d["config"]["bias_base"] == 52
    assert [len(e["layers"]) for e in d["bias"]] == [1, 27, 52] and d["bias"][0]["layers"] == ["head"]
    assert [(e["layer"], e["ratio"]) for e in d["weight"]] == [("head", 0.5), ("head", 1.0)]
    for e in d["bias"]:
        assert e["delta"] == pytest.approx(e["accuracy"] - d["classifier_only"])
    for e in d["weight"]:
        assert e["delta"] == pytest.approx(e["accuracy"] - d["bias_only"])
    for e in d["bias"] + d["weight"]:
        assert len(e["delta_per_seed"]) == d["config"]["seeds"]
        assert np.mean(e["delta_per_seed"]) == pytest.approx(e["delta"])
    assert d["bias"][-1]["accuracy"] == d["bias_only"]          # bias k=K is the bias-only scheme
    memory = [e["memory_bytes"] for e in d["bias"] + d["weight"]]
    macs = [e["macs_per_step"] for e in d["bias"] + d["weight"]]
    assert memory == sorted(memory) and macs[:3] == sorted(macs[:3]) and min(macs[3:]) > macs[2]
    assert "[6/6] weight head r=1" in out and "ETA" in out and "wrote" in out
    assert out.count("\n") < 40                                  # one line per measurement, a compact table


def test_rerun_resumes_without_training(first_run, monkeypatch, capsys, digits_task):
    work, _ = first_run
    before = contrib.load(work / "out.json")
    calls = count_fits(monkeypatch)
    again = contrib.main(cli_args(digits_task, work))
    assert calls == [] and capsys.readouterr().out.count("(cached)") == 6
    assert [e["accuracy"] for e in again["bias"] + again["weight"]] == \
        [e["accuracy"] for e in before["bias"] + before["weight"]]


def test_more_ratios_train_only_what_is_new(first_run, monkeypatch, tmp_path, digits_task):
    work = tmp_path / "w"
    shutil.copytree(first_run[0], work)
    calls = count_fits(monkeypatch)
    d = contrib.main(cli_args(digits_task, work, "--ratios", "1/4,1/2,1"))
    assert len(calls) == 1 and [e["ratio"] for e in d["weight"]] == [0.25, 0.5, 1.0]


def test_a_truncated_cache_line_is_ignored(first_run, monkeypatch, capsys, tmp_path, digits_task):
    work = tmp_path / "w"
    shutil.copytree(first_run[0], work)
    cache = next(work.glob("*.jsonl"))
    cache.write_text(cache.read_text()[:-25])                  # killed while writing the last measurement
    calls = count_fits(monkeypatch)
    contrib.main(cli_args(digits_task, work))
    assert len(calls) == 1 and "skipped 1 unreadable line" in capsys.readouterr().out
    contrib.main(cli_args(digits_task, work))
    assert len(calls) == 1                                      # the redone measurement was stored on its own line
    assert all(json.loads(line) for line in cache.read_text().splitlines()[-1:])


def test_fisher_rule_measures_tinytrains_channels(first_run, monkeypatch, tmp_path, digits_task):
    """--select magnitude,fisher: the fisher entries train, and record as explicit indices, the channels of largest
    Fisher information on the first FISHER_SAMPLES train samples; the magnitude entries come from the cache."""
    from model_prep.simulate import Simulator
    from search import baselines, tasks
    work = tmp_path / "w"
    shutil.copytree(first_run[0], work)
    before = contrib.load(work / "out.json")
    calls = count_fits(monkeypatch)
    d = contrib.main(cli_args(digits_task, work, "--select", "magnitude,fisher"))
    assert len(calls) == 2                                    # head at 1/2 and 1, the fisher way
    fisher = [e for e in d["weight"] if e["select"] == "fisher"]
    assert [(e["layer"], e["ratio"]) for e in fisher] == [("head", 0.5), ("head", 1.0)]
    assert [e for e in d["weight"] if e["select"] == "magnitude"] == before["weight"]
    data = tasks.device_data(digits_task, 8, 8, seed=0)
    sim = Simulator.from_tflite(digits_task.tflite)
    potentials = baselines.fisher_potentials(sim, data.q_train, data.y_train)
    n = len(potentials["head"])
    assert d["config"]["fisher_samples"] == 8 and d["config"]["selects"] == ["magnitude", "fisher"]
    assert fisher[0]["channels"] == baselines.top_channels(potentials["head"], 0.5)
    assert len(fisher[0]["channels"]) == n // 2
    assert fisher[1]["channels"] == list(range(n))
    assert fisher[0]["memory_bytes"] == next(e["memory_bytes"] for e in before["weight"] if e["ratio"] == 0.5)


def test_layer_bias_measures_each_weight_layers_own_bias(first_run, monkeypatch, capsys, tmp_path, digits_task):
    """--layer-bias: each weight layer whose bias the base lacks gets its own bias measured on the bias-only base, alone
    and with each of its weight entries; on Lin et al.'s base (every bias) there is none to measure."""
    work = tmp_path / "w"
    shutil.copytree(first_run[0], work)
    calls = count_fits(monkeypatch)
    d = contrib.main(cli_args(digits_task, work, "--layer-bias"))
    assert calls == [] and d["layer_bias"] == [] and d["config"]["layer_bias"] is True
    assert not any(e.get("bias") for e in d["weight"])
    d = contrib.main(cli_args(digits_task, work, "--layer-bias", "--bias-base", "0"))
    assert len(calls) == 4          # head at 1/2 and 1 on the classifier alone, then with its bias; its bias alone is
    with_bias = [e for e in d["weight"] if e.get("bias")]                  # the bias curve's k = 1, cached
    assert [(e["layer"], e["ratio"]) for e in with_bias] == [("head", 0.5), ("head", 1.0)]
    assert all(e["delta"] == pytest.approx(e["accuracy"] - d["bias_only"]) for e in with_bias)
    assert [e["memory_bytes"] for e in with_bias] > [e["memory_bytes"] for e in d["weight"] if not e.get("bias")]
    (own,) = d["layer_bias"]
    assert own["layer"] == "head" and own["delta"] == pytest.approx(own["accuracy"] - d["bias_only"])
    assert d["bias_only"] == d["classifier_only"]
    assert own["accuracy"] == d["bias"][0]["accuracy"]      # head's own bias is the bias curve's k = 1
    assert own["memory_bytes"] == d["bias"][0]["memory_bytes"]
    assert contrib.load(work / "out.json")["layer_bias"] == d["layer_bias"]
    capsys.readouterr()
    contrib.table(d)
    assert "own biases (top 1 by Δ)" in capsys.readouterr().out


@pytest.mark.parametrize("change,says", [
    (["--model", "resnet50"], "no task for dataset 'digits' with model 'resnet50'"),
    (["--dataset", "cifar"], "no task for dataset 'cifar'"),
    (["--ratios", "0.3"], "ratio 0.3; expected some of 1/8, 1/4, 1/2, 1"),
])
def test_bad_input_is_one_line_and_fails(change, says, tmp_path, digits_task):
    args = cli_args(digits_task, tmp_path)
    for i in range(0, len(change), 2):
        args[args.index(change[i]) + 1] = change[i + 1]
    r = subprocess.run([PY, "-m", "search.contrib", *args], check=False, cwd=ROOT, capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith("contrib: ") and says in lines[0]


def test_unknown_layer_is_one_line(tmp_path, digits_task):
    with pytest.raises(SystemExit, match="contrib: --layers: no trainable layer 'blocks.99.pw'"):
        contrib.main(cli_args(digits_task, tmp_path, "--layers", "blocks.99.pw"))


def test_helpers_and_loader(tmp_path):
    assert contrib.k_values(52, 26) == [1, 27, 52] and contrib.k_values(3, 1) == [1, 2, 3]
    assert contrib.parse_ratios("1/8, 0.5,1") == (0.125, 0.5, 1.0)
    (tmp_path / "s.json").write_text(json.dumps({"format": "odt-scheme/1"}))
    with pytest.raises(contrib.ContribError, match="not a contribution analysis"):
        contrib.load(tmp_path / "s.json")
    (tmp_path / "c.json").write_text(json.dumps({"format": contrib.FORMAT, "model": "m", "bias": [{"k": 1}]}))
    with pytest.raises(contrib.ContribError, match="missing .*bias_only"):
        contrib.load(tmp_path / "c.json")


def test_entry_noise_and_the_shrunk_gains():
    """σ of one Δ: from the seeds' spread when there are several, else from the negative Δs; shrunk lowers
    the positive Δs by it (to zero at most) and leaves the rest."""
    def e(delta, per_seed=None):
        return {"delta": delta, "delta_per_seed": per_seed or [delta]}
    seeded = {"bias": [e(0.02, [0.01, 0.03])], "weight": [e(0.0, [-0.01, 0.01]), e(0.05, [0.04, 0.06])]}
    assert contrib.entry_noise(seeded) == pytest.approx(np.sqrt(2e-4) / np.sqrt(2))   # every variance 2e-4
    one_seed = {"bias": [e(0.1)], "weight": [e(-0.01), e(-0.03), e(-0.02), e(0.04)]}
    assert contrib.entry_noise(one_seed) == pytest.approx(0.02 / 0.6745)   # median |negative Δ| / 0.6745
    assert contrib.entry_noise({"bias": [e(0.1)], "weight": [e(0.2)]}) == 0.0
    s = contrib.shrunk(one_seed, 0.05)
    assert [w["delta"] for w in s["weight"]] == [-0.01, -0.03, -0.02, 0.0]
    assert s["bias"][0]["delta"] == pytest.approx(0.05) and one_seed["weight"][3]["delta"] == 0.04   # a copy
