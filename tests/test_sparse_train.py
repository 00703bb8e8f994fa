"""Sparse-update training on the integer simulator (model_prep.sparse_train, model_prep.grad_ops).

Gradients are checked against PyTorch autograd through a float twin of the int8 graph (the same
weights and scales, no rounding); the integer formats against float32; the sparse backward for
what it must not compute; the update arithmetic for its rounding.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model_prep import grad_ops
from model_prep import scheme as fmt
from model_prep.simulate import Simulator
from model_prep.sparse_train import SparseTrainer, TrainConfig
from search import tasks
from tflite_models import convert, tf_fixture  # noqa: F401 (registers the fixture `tf`)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mbv2(digits_task):
    data = tasks.device_data(digits_task, 24, 24)
    return Simulator.from_tflite(digits_task.tflite), data


def make_scheme(layers):
    return fmt.from_dict({"format": fmt.FORMAT, "model": "test", "layers": layers})


def trainable(sim):
    return [op.name for op in sim.ops if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected")]


def everything(sim):
    return make_scheme([{"layer": n, "bias": True, "weight": {"kind": "full"}} for n in trainable(sim)])


# -- a float twin of the int8 graph, for autograd ------------------------------------------------


def float_twin_grads(sim, x_int8, labels):
    """dL/dW_q and dL/db_q of every trainable layer by autograd through a float twin of the graph.

    Each layer computes in real numbers with the int8 model's weights and scales, and its value is
    then replaced by the int8 simulator's (straight through: y = f(x) + (y_int8 - f(x)).detach()),
    with the gradient masked where the int8 output hit its clamp: the chain rule the engine implements."""
    g = sim.graph
    acts = sim.activations(x_int8)

    def value(i):
        t = g.tensors[i]
        return (acts[i].to(torch.float64) - int(t.zero_point[0])) * float(t.scale[0])

    real = {i: value(i) for i in g.inputs}
    params = {}
    for k, op in enumerate(sim.ops):
        x = real[op.inputs[0]].reshape((-1,) + tuple(op.in_dims[1:]))
        p = op.params
        clamp = None
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            wq = torch.tensor(op.weights.astype(np.float64), requires_grad=True)
            bq = torch.tensor(op.bias.astype(np.float64), requires_grad=True)
            params[op.name] = (wq, bq)
            s_w = torch.tensor(np.asarray(g.tensors[g.ops[k].inputs[1]].scale, np.float64))
            s_x = float(g.tensors[op.input].scale[0])
            if op.kind == "fully_connected":
                y = x.reshape(len(x), -1) @ (wq * s_w[:, None]).T
            else:
                dw = op.kind == "depthwise_conv2d"
                w = (wq * s_w).permute(3, 0, 1, 2) if dw else (wq * s_w[:, None, None, None]).permute(0, 3, 1, 2)
                kh, kw = op.filter_dims[1:3]
                oh, ow = op.out_dims[1:3]
                ph = max((oh - 1) * p.stride_h + (kh - 1) * p.dilation_h + 1 - p.pad_h - x.shape[1], 0)
                pw = max((ow - 1) * p.stride_w + (kw - 1) * p.dilation_w + 1 - p.pad_w - x.shape[2], 0)
                xp = F.pad(x.permute(0, 3, 1, 2), (p.pad_w, pw, p.pad_h, ph))
                y = F.conv2d(xp, w, stride=(p.stride_h, p.stride_w), dilation=(p.dilation_h, p.dilation_w),
                             groups=x.shape[3] if dw else 1)[:, :, :oh, :ow].permute(0, 2, 3, 1)
            y = y + bq * s_w * s_x
            clamp = (p.act_min, p.act_max)
        elif op.kind == "add":
            y = x + real[op.inputs[1]].reshape(x.shape)
            clamp = (p.act_min, p.act_max)
        elif op.kind == "mean_hw":
            y = x.mean(dim=(1, 2))
        elif op.kind == "pad":
            y = F.pad(x, [v for d in (3, 2, 1) for v in (p.before[d], p.after[d])])
        elif op.kind == "reshape":
            y = x
        else:
            break
        q = acts[op.output].reshape(y.shape).to(torch.int64)
        if clamp is not None:
            y = y * ((q > clamp[0]) & (q < clamp[1]))
        real[op.output] = y + (value(op.output).reshape(y.shape) - y).detach()
    logits = real[sim.ops[[op.kind for op in sim.ops].index("fully_connected")].output]
    F.cross_entropy(logits.reshape(len(labels), -1), torch.as_tensor(labels), reduction="sum").backward()
    return {n: (w.grad, b.grad) for n, (w, b) in params.items()}


def engine_grads(sim, x_int8, labels, grad_format):
    """The engine's dL/dW_q and dL/db_q (float64 values) of every trainable layer, nothing updated."""
    t = SparseTrainer(sim, everything(sim), TrainConfig(grad_format=grad_format, batch_size=len(labels)))
    got = {}

    def record(op, g_acc, x_in):
        g = grad_ops.batch_align(g_acc, grad_format)
        unit = 2.0 ** float(g.e[0])
        channels = np.arange(op.weights.shape[-1])
        got[op.name] = (grad_ops.weight_grad_exact(op, x_in, g.v, channels) * unit,
                        grad_ops.bias_grad_exact(g.v) * unit)

    with torch.no_grad():
        t._backward(sim.activations(x_int8), np.asarray(labels), t.needs, record)
    for w, b in got.values():
        assert not torch.isnan(w).any() and not torch.isnan(b).any()
    return got


