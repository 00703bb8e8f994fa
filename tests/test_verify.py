"""Smoke test of the verify benchmark (--quick): every model trains, exports, and runs bit-exactly."""
import json
import subprocess

from conftest import PY, ROOT


def test_verify_quick_covers_every_model_bit_exactly(tmp_path):
    out = tmp_path / "verify.json"
    r = subprocess.run([PY, "-m", "model_prep.verify", "--all", "--quick", "--out", out, "--work", tmp_path / "work"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {"commit", "date", "machine", "command", "rows"} <= set(result)
    models = {row["model"] for row in result["rows"]}
    assert {"dscnn", "mobilenetv2-w0.35", "mobilenetv2-w0.5", "mobilenetv2-w1.0", "mcunet", "proxyless-w0.3"} <= models
    for row in result["rows"]:
        assert {"model", "dataset", "float_acc", "int8_acc", "bit_exact", "samples"} <= set(row)
        assert row["bit_exact"] and row["samples"] > 0 and 0 <= row["int8_acc"] <= 1
    assert out.with_suffix(".png").stat().st_size > 0
