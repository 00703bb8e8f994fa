"""Baseline schemes (search.baselines), the memory accounting (search.memory) and the float FullTrain
reference (search.full_train), on the quick MobileNetV2 digits task."""
import math

import numpy as np
import pytest
import torch

from model_prep import checkpoint
from model_prep import scheme as fmt
from model_prep.models.blocks import count_macs
from model_prep.plan import plan_arena
from model_prep.simulate import Simulator
from model_prep.sparse_train import forward_macs
from search import baselines, full_train, memory, tasks

MODEL = "mobilenetv2-w0.35"


@pytest.fixture(scope="module")
def sim(digits_task):
    return Simulator.from_tflite(digits_task.tflite)


@pytest.fixture(scope="module")
def data(digits_task):
    return tasks.device_data(digits_task, 32, 32)


@pytest.fixture(scope="module")
def potentials(sim, data):
    return baselines.fisher_potentials(sim, data.q_train[:4], data.y_train[:4])


def updates(scheme):
    return {u.layer: u for u in scheme.layers}


def test_simple_baselines_update_what_they_say(sim):
    graph = sim.graph
    names = list(fmt.trainable_layers(graph))
    assert names[-1] == "classifier" == baselines.classifier(graph)
    assert baselines.none_scheme(graph, MODEL).layers == ()
    last = updates(baselines.last_layer(graph, MODEL))
    assert list(last) == ["classifier"] and last["classifier"].bias and last["classifier"].weight.kind == "full"
    bias = baselines.bias_only(graph, MODEL)
    fmt.validate(bias, graph)
    assert [u.layer for u in bias.layers] == names and all(u.bias for u in bias.layers)
    assert {u.layer for u in bias.layers if u.weight.kind != "none"} == {"classifier"}


def test_paper_rule_updates_first_pointwise_of_the_last_blocks(sim):
    graph = sim.graph
    names = list(fmt.trainable_layers(graph))
    s = baselines.paper_rule(graph, MODEL)
    fmt.validate(s, graph)
    got = updates(s)
    weights = {n: u.weight.ratio for n, u in got.items() if u.weight.kind == "channels"}
    assert weights == {"blocks.16.pw1": 0.5, "blocks.15.pw1": 0.25, "blocks.14.pw1": 0.125}
    assert all(got[n].weight.select == "magnitude" for n in weights)
    k = math.ceil(len(names) / 3)
    assert set(got) == set(names[-k:]) and all(u.bias for u in got.values())
    assert got["classifier"].weight.kind == "full" and s.name == "SparseUpdate"

    custom = updates(baselines.paper_rule(graph, MODEL, bias_k=4, weight_layers=["blocks.3.pw1"], ratios=(1.0,)))
    assert set(custom) == set(names[-4:]) | {"blocks.3.pw1"} and custom["blocks.3.pw1"].weight.ratio == 1.0
    with pytest.raises(ValueError, match="2 ratios"):
        baselines.paper_rule(graph, MODEL, weight_layers=["blocks.3.pw1"], ratios=(0.5, 0.25))


def test_fisher_potentials_cover_every_layer_and_are_a_per_sample_mean(sim, data, potentials):
    layers = fmt.trainable_layers(sim.graph)
    assert list(potentials) == list(layers)
    for name, delta in potentials.items():
        assert delta.shape == (sim.graph.tensors[layers[name].inputs[1]].shape[-1],)
        assert np.all(np.isfinite(delta)) and np.all(delta >= 0)
    assert sum(d.sum() > 0 for d in potentials.values()) > len(potentials) // 2
    x, y = data.q_train[:2], data.y_train[:2]
    once = baselines.fisher_potentials(sim, x, y)
    twice = baselines.fisher_potentials(sim, np.concatenate([x, x]), np.concatenate([y, y]))
    for name in once:
        np.testing.assert_allclose(twice[name], once[name], rtol=1e-9, atol=0)
    other = baselines.fisher_potentials(sim, x, (y + 1) % 10)
    assert any(not np.allclose(other[n], once[n]) for n in once)


def test_fisher_of_the_classifier_matches_its_float_gradient(sim, data, potentials):
    """Classifier input channel c: a = s_x (x - zp), dL/da = W^T (softmax - onehot) in real units."""
    graph, x, y = sim.graph, data.q_train[:4], data.y_train[:4]
    fc = next(op for op in sim.ops if op.name == "classifier")
    acts = sim.activations(x)
    q_in, q_logits = graph.tensors[fc.input], graph.tensors[fc.output]
    a = float(q_in.scale[0]) * (acts[fc.input].reshape(len(x), -1).double().numpy() - q_in.zero_point[0])
    logits = float(q_logits.scale[0]) * (acts[fc.output].reshape(len(x), -1).double().numpy() - q_logits.zero_point[0])
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    w_scale = np.broadcast_to(graph.tensors[graph.ops[-1].inputs[1]].scale, (fc.weights.shape[0],))
    w = fc.weights.astype(np.float64) * w_scale[:, None]
    g = (p - np.eye(p.shape[1])[y]) @ w
    expected = ((a * g) ** 2).mean(0) / 2
    got = potentials["classifier"]
    assert got.sum() == pytest.approx(expected.sum(), rel=0.05)
    assert np.corrcoef(got, expected)[0, 1] > 0.99


