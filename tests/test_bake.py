"""bake: one clear line for every model it refuses, an arena plan that never lets two live
tensors share a byte, a manifest that states the plan, and C++ that compiles.

    .venv/bin/pytest tests/test_bake.py -q

Models are small Keras graphs converted to int8 .tflite (tests/tflite_models.py) once per session.
"""
import json
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest

from model_prep.bake import FORMAT
from model_prep.lower import lower
from model_prep.plan import ALIGN, plan_arena
from model_prep.tflite_graph import load_graph

from conftest import PY, ROOT
from tflite_models import convert, tf_fixture  # noqa: F401 (registers the fixture `tf`)


def _dscnn(layers, bias):
    """DS-CNN's shape in miniature: 10x4 stride-2 conv, two depthwise-separable blocks, mean, dense."""
    def build(x):
        x = layers.Conv2D(8, (10, 4), strides=2, padding="same", activation="relu", **bias)(x)
        for _ in range(2):
            x = layers.DepthwiseConv2D(3, padding="same", activation="relu", **bias)(x)
            x = layers.Conv2D(8, 1, activation="relu", **bias)(x)
        return layers.Dense(5, **bias)(layers.GlobalAveragePooling2D()(x))
    return build


@pytest.fixture(scope="session")
def models(tf, tmp_path_factory):
    """{name: .tflite path}; the ops each converts to are asserted, so a converter change shows here."""
    d = tmp_path_factory.mktemp("bake_models")
    tf.keras.utils.set_random_seed(0)   # unseeded Keras initializers draw their seed when constructed (below)
    L = tf.keras.layers
    bias = dict(bias_initializer=tf.keras.initializers.RandomNormal(stddev=0.5))
    specs = {  # name: (layer, input shape, the converter's ops)
        "conv": (L.Conv2D(6, 3, padding="same", activation="relu", **bias), (9, 7, 3), ["CONV_2D"]),
        "dw": (L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, **bias), (9, 8, 3), ["DEPTHWISE_CONV_2D"]),
        "fc": (L.Dense(7, **bias), (16,), ["FULLY_CONNECTED"]),
        "mean": (L.GlobalAveragePooling2D(), (5, 4, 8), ["MEAN"]),
        "pad": (L.ZeroPadding2D(((1, 2), (0, 3))), (5, 4, 6), ["PAD"]),
        "dscnn": (_dscnn(L, bias), (49, 10, 1),
                  ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN",
                   "FULLY_CONNECTED"]),
        "flatten_fc": (lambda x: L.Dense(5, **bias)(L.Flatten()(L.Conv2D(4, 3, activation="relu", **bias)(x))),
                       (6, 6, 2), ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"]),
        "reshape_mid": (lambda x: L.Conv2D(3, 1, **bias)(L.Reshape((4, 4, 2))(L.Dense(32, **bias)(x))),
                        (8,), ["FULLY_CONNECTED", "RESHAPE", "CONV_2D"]),
        "conv_pad_conv": (lambda x: L.Conv2D(4, 3, **bias)(
                              L.ZeroPadding2D(((1, 2), (0, 1)))(L.Conv2D(3, 1, **bias)(x))),
                          (6, 6, 2), ["CONV_2D", "PAD", "CONV_2D"]),
        "fc_no_bias": (L.Dense(4), (8,), ["FULLY_CONNECTED"]),   # a zero bias is dropped by the converter
        "avgpool": (lambda x: L.AveragePooling2D(2)(L.Conv2D(4, 3, **bias)(x)), (8, 8, 2),
                    ["CONV_2D", "AVERAGE_POOL_2D"]),
        "tanh": (L.Dense(4, activation="tanh", **bias), (8,), ["FULLY_CONNECTED", "TANH"]),
        "sigmoid": (L.Dense(4, activation="sigmoid", **bias), (8,), ["FULLY_CONNECTED", "LOGISTIC"]),
    }
    paths = {}
    for name, (layer, shape, kinds) in specs.items():
        paths[name] = d / f"{name}.tflite"
        paths[name].write_bytes(convert(tf, layer, shape))
        assert [op.kind for op in load_graph(paths[name]).ops] == kinds, name
    return paths


