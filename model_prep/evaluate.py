"""Float vs int8 accuracy of an exported model, the int8 side run in the tflite-micro interpreter.

    python -m model_prep.evaluate build/kws/dscnn.pt build/kws/dscnn.tflite --data build/kws/corpus

Reports both speaker groups of the test split: "pretrain" (the distribution the model was
trained on) and "device" (the shifted one the device adapts to).
"""
import argparse
import sys
from pathlib import Path

import torch

from model_prep import checkpoint
from model_prep.tflite_graph import ModelError, load_graph
from model_prep.tflm import run_tflm


def accuracies(ckpt, tflite, data, split, group):
    model, meta = checkpoint.load(ckpt)
    x, y = checkpoint.load_split(meta, data, split, group)
    with torch.no_grad():
        float_acc = float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    q = load_graph(tflite).quantize_input(x)
    out = run_tflm(tflite, q[:, None]).reshape(len(q), -1)
    return float_acc, float((out.argmax(1) == y).mean()), len(y)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("tflite", type=Path)
    ap.add_argument("--data", type=Path, help="dataset root (not for built-in datasets)")
    ap.add_argument("--split", default="test", choices=("train", "validation", "test"))
    args = ap.parse_args(argv)
    print(f"{'group':10s} {'samples':>8s} {'float':>8s} {'int8 (TFLM)':>12s}")
    try:
        for group in ("pretrain", "device"):
            f, q, n = accuracies(args.checkpoint, args.tflite, args.data, args.split, group)
            print(f"{group:10s} {n:8d} {100 * f:7.2f}% {100 * q:11.2f}%")
    except (ModelError, ValueError, FileNotFoundError) as e:
        sys.exit(f"evaluate: {e}")


if __name__ == "__main__":
    main()
