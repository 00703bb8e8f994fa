"""The firmware benchmarks' --quick modes run end to end on real builds under QEMU and write their results."""
import json
import subprocess

import pytest

from conftest import PY, ROOT

FLASH_LIMIT, SRAM_LIMIT = 1024 * 1024, 320 * 1024


def bench(module, *args):
    r = subprocess.run([PY, "-m", f"host_tools.{module}", *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


def test_plan_vs_measured_quick(kws, tmp_path):
    out = tmp_path / "plan_vs_measured.json"
    r = bench("plan_vs_measured", "--quick", "--tflite", kws.tflite, "--out", out, "--work", tmp_path / "work")
    result = json.loads(out.read_text())
    assert result["commit"] and result["date"] and result["machine"] and result["quick"] is True
    assert len(result["rows"]) == 3
    for row in result["rows"]:
        assert {"model", "scheme", "planned", "measured"} <= set(row)
        assert row["layers"], "every random scheme updates something"
        assert abs(row["planned"] - row["measured"]) <= 0.01 * row["measured"]
    assert out.with_suffix(".png").stat().st_size > 0
    assert "within 1 %" in r.stdout


def test_bench_firmware_quick(kws, tmp_path):
    out = tmp_path / "firmware.json"
    r = bench("bench_firmware", "--quick", "--tflite", kws.tflite, "--out", out, "--work", tmp_path / "work")
    result = json.loads(out.read_text())
    assert result["commit"] and result["command"].startswith("python -m host_tools.bench_firmware")
    rows = {row["scheme"]: row for row in result["rows"]}
    assert set(rows) == {"none", "classifier"}
    for row in rows.values():
        assert row["board"] == "qemu-m7" and row["resolution"] == "49x10"
        assert 0 < row["flash_bytes"] <= FLASH_LIMIT and 0 < row["sram_bytes"] <= SRAM_LIMIT
        assert row["instructions_inference"] > 0
        assert row["pytorch_full_bp_bytes"] > row["sram_bytes"]
    c = rows["classifier"]
    assert c["instructions_train_step"] > c["instructions_inference"] > 0
    assert c["macs_train_step"] > c["macs_inference"] > 0
    assert rows["none"]["instructions_train_step"] is None
    assert abs(c["sram_bytes"] - c["planned_sram_bytes"]) <= 0.01 * c["sram_bytes"]
    assert out.with_suffix(".png").stat().st_size > 0
    assert "classifier" in r.stdout


@pytest.mark.parametrize("module", ["plan_vs_measured", "bench_firmware"])
def test_missing_model_is_one_clear_error(module, tmp_path):
    r = subprocess.run([PY, "-m", f"host_tools.{module}", "--tflite", tmp_path / "nope.tflite",
                        "--out", tmp_path / "x.json"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "no model at" in r.stderr and "Traceback" not in r.stderr
