"""model_prep.check: simulator, C++ host runtime and tflite-micro on the same inputs."""
import subprocess

import numpy as np

from model_prep import check

from conftest import PY, ROOT
from tflite_models import convert, tf_fixture  # noqa: F401 (registers the fixture `tf`)


def run_check(*args):
    return subprocess.run([PY, "-m", "model_prep.check", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


def test_check_finds_all_three_engines_bit_exact_on_the_kws_model(kws):
    r = run_check(kws.tflite, "--samples", 8, "--dataset", "kws", "--data", kws.corpus)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all three agree bit for bit" in r.stdout and r.stdout.count("bit-exact") == 2


def test_check_names_an_unsupported_op_in_one_line(tf, tmp_path):
    model = tmp_path / "tanh.tflite"
    model.write_bytes(convert(tf, tf.keras.layers.Activation("tanh"), (4, 4, 2)))
    r = run_check(model)
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "unsupported op TANH" in r.stderr and str(model) in r.stderr


def test_report_flags_a_single_differing_bit():
    ref = np.zeros((3, 4), np.int8)
    other = ref.copy()
    other[2, 1] = 1
    assert check.report({"tflite-micro": ref, "simulator": ref.copy(), "runtime": ref.copy()})
    assert not check.report({"tflite-micro": ref, "simulator": ref.copy(), "runtime": other})
