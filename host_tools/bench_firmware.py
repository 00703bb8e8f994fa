"""Flash, SRAM and instructions of on-device training, measured on the firmware itself, per model and scheme.

    python -m host_tools.bench_firmware               # every model x scheme; results/firmware.json + .png
    python -m host_tools.bench_firmware --quick       # kws/dscnn, inference only and classifier, qemu-m7
    python -m host_tools.bench_firmware --quick --tflite build/kws/dscnn.tflite --out /tmp/fw.json

Models: DS-CNN on KWS (search.tasks), MobileNetV2-w0.35 and the MCUNet-style network at 96x96 (digits,
pre-trained one epoch and exported once under build/bench-firmware/: this is about memory and
instructions, not accuracy). Schemes: none (inference only), classifier, sparse (Lin et al.'s rule,
search.baselines.paper_rule) and full (every trainable layer, all weights and biases).
Each pair is baked and built for qemu-m7 (the STM32F746's 1 MB flash / 320 KB SRAM, enforced by the
linker; the stack reservation is --stack-size, 4 KiB by default as in firmware/Makefile: the deepest
training step uses under 1 KiB, and the stack sits at the bottom of RAM so an overflow faults) and run
under QEMU with
-icount: one EVAL, then --trains TRAIN steps on random data;
sram_bytes is INFO's peak_sram_bytes after them (static + stack high-water), the instructions are
ticks x 40 (host_tools.firmware_bench). A training step is a TRAIN request: forward with saves,
backward and updates. Pairs the linker refuses run on the host build instead (board "host", SRAM the
plan's, instructions counted by valgrind's callgrind, x86-64), and then the model's sparse scheme is
also measured there, so the sparse-vs-full instruction ratio compares like with like.
pytorch_full_bp_bytes: the peak resident memory of a fresh process running one fp32 full-backprop SGD
step of the float model in PyTorch, batch 1 (search.memory.pytorch_process_peak_bytes: what PyTorch
needs to train it, as Lin et al. compare); pytorch_full_bp_tensor_bytes: the tensors alone
(parameters, gradients, momentum, saved activations; search.memory.pytorch_full_train_bytes).
"""
import argparse
import sys
import time
from pathlib import Path

from model_prep.cli import at_least
from host_tools import firmware_bench as fb
from model_prep import checkpoint, export, verify
from model_prep import scheme as fmt
from model_prep.provenance import run_record, write_result
from model_prep.simulate import Simulator
from model_prep.sparse_train import SparseTrainer, forward_macs
from model_prep.tflite_graph import load_graph
from search import baselines, memory

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "bench-firmware"
ONE_EPOCH_96 = {"epochs": 1, "resolution": 96}
VISION = {   # label -> model_prep.verify row, pre-trained once under WORK
    "digits/mobilenetv2-w0.35": verify.Row("mobilenetv2-w0.35-r96", "mobilenetv2", "digits",
                                           {**ONE_EPOCH_96, "width": 0.35}, {}, {**ONE_EPOCH_96, "width": 0.35}),
    "digits/mcunet": verify.Row("mcunet-r96", "mcunet", "digits", ONE_EPOCH_96, {}, ONE_EPOCH_96),
}
MODELS = ("kws/dscnn",) + tuple(VISION)
SCHEMES = ("none", "classifier", "sparse", "full")
QUICK_SCHEMES = ("none", "classifier")


def full_scheme(graph, model):
    layers = [{"layer": n, "bias": True, "weight": {"kind": "full"}} for n in fmt.trainable_layers(graph)]
    return fmt.validate(fmt.from_dict({"format": fmt.FORMAT, "model": model, "name": "full", "layers": layers}), graph)


BUILDERS = {"none": baselines.none_scheme, "classifier": baselines.last_layer, "sparse": baselines.paper_rule,
            "full": full_scheme}


def prepare(label, quick, work=WORK):
    """(tflite, float checkpoint) of a benchmark model, pre-trained and exported once."""
    if label == "kws/dscnn":
        from search import tasks
        t = tasks.prepare("kws", "dscnn", quick=quick)
        return t.tflite, t.checkpoint
    ckpt = verify.pretrained(VISION[label], False, None, Path(work))
    tflite = ckpt.with_suffix(".tflite")
    if not tflite.exists():
        export.export(ckpt, tflite, None, calib_samples=100)
    return tflite, ckpt