def corr(a, b):
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1])


def test_gradients_match_autograd_through_the_float_twin(mbv2):
    sim, data = mbv2
    x, y = data.q_train[:8], data.y_train[:8]
    ref = float_twin_grads(sim, x, y)
    got = engine_grads(sim, x, y, "float32")
    assert set(got) == set(ref)
    for name in ref:   # float32 and fixed-point multipliers against float64: close, not equal
        (gw, gb), (rw, rb) = got[name], ref[name]
        assert float((gw - rw).norm()) <= 1e-4 * float(rw.norm()) + 1e-12, name
        assert float((gb - rb).norm()) <= 1e-4 * float(rb.norm()) + 1e-12, name


@pytest.mark.parametrize("grad_format, depth, min_corr", [("int16", 1.0, 0.9999), ("int8", 0.33, 0.95)])
def test_integer_gradients_follow_float32(mbv2, grad_format, depth, min_corr):
    """int16 follows float32 through the whole network; int8 only near the loss (its error compounds)."""
    sim, data = mbv2
    x, y = data.q_train[:4], data.y_train[:4]
    ref = engine_grads(sim, x, y, "float32")
    got = engine_grads(sim, x, y, grad_format)
    names = trainable(sim)
    for name in names[-int(depth * len(names)):]:
        if float(ref[name][0].norm()) > 0:
            assert corr(got[name][0], ref[name][0]) > min_corr, name


def test_backward_stops_at_the_lowest_updated_layer(mbv2, monkeypatch):
    sim, data = mbv2
    names = trainable(sim)
    lowest = names[-4]
    scheme = make_scheme([{"layer": lowest, "bias": True, "weight": {"kind": "channels", "ratio": 0.25}},
                          {"layer": names[-1], "bias": True, "weight": {"kind": "full"}}])
    t = SparseTrainer(sim, scheme, TrainConfig(batch_size=4))
    input_grads, weight_grads = [], []
    real_input, real_weight = grad_ops.input_grad_exact, grad_ops.weight_grad_exact
    monkeypatch.setattr(grad_ops, "input_grad_exact", lambda op, *a: input_grads.append(op.name) or real_input(op, *a))
    monkeypatch.setattr(grad_ops, "weight_grad_exact",
                        lambda op, x, g, ch, rows=None: weight_grads.append((op.name, len(ch))) or
                        real_weight(op, x, g, ch, rows))
    t.fit(data.q_train[:8], data.y_train[:8])
    order = [op.name for op in sim.ops]
    assert input_grads and all(order.index(n) > order.index(lowest) for n in input_grads)
    assert lowest not in input_grads                      # its input gradient is never needed
    n_in = sim.layer(lowest).op.weights.shape[-1]
    assert (lowest, max(1, round(n_in / 4))) in weight_grads   # a quarter of the channels, not all
    assert all(n in (lowest, names[-1]) for n, _ in weight_grads)


def test_only_the_selected_channels_and_rows_change(mbv2):
    sim, data = mbv2
    dw = [op for op in sim.ops if op.kind == "depthwise_conv2d"][-1]
    pw = [op for op in sim.ops if op.kind == "conv2d"][-2]
    scheme = make_scheme([
        {"layer": pw.name, "bias": False, "weight": {"kind": "channels", "channels": [1, 3]}},
        {"layer": dw.name, "bias": False, "weight": {"kind": "subtensor", "groups": [0], "group_size": 4, "rows": [2]}}])
    t = SparseTrainer(sim, scheme, TrainConfig(lr=0.5, batch_size=8, epochs=2))
    t.fit(data.q_train, data.y_train)
    w_pw, b_pw = (a.numpy() for a in t.overrides[pw.name])
    changed = np.nonzero((w_pw != pw.weights).any(axis=(0, 1, 2)))[0]
    assert len(changed) and set(changed) <= {1, 3}
    assert np.array_equal(b_pw, pw.bias)
    diff = t.overrides[dw.name][0].numpy() != dw.weights
    rows, channels = np.nonzero(diff.any(axis=(0, 2)))[0], np.nonzero(diff.any(axis=(0, 1, 2)))[0]
    assert diff.any() and set(rows) <= {2} and set(channels) <= {0, 1, 2, 3}


