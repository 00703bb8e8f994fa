"""The simulator on whole models: every intermediate tensor equal to tflite-micro's, layer by layer;
the same models baked to C++, compiled with -Werror and run on the host, equal too.

    .venv/bin/pytest tests/test_simulate.py -q

Models (Keras, converted once per session by tests/tflite_models.py): a MobileNet-like net
(stem conv, an inverted-residual block with its residual ADD, max pool, conv, average pool,
dense, softmax), a float32-in / float32-out net (QUANTIZE first, DEQUANTIZE last), and a
two-input ADD that the converter writes as RESHAPE + ADD of (1, n) and (n,). TFLM runs in a
child process (model_prep.tflm) and hands back every activation (kPreserveAllTensors).
"""
import subprocess
import textwrap

import numpy as np
import pytest
import torch

from model_prep.bake import bake
from model_prep.lower import lower
from model_prep.plan import plan_arena
from model_prep.simulate import Layer, Simulator
from model_prep.tflite_graph import load_graph, rename_tensors
from model_prep.tflm import run_tflm

from conftest import ROOT
from test_bake import check_plan
from tflite_models import convert, tf_fixture  # noqa: F401 (registers the fixture `tf`)

RUNTIME = ROOT / "firmware" / "runtime"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mobilenet(L):
    def build(x):
        x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(x)
        y = L.Conv2D(16, 1, activation="relu6")(x)                  # inverted residual: expand,
        y = L.DepthwiseConv2D(3, padding="same", activation="relu6")(y)  # depthwise,
        y = L.Conv2D(8, 1)(y)                                        # project,
        x = L.Add()([x, y])                                          # and the residual ADD
        x = L.MaxPooling2D(2)(x)
        x = L.Conv2D(12, 3, padding="same", activation="relu")(x)
        x = L.AveragePooling2D(2, padding="same")(x)
        return L.Softmax()(L.Dense(6)(L.Flatten()(x)))
    return build


def _float_io(L):
    def build(x):
        x = L.Conv2D(6, 3, activation="relu")(x)
        return L.Softmax()(L.Dense(4)(L.GlobalAveragePooling2D()(x)))
    return build


