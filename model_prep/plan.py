"""Static memory plan: one arena, every activation at a fixed offset, decided at bake time.

Tensors whose lifetimes (first write .. last read, in op order) overlap never share bytes;
the others may. An op's inputs (two for ADD) and its output are live together, so no kernel
ever writes over what it reads. A reshape's output aliases its input's bytes. Sizes are in
bytes of each tensor's dtype (float32 at a float model's input or output). Greedy by size,
first fit, 16-byte aligned. `keep` extends tensors to the end of the step (the training step
reads them after the forward pass).
"""
from dataclasses import dataclass

ALIGN = 16


@dataclass
class ArenaPlan:
    offsets: dict      # tensor index -> byte offset in the arena
    sizes: dict        # tensor index -> bytes
    arena_bytes: int


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_arena(graph, lowered, keep=()):
    """Offsets for every activation tensor of the lowered graph."""
    alias = {op.output: op.inputs[0] for op in lowered if op.kind == "reshape"}
    root = lambda t: root(alias[t]) if t in alias else t
    first, last = {}, {}
    for i, op in enumerate(lowered):
        for t in (*op.inputs, op.output):
            r = root(t)
            first.setdefault(r, i)
            last[r] = i
    for t in list(keep) + list(graph.outputs):
        last[root(t)] = len(lowered)
    for t in graph.inputs:
        first[root(t)] = -1
    sizes = {t: graph.tensors[t].nbytes for t in first}
    placed = []   # (offset, size, first, last)
    offsets = {}
    for t in sorted(first, key=lambda t: (-sizes[t], t)):
        offset = 0
        for o, s, f, l in sorted(placed):
            overlaps_in_time = not (last[t] < f or l < first[t])
            if overlaps_in_time and offset + sizes[t] > o and o + s > offset:
                offset = _align(o + s)
        placed.append((offset, sizes[t], first[t], last[t]))
        offsets[t] = offset
    for t in alias:
        offsets[t] = offsets[root(t)]
        sizes[t] = graph.tensors[t].nbytes
    arena = _align(max((o + s for o, s, _, _ in placed), default=0))
    return ArenaPlan(offsets, sizes, arena)

