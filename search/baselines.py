"""The baseline sparse-update schemes the benchmark compares, each built for a given int8 model.

    from search import baselines
    graph = load_graph("build/tasks/....tflite")
    baselines.last_layer(graph, "mobilenetv2-w0.35")
    baselines.paper_rule(graph, "mobilenetv2-w0.35", bias_k=12, ratios=(1.0, 0.5))
    sim = Simulator.from_tflite(path)
    baselines.tinytrain(sim, x_int8[:16], y[:16], budget_bytes=64_000)
    for name, build in baselines.METHODS.items():   # "None", "LastLayer", "BiasOnly", "SparseUpdate", "TinyTrain"
        scheme = build(graph, model, sim=sim, x=x_int8, y=y, budget_bytes=64_000)

Methods (every scheme also updates the classifier, the last trainable layer, fully with its bias,
except "None"):
  None          nothing is trained (the pre-trained model as it is)
  LastLayer     the classifier only
  BiasOnly      TinyTL-style: the bias of every trainable layer
  SparseUpdate  the rule of Lin et al. (2022): biases of the last k layers plus the weights of the
                first point-wise conv of the last few blocks, at channel ratios chosen by weight
                magnitude, the largest ratio in the last block
  TinyTrain     Kwon et al. (2024): from a few samples of the new task, per layer the Fisher
                potential of its input channels; layers picked greedily by potential per cost
                within a memory budget, in each the channels of largest Fisher information
FullTrain (every weight, in float) is no scheme: see search.full_train.
"""
import math
from pathlib import Path

import numpy as np

from model_prep import scheme as fmt
from model_prep.simulate import Simulator
from model_prep.sparse_train import SparseTrainer, TrainConfig, forward_macs
from search.scheme import layer_costs

FULL = {"kind": "full"}
FISHER_SAMPLES = 32   # TinyTrain: the new task's samples its criterion sees (the bench; contrib's "fisher" rule)


def _build(name, graph, model, updates):
    """A validated Scheme from {layer: (bias, weight dict)}, its layers in the model's order."""
    order = list(fmt.trainable_layers(graph))
    layers = [{"layer": n, "bias": updates[n][0], "weight": updates[n][1]}
              for n in sorted(updates, key=order.index)]
    scheme = fmt.from_dict({"format": fmt.FORMAT, "model": model, "name": name, "layers": layers})
    return fmt.validate(scheme, graph)


def classifier(graph):
    """Name of the classifier: the model's last trainable layer."""
    return list(fmt.trainable_layers(graph))[-1]


def none_scheme(graph, model):
    return _build("None", graph, model, {})


def last_layer(graph, model):
    return _build("LastLayer", graph, model, {classifier(graph): (True, FULL)})


def bias_only(graph, model):
    updates = {n: (True, {"kind": "none"}) for n in fmt.trainable_layers(graph)}
    updates[classifier(graph)] = (True, FULL)
    return _build("BiasOnly", graph, model, updates)


def first_pointwise_of_last_blocks(graph, n):
    """The first point-wise conv (`*.pw1`; `*.pw` in models without) of each of the last n blocks, last first."""
    names = list(fmt.trainable_layers(graph))
    for suffix in (".pw1", ".pw"):
        found = [name for name in names if name.endswith(suffix)]
        if found:
            return found[::-1][:n]
    raise ValueError(f"{graph.path}: no point-wise layers named *.pw1 or *.pw")


def paper_rule(graph, model, bias_k=None, weight_layers=None, ratios=(0.5, 0.25, 0.125)):
    """Lin et al.'s rule: biases of the last `bias_k` trainable layers (default: the last third,
    classifier included), plus the weights of `weight_layers` (default: the first point-wise conv of
    each of the last len(ratios) blocks, last block first), layer i at channel ratio ratios[i] of the
    channels of largest weight magnitude. A layer whose weight is updated updates its bias too."""
    names = list(fmt.trainable_layers(graph))
    k = math.ceil(len(names) / 3) if bias_k is None else bias_k
    if weight_layers is None:
        weight_layers = first_pointwise_of_last_blocks(graph, len(ratios))
        ratios = ratios[:len(weight_layers)]
    if len(weight_layers) != len(ratios):
        raise ValueError(f"paper_rule: {len(weight_layers)} weight layers but {len(ratios)} ratios")
    updates = {n: (True, {"kind": "none"}) for n in names[len(names) - k:]}
    for name, ratio in zip(weight_layers, ratios):
        updates[name] = (True, {"kind": "channels", "ratio": ratio, "select": "magnitude"})
    updates[classifier(graph)] = (True, FULL)
    return _build("SparseUpdate", graph, model, updates)


# -- TinyTrain -----------------------------------------------------------------------------------

def _simulator(model):
    """A Simulator from a Simulator, a SparseTrainer (its simulator) or a .tflite path."""
    if isinstance(model, Simulator):
        return model
    if isinstance(model, SparseTrainer):
        return model.sim
    return Simulator.from_tflite(model)


