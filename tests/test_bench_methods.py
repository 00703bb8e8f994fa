"""search.bench_methods --quick: the benchmark runs end to end and writes its results in the agreed form."""
import json
import subprocess

from conftest import PY, ROOT


def test_quick_benchmark_writes_every_method(digits_task, tmp_path):
    out = tmp_path / "methods.json"
    r = subprocess.run([PY, "-m", "search.bench_methods", "--quick", "--work", str(digits_task.tflite.parent),
                        "--out", str(out), "--threads", "1"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["commit"] and result["quick"] is True
    rows = result["rows"]
    methods = [row["method"] for row in rows]
    assert methods == ["None", "LastLayer", "BiasOnly", "SparseUpdate", "SparseUpdate-noQAS", "SparseUpdate-grad-int8",
                       "SparseUpdate-grad-fp32", "TinyTrain", "FullTrain-fp32"]
    for row in rows:
        assert {"task", "model", "method", "accuracy", "memory_bytes", "macs_per_step"} <= set(row)
        assert 0.0 <= row["accuracy"] <= 1.0 and row["memory_bytes"] > 0
    by = {row["method"]: row for row in rows}
    assert by["None"]["macs_per_step"] == 0
    assert by["LastLayer"]["memory_bytes"] < by["SparseUpdate"]["memory_bytes"] < by["FullTrain-fp32"]["memory_bytes"]
    assert by["SparseUpdate-grad-int8"]["memory_bytes"] < by["SparseUpdate"]["memory_bytes"] \
        < by["SparseUpdate-grad-fp32"]["memory_bytes"]   # gradient buffers of 1, 2 and 4 bytes
    assert by["TinyTrain"]["memory_bytes"] <= by["SparseUpdate"]["memory_bytes"]   # its budget
    assert out.with_suffix(".png").stat().st_size > 0
    assert "SparseUpdate" in r.stdout


def test_unknown_task_is_one_clear_error():
    r = subprocess.run([PY, "-m", "search.bench_methods", "--row", "digits/resnet"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "no task 'digits/resnet'" in r.stderr and "Traceback" not in r.stderr