def test_training_is_deterministic_and_batch_one_is_the_stream(mbv2):
    sim, data = mbv2
    names = trainable(sim)
    scheme = make_scheme([{"layer": names[-2], "bias": True, "weight": {"kind": "channels", "ratio": 0.5}},
                          {"layer": names[-1], "bias": True, "weight": {"kind": "full"}}])
    a = SparseTrainer(sim, scheme, TrainConfig(batch_size=1, lr=0.1)).fit(data.q_train[:6], data.y_train[:6])
    b = SparseTrainer(sim, scheme, TrainConfig(batch_size=1, lr=0.1))
    order = np.random.default_rng(0).permutation(6)   # fit's order for seed 0
    for i in order:
        b.step(data.q_train[i:i + 1], data.y_train[i:i + 1])
    for name in a.overrides:
        for u, v in zip(a.overrides[name], b.overrides[name]):
            assert torch.equal(u, v)
    assert not np.array_equal(a.overrides[names[-1]][0].numpy(), sim.layer(names[-1]).op.weights)   # it trained


def test_qas_moves_weights_where_plain_int8_sgd_stalls(mbv2):
    sim, data = mbv2
    names = trainable(sim)
    scheme = make_scheme([{"layer": n, "bias": True, "weight": {"kind": "full"}} for n in names[-3:]])
    moved = {}
    for qas in (True, False):
        t = SparseTrainer(sim, scheme, TrainConfig(qas=qas, lr=0.05, batch_size=4)).fit(data.q_train, data.y_train)
        moved[qas] = sum(int((t.overrides[n][0].numpy() != sim.layer(n).op.weights).sum()) for n in names[-3:])
    assert moved[True] > 10 * max(1, moved[False])


def test_a_layer_without_backward_below_an_update_is_refused(tf, tmp_path):
    layers = tf.keras.layers
    path = tmp_path / "pool.tflite"
    path.write_bytes(convert(tf, lambda x: layers.Dense(3)(layers.Flatten()(layers.MaxPooling2D(2)(
        layers.Conv2D(4, 3)(x)))), (6, 6, 2)))
    sim = Simulator.from_tflite(path)
    conv = next(op.name for op in sim.ops if op.kind == "conv2d")
    with pytest.raises(fmt.SchemeError, match="max_pool2d"):
        SparseTrainer(sim, make_scheme([{"layer": conv, "bias": True}]))
    fc = next(op.name for op in sim.ops if op.kind == "fully_connected")   # above the pool: fine
    SparseTrainer(sim, make_scheme([{"layer": fc, "bias": True, "weight": {"kind": "full"}}]))


def test_a_float_io_model_trains_its_classifier(tf, tmp_path):
    """QUANTIZE in front and DEQUANTIZE behind the logits: the trainer reads through both."""
    layers = tf.keras.layers
    path = tmp_path / "float_io.tflite"
    path.write_bytes(convert(tf, lambda x: layers.Dense(3)(layers.Flatten()(layers.Conv2D(4, 3, activation="relu")(x))),
                             (6, 6, 2), io="float32"))
    sim = Simulator.from_tflite(path)
    assert sim.ops[0].kind == "quantize" and sim.ops[-1].kind == "dequantize"
    fc = next(op for op in sim.ops if op.kind == "fully_connected")
    t = SparseTrainer(sim, make_scheme([{"layer": fc.name, "bias": True, "weight": {"kind": "full"}}]),
                      TrainConfig(lr=0.2, batch_size=4, epochs=10))
    x = np.random.default_rng(0).normal(size=(24, 6, 6, 2)).astype(np.float32)
    y = np.arange(24) % 3
    before = t.accuracy(x, y)
    t.fit(x, y)
    assert not np.array_equal(t.overrides[fc.name][0].numpy(), fc.weights)
    assert t.accuracy(x, y) > before          # it fits its own training data better


# -- the arithmetic ------------------------------------------------------------------------------


