"""The model zoo (model_prep/models): shapes and layer names in PyTorch, and each network's int8
export (small configs): the ops the runtime supports, layers named after the modules, and the
tflite-micro interpreter agreeing with the float model."""
import numpy as np
import pytest
import torch

from model_prep import checkpoint
from model_prep.export import export_model, layer_names, trace
from model_prep.models.blocks import make_divisible
from model_prep.tflite_graph import ModelError, load_graph
from model_prep.simulate import Simulator
from model_prep.tflm import run_tflm

RUNTIME_OPS = {"PAD", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "RESHAPE"}

R = 16   # input height = width of the small configs
# Small configs: 16x16 inputs, 10 classes, a few blocks each (the export's time grows with depth).
SMALL = {
    "mobilenetv2": dict(num_classes=10, resolution=R, reduce_strides=2, repeats=(1, 2, 2, 1, 1, 1, 1),
                        head_channels=128),
    "mcunet": dict(num_classes=10, resolution=R, reduce_strides=1, kernel_sizes=(3, 5, 7, 3, 5),
                   expand_ratios=(1, 3, 4, 6, 3), channels=(8, 16, 16, 24, 24), strides=(2, 1, 2, 1, 2, 1)),
    "proxyless": dict(num_classes=10, resolution=R, reduce_strides=1, head_channels=64,
                      kernel_sizes=(3, 5, 3, 7, 3), expand_ratios=(1, 3, 3, 3, 3),
                      channels=(16, 32, 32, 40, 40), strides=(2, 1, 2, 1, 2, 1)),
}


def noisy_prototypes(n, seed):
    """n inputs in [-1, 1] of 10 classes: a class's own colour (one of 10 fixed random RGB values)
    under uniform noise. Colour reaches the pooled features of even a random network."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.rand(10, 3, 1, 1, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.6
    y = torch.randint(0, 10, (n,), generator=g)
    return (colours[y] + 0.4 * (torch.rand(n, 3, R, R, generator=g) * 2 - 1)).clamp(-1, 1), y


def small_model(name, steps=30):
    """A small network trained for a few steps to tell the noisy colours apart, so that its logits
    have margins, as a trained model's do (a random network's argmax is decided by noise)."""
    torch.manual_seed(0)
    model = checkpoint.build(name, SMALL[name]).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for step in range(steps):
        x, y = noisy_prototypes(32, step + 1)
        loss = torch.nn.functional.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():                          # batch norm statistics of the final weights
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        model(noisy_prototypes(256, 0)[0].contiguous(memory_format=torch.channels_last))
    return model.to(memory_format=torch.contiguous_format).eval()


@pytest.mark.parametrize("name,shape", [("dscnn", (1, 49, 10)), ("mobilenetv2", (3, 32, 32)),
                                        ("mcunet", (3, 32, 32)), ("proxyless", (3, 32, 32))])
def test_every_model_builds_and_classifies(name, shape):
    model = checkpoint.build(name, {"num_classes": 7})
    assert model(torch.zeros(2, *shape)).shape == (2, 7)
    assert model.cfg.to_dict()["num_classes"] == 7
    assert checkpoint.build(name, model.cfg.to_dict()).cfg == model.cfg   # the config alone rebuilds it


@pytest.mark.parametrize("name", ["mobilenetv2", "mcunet", "proxyless"])
def test_default_configs_at_their_resolution(name):
    model = checkpoint.build(name)
    r = model.cfg.resolution
    assert model(torch.zeros(1, 3, r, r)).shape == (1, 1000)
    names = dict(model.named_modules())
    assert {"stem", "blocks.0.dw", "blocks.0.pw2", "blocks.1.pw1", "blocks.1.dw", "blocks.1.pw2", "classifier"} <= set(names)
    assert "blocks.0.pw1" not in names            # expansion ratio 1: no expand conv
    assert ("head" in names) == (name != "mcunet")


def test_mobilenetv2_matches_the_reference_sizes():
    """Width 1.0 at 224x224 is the paper's 3.4 M-parameter network; channels round to multiples of 8."""
    model = checkpoint.build("mobilenetv2", {"width": 1.0})
    assert sum(p.numel() for p in model.parameters()) == 3_504_872   # torchvision's count, same layers
    narrow = checkpoint.build("mobilenetv2", {"width": 0.35})
    assert narrow.stem[0].out_channels == 16 and narrow.head[0].out_channels == 1280
    assert [b.pw2[0].out_channels for b in narrow.blocks][::4] == [8, 16, 24, 32, 112]
    assert all(m.out_channels % 8 == 0 for m in narrow.modules() if isinstance(m, torch.nn.Conv2d))
    assert make_divisible(0.35 * 24) == 8 and make_divisible(0.35 * 32) == 16


def test_proxyless_matches_the_published_size():
    """ProxylessNAS-Mobile at width 1.0 has 4.08 M parameters."""
    assert sum(p.numel() for p in checkpoint.build("proxyless", {"width": 1.0}).parameters()) == 4_080_512


def test_residual_blocks_and_reduced_strides():
    # stages of (1, 2, 3, 4, 3, 3, 1) blocks: every block of a stage but the first adds its input
    model = checkpoint.build("mobilenetv2")
    assert [i for i, b in enumerate(model.blocks) if b.use_res] == [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]
    # at stride 1, block 1 (8 -> 8 channels at width 0.35) keeps its input's shape and adds it too
    model = checkpoint.build("mobilenetv2", {"resolution": 32, "reduce_strides": 2})
    assert [i for i, b in enumerate(model.blocks) if b.use_res] == [1, 2, 4, 5, 7, 8, 9, 11, 12, 14, 15]
    assert model.stem[0].stride == (1, 1) and model.blocks[1].dw[0].stride == (1, 1)
    assert model.blocks[3].dw[0].stride == (2, 2)
    feats = model.blocks(model.stem(torch.zeros(1, 3, 32, 32)))
    assert feats.shape[-2:] == (4, 4)


