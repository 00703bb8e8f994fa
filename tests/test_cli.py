"""Every command line refuses a count or a rate out of range with one usage error naming the option
(`search.run --evals 0` ended in a ZeroDivisionError; `bake --lr -1` baked a firmware that climbs the loss)."""
import argparse
import subprocess

import pytest

from model_prep.cli import at_least, positive

from conftest import PY, ROOT


def test_at_least_and_positive():
    assert at_least(0)("0") == 0 and at_least(1)("7") == 7 and positive("0.05") == 0.05
    for parse, text in ((at_least(1), "0"), (at_least(1), "x"), (at_least(0), "-3"), (at_least(1), "1.5"),
                        (positive, "0"), (positive, "-1"), (positive, "nan"), (positive, "inf"), (positive, "")):
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            parse(text)


@pytest.mark.parametrize("command,option,says", [
    (["-m", "search.run", "--model", "dscnn", "--dataset", "kws", "--budget", "64KB", "--evals", "0"],
     "--evals", "expected an integer >= 1, got 0"),
    (["-m", "search.run", "--model", "dscnn", "--dataset", "kws", "--budget", "64KB", "--verify", "2",
      "--train-seeds", "0"], "--train-seeds", "expected an integer >= 1, got 0"),
    (["-m", "search.bench", "--pop", "1"], "--pop", "expected an integer >= 4, got 1"),
    (["-m", "search.contrib", "--model", "dscnn", "--dataset", "kws", "--batch-size", "0"],
     "--batch-size", "expected an integer >= 1, got 0"),
    (["-m", "model_prep.bake", "x.tflite", "-o", "out", "--lr", "-1"], "--lr", "expected a number > 0, got -1"),
    (["host_tools/stream.py", "--dataset", "kws", "--port", "socket://127.0.0.1:9", "--curve-every", "0"],
     "--curve-every", "expected an integer >= 1, got 0"),
    (["-m", "host_tools.plan_vs_measured", "--schemes", "zero"], "--schemes", "expected an integer >= 1, got 'zero'"),
])
def test_a_number_out_of_range_is_one_usage_error(command, option, says):
    r = subprocess.run([PY, *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"argument {option}: {says}" in r.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("option,value,says", [
    ("--batch-size", "0", "--batch-size 0: expected a number >= 1"),   # was a ZeroDivisionError
    ("--epochs", "0", "--epochs 0: expected a number >= 1"),            # wrote an untrained checkpoint
    ("--width", "-1", "--width -1: expected a number >= 0 (0: the default)"),   # trained some other width
    ("--lr", "0", "--lr 0: expected a number > 0"),
    ("--batch-sizes", "8", "unknown option --batch-sizes; known: --dataset, --model, --epochs, --batch-size, --lr, "
                           "--weight-decay, --seed, --threads, --resolution, --width, --augment"),
])
def test_pretrain_refuses_a_number_out_of_range(tmp_path, option, value, says):
    r = subprocess.run([PY, "-m", "model_prep.pretrain", "--dataset", "digits", "--model", "mcunet", option, value,
                        "--out", tmp_path / "m.pt"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.stderr.strip() == f"pretrain: {says}"
    assert not (tmp_path / "m.pt").exists()
