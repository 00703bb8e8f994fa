"""The C++ sparse-backprop runtime (firmware/runtime/train.cc) against the simulator's trainer.

Fed the same samples, the firmware ends with the same int8 weights and int32 biases as
model_prep.sparse_train.SparseTrainer (batch 1, int16 gradients): bit for bit, on host and on the
emulated Cortex-M7, for schemes that reach deep into the network (depthwise and point-wise
channels, kernel rows, biases; through MEAN, ADD and PAD)."""
import json

import numpy as np
import pytest

from host_tools.boards import launch
from host_tools.protocol import MAX_PAYLOAD, Device, DeviceError, Msg
from model_prep import scheme as fmt
from model_prep.sparse_train import SparseTrainer, TrainConfig
from model_prep.tflite_graph import load_graph
from model_prep.training_plan import TrainingPlan

from conftest import PY, build_firmware, run
from tflite_models import convert, tf_fixture  # noqa: F401 (registers the fixture `tf`)

LR = 0.05


def scheme_of(layers):
    return fmt.from_dict({"format": fmt.FORMAT, "model": "m", "name": "test", "layers": layers})


def kws_scheme(tflite):
    names = list(fmt.trainable_layers(load_graph(tflite)))   # conv1, blocks.0.dw, blocks.0.pw, ..., classifier
    return scheme_of([
        {"layer": names[-1], "bias": True, "weight": {"kind": "channels", "ratio": 0.5}},
        {"layer": names[-2], "bias": True, "weight": {"kind": "channels", "ratio": 0.25, "select": "random"}},
        {"layer": names[-3], "bias": False, "weight": {"kind": "subtensor", "rows": [1], "groups": [0, 2],
                                                      "group_size": 4}},
        {"layer": names[-5], "bias": True},
        {"layer": names[1], "bias": True, "weight": {"kind": "channels", "ratio": 0.125}},
    ])


def mbv2_scheme(tflite):
    return scheme_of([
        {"layer": "classifier", "bias": True, "weight": {"kind": "full"}},
        {"layer": "blocks.16.pw1", "bias": True, "weight": {"kind": "channels", "ratio": 0.125}},
        {"layer": "blocks.15.dw", "bias": True, "weight": {"kind": "subtensor", "rows": [0, 2], "groups": [1],
                                                             "group_size": 8}},
        {"layer": "blocks.14.pw2", "bias": True, "weight": {"kind": "channels", "ratio": 0.25}},
        {"layer": "blocks.12.dw", "bias": True},
    ])


def reference(tflite, scheme, xs, ys):
    t = SparseTrainer(tflite, scheme, TrainConfig(lr=LR, batch_size=1))
    for x, y in zip(xs, ys):
        t.step(x[None], [int(y)])
    return t


def device_run(board, elf, manifest, xs, ys, evals):
    with launch(board, elf) as url, Device(url) as dev:
        dev.reset()
        for x, y in zip(xs, ys):
            dev.train(int(y), x.tobytes())
        assert dev.info()["plan_ok"], "the baked scratch is smaller than the kernels need"
        trained = dev.read_trained(manifest["params"])
        logits = np.stack([dev.evaluate(x.tobytes()).logits for x in evals])
    return trained, logits


def bake_and_build(tflite, scheme, out, boards):
    scheme.save(out / "scheme.json")
    run(PY, "-m", "model_prep.bake", tflite, "-o", out / "baked", "--scheme", out / "scheme.json", "--lr", LR)
    manifest = json.loads((out / "baked" / "model.json").read_text())
    return manifest, {b: build_firmware(b, out / "baked", out / f"fw-{b}") for b in boards}


def as_held(tensor, entry):
    """A trainer's full tensor as the device holds it: a sliced weight only its [O, rows, KW, channels] slice."""
    if not entry.get("sliced"):
        return tensor
    if tensor.ndim == 2:
        return tensor[:, entry["channels"]]
    return tensor[:, entry["rows"]][..., entry["channels"]]


def check_equal(trainer, trained, logits, evals, manifest):
    assert trained, "nothing trained"
    changed = 0
    for entry in manifest["params"]:
        layer, what = entry["layer"], entry["tensor"]
        got = trained[layer, what]
        w, b = trainer.overrides[layer]
        want = as_held((w if what == "weights" else b).numpy(), entry)
        assert got.shape == want.shape and np.array_equal(got, want), f"{layer} {what} differs"
        op = next(op for op in trainer.ops if op.name == layer)
        changed += not np.array_equal(want, as_held(op.weights if what == "weights" else op.bias, entry))
    assert changed >= len(trained) - 1, "training left the parameters as they were"
    assert np.array_equal(logits, trainer.logits_of(evals)), "the trained forward differs"