def test_unknown_model_options_are_errors():
    with pytest.raises(ValueError, match="no option widht"):
        checkpoint.build("mcunet", {"widht": 0.5})
    with pytest.raises(ValueError, match="unknown model"):
        checkpoint.build("resnet", {})
    with pytest.raises(ValueError, match="differ in length"):
        checkpoint.build("mcunet", {"kernel_sizes": (3, 5)})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{name: (model, .tflite path)} for the small configs."""
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name in SMALL:
        model = small_model(name)
        calib, _ = noisy_prototypes(16, 100)
        out[name] = (model, export_model(model, calib, d / f"{name}.tflite"))
    return out


@pytest.mark.parametrize("name", list(SMALL))
def test_export_is_int8_with_runtime_ops_and_module_names(exported, name):
    model, path = exported[name]
    g = load_graph(path)
    assert {op.kind for op in g.ops} <= RUNTIME_OPS
    assert "ADD" in {op.kind for op in g.ops}
    for op in g.ops:
        for t in op.inputs[:1] + op.outputs:
            assert g.tensors[t].dtype == "int8", (op.kind, g.tensors[t].name)
    names = {g.tensors[op.outputs[0]].name: op for op in g.ops}
    assert names["blocks.1.pw1"].kind == "CONV_2D"
    assert names["blocks.1.dw"].kind == "DEPTHWISE_CONV_2D"
    assert names["blocks.1.pw2"].kind == "CONV_2D"
    assert names["classifier"].kind == "FULLY_CONNECTED"
    assert names["pool"].kind == "MEAN"
    assert {"stem", "stem.weight", "blocks.1.dw.weight", "classifier.weight", "classifier.bias"} <= {t.name for t in g.tensors}
    residual = [f"blocks.{i}" for i, b in enumerate(model.blocks) if b.use_res]
    adds = [g.tensors[op.outputs[0]].name for op in g.ops if op.kind == "ADD"]
    assert adds == [f"{b}.add" for b in residual]
    for b in residual:   # each ADD sums the block's projection and the block's input
        add_inputs = {g.tensors[t].name for t in names[f"{b}.add"].inputs}
        assert f"{b}.pw2" in add_inputs and len(add_inputs) == 2
    for op in g.ops:     # a PAD is named after the conv it feeds
        if op.kind == "PAD":
            feeds = [u for u in g.ops if op.outputs[0] in u.inputs]
            assert g.tensors[op.outputs[0]].name == g.tensors[feeds[0].outputs[0]].name + ".pad"
    assert [n for n, _ in trace(model, torch.zeros(1, 3, R, R)).layers] == \
        [g.tensors[op.outputs[0]].name for op in g.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]


@pytest.mark.parametrize("name", list(SMALL))
def test_tflite_micro_agrees_with_the_float_model(exported, name):
    model, path = exported[name]
    g = load_graph(path)
    inp, out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    s, zp = float(inp.scale[0]), int(inp.zero_point[0])
    x, y = noisy_prototypes(40, 200)
    q = np.clip(np.round(x.permute(0, 2, 3, 1).numpy() / s) + zp, -128, 127).astype(np.int8)
    got = run_tflm(path, q[:, None]).reshape(len(q), -1)
    with torch.no_grad():
        want = model(torch.from_numpy((q.astype(np.float32) - zp) * s).permute(0, 3, 1, 2)).numpy()
    logits = (got.astype(np.float32) - int(out.zero_point[0])) * float(out.scale[0])
    assert np.mean(want.argmax(1) == y.numpy()) >= 0.5 and len(set(want.argmax(1))) >= 5   # it learnt something
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.9             # int8 in TFLM agrees with float
    assert np.corrcoef(logits.ravel(), want.ravel())[0, 1] > 0.95


def test_export_fails_loudly_when_residuals_do_not_match(exported):
    model, path = exported["mcunet"]
    g = load_graph(path)
    tr = trace(model, torch.zeros(1, 3, R, R))
    assert layer_names(g, tr)
    tr.residuals.pop()
    with pytest.raises(ModelError, match="ADD ops"):
        layer_names(g, tr)
    tr = trace(model, torch.zeros(1, 3, R, R))
    tr.residuals[0] = (tr.residuals[0][0], "blocks.0.pw2")   # an ADD that sums other tensors
    with pytest.raises(ModelError, match="does not add the output"):
        layer_names(g, tr)


@pytest.mark.parametrize("name", list(SMALL))
def test_simulator_equals_tflite_micro_layer_by_layer_on_every_model(exported, name):
    _, path = exported[name]
    g = load_graph(path)
    inp = g.tensors[g.inputs[0]]
    x, _ = noisy_prototypes(6, 300)
    s, zp = float(inp.scale[0]), int(inp.zero_point[0])
    q = np.clip(np.round(x.permute(0, 2, 3, 1).numpy() / s) + zp, -128, 127).astype(np.int8)
    want = run_tflm(path, q[:, None], tensors=True)
    sim = Simulator.from_tflite(path)
    got = sim.activations(q)
    for op in g.ops:
        t = op.outputs[0]
        assert np.array_equal(np.asarray(got[t]).reshape(len(q), -1), np.asarray(want[t]).reshape(len(q), -1)), \
            f"{name}: layer {g.tensors[t].name} ({op.kind}) differs"
