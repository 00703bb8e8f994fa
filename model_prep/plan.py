"""Static memory plan: one arena, every buffer at a fixed offset, decided at bake time.

A buffer lives from the step that first writes it to the step that last reads it (steps are
the forward ops 0..N-1, then the training step's backward); buffers whose lifetimes overlap
never share bytes, the others may. An op's inputs (two for ADD) and its output are live
together, so no kernel ever writes over what it reads. A reshape's output aliases its input's
bytes. Greedy by size, first fit, 16-byte aligned. `plan_arena` plans the inference activations;
model_prep.training_plan adds the training step's buffers (saved tensors, gradients, scratch)
to the same timeline through `place`.
"""
from dataclasses import dataclass

ALIGN = 16


@dataclass
class ArenaPlan:
    offsets: dict      # tensor index (or buffer key) -> byte offset in the arena
    sizes: dict        # tensor index (or buffer key) -> bytes
    arena_bytes: int


@dataclass(frozen=True)
class Buffer:
    key: object
    size: int          # bytes
    first: int         # the step that writes it first
    last: int          # the step that reads it last


def align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def place(buffers):
    """{key: offset} and the arena size for buffers with lifetimes (largest first, first fit)."""
    placed, offsets = [], {}   # placed: (offset, size, first, last)
    order = lambda b: (-b.size, 0, b.key, "") if isinstance(b.key, int) else (-b.size, 1, 0, str(b.key))  # noqa: E731
    for b in sorted(buffers, key=order):
        offset = 0
        for o, s, f, l in sorted(placed):
            if not (b.last < f or l < b.first) and offset + b.size > o and o + s > offset:
                offset = align(o + s)
        placed.append((offset, b.size, b.first, b.last))
        offsets[b.key] = offset
    return offsets, align(max((o + s for o, s, _, _ in placed), default=0))


def activation_buffers(graph, lowered, keep=None):
    """Buffers of the activation tensors (one per reshape chain) and the reshape aliases {tensor: root}.

    keep: {tensor: step} extends a tensor's life to that step (the model outputs live to step N)."""
    alias = {op.output: op.inputs[0] for op in lowered if op.kind == "reshape"}
    root = lambda t: root(alias[t]) if t in alias else t   # noqa: E731
    first, last = {}, {}
    for i, op in enumerate(lowered):
        for t in (*op.inputs, op.output):
            r = root(t)
            first.setdefault(r, i)
            last[r] = i
    for t in graph.outputs:
        last[root(t)] = len(lowered)
    for t, step in (keep or {}).items():
        last[root(t)] = max(last[root(t)], step)
    for t in graph.inputs:
        first[root(t)] = -1
    buffers = [Buffer(t, graph.tensors[t].nbytes, first[t], last[t]) for t in first]
    return buffers, {t: root(t) for t in alias}


def plan_arena(graph, lowered, keep=()):
    """Offsets for every activation tensor of the lowered graph (`keep`: tensors read after the forward)."""
    buffers, alias = activation_buffers(graph, lowered, {t: len(lowered) for t in keep})
    offsets, arena = place(buffers)
    sizes = {b.key: b.size for b in buffers}
    for t, r in alias.items():
        offsets[t] = offsets[r]
        sizes[t] = graph.tensors[t].nbytes
    return ArenaPlan(offsets, sizes, arena)
