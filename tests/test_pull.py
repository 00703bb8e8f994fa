"""The trained model pulled off a board (host_tools/pull.py, model_prep.adapted): the device's parameters written
into the .tflite it was baked from, equal to the simulator's trainer, and running in tflite-micro with the board's
outputs byte for byte; a bias the converter dropped gets a tensor; a board of another bake is refused."""
import json
import shutil
import subprocess

import numpy as np
import pytest

from host_tools.boards import launch
from host_tools.protocol import Device
from host_tools.pull import pull
from model_prep.bake import Baked
from model_prep.scheme import trainable_layers
from model_prep.tflite_graph import edit_model, load_graph, set_parameters
from model_prep.tflm import run_tflm

from conftest import PY, ROOT, build_firmware, run
from test_kws_pipeline import device_inputs
from test_train_engine import bake_and_build, kws_scheme, reference, scheme_of


def train_and_pull(elf, manifest, baked, xs, ys, evals, out):
    """Train the board on (xs, ys), pull its model to `out`; the board's outputs on evals (bytes)."""
    with launch("host", elf) as url, Device(url) as dev:
        dev.reset()
        for x, y in zip(xs, ys):
            dev.train(int(y), x.tobytes())
        path = pull(dev, manifest, baked, out)
        board = [dev.evaluate(x.tobytes()).logits.tobytes() for x in evals]
    return path, board


def check_parameters(path, original, trainer):
    """Every trained tensor of the pulled model equals the trainer's; every other constant is the original's."""
    got, was = load_graph(path), load_graph(original)
    trained, layers = set(), trainable_layers(got)
    for name, (w, b) in trainer.overrides.items():
        op = layers[name]
        assert np.array_equal(got.tensors[op.inputs[1]].data, w.numpy()), f"{name} weights"
        assert np.array_equal(got.tensors[op.inputs[2]].data, b.numpy()), f"{name} bias"
        trained |= {got.tensors[op.inputs[1]].name, got.tensors[op.inputs[2]].name}
    for t in was.tensors:
        if t.is_const and t.name not in trained:
            assert np.array_equal(got.tensors[t.index].data, t.data), t.name


def test_the_pulled_model_is_the_trained_one_and_runs_as_the_board(kws, tmp_path, one_torch_thread):
    xs, ys = device_inputs(kws, "train", limit=24)
    evals, _ = device_inputs(kws, "test", limit=16)
    scheme = kws_scheme(kws.tflite)   # sliced weights (channels, kernel rows), biases, down to the first blocks
    manifest, elfs = bake_and_build(kws.tflite, scheme, tmp_path, ("host",))
    assert any(p.get("sliced") for p in manifest["params"])
    path, board = train_and_pull(elfs["host"], manifest, tmp_path / "baked", xs, ys, evals, tmp_path / "a.tflite")
    check_parameters(path, kws.tflite, reference(kws.tflite, scheme, xs, ys))
    outputs = run_tflm(path, evals[:, None])
    assert [o.tobytes() for o in outputs] == board
    assert [o.tobytes() for o in run_tflm(kws.tflite, evals[:, None])] != board, "training changed no output"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["labels"] == json.loads(kws.tflite.with_suffix(".json").read_text())["labels"]
    assert meta["adapted"]["samples_trained"] == 24 and meta["adapted"]["board"] == "host"
    # the adapted model bakes again, with its labels: flashed, the firmware starts as the trained board ended
    assert Baked(path, train="classifier").labels == meta["labels"]
    run(PY, "-m", "model_prep.bake", path, "-o", tmp_path / "rebaked", "--scheme", tmp_path / "scheme.json")
    elf = build_firmware("host", tmp_path / "rebaked", tmp_path / "fw-rebaked")
    with launch("host", elf) as url, Device(url) as dev:
        assert [dev.evaluate(x.tobytes()).logits.tobytes() for x in evals] == board


def test_a_bias_the_converter_dropped_gets_a_tensor_of_its_own(kws, tmp_path, one_torch_thread):
    op = trainable_layers(load_graph(kws.tflite))["blocks.2.pw"]

    def drop_bias(model):
        o = model.subgraphs[0].operators[op.index]
        o.inputs = np.array([o.inputs[0], o.inputs[1], -1], np.int32)
    model = tmp_path / "nobias.tflite"
    model.write_bytes(edit_model(kws.tflite, drop_bias))
    shutil.copy(kws.tflite.with_suffix(".json"), model.with_suffix(".json"))
    scheme = scheme_of([{"layer": "classifier", "bias": True, "weight": {"kind": "full"}},
                        {"layer": "blocks.2.pw", "bias": True}])
    xs, ys = device_inputs(kws, "train", limit=8)
    evals, _ = device_inputs(kws, "test", limit=8)
    manifest, elfs = bake_and_build(model, scheme, tmp_path, ("host",))
    path, board = train_and_pull(elfs["host"], manifest, tmp_path / "baked", xs, ys, evals, tmp_path / "a.tflite")
    got = load_graph(path)
    bias = got.tensors[trainable_layers(got)["blocks.2.pw"].inputs[2]]
    assert bias.dtype == "int32" and bias.data.any()
    trainer = reference(model, scheme, xs, ys)
    assert np.array_equal(bias.data, trainer.overrides["blocks.2.pw"][1].numpy())
    assert [o.tobytes() for o in run_tflm(path, evals[:, None])] == board


def test_set_parameters_refuses_a_tensor_of_another_shape(kws):
    op = trainable_layers(load_graph(kws.tflite))["classifier"]
    with pytest.raises(ValueError, match=r"classifier.*given int8 \[3\].*holds int8"):
        set_parameters(kws.tflite, {op.index: {"weights": np.zeros(3, np.int8)}})


def test_pull_refuses_a_board_of_another_bake(kws, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    manifest = json.loads((kws.baked / "model.json").read_text())
    manifest["tflite_sha256"] = "0" * 16
    (other / "model.json").write_text(json.dumps(manifest))
    with launch("host", kws.host_elf) as url:
        r = subprocess.run([PY, "host_tools/pull.py", "--port", url, "--baked", other, "-o", tmp_path / "a.tflite"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and not (tmp_path / "a.tflite").exists()
    assert r.stderr.startswith("pull: the board runs") and "pass the --baked folder" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    (tmp_path / "scheme.json").write_text('{"format": "odt-scheme/1"}')
    for baked, says in ((tmp_path / "none", "no model.json"), (tmp_path / "scheme.json", "expected 'odt-baked/1'")):
        r = subprocess.run([PY, "host_tools/pull.py", "--port", "socket://127.0.0.1:9", "--baked", baked,
                            "-o", tmp_path / "a.tflite"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and r.stderr.startswith("pull: ") and says in r.stderr, r.stderr
