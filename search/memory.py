"""Training memory in bytes: one accounting for every sparse-update scheme, and the PyTorch reference.

    from search import memory
    m = memory.training_memory(graph, scheme, grad_format="int16")
    m.total, m.arena, m.gradients              # bytes
    memory.pytorch_full_train_bytes(float_model, (1, 49, 10), batch_size=1)

training_memory (analytic, the device's int8 training step) is the sum of
  arena              the inference activation arena (model_prep.plan.plan_arena)
  weights            updated int8 weights, copied to SRAM (frozen ones stay in flash); kept channels only
  biases             int32 biases of the layers whose bias is updated
  saved_activations  int8 input activation of each weight-updated layer, kept channels only
  relu_masks         1 bit per output element of each layer with a fused activation that the
                     backward passes through (the clamp mask of its gradient)
  gradients          the largest set of gradient tensors alive at once during the backward (the one
                     being consumed, those already produced, e.g. a residual's other branch, and the
                     ones being produced), at 1 / 2 / 4 bytes per element for int8 / int16 / float32;
                     weight gradients are applied as they are computed (Lin et al.'s operator
                     reordering) and need no buffer
The first five are Lin et al.'s (2022) accounting (search.scheme.layer_costs); a tensor gets a
gradient iff an updated layer lies at or before it, up to the logits (as model_prep.sparse_train).

pytorch_full_train_memory measures one fp32 full-backprop step of the float model instead:
parameters, their gradients, one SGD momentum buffer each, and every tensor autograd saves for
the backward (seen through torch.autograd.graph.saved_tensors_hooks, storages counted once,
parameters excluded) -- the "PyTorch" column of Lin et al.
"""
import copy
import math
import subprocess
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model_prep import scheme as fmt
from model_prep.lower import lower
from model_prep.plan import plan_arena
from model_prep.sparse_train import gradient_flow
from search.scheme import layer_costs

GRADIENT_BYTES = {"int8": 1, "int16": 2, "float32": 4}
NO_ACTIVATION = 0   # tflite ActivationFunctionType NONE


@dataclass(frozen=True)
class TrainingMemory:
    arena: int
    weights: int
    biases: int
    saved_activations: int
    relu_masks: int
    gradients: int

    @property
    def total(self):
        return sum(getattr(self, f.name) for f in fields(self))


def _elements(graph, t):
    return int(np.prod(graph.tensors[t].shape, dtype=np.int64))


def _backward_ops(lowered):
    """The ops from the input up to the logits (the last fully connected layer)."""
    last = max(i for i, op in enumerate(lowered) if op.kind == "fully_connected")
    return lowered[:last + 1]


def gradient_tensors(lowered, updated):
    """{tensor: True} for the tensors that get a gradient: at or after an updated layer (the trainer's rule)."""
    outputs = {op.output for op in lowered if op.name in updated}
    return gradient_flow(lowered, outputs, _backward_ops(lowered)[-1].output)


def peak_gradient_elements(graph, lowered, needs):
    """Most gradient elements alive at once, walking the backward from the logits down."""
    ops = _backward_ops(lowered)
    live = {ops[-1].output} if needs.get(ops[-1].output) else set()
    peak = sum(_elements(graph, t) for t in live)
    for op in reversed(ops):
        if op.output not in live:
            continue
        produced = [t for t in op.inputs if needs.get(t, False)]
        peak = max(peak, sum(_elements(graph, t) for t in live) + sum(_elements(graph, t) for t in produced))
        live.discard(op.output)
        live.update(produced)
    return peak


def training_memory(graph, scheme, grad_format="int16", lowered=None):
    """TrainingMemory of one training step of `scheme` on the int8 model `graph` (see the module doc)."""
    fmt.validate(scheme, graph)
    lowered = lower(graph) if lowered is None else lowered
    ops = {op.name: op for op in lowered}
    costs = np.zeros(4, np.int64)
    for u in scheme.layers:
        costs += layer_costs(u, ops[u.layer])
    needs = gradient_tensors(lowered, {u.layer for u in scheme.layers})
    activation = {graph.tensors[op.outputs[0]].name: op.options.get("fusedActivationFunction", NO_ACTIVATION)
                  for op in graph.ops}
    masks = sum(math.ceil(_elements(graph, op.output) / 8) for op in _backward_ops(lowered)
                if needs.get(op.output) and activation.get(op.name, NO_ACTIVATION) != NO_ACTIVATION)
    gradients = peak_gradient_elements(graph, lowered, needs) * GRADIENT_BYTES[grad_format]
    return TrainingMemory(plan_arena(graph, lowered).arena_bytes, int(costs[0]), int(costs[1]), int(costs[2]),
                          masks, gradients)


@dataclass(frozen=True)
class FullTrainMemory:
    parameters: int
    gradients: int
    optimizer: int          # SGD momentum: one buffer per parameter
    saved_activations: int  # what autograd keeps for the backward

    @property
    def total(self):
        return sum(getattr(self, f.name) for f in fields(self))


def pytorch_full_train_memory(model, input_shape, batch_size=1):
    """FullTrainMemory measured on one fp32 training step (train mode) of a copy of `model`.
    input_shape: one sample's shape, e.g. (C, H, W)."""
    model = copy.deepcopy(model).float().train()
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(True)
    param_storages = {p.untyped_storage().data_ptr() for p in params}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in param_storages:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    x = torch.randn(batch_size, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = model(x)
        loss = F.cross_entropy(logits, torch.zeros(batch_size, dtype=torch.long))
    loss.backward()
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    return FullTrainMemory(param_bytes, param_bytes, param_bytes, sum(saved.values()))


def pytorch_full_train_bytes(model, input_shape, batch_size=1):
    """Total bytes of pytorch_full_train_memory."""
    return pytorch_full_train_memory(model, input_shape, batch_size).total


def pytorch_process_peak_bytes(checkpoint_path, input_shape):
    """Peak resident memory of a fresh Python process that loads the float checkpoint and runs one fp32
    full-backprop SGD step (momentum 0.9) at batch 1: all PyTorch needs to train the model (interpreter,
    libtorch, weights, activations, gradients, optimizer state), the footprint Lin et al. compare with.
    The tensors alone are pytorch_full_train_bytes."""
    r = subprocess.run([sys.executable, "-m", "search.memory", "peak-rss", str(checkpoint_path),
                        *map(str, input_shape)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"PyTorch peak-memory run on {checkpoint_path} failed: {r.stderr.strip()[-500:]}")
    return int(r.stdout.split()[-1])


def peak_rss_bytes():
    """This process's peak resident memory: VmHWM of /proc/self/status, the high-water mark of its own address
    space. Not getrusage's ru_maxrss: Linux carries that across fork and exec, so a child started by a large
    parent reports at least the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024   # kB
    raise RuntimeError("no VmHWM in /proc/self/status: the peak-memory figure needs Linux")


def _peak_rss_step(checkpoint_path, input_shape):
    from model_prep import checkpoint
    model = checkpoint.load(checkpoint_path)[0].float().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0))
    F.cross_entropy(model(x), torch.zeros(1, dtype=torch.long)).backward()
    opt.step()
    return peak_rss_bytes()


if __name__ == "__main__":
    if sys.argv[1:2] != ["peak-rss"] or len(sys.argv) < 4:
        sys.exit("usage: python -m search.memory peak-rss CHECKPOINT.pt C [H W]")
    print(_peak_rss_step(Path(sys.argv[2]), tuple(int(v) for v in sys.argv[3:])))
