"""Run a .tflite in the tflite-micro interpreter (the oracle for bit-exactness), isolated.

    from model_prep.tflm import run_tflm
    outputs = run_tflm("build/kws/dscnn.tflite", x_int8)     # x: [N, ...input shape]

TFLM aborts its whole process on a failed check in Prepare (notes/platform.md), so every run
happens in a child process: `python -m model_prep.tflm MODEL INPUTS.npy OUTPUTS.npy`.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ARENA_BYTES = 1 << 22


class TflmError(RuntimeError):
    pass


def run_tflm(tflite, inputs):
    """The interpreter's first output for each input, stacked ([N, ...])."""
    with tempfile.TemporaryDirectory() as d:
        xs, ys = Path(d) / "x.npy", Path(d) / "y.npy"
        np.save(xs, np.asarray(inputs))
        r = subprocess.run([sys.executable, "-m", "model_prep.tflm", str(tflite), str(xs), str(ys)],
                           capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        if r.returncode != 0:
            raise TflmError(f"{tflite}: the tflite-micro interpreter failed ({r.returncode}): {r.stderr[-1500:]}")
        return np.load(ys)


def _main(model, xs_path, ys_path):
    from tflite_micro.python.tflite_micro import runtime
    xs = np.load(xs_path)
    it = runtime.Interpreter.from_file(model, arena_size=ARENA_BYTES)
    outs = []
    for x in xs:
        it.set_input(x, 0)
        it.invoke()
        outs.append(it.get_output(0).copy())
    np.save(ys_path, np.stack(outs))


if __name__ == "__main__":
    _main(*sys.argv[1:4])
