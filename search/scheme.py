"""Show a sparse-update scheme against its model: what is updated, its memory and compute.

    python -m search.scheme show SCHEME.json --model build/kws/dscnn.tflite

Memory is the extra SRAM the scheme costs, in the accounting of Lin et al. (2022): the updated
int8 weights (they must live in SRAM), int32 biases, and the int8 input activation saved for
each weight gradient (kept channels only). Compute is the multiply-accumulates of the weight
gradients. Both are analytic; the next line adds the whole training step's SRAM in the same
accounting (search.memory: inference arena, ReLU masks and gradient buffers too; any gradient
format, so search.bench_methods compares formats and methods on it). The last line is what the
device will use: the runtime's own planner (model_prep.training_plan, the search's memory model and
`python -m model_prep.bake plan`), which the firmware confirms on qemu-m7; the runtime trains with
int16 gradients, so it is printed for --grad-format int16 only.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from model_prep import scheme as fmt
from model_prep.lower import lower
from model_prep.tflite_graph import ModelError, load_graph


def layer_costs(update, op):
    """(updated weight bytes, bias bytes, saved activation bytes, weight-gradient MACs)."""
    weights = op.weights
    n = weights.shape[-1]
    kept = len(fmt.selected_channels(update, weights))
    rows = update.weight.rows
    per_channel = weights.size // n
    if rows is not None and weights.ndim == 4:
        per_channel = per_channel * len(rows) // weights.shape[1]
    w_bytes = kept * per_channel
    b_bytes = 4 * (weights.shape[3] if op.kind == "depthwise_conv2d" else weights.shape[0]) if update.bias else 0
    in_h, in_w = op.in_dims[1], op.in_dims[2]
    saved = in_h * in_w * kept if kept else 0
    out_hw = op.out_dims[1] * op.out_dims[2]
    macs = out_hw * w_bytes
    return w_bytes, b_bytes, saved, macs


def show(scheme, tflite, grad_format="int16"):
    graph = load_graph(tflite)
    fmt.validate(scheme, graph)
    ops = {op.name: op for op in lower(graph)}
    print(f"scheme '{scheme.name}' for {tflite} ({scheme.model})")
    print(f"{'layer':24s} {'bias':>4s} {'weight':>22s} {'weights B':>10s} {'bias B':>7s} {'saved act B':>11s} "
          f"{'grad MACs':>10s}")
    total = np.zeros(4, np.int64)
    for u in scheme.layers:
        op = ops[u.layer]
        costs = layer_costs(u, op)
        total += costs
        w = u.weight
        what = w.kind if w.kind != "channels" else (f"channels {w.ratio} {w.select}" if w.ratio else
                                                      f"channels x{len(w.channels)}")
        print(f"{u.layer:24s} {'yes' if u.bias else 'no':>4s} {what:>22s} {costs[0]:10d} {costs[1]:7d} "
              f"{costs[2]:11d} {costs[3]:10d}")
    print(f"{'total':24s} {'':4s} {'':22s} {total[0]:10d} {total[1]:7d} {total[2]:11d} {total[3]:10d}")
    print(f"extra SRAM (weights + biases + saved activations): {int(total[:3].sum())} bytes; "
          f"weight-gradient compute: {int(total[3])} MACs per step")
    from search.memory import training_memory
    m = training_memory(graph, scheme, grad_format)
    print(f"training SRAM with {grad_format} gradients: {m.total} bytes (arena {m.arena}, ReLU masks {m.relu_masks}, "
          f"gradient buffers {m.gradients}, plus the extras above)")
    if grad_format == "int16":
        from model_prep.training_plan import TrainingPlan
        parts = TrainingPlan(tflite, scheme).sram_parts()
        print(f"device SRAM (the runtime's planner, as bake plan): {parts['total_sram_bytes']} bytes (arena "
              f"{parts['arena_bytes']}, trained parameters {parts['param_bytes']}, gradient exponents "
              f"{parts['gradient_exponent_bytes']}, firmware statics {parts['firmware_static_bytes']}, stack "
              f"{parts['stack_bytes']})")
    else:
        print(f"device SRAM: the runtime trains with int16 gradients, not {grad_format}; see --grad-format int16")
    return total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("show", help="print a scheme as a table with its memory and compute")
    s.add_argument("scheme", type=Path)
    s.add_argument("--model", type=Path, required=True, help="the .tflite the scheme is for")
    s.add_argument("--grad-format", default="int16", choices=("int8", "int16", "float32"))
    args = ap.parse_args(argv)
    try:
        show(fmt.load(args.scheme), args.model, args.grad_format)
    except (fmt.SchemeError, ModelError) as e:
        sys.exit(f"scheme: {e}")


if __name__ == "__main__":
    main()