SUPPORTED_MODELS = ["conv", "dw", "fc", "mean", "pad", "dscnn", "flatten_fc", "reshape_mid", "conv_pad_conv",
                    "avgpool"]


def run_bake(*args):
    return subprocess.run([PY, "-m", "model_prep.bake", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


def refused(r):
    """The one stderr line of a bake that failed cleanly."""
    assert r.returncode != 0, r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


# -- models bake refuses -----------------------------------------------------------------------


@pytest.mark.parametrize("name,kind", [("sigmoid", "LOGISTIC"), ("tanh", "TANH")])
def test_unsupported_op_is_one_line_naming_op_and_file(models, name, kind, tmp_path):
    line = refused(run_bake(models[name], "-o", tmp_path / "out"))
    assert kind in line and str(models[name]) in line, line
    assert not (tmp_path / "out").exists()


def test_missing_or_foreign_file_is_one_line(tmp_path):
    missing = tmp_path / "missing.tflite"
    line = refused(run_bake(missing, "-o", tmp_path / "out"))
    assert str(missing) in line and "no such model file" in line, line
    foreign = tmp_path / "notes.tflite"
    foreign.write_text("not a flatbuffer\n")
    line = refused(run_bake(foreign, "-o", tmp_path / "out"))
    assert str(foreign) in line and "TFL3" in line, line


@pytest.mark.parametrize("name,says", [("conv", "end in FULLY_CONNECTED"),
                                       ("conv_pad_conv", "end in FULLY_CONNECTED")])
def test_train_classifier_needs_a_final_fully_connected(models, name, says, tmp_path):
    line = refused(run_bake(models[name], "-o", tmp_path / "out", "--train", "classifier"))
    assert "--train classifier" in line and says in line and str(models[name]) in line, line


# -- the arena plan ----------------------------------------------------------------------------


def check_plan(graph, lowered, plan, keep=()):
    """Every pair of tensors live at the same time has disjoint bytes; outputs and `keep` live to the end.

    Lifetimes are counted here in steps: the graph input is written at step -1, op i reads its input and
    writes its output at step i, and the training step after the forward pass (step len(lowered)) reads
    the graph outputs and `keep`. A reshape moves nothing: its output is its input's bytes.
    """
    end = len(lowered)
    buffer = {t: t for t in graph.inputs}           # tensor -> the tensor whose bytes it is
    for op in lowered:
        buffer[op.output] = buffer[op.inputs[0]] if op.kind == "reshape" else op.output
    steps = {}                                      # buffer -> steps at which it is written or read
    for t in graph.inputs:
        steps.setdefault(buffer[t], set()).add(-1)
    for i, op in enumerate(lowered):
        for t in op.inputs:                         # an ADD reads two
            assert t in buffer, f"op {i} reads tensor {t} before anything writes it"
            steps[buffer[t]].add(i)
        steps.setdefault(buffer[op.output], set()).add(i)
    for t in list(keep) + list(graph.outputs):
        steps[buffer[t]].add(end)
    live = {b: (min(s), max(s)) for b, s in steps.items()}

    for t, b in buffer.items():
        assert plan.sizes[t] == graph.tensors[t].nbytes
        assert plan.offsets[t] == plan.offsets[b], f"reshape output {t} is not at its input's bytes"
        assert plan.offsets[t] % ALIGN == 0 and plan.offsets[t] + plan.sizes[t] <= plan.arena_bytes
    bufs = sorted(live)
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            (fa, la), (fb, lb) = live[a], live[b]
            if fa <= lb and fb <= la:   # live at a common step
                oa, ob = plan.offsets[a], plan.offsets[b]
                assert oa + plan.sizes[a] <= ob or ob + plan.sizes[b] <= oa, (
                    f"tensors {a} (steps {fa}..{la}, bytes {oa}+{plan.sizes[a]}) and {b} "
                    f"(steps {fb}..{lb}, bytes {ob}+{plan.sizes[b]}) overlap")
    for t in list(keep) + list(graph.outputs):
        assert live[buffer[t]][1] == end


@pytest.mark.parametrize("name", SUPPORTED_MODELS)
def test_plan_never_overlaps_live_tensors(models, name):
    graph = load_graph(models[name])
    lowered = lower(graph)
    check_plan(graph, lowered, plan_arena(graph, lowered), ())
    for op in lowered:   # keep each activation in turn, as the training step keeps the classifier input
        keep = [op.inputs[0]]
        check_plan(graph, lowered, plan_arena(graph, lowered, keep=keep), keep)


def test_plan_never_overlaps_live_tensors_on_random_graphs():
    """Random DAGs: any op may read any earlier tensor(s); some ops are reshapes, some two-input adds;
    random sizes and keeps."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        tensors, lowered = [SimpleNamespace(nbytes=int(rng.integers(1, 2000)))], []
        for i in range(int(rng.integers(1, 14))):
            src = int(rng.integers(0, len(tensors)))
            kind = rng.choice(["reshape", "conv2d", "add"], p=[0.25, 0.5, 0.25])
            inputs = (src, int(rng.integers(0, len(tensors)))) if kind == "add" else (src,)
            nbytes = tensors[src].nbytes if kind == "reshape" else int(rng.integers(1, 2000))
            tensors.append(SimpleNamespace(nbytes=nbytes))
            lowered.append(SimpleNamespace(kind=str(kind), inputs=inputs, output=len(tensors) - 1))
        outputs = sorted(set([len(tensors) - 1, *rng.choice(len(tensors), 1).tolist()]))
        graph = SimpleNamespace(tensors=tensors, inputs=[0], outputs=outputs)
        keep = rng.choice(len(tensors), int(rng.integers(0, 3)), replace=False).tolist()
        check_plan(graph, lowered, plan_arena(graph, lowered, keep=keep), keep)


# -- what bake writes --------------------------------------------------------------------------


@pytest.mark.parametrize("name,train", [("conv", "none"), ("dscnn", "none"), ("dscnn", "classifier"),
                                        ("flatten_fc", "classifier"), ("reshape_mid", "none")])
def test_manifest_states_the_plan(models, name, train, tmp_path):
    from model_prep.training_plan import TrainingPlan, scheme_for
    run = run_bake(models[name], "-o", tmp_path, "--train", train)
    assert run.returncode == 0, run.stderr
    manifest = json.loads((tmp_path / "model.json").read_text())
    graph = load_graph(models[name])
    if train == "none":
        lowered = lower(graph)
        plan = plan_arena(graph, lowered)
        check_plan(graph, lowered, plan, ())
    else:
        plan = TrainingPlan(models[name], scheme_for(train, graph))
        lowered = plan.ops
        check_plan(graph, lowered, plan, [plan.trainer.logits])
        assert manifest["params"][0]["layer"] == lowered[-1].name and manifest["trainable_bytes"] > 0
    assert manifest["format"] == FORMAT == "odt-baked/1"
    assert manifest["scheme"] == train and manifest["arena_bytes"] == plan.arena_bytes
    assert [(o["name"], o["kind"], o["input"], o["output"]) for o in manifest["ops"]] == [
        (op.name, op.kind, plan.offsets[op.input], plan.offsets[op.output]) for op in lowered]


@pytest.mark.parametrize("name,train", [("conv", "none"), ("flatten_fc", "classifier"), ("flatten_fc", "none"),
                                        ("dscnn", "classifier")])
def test_model_data_compiles(models, name, train, tmp_path):
    run = run_bake(models[name], "-o", tmp_path, "--train", train)
    assert run.returncode == 0, run.stderr
    obj = tmp_path / "model_data.o"
    cc = subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'firmware/runtime'}",
                         "-c", tmp_path / "model_data.cc", "-o", obj], capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    # Every symbol firmware/app/app.cc declares extern, whether or not the model trains.
    symbols = subprocess.run(["nm", "-C", "--defined-only", obj], capture_output=True, text=True, check=True).stdout
    for sym in ("odt::kModel", "odt::kTraining"):
        assert any(line.endswith(" " + sym) for line in symbols.splitlines()), (sym, symbols)


def test_a_classifier_without_bias_trains_from_a_zero_bias(models, tmp_path):
    from model_prep.sparse_train import SparseTrainer
    from model_prep.training_plan import TrainingPlan, scheme_for
    r = run_bake(models["fc_no_bias"], "-o", tmp_path / "out", "--train", "classifier")
    assert r.returncode == 0, r.stderr
    assert "b0_init[4]" in (tmp_path / "out" / "model_data.cc").read_text()
    scheme = scheme_for("classifier", load_graph(models["fc_no_bias"]))
    assert not TrainingPlan(models["fc_no_bias"], scheme).ops[0].bias.any()
    t = SparseTrainer(models["fc_no_bias"], scheme)
    t.step(np.full((1, 8), 50, np.int8), [2])
    b = t.overrides[t.ops[0].name][1].numpy()
    assert b[2] > 0 and (b[[0, 1, 3]] < 0).all()


def test_bake_reads_a_scheme_and_refuses_what_it_cannot_train(models, tmp_path):
    from model_prep import scheme as fmt
    graph = load_graph(models["dscnn"])
    names = list(fmt.trainable_layers(graph))
    classifier = {"layer": names[-1], "bias": True, "weight": {"kind": "full"}}
    sparse = [classifier, {"layer": names[-2], "bias": True, "weight": {"kind": "channels", "ratio": 0.5}},
              {"layer": names[1], "bias": True}]
    for layers, trains in (([classifier], "one"), ([], "none"), (sparse, "three")):
        path = tmp_path / f"{trains}.json"
        fmt.from_dict({"format": fmt.FORMAT, "model": "dscnn", "name": trains, "layers": layers}).save(path)
        r = run_bake(models["dscnn"], "-o", tmp_path / trains, "--scheme", path)
        assert r.returncode == 0, r.stderr
        manifest = json.loads((tmp_path / trains / "model.json").read_text())
        assert manifest["scheme"] == trains
        assert [u["layer"] for u in manifest["updates"]] == sorted((u["layer"] for u in layers), key=names.index)
    assert [u["channels"] for u in manifest["updates"]] == [0, 4, 8]   # bias only, half of 8, all of 8
    unknown = tmp_path / "unknown.json"
    fmt.from_dict({"format": fmt.FORMAT, "model": "dscnn", "layers": [{"layer": "nope", "bias": True}]}).save(unknown)
    line = refused(run_bake(models["dscnn"], "-o", tmp_path / "unknown", "--scheme", unknown))
    assert "no trainable layer 'nope'" in line, line
    no_logits = tmp_path / "avgpool.json"
    conv = list(fmt.trainable_layers(load_graph(models["avgpool"])))[0]
    fmt.from_dict({"format": fmt.FORMAT, "model": "avgpool", "layers": [{"layer": conv, "bias": True}]}).save(no_logits)
    line = refused(run_bake(models["avgpool"], "-o", tmp_path / "avgpool", "--scheme", no_logits))
    assert "fully connected layer" in line and str(models["avgpool"]) in line, line


def test_bake_plan_prints_the_total_sram(models, tmp_path):
    from model_prep import scheme as fmt
    names = list(fmt.trainable_layers(load_graph(models["dscnn"])))
    small, big = tmp_path / "small.json", tmp_path / "big.json"
    fmt.from_dict({"format": fmt.FORMAT, "model": "dscnn", "layers": [{"layer": names[-1], "bias": True}]}).save(small)
    fmt.from_dict({"format": fmt.FORMAT, "model": "dscnn", "layers": [
        {"layer": n, "bias": True, "weight": {"kind": "full"}} for n in names]}).save(big)
    totals = []
    for path in (small, big):
        r = run_bake("plan", models["dscnn"], path, "--json")
        assert r.returncode == 0, r.stderr
        parts = json.loads(r.stdout)
        assert parts["total_sram_bytes"] == sum(v for k, v in parts.items() if k != "total_sram_bytes") or \
            parts["total_sram_bytes"] >= parts["arena_bytes"] + parts["param_bytes"]
        totals.append(parts)
    assert totals[1]["param_bytes"] > totals[0]["param_bytes"] and totals[1]["arena_bytes"] > totals[0]["arena_bytes"]
    line = refused(run_bake("plan", models["dscnn"], tmp_path / "missing.json"))
    assert "missing.json" in line, line