def test_device_training_equals_the_simulator_on_kws(kws, tmp_path, one_torch_thread):
    from test_kws_pipeline import device_inputs
    xs, ys = device_inputs(kws, "train", limit=24)
    evals, _ = device_inputs(kws, "test", limit=8)
    scheme = kws_scheme(kws.tflite)
    manifest, elfs = bake_and_build(kws.tflite, scheme, tmp_path, ("host", "qemu-m7"))
    trainer = reference(kws.tflite, scheme, xs, ys)
    for board, elf in elfs.items():
        trained, logits = device_run(board, elf, manifest, xs, ys, evals)
        assert len(trained) == 8
        check_equal(trainer, trained, logits, evals, manifest)


def test_device_training_equals_the_simulator_through_residuals(digits_task, tmp_path, one_torch_thread):
    from search import tasks
    d = tasks.device_data(digits_task, n_train=12, n_test=4)
    xs, ys, evals = d.q_train, d.y_train, d.q_test
    scheme = mbv2_scheme(digits_task.tflite)
    plan = TrainingPlan(digits_task.tflite, scheme)
    assert {s.kind for s in plan.steps} >= {"loss", "layer", "add", "mean"}, "the scheme misses the residuals"
    manifest, elfs = bake_and_build(digits_task.tflite, scheme, tmp_path, ("host",))
    trainer = reference(digits_task.tflite, scheme, xs, ys)
    trained, logits = device_run("host", elfs["host"], manifest, xs, ys, evals)
    check_equal(trainer, trained, logits, evals, manifest)


def test_a_long_info_spans_frames_and_nothing_is_dropped(digits_task, tmp_path):
    # every MobileNetV2 bias trained: INFO's JSON (which layers it updates) is over one frame; the device serves it
    # from an offset, where it once sent nothing at all
    layers = fmt.trainable_layers(load_graph(digits_task.tflite))
    scheme = scheme_of([{"layer": name, "bias": True} for name in layers])
    manifest, elfs = bake_and_build(digits_task.tflite, scheme, tmp_path, ("host", "qemu-m7"))
    for board, elf in elfs.items():
        with launch(board, elf) as url, Device(url) as dev:
            first = dev._request(Msg.INFO)
            info = dev.info()
            assert len(first) == MAX_PAYLOAD and len(json.dumps(info)) > MAX_PAYLOAD, board
            assert [u["layer"] for u in info["updates"]] == [u["layer"] for u in manifest["updates"]], board
            assert info["planned_sram_bytes"] == manifest["planned_sram_bytes"] and info["plan_ok"], board
            with pytest.raises(DeviceError, match="offset past the end"):
                dev._request(Msg.INFO, (1 << 20).to_bytes(4, "little"), retries=1)
            with pytest.raises(DeviceError, match="empty or u32 offset"):
                dev._request(Msg.INFO, b"\x00\x01", retries=1)
            assert dev.stats()["samples_trained"] == 0, board   # and the device serves on


def test_params_of_a_model_that_trains_nothing(kws, tmp_path):
    # an inference-only image has no trained-parameter blob: PARAMS of its empty range once dereferenced the
    # missing training description and killed the host build
    run(PY, "-m", "model_prep.bake", kws.tflite, "-o", tmp_path / "baked", "--train", "none")
    elf = build_firmware("host", tmp_path / "baked", tmp_path / "fw")
    with launch("host", elf) as url, Device(url) as dev:
        assert dev._request(Msg.PARAMS, (0).to_bytes(4, "little") + (0).to_bytes(2, "little")) == b""
        with pytest.raises(DeviceError, match="range outside the parameter blob"):
            dev._request(Msg.PARAMS, (0).to_bytes(4, "little") + (1).to_bytes(2, "little"), retries=1)
        assert dev.info()["scheme"] == "none" and dev.info()["params_bytes"] == 0


@pytest.mark.parametrize("train", ["classifier"])
def test_the_kws_fixture_firmware_trains_its_classifier_as_the_simulator(kws, train, one_torch_thread):
    from test_kws_pipeline import device_inputs
    from model_prep.training_plan import scheme_for
    xs, ys = device_inputs(kws, "train", limit=16)
    manifest = json.loads((kws.baked / "model.json").read_text())
    trainer = SparseTrainer(kws.tflite, scheme_for(train, load_graph(kws.tflite)), TrainConfig(lr=0.02))
    for x, y in zip(xs, ys):
        trainer.step(x[None], [int(y)])
    trained, logits = device_run("host", kws.host_elf, manifest, xs, ys, xs[:4])
    check_equal(trainer, trained, logits, xs[:4], manifest)