def measure(label, tflite, ckpt, schemes, trains, host_too, work, stack_size):
    graph = load_graph(tflite)
    _, h, w, c = graph.tensors[graph.inputs[0]].shape
    macs_inference = sum(forward_macs(op) for op in Simulator.from_tflite(tflite).ops)
    have_ckpt = ckpt is not None and ckpt.exists()
    tensors = memory.pytorch_full_train_bytes(checkpoint.load(ckpt)[0], (c, h, w)) if have_ckpt else None
    pytorch = memory.pytorch_process_peak_bytes(ckpt, (c, h, w)) if have_ckpt else None
    work = Path(work) / label.replace("/", "-")
    rows, refused = [], []

    def row(name, scheme, info, board, m, sram, flash, note):
        r = {"model": label, "scheme": name, "board": board, "resolution": f"{h}x{w}", "trains": trains,
             "layers_updated": len(scheme.layers), "flash_bytes": flash, "sram_bytes": sram,
             "sram_source": "measured" if board == "qemu-m7" else "planned", "planned_sram_bytes":
             info["planned_sram_bytes"], "arena_bytes": info["arena_bytes"], "fits_320k": board == "qemu-m7",
             "fits_256k": sram <= fb.SRAM_256K, "instructions_inference": m["instructions_inference"],
             "instructions_train_step": m["instructions_train_step"], "instructions_backward":
             m["instructions_train_step"] - m["instructions_inference"] if m["instructions_train_step"] else None,
             "instruction_set": "armv7e-m (qemu icount)" if board == "qemu-m7" else "x86-64 (callgrind)",
             "macs_inference": macs_inference,
             "macs_train_step": SparseTrainer(tflite, scheme).step_macs() if scheme.layers else None,
             "pytorch_full_bp_bytes": pytorch, "pytorch_over_sram": pytorch / sram if pytorch else None,
             "pytorch_full_bp_tensor_bytes": tensors,
             "pytorch_tensors_over_sram": tensors / sram if tensors else None, **note}
        rows.append(r)
        train = r["instructions_train_step"]
        print(f"{label:26s} {name:10s} {board:8s} {r['resolution']:>6s} {(flash or 0) / 1024:8.1f} {sram / 1024:8.1f} "
              f"{r['instructions_inference'] / 1e6:9.2f} {(train or 0) / 1e6:9.2f} "
              f"{(r['pytorch_over_sram'] or 0):8.0f}x  {note.get('does_not_fit', '')}", flush=True)

    def on_host(name, scheme, info, note):
        fw = fb.build("host", work / name / "baked", work / "fw-host")
        m = fb.callgrind(fw["elf"], info, trains=1 if scheme.layers else 0)
        row(name, scheme, info, "host", m, info["planned_sram_bytes"], None, note)

    built = {}
    for name in schemes:
        scheme = BUILDERS[name](graph, label)
        info = fb.bake(tflite, scheme, work / name / "baked")
        built[name] = (scheme, info)
        try:
            fw = fb.build("qemu-m7", work / name / "baked", work / "fw-qemu", stack_size)
        except fb.DoesNotFit as e:
            refused.append(name)
            on_host(name, scheme, info, {"does_not_fit": f"qemu-m7 linker: {e}"})
            continue
        m = fb.run_qemu(fw["elf"], info, trains=trains if scheme.layers else 0)
        row(name, scheme, info, "qemu-m7", m, m["info"]["peak_sram_bytes"], fw["flash_bytes"],
            {"static_sram_bytes": m["info"]["static_sram_bytes"], "stack_bytes_used": m["info"]["stack_bytes_used"],
             "stack_reserved_bytes": m["info"]["stack_bytes_reserved"]})
    if refused and host_too:   # like with like: the schemes that fit, measured on the host as well
        for name in host_too:
            if name in built and name not in refused:
                on_host(name, *built[name], {"also_on_host": True})
    return rows


