"""Run a .tflite in the tflite-micro interpreter (the oracle for bit-exactness), isolated.

    from model_prep.tflm import run_tflm
    outputs = run_tflm("build/kws/dscnn.tflite", x_int8)     # x: [N, ...input shape]
    outputs = run_tflm("two_inputs.tflite", a, b)              # one batch per model input
    tensors = run_tflm("m.tflite", x, tensors=True)            # {tensor index: [N, ...]}, every activation

TFLM aborts its whole process on a failed check in Prepare (notes/platform.md), so the
interpreter runs in a child process: `python -m model_prep.tflm --serve` reads one request per
line on stdin (model, inputs .npy, output .npz, whether to keep all tensors), builds a fresh
Interpreter for it and answers on stdout. The child is started on first use and reused (it
saves the ~0.3 s start of a Python with tflite-micro per call); if a model kills it, that call
raises TflmError with the child's stderr and the next call starts a new one.
With tensors=True the interpreter preserves all tensors (InterpreterConfig.kPreserveAllTensors)
and every model input and op output is read back after each invoke.
"""
import atexit
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ARENA_BYTES = 1 << 22
_DONE = "<<tflm-done>>"   # the child's answer line (TFLM may print to stdout too)
_child = None


class TflmError(RuntimeError):
    pass


def _server():
    """The running child, started if there is none (or it died)."""
    global _child
    if _child is None or _child[0].poll() is not None:
        stderr = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen([sys.executable, "-m", "model_prep.tflm", "--serve"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                cwd=Path(__file__).resolve().parent.parent)
        _child = (proc, stderr)
        atexit.register(_stop, proc)
    return _child


def _stop(proc):
    if proc.poll() is None:
        proc.stdin.close()
        proc.wait(timeout=10)


def _ask(proc, request):
    """Send one request line; the child's status ("ok" or "error ..."), None if it died."""
    try:
        proc.stdin.write(request + "\n")
        proc.stdin.flush()
        while line := proc.stdout.readline():
            if _DONE in line:
                return line.split(_DONE, 1)[1].strip()
    except BrokenPipeError:
        pass
    return None


def run_tflm(tflite, *inputs, tensors=False):
    """The interpreter's first output for each sample, stacked ([N, ...]); every activation if tensors."""
    proc, stderr = _server()
    with tempfile.TemporaryDirectory() as d:
        xs = [str(Path(d) / f"x{k}.npy") for k in range(len(inputs))]
        for path, x in zip(xs, inputs):
            np.save(path, np.asarray(x))
        out = Path(d) / "out.npz"
        start = os.fstat(stderr.fileno()).st_size   # the child's stderr from this request on
        status = _ask(proc, json.dumps([str(Path(tflite).resolve()), str(out), tensors, xs]))
        if status != "ok":
            if status is None:   # the child died (TFLM aborted): say why, start afresh next time
                proc.wait(timeout=10)
                stderr.seek(start)
                status = f"exit {proc.returncode}: {stderr.read()[-1500:]}"
            raise TflmError(f"{tflite}: the tflite-micro interpreter failed ({status})")
        with np.load(out) as z:
            if tensors:
                return {int(k[1:]): z[k] for k in z.files}
            return z["out"]


def _run(model, out_path, keep, xs):
    from tflite_micro.python.tflite_micro import runtime
    config = runtime.InterpreterConfig.kPreserveAllTensors if keep else runtime.InterpreterConfig.kAllocationRecording
    it = runtime.Interpreter.from_file(model, arena_size=ARENA_BYTES, intrepreter_config=config)
    indices = []
    if keep:
        from model_prep.tflite_graph import load_graph
        g = load_graph(model)
        indices = list(dict.fromkeys(g.inputs + [t for op in g.ops for t in op.outputs]))
    outs, acts = [], {i: [] for i in indices}
    for sample in zip(*xs):
        for k, x in enumerate(sample):
            it.set_input(x, k)
        it.invoke()
        outs.append(it.get_output(0).copy())
        for i in indices:
            acts[i].append(np.array(it.GetTensor(i, 0)["tensor_data"]))
    if keep:
        np.savez(out_path, **{f"t{i}": np.stack(a) for i, a in acts.items()})
    else:
        np.savez(out_path, out=np.stack(outs))


def _serve():
    for line in sys.stdin:
        model, out_path, keep, xs = json.loads(line)
        try:
            _run(model, out_path, keep, [np.load(x) for x in xs])
            status = "ok"
        except Exception as e:  # a Python-level failure: report it, keep serving
            status = f"error {type(e).__name__}: {e}".replace("\n", " ")
        print(f"{_DONE} {status}", flush=True)


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