def random_scheme(graph, rng):
    """Some trainable layers, each with a random bias flag and weight update (at least one update)."""
    layers = fmt.trainable_layers(graph)
    names = list(layers)
    out = []
    for i in sorted(rng.choice(len(names), int(rng.integers(1, min(4, len(names)) + 1)), replace=False)):
        shape = graph.tensors[layers[names[i]].inputs[1]].shape
        kind = str(rng.choice(["none", "channels", "full", "subtensor" if len(shape) == 4 else "full"]))
        w = {"kind": kind}
        if kind == "channels":
            w.update(ratio=float(rng.choice(fmt.RATIOS)), select=str(rng.choice(fmt.SELECT_RULES)))
        if kind == "subtensor":
            w["rows"] = sorted(set(rng.integers(0, shape[1], 2).tolist()))
        out.append({"layer": names[i], "bias": bool(kind == "none" or rng.random() < 0.5), "weight": w})
    return scheme_of(out)


def test_random_schemes_train_on_the_device_as_in_the_simulator(kws, tmp_path, one_torch_thread):
    """Random schemes (layers, channels, rows, biases) on the host build: the same parameters as the trainer."""
    from test_kws_pipeline import device_inputs
    xs, ys = device_inputs(kws, "train", limit=4)
    graph, rng = load_graph(kws.tflite), np.random.default_rng(7)
    for k in range(5):
        scheme = random_scheme(graph, rng)
        scheme.save(tmp_path / "scheme.json")
        run(PY, "-m", "model_prep.bake", kws.tflite, "-o", tmp_path / "baked", "--scheme", tmp_path / "scheme.json",
            "--lr", LR, "--seed", k)
        manifest = json.loads((tmp_path / "baked" / "model.json").read_text())
        elf = build_firmware("host", tmp_path / "baked", tmp_path / "fw")
        t = SparseTrainer(kws.tflite, scheme, TrainConfig(lr=LR, seed=k))
        for x, y in zip(xs, ys):
            t.step(x[None], [int(y)])
        trained, logits = device_run("host", elf, manifest, xs, ys, xs[:2])
        for entry in manifest["params"]:
            w, b = t.overrides[entry["layer"]]
            want = as_held((w if entry["tensor"] == "weights" else b).numpy(), entry)
            assert np.array_equal(trained[entry["layer"], entry["tensor"]], want), (scheme, entry["layer"])
        assert np.array_equal(logits, t.logits_of(xs[:2])), scheme


def test_bring_your_own_model_a_keras_residual_net(tf, tmp_path, one_torch_thread):
    """A model that is not one of ours (Keras, TFLiteConverter): conv, residual ADD, PAD, depthwise with
    depth multiplier 2, MEAN, two dense layers; bake trains the layers its scheme names, bit-exact on host."""
    L = tf.keras.layers
    bias = dict(bias_initializer=tf.keras.initializers.RandomNormal(stddev=0.3))

    def net(x):
        x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", **bias)(x)
        y = L.DepthwiseConv2D(3, padding="same", activation="relu6", **bias)(x)
        y = L.Conv2D(8, 1, **bias)(y)
        x = L.Add()([x, y])
        x = L.ZeroPadding2D(((1, 0), (1, 0)))(x)
        x = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, activation="relu", **bias)(x)
        x = L.GlobalAveragePooling2D()(x)
        return L.Dense(5, **bias)(L.Dense(12, activation="relu", **bias)(x))

    path = tmp_path / "keras.tflite"
    path.write_bytes(convert(tf, net, (16, 16, 3)))
    graph = load_graph(path)
    assert {"ADD", "PAD", "MEAN", "DEPTHWISE_CONV_2D"} <= {op.kind for op in graph.ops}
    names = list(fmt.trainable_layers(graph))
    scheme = scheme_of([{"layer": n, "bias": True, "weight": {"kind": "channels", "ratio": 0.5}} for n in names[1:]])
    manifest, elfs = bake_and_build(path, scheme, tmp_path, ("host",))
    rng = np.random.default_rng(0)
    xs, ys = rng.integers(-128, 128, (10, 16, 16, 3), dtype=np.int8), rng.integers(0, 5, 10)
    trainer = reference(path, scheme, xs, ys)
    trained, logits = device_run("host", elfs["host"], manifest, xs, ys, xs[:3])
    check_equal(trainer, trained, logits, xs[:3], manifest)