def test_tinytrain_stays_within_budget_and_picks_channels_by_fisher(sim, data, potentials):
    graph = sim.graph
    only_classifier = baselines.scheme_memory(baselines.last_layer(graph, MODEL), sim.ops)
    small = baselines.tinytrain(sim, None, None, only_classifier - 1, potentials=potentials)
    assert [u.layer for u in small.layers] == ["classifier"]
    budget = only_classifier + 20_000
    for combine in ("product", "sum"):
        s = baselines.tinytrain(sim, None, None, budget, ratio=0.25, combine=combine, potentials=potentials)
        fmt.validate(s, graph)
        assert s.name == "TinyTrain" and baselines.scheme_memory(s, sim.ops) <= budget
        got = updates(s)
        assert got["classifier"].weight.kind == "full" and len(got) > 1
        for name, u in got.items():
            if name != "classifier":
                assert u.bias and u.weight.channels == tuple(baselines.top_channels(potentials[name], 0.25))
                delta = potentials[name]
                kept = np.zeros(len(delta), bool)
                kept[list(u.weight.channels)] = True
                assert kept.sum() == max(1, round(0.25 * len(delta))) and delta[kept].min() >= delta[~kept].max()
    scores = baselines.layer_scores(sim, {n: d for n, d in potentials.items() if n != "classifier" and d.sum() > 0})
    one = baselines.tinytrain(sim, None, None, 10**9, max_layers=1, potentials=potentials)
    assert {u.layer for u in one.layers} == {"classifier", max(scores, key=scores.get)}


def test_methods_registry_builds_every_method(sim, data, potentials):
    assert list(baselines.METHODS) == ["None", "LastLayer", "BiasOnly", "SparseUpdate", "TinyTrain"]
    for name, build in baselines.METHODS.items():
        s = build(sim.graph, MODEL, sim=sim, x=data.q_train[:4], y=data.y_train[:4], budget_bytes=50_000,
                  potentials=potentials)
        fmt.validate(s, sim.graph)
        assert s.name == name and s.model == MODEL


def test_training_memory_grows_with_the_scheme_and_the_gradient_format(sim):
    graph = sim.graph
    arena = plan_arena(graph, sim.ops).arena_bytes
    assert memory.training_memory(graph, baselines.none_scheme(graph, MODEL)).total == arena
    last = memory.training_memory(graph, baselines.last_layer(graph, MODEL), "int16", sim.ops)
    assert last.gradients == 2 * 10 and last.relu_masks == 0 and last.weights == 10 * 1280
    nested = [baselines.last_layer(graph, MODEL),
              baselines.paper_rule(graph, MODEL, bias_k=6, weight_layers=["blocks.16.pw1"], ratios=(0.25,)),
              baselines.paper_rule(graph, MODEL, bias_k=6, weight_layers=["blocks.16.pw1"], ratios=(0.5,)),
              baselines.paper_rule(graph, MODEL, bias_k=12, weight_layers=["blocks.16.pw1"], ratios=(0.5,))]
    totals = [memory.training_memory(graph, s, "int16", sim.ops).total for s in nested]
    assert totals == sorted(totals) and len(set(totals)) == len(totals)
    rule = baselines.paper_rule(graph, MODEL)
    by_format = {f: memory.training_memory(graph, rule, f, sim.ops) for f in ("int8", "int16", "float32")}
    assert by_format["int8"].total < by_format["int16"].total < by_format["float32"].total
    assert by_format["float32"].gradients == 4 * by_format["int8"].gradients > 0
    assert by_format["int8"].relu_masks > 0


def test_pytorch_full_train_memory_counts_parameters_thrice_and_grows_with_batch(digits_task):
    model, _ = checkpoint.load(digits_task.checkpoint)
    shape = full_train.input_shape(digits_task)
    param_bytes = sum(p.numel() * 4 for p in model.parameters())
    one = memory.pytorch_full_train_memory(model, shape, batch_size=1)
    assert one.parameters == param_bytes and one.total >= 3 * param_bytes
    assert one.saved_activations >= 4 * math.prod(shape)   # at least the input, in float32
    assert memory.pytorch_full_train_bytes(model, shape, batch_size=4) > one.total


def test_pytorch_process_peak_is_the_childs_own_not_its_parents(digits_task):
    # Linux carries ru_maxrss across fork and exec: measured that way, a large parent (a benchmark that has
    # exported models in-process) became the "PyTorch" figure. VmHWM is the child's own address space's.
    shape = full_train.input_shape(digits_task)
    alone = memory.pytorch_process_peak_bytes(digits_task.checkpoint, shape)
    ballast = b"\x01" * (alone + (512 << 20))      # resident: every page written
    beside = memory.pytorch_process_peak_bytes(digits_task.checkpoint, shape)
    assert len(ballast) > beside and abs(beside - alone) < 0.2 * alone
    assert alone > sum(p.numel() * 4 for p in checkpoint.load(digits_task.checkpoint)[0].parameters())


def test_full_train_trains_every_layer_and_keeps_batchnorm_statistics(digits_task, data):
    model, _ = checkpoint.load(digits_task.checkpoint)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    full_train.fine_tune(model, data.x_train[:16], data.y_train[:16], epochs=1, lr=0.01, batch_size=8)
    after = model.state_dict()
    assert not torch.equal(after["stem.0.weight"], before["stem.0.weight"])
    assert not torch.equal(after["stem.1.weight"], before["stem.1.weight"])          # BN affine trains
    assert torch.equal(after["stem.1.running_mean"], before["stem.1.running_mean"])  # BN statistics do not
    accs = full_train.full_train_float(digits_task, data, epochs=1, lr=0.003, batch_size=8)
    assert len(accs) == 2 and all(0.0 <= a <= 1.0 for a in accs)


def test_full_train_macs_are_three_forwards_of_the_int8_graph(digits_task, sim):
    model, _ = checkpoint.load(digits_task.checkpoint)
    forward = sum(forward_macs(op) for op in sim.ops)
    assert count_macs(model, torch.zeros(1, *full_train.input_shape(digits_task))) == forward
    assert full_train.full_train_macs(digits_task) == 3 * forward
