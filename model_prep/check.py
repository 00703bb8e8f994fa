"""Does a model run bit-exactly everywhere? Simulator vs C++ host runtime vs tflite-micro.

    python -m model_prep.check MODEL.tflite [--samples 20] [--dataset kws --data build/kws/corpus]

Works on any int8 .tflite in the supported op set, not only the project's exports. The same
inputs (random, or real ones from a dataset) go through the integer simulator
(model_prep/simulate.py), the C++ runtime built for the host from `bake`'s sources
(firmware/tools/run_model), and the tflite-micro interpreter. Prints whether all three agree
bit for bit and exits non-zero if not; an unsupported op gets one line naming it.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from model_prep.cli import at_least
from model_prep.bake import bake
from model_prep.lower import lower
from model_prep.simulate import Simulator
from model_prep.tflite_graph import ModelError, load_graph
from model_prep.tflm import TflmError, run_tflm

ROOT = Path(__file__).resolve().parent.parent


def random_inputs(graph, n, seed=0):
    """n inputs over the whole int8 range (dequantized to float32 for a float-input model)."""
    first = graph.ops[0]
    t = graph.tensors[graph.inputs[0]]
    q = np.random.default_rng(seed).integers(-128, 128, (n,) + t.shape[1:], dtype=np.int8)
    if t.dtype == "int8":
        return q
    qt = graph.tensors[first.outputs[0]]          # a float input starts with QUANTIZE
    return ((q.astype(np.float32) - np.float32(qt.zero_point[0])) * np.float32(qt.scale[0])).astype(np.float32)


def dataset_inputs(graph, name, root, n):
    """n real test inputs of a dataset, quantized like the model's input."""
    from model_prep.data import datasets
    x, _ = datasets.load_features(name, root, "test", "all")
    return graph.quantize_input(x[:n])


def run_runtime(tflite, inputs, workdir):
    """Outputs of the C++ runtime, built for the host from bake's sources."""
    workdir = Path(workdir)
    bake(tflite, workdir / "baked", train="none")
    build = subprocess.run(["make", "-C", str(ROOT / "firmware"), "BOARD=host", "APP=tools/run_model",
                            f"MODEL_DIR={workdir / 'baked'}", f"BUILD_DIR={workdir / 'fw'}"],
                           capture_output=True, text=True)
    if build.returncode != 0:
        raise RuntimeError(f"building the host runtime for {tflite} failed:\n"
                           f"{build.stdout[-2000:]}{build.stderr[-2000:]}")
    graph = load_graph(tflite)
    out_t = graph.tensors[graph.outputs[0]]
    (workdir / "in.bin").write_bytes(np.ascontiguousarray(inputs).tobytes())
    run = subprocess.run([str(workdir / "fw" / "firmware.elf"), str(workdir / "in.bin"), str(workdir / "out.bin")],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"the host runtime failed on {tflite}: {run.stderr.strip()}")
    out = np.frombuffer((workdir / "out.bin").read_bytes(), dtype=out_t.dtype)
    return out.reshape((len(inputs),) + out_t.shape[1:])


def check(tflite, inputs):
    """{engine: outputs} for the simulator, the C++ runtime and tflite-micro."""
    with tempfile.TemporaryDirectory() as d:
        runtime = run_runtime(tflite, inputs, d)
    sim = np.asarray(Simulator.from_tflite(tflite).run(inputs))
    return {"simulator": sim.reshape(runtime.shape), "runtime": runtime,
            "tflite-micro": run_tflm(tflite, inputs[:, None]).reshape(runtime.shape)}


def report(outputs):
    """Lines comparing every engine with tflite-micro; True when all agree bit for bit."""
    ref = outputs["tflite-micro"]
    ok = True
    for name in ("simulator", "runtime"):
        same = np.array_equal(outputs[name].view(np.uint8), ref.view(np.uint8))
        ok &= same
        diff = np.abs(outputs[name].astype(np.float64) - ref.astype(np.float64))
        bad = int((diff.reshape(len(ref), -1) > 0).any(axis=1).sum())
        print(f"  {name:10s} vs tflite-micro: {'bit-exact' if same else 'DIFFERENT'}"
              f" ({bad}/{len(ref)} samples differ, max |diff| {diff.max():g})")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tflite", type=Path)
    ap.add_argument("--samples", type=at_least(1), default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", help="use real test inputs of this dataset (model_prep.data.datasets)")
    ap.add_argument("--data", type=Path, help="dataset root")
    args = ap.parse_args(argv)
    try:
        graph = load_graph(args.tflite)
        lower(graph)                                   # unsupported ops fail here, with one line
        inputs = (dataset_inputs(graph, args.dataset, args.data, args.samples) if args.dataset
                  else random_inputs(graph, args.samples, args.seed))
        print(f"{args.tflite}: {len(graph.ops)} ops ({', '.join(sorted({op.kind for op in graph.ops}))}), "
              f"{len(inputs)} inputs")
        ok = report(check(args.tflite, inputs))
    except (ModelError, ValueError, RuntimeError, TflmError) as e:
        sys.exit(f"check: {e}")
    print("all three agree bit for bit" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