@pytest.fixture(scope="session")
def models(tf, tmp_path_factory):
    """{name: .tflite path}; the ops each converts to are asserted, so a converter change shows here."""
    d = tmp_path_factory.mktemp("sim_models")
    L = tf.keras.layers
    specs = {  # name: (build, input shape(s), io, the converter's ops)
        "mobilenet": (_mobilenet(L), (20, 16, 3), "int8",
                      ["CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "MAX_POOL_2D", "CONV_2D",
                       "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]),
        "float_io": (_float_io(L), (9, 8, 2), "float32",
                     ["QUANTIZE", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE"]),
        "add_2d": (L.Add(), [(40,), (40,)], "int8", ["RESHAPE", "ADD"]),
    }
    paths = {}
    for name, (build, shape, io, kinds) in specs.items():
        paths[name] = d / f"{name}.tflite"
        paths[name].write_bytes(convert(tf, build, shape, io=io))
        assert [op.kind for op in load_graph(paths[name]).ops] == kinds, name
    return paths


def random_inputs(graph, n, seed=0):
    """n samples per model input: int8 over the whole range, float32 around the calibration data."""
    rng = np.random.default_rng(seed)
    xs = []
    for i in graph.inputs:
        t = graph.tensors[i]
        if t.dtype == "float32":   # calibration: normal(0.3, 1.5); wider, so some values clamp
            xs.append(rng.normal(0.3, 3.0, (n,) + t.shape).astype(np.float32))
        else:
            xs.append(rng.integers(-128, 128, (n,) + t.shape, dtype=np.int8))
    return xs


@pytest.mark.parametrize("name", ["mobilenet", "float_io", "add_2d"])
def test_every_tensor_equals_tflite_micro(models, name):
    """Layer by layer: each activation (inputs, every op's output) equal to TFLM's, bit for bit."""
    sim = Simulator.from_tflite(models[name])
    xs = random_inputs(sim.graph, 12)
    want = run_tflm(models[name], *xs, tensors=True)
    got = sim.activations(*xs)
    assert set(want) == set(got)
    for op in [None] + sim.ops:   # in execution order: the first divergence is the culprit
        for i in sim.graph.inputs if op is None else [op.output]:
            g = got[i].numpy().reshape(want[i].shape)
            assert g.dtype == want[i].dtype, (sim.graph.tensors[i].name, g.dtype, want[i].dtype)
            bad = int(np.sum(g != want[i]))
            assert bad == 0, f"{op.kind if op else 'input'} '{sim.graph.tensors[i].name}': {bad} of {g.size} differ"
    out = sim.run(xs[0]) if len(xs) == 1 else sim(*xs).numpy().reshape(len(xs[0]), -1)
    assert np.array_equal(out, want[sim.graph.outputs[0]].reshape(len(xs[0]), -1))


def test_simulator_is_a_module_with_one_submodule_per_layer(models, tmp_path):
    """Submodules are named after the layers (dotted names nest, as PyTorch names modules)."""
    path = tmp_path / "named.tflite"
    g = load_graph(models["mobilenet"])
    names = ["stem", "blocks.0.expand", "blocks.0.dw", "blocks.0.project", "blocks.0", "pool", "head.conv",
             "head.pool", "flatten", "classifier", "softmax"]
    rename_tensors(models["mobilenet"], path, {op.outputs[0]: n for op, n in zip(g.ops, names)})
    sim = Simulator.from_tflite(path)
    assert isinstance(sim, torch.nn.Module)
    layers = {n: m for n, m in sim.named_modules() if isinstance(m, Layer)}
    assert sorted(layers) == sorted(names)
    for op in sim.ops:
        assert sim.layer(op.name) is layers[op.name] and layers[op.name].op is op
    assert sim.get_submodule("blocks.0.dw").op.kind == "depthwise_conv2d"
    assert {n for n, _ in sim.named_buffers()} >= {"stem.weight", "stem.bias", "classifier.weight"}

    x = torch.as_tensor(random_inputs(sim.graph, 5)[0])
    y = sim(x)
    assert y.dtype == torch.int8 and y.shape == (5, 6)
    assert np.array_equal(sim.run(x.numpy()), y.numpy())
    acts = sim.run(x.numpy(), keep=True)
    assert np.array_equal(acts[sim.layer("blocks.0").op.output], sim.activations(x)[sim.layer("blocks.0").op.output])
    # One layer alone, from its input activation(s): the ADD takes two.
    add = sim.layer("blocks.0")
    t = sim.activations(x)
    assert np.array_equal(add(*(t[i] for i in add.op.inputs)), t[add.op.output])
    # Overrides replace a layer's weights for one call (trained copies), leaving the module's.
    w = sim.layer("classifier").weight.numpy().copy()
    changed = sim(x, overrides={"classifier": (-w, None)})
    assert not torch.equal(changed, y) and torch.equal(sim(x), y)


def test_float_model_takes_and_gives_float32(models):
    sim = Simulator.from_tflite(models["float_io"])
    x = random_inputs(sim.graph, 3)[0]
    y = sim(torch.as_tensor(x))
    assert y.dtype == torch.float32 and y.shape == (3, 4)
    assert torch.allclose(y.sum(-1), torch.ones(3), atol=0.05)   # a softmax, dequantized
    assert [op.kind for op in sim.ops][0::5] == ["quantize", "dequantize"]


# -- baked to C++, compiled, run on the host ---------------------------------------------------


MAIN = textwrap.dedent("""\
    // Runs the baked model over the samples of argv[1] (input bytes back to back) into argv[2].
    #include <stdio.h>
    #include <string.h>
    #include "model.h"
    namespace odt { extern const ModelDesc kModel; }
    int main(int argc, char** argv) {
      if (argc != 3) return 2;
      const odt::ModelDesc& m = odt::kModel;
      FILE* in = fopen(argv[1], "rb");
      FILE* out = fopen(argv[2], "wb");
      if (in == nullptr || out == nullptr) return 3;
      while (fread(m.arena + m.input_offset, 1, m.input_bytes, in) == static_cast<size_t>(m.input_bytes)) {
        odt::invoke(m);
        fwrite(m.arena + m.output_offset, 1, m.output_bytes, out);
      }
      fclose(in);
      fclose(out);
      return 0;
    }
    """)


@pytest.fixture(scope="session")
def runtime_objects(tmp_path_factory):
    """The kernels and the interpreter, compiled once (-Wall -Wextra -Werror)."""
    d = tmp_path_factory.mktemp("runtime")
    (d / "main.cc").write_text(MAIN)
    objs = []
    for src in sorted((RUNTIME / "kernels").glob("*.cc")) + [RUNTIME / "interpreter.cc", d / "main.cc"]:
        objs.append(d / (src.stem + ".o"))
        subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1", "-ffp-contract=off",
                        f"-I{RUNTIME}", "-c", str(src), "-o", str(objs[-1])], check=True)
    return objs


@pytest.mark.parametrize("name", ["mobilenet", "float_io"])
def test_baked_model_compiles_and_runs_like_tflite_micro(models, runtime_objects, name, tmp_path):
    baked = bake(models[name], tmp_path / "baked", train="none")
    check_plan(baked.graph, baked.ops, baked.plan)   # two-input ADD, float32 edges: nothing live overlaps
    exe = tmp_path / "run"
    cc = subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1", f"-I{RUNTIME}",
                         str(tmp_path / "baked" / "model_data.cc"), *map(str, runtime_objects), "-o", str(exe)],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    (x,) = random_inputs(baked.graph, 16, seed=3)
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True)
    want = run_tflm(models[name], x)
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), want.dtype).reshape(want.shape)
    assert np.array_equal(got, want)
    sizes = baked.plan.sizes
    assert sizes[baked.graph.inputs[0]] == baked.graph.tensors[baked.graph.inputs[0]].nbytes
    if name == "float_io":   # float32 edges take 4 bytes an element in the arena
        assert sizes[baked.graph.inputs[0]] == 4 * 9 * 8 * 2 and sizes[baked.graph.outputs[0]] == 4 * 4


def test_plan_keeps_both_add_inputs_live(models):
    graph = load_graph(models["mobilenet"])
    lowered = lower(graph)
    plan = plan_arena(graph, lowered)
    add = next(op for op in lowered if op.kind == "add")
    a, b, y = (plan.offsets[t] for t in (*add.inputs, add.output))
    spans = sorted([(a, plan.sizes[add.inputs[0]]), (b, plan.sizes[add.inputs[1]]), (y, plan.sizes[add.output])])
    assert all(o1 + s1 <= o2 for (o1, s1), (o2, _) in zip(spans, spans[1:]))