def fisher_potentials(sim, x, y, batch_size=8, grad_format="int16"):
    """{layer: Fisher information per weight channel} of every trainable layer, from samples (x, y).

    For input channel c of a layer, with a = x - zp its int8 input and g = dL/dx the loss gradient
    there (from the integer backward, nothing updated):
        delta_c = mean over samples of (sum over positions of a * g)^2 / 2
    (Theis et al. 2018, as TinyTrain). The product a * g is the same in real units, since the
    scales cancel. A depthwise layer with depth multiplier m shares each input channel's delta
    evenly among its m weight channels, so a layer's potential is the sum of its array."""
    sim = _simulator(sim)
    graph = sim.graph
    trainer = SparseTrainer(sim, bias_only(graph, Path(graph.path).stem), TrainConfig(grad_format=grad_format))
    ops = {op.name: op for op in sim.ops}
    names = list(fmt.trainable_layers(graph))
    squares = {n: 0.0 for n in names}
    x, y = np.asarray(x), np.asarray(y)
    for i in range(0, len(x), batch_size):
        got = trainer.input_gradients(x[i:i + batch_size], y[i:i + batch_size], names)
        for name, (a, g) in got.items():
            per_channel = (a * g).reshape(len(a), -1, a.shape[-1]).sum(dim=1)
            squares[name] = squares[name] + (per_channel ** 2).sum(dim=0).numpy()
    potentials = {}
    for name in names:
        delta = np.broadcast_to(np.asarray(squares[name], np.float64) / (2 * len(x)), (ops[name].in_dims[3],))
        multiplier = ops[name].weights.shape[-1] // len(delta) if ops[name].kind == "depthwise_conv2d" else 1
        potentials[name] = np.repeat(delta, multiplier) / multiplier
    return potentials


def task_potentials(sim, data):
    """fisher_potentials of the first FISHER_SAMPLES device train samples of a task (tasks.device_data): what
    TinyTrain's criterion sees of the new task (the bench's TinyTrain, contrib's "fisher" rule)."""
    few = slice(FISHER_SAMPLES)
    return fisher_potentials(sim, data.q_train[few], data.y_train[few])


def layer_scores(sim, potentials, alpha=1.0, beta=1.0, combine="product"):
    """{layer: Fisher potential / cost}. cost = param_share^alpha * mac_share^beta ("product") or
    alpha * param_share + beta * mac_share ("sum"); shares are of the whole model's parameters and
    forward MACs. Kwon et al. divide the potential by the layer's relative parameters and MACs; the
    paper leaves the exact combination open (see ../shared/notes/method.md), hence both forms."""
    ops = {op.name: op for op in _simulator(sim).ops}
    trainable = [ops[n] for n in potentials]
    params = {op.name: op.weights.size for op in trainable}
    macs = {op.name: forward_macs(op) for op in trainable}
    total_params, total_macs = sum(params.values()), sum(macs.values())
    scores = {}
    for name, delta in potentials.items():
        p, m = params[name] / total_params, macs[name] / total_macs
        if combine == "product":
            cost = p ** alpha * m ** beta
        elif combine == "sum":
            cost = alpha * p + beta * m
        else:
            raise ValueError(f"combine '{combine}'; expected 'product' or 'sum'")
        scores[name] = float(delta.sum()) / cost
    return scores


def top_channels(delta, ratio):
    """Indices (sorted) of the round(ratio * n) channels (at least one) of largest Fisher information."""
    k = max(1, round(ratio * len(delta)))
    return sorted(int(c) for c in np.argsort(-delta, kind="stable")[:k])


def scheme_memory(scheme, lowered):
    """Extra SRAM of a scheme per Lin et al.: updated weights + biases + saved input activations."""
    ops = {op.name: op for op in lowered}
    return sum(sum(layer_costs(u, ops[u.layer])[:3]) for u in scheme.layers)


def tinytrain(sim, x, y, budget_bytes, ratio=0.25, alpha=1.0, beta=1.0, combine="product", max_layers=None,
              model=None, potentials=None, memory_of=None):
    """TinyTrain's task-adaptive scheme for the samples (x int8, y) within `budget_bytes` of extra memory.

    sim: a Simulator (share one), a SparseTrainer or a .tflite path. Layers (all trainable but the
    classifier, of positive potential) in order of layer_scores; each is taken, with its bias and
    its top `ratio` channels by Fisher information, if the scheme's memory (scheme_memory, the
    classifier's included) stays within the budget; at most `max_layers` of them. The classifier
    is always updated (full + bias), even where it alone exceeds the budget. `potentials`: reuse
    fisher_potentials' result (e.g. across budgets); `memory_of`: scheme -> bytes that the budget bounds
    (default scheme_memory; the benchmark passes the whole training memory, search.memory)."""
    sim = _simulator(sim)
    graph, lowered = sim.graph, sim.ops
    potentials = fisher_potentials(sim, x, y) if potentials is None else potentials
    memory_of = memory_of or (lambda scheme: scheme_memory(scheme, lowered))
    head = classifier(graph)
    candidates = {n: d for n, d in potentials.items() if n != head and d.sum() > 0}
    scores = layer_scores(sim, candidates, alpha, beta, combine)
    model = model or Path(graph.path).stem
    updates = {head: (True, FULL)}
    for name in sorted(scores, key=lambda n: -scores[n]):
        if max_layers is not None and len(updates) - 1 >= max_layers:
            break
        trial = dict(updates)
        trial[name] = (True, {"kind": "channels", "channels": top_channels(potentials[name], ratio)})
        if memory_of(_build("TinyTrain", graph, model, trial)) <= budget_bytes:
            updates = trial
    return _build("TinyTrain", graph, model, updates)


# -- registry --------------------------------------------------------------------------------------

METHODS = {
    "None": lambda graph, model, **_: none_scheme(graph, model),
    "LastLayer": lambda graph, model, **_: last_layer(graph, model),
    "BiasOnly": lambda graph, model, **_: bias_only(graph, model),
    "SparseUpdate": lambda graph, model, **_: paper_rule(graph, model),
    "TinyTrain": lambda graph, model, sim, x, y, budget_bytes, **options: tinytrain(
        sim, x, y, budget_bytes, model=model, **options),
}
"""name -> build(graph, model, sim=, x=, y=, budget_bytes=, **TinyTrain options) -> Scheme.
The first four ignore everything but graph and model; TinyTrain needs the simulator, a few int8
samples with labels, and the budget."""