def ratios(rows):
    """Per model: full / sparse instructions of a training step, on a board where both were measured."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for board in ("qemu-m7", "host"):
            by = {r["scheme"]: r for r in rows if r["model"] == model and r["board"] == board}
            if "sparse" in by and "full" in by:
                full, sparse = by["full"], by["sparse"]
                out.append({"model": model, "board": board, "full_over_sparse_instructions":
                            full["instructions_train_step"] / sparse["instructions_train_step"],
                            "full_over_sparse_backward_instructions":
                            full["instructions_backward"] / sparse["instructions_backward"],
                            "full_over_sparse_macs": full["macs_train_step"] / sparse["macs_train_step"]})
    return out


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [f"{r['model'].split('/')[-1]} {r['scheme']} ({r['board']})" for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.38 * len(rows) + 1.8), sharey=True)
    ys = range(len(rows))
    axes[0].barh([y + 0.2 for y in ys], [r["sram_bytes"] / 1024 for r in rows], 0.4, label="device SRAM")
    axes[0].barh([y - 0.2 for y in ys], [(r["pytorch_full_bp_bytes"] or 0) / 1024 for r in rows], 0.4,
                 label="PyTorch full backprop (fp32)")
    for limit, style in ((fb.SRAM_256K, ":"), (fb.SRAM_LIMIT, "--")):
        axes[0].axvline(limit / 1024, color="k", ls=style, lw=0.8)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("memory of one training step (KiB, log; lines: 256 / 320 KB)")
    axes[0].legend(fontsize=7)
    colors = ["tab:blue" if r["board"] == "qemu-m7" else "tab:orange" for r in rows]
    axes[1].barh(list(ys), [(r["instructions_train_step"] or r["instructions_inference"]) / 1e6 for r in rows],
                 color=colors)
    axes[1].set_xscale("log")
    axes[1].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[1].set_xlabel("M instructions per training step ('none': inference), log\n"
                       "blue: Cortex-M7 (QEMU), orange: x86-64 host (callgrind)")
    axes[0].set_yticks(list(ys), names, fontsize=7)
    axes[0].invert_yaxis()
    for ax in axes:
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="kws/dscnn, schemes none + classifier, qemu-m7 only")
    ap.add_argument("--model", action="append", choices=MODELS, help="repeatable (default: all)")
    ap.add_argument("--tflite", type=Path, help="measure this int8 model (its .pt beside it gives the PyTorch row)")
    ap.add_argument("--scheme", action="append", choices=SCHEMES, help="repeatable (default: all; --quick: two)")
    ap.add_argument("--trains", type=at_least(1), default=3,
                    help="TRAIN steps on qemu-m7 (the last one's instructions)")
    ap.add_argument("--stack-size", type=at_least(1024), default=4096,
                    help="bytes the qemu-m7 build reserves for the stack")
    ap.add_argument("--work", type=Path, default=WORK, help="models, bakes and builds")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "firmware.json")
    args = ap.parse_args(argv)
    if args.tflite and not args.tflite.is_file():
        sys.exit(f"bench_firmware: no model at {args.tflite}")
    schemes = args.scheme or (QUICK_SCHEMES if args.quick else SCHEMES)
    labels = [args.tflite.stem] if args.tflite else (args.model or (MODELS[:1] if args.quick else MODELS))
    print(f"{'model':26s} {'scheme':10s} {'board':8s} {'input':>6s} {'flash KiB':>8s} {'SRAM KiB':>8s} "
          f"{'M instr inf':>9s} {'M instr step':>9s} {'PyTorch/SRAM':>9s}")
    rows = []
    for label in labels:
        t0 = time.time()
        if args.tflite:
            tflite, ckpt = args.tflite, args.tflite.with_suffix(".pt")
        else:
            tflite, ckpt = prepare(label, args.quick, args.work)
        rows += measure(label, tflite, ckpt, schemes, args.trains, [] if args.quick else ["sparse"], args.work,
                        args.stack_size)
        print(f"  ({label}: {time.time() - t0:.0f} s)", flush=True)
    command = " ".join(["python -m host_tools.bench_firmware"] + (argv if argv is not None else sys.argv[1:]))
    result = {**run_record(command), "quick": args.quick, "flash_limit": fb.FLASH_LIMIT, "sram_limit": fb.SRAM_LIMIT,
              "stack_reserved_bytes": args.stack_size,
              "ratios": ratios(rows), "rows": rows}
    for r in result["ratios"]:
        print(f"{r['model']}: full / sparse training step on {r['board']}: "
              f"{r['full_over_sparse_instructions']:.1f}x instructions ({r['full_over_sparse_macs']:.1f}x MACs), "
              f"backward and updates alone {r['full_over_sparse_backward_instructions']:.1f}x")
    write_result(result, args.out, plot, rows)


if __name__ == "__main__":
    main()