def test_normalize_fits_the_format_and_keeps_the_exponent():
    exact = torch.tensor([[70000.0, -3.0], [5.0, -100.0]], dtype=torch.float64)
    g = grad_ops.normalize(exact, torch.tensor([0, -4]), "int16")
    assert g.v.abs().max() <= 2**15 - 1
    assert g.e.tolist() == [2, -4]                      # 70000 needs 17 bits: shift 2; 100 fits
    assert g.v[0].tolist() == [17500.0, -1.0]           # -3 / 4 = -0.75 rounds half up to -1
    assert g.v[1].tolist() == [5.0, -100.0]
    g8 = grad_ops.normalize(exact, torch.tensor([0, 0]), "int8")
    assert g8.v.abs().max() <= 127 and g8.e.tolist() == [10, 0]


def test_exponents_far_apart_never_make_nan():
    """An all-zero gradient's exponent falls with every layer; aligning it must stay a plain 0."""
    zero = grad_ops.Grad(torch.zeros(1, 3, dtype=torch.float64), torch.tensor([-5000]))
    live = grad_ops.Grad(torch.tensor([[7.0, -9.0, 0.0]], dtype=torch.float64), torch.tensor([-20]))
    summed = grad_ops.add(zero, live, "int16")
    assert summed.v.tolist() == [[7.0, -9.0, 0.0]] and summed.e.tolist() == [-20]
    batch = grad_ops.Grad(torch.cat([zero.v, live.v]), torch.tensor([-5000, -20]))
    aligned = grad_ops.batch_align(batch, "int16")
    assert not torch.isnan(aligned.v).any() and aligned.v[0].tolist() == [0.0, 0.0, 0.0]
    assert grad_ops.round_shift(torch.tensor([-3.0, 5.0]), 4000).tolist() == [0.0, 0.0]


def test_scale_is_exact_for_one_channel_and_rounds_the_others():
    g = grad_ops.Grad(torch.tensor([[1000.0, 1000.0]], dtype=torch.float64), torch.tensor([0]))
    # multipliers 0.5 (m = 2^30, shift 0) and 0.25 (m = 2^30, shift -1)
    s = grad_ops.scale(g, [1 << 30, 1 << 30], [0, -1], "int16")
    values = s.v * 2.0 ** float(s.e[0])
    assert values.tolist() == [[500.0, 250.0]]


def test_stochastic_rounding_is_unbiased_and_biases_round_to_nearest():
    n = 20000
    q = torch.zeros(n, dtype=torch.int64)
    grad = torch.full((n,), -3.0, dtype=torch.float64)         # step = +3 * m * 2^(k - 15 + e)
    m, k = grad_ops.update_multiplier(0.1)                      # 0.3 per element
    rand = grad_ops.uniform32(7, 0, 0, n)
    out = grad_ops.apply_update(q, grad, torch.tensor(0), torch.tensor(m), torch.tensor(k), -127, 127, rand)
    assert set(out.unique().tolist()) == {0, 1}
    assert abs(out.double().mean().item() - 0.3) < 0.02
    nearest = grad_ops.apply_update(q[:1], grad[:1], torch.tensor(0), torch.tensor(m), torch.tensor(k), -127, 127)
    assert nearest.tolist() == [0]
    big = grad_ops.apply_update(torch.tensor([120]), torch.tensor([-1000.0], dtype=torch.float64), torch.tensor(0),
                                torch.tensor(m), torch.tensor(k), -127, 127)
    assert big.tolist() == [127]                                 # clamped to the int8 weight range


def test_random_numbers_are_addressable_by_element():
    a = grad_ops.uniform32(1, 5, 3, 10)
    b = grad_ops.uniform32(1, 5, 3, 1000)
    assert torch.equal(a, b[:10])
    assert not torch.equal(a, grad_ops.uniform32(1, 6, 3, 10))
    assert int(a.min()) >= 0 and int(a.max()) < 2**32


def test_pad_backward_crops_the_window():
    from model_prep.int8_params import PadParams
    from model_prep.lower import LoweredOp
    op = LoweredOp("p", "pad", (0,), 1, (1, 2, 3, 1), (1, 4, 4, 1), params=PadParams((0, 1, 0, 0), (0, 1, 1, 0), 0))
    v = torch.arange(16, dtype=torch.float64).reshape(1, 4, 4, 1)
    g = grad_ops.pad_input_grad(grad_ops.Grad(v, torch.tensor([0])), op)
    assert g.v[0, :, :, 0].tolist() == [[4.0, 5.0, 6.0], [8.0, 9.0, 10.0]]
