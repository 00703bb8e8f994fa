#!/usr/bin/env python3
"""Stream new data to a board, train it on the device, and measure on-device accuracy.

    .venv/bin/python host_tools/stream.py --dataset kws --port /dev/ttyACM0
    .venv/bin/python host_tools/stream.py --dataset kws --emulate qemu-m7 --elf build/firmware/qemu-m7/firmware.elf

The board's INFO reply says how to quantize its input, so any board running any baked model
works. Samples come from the dataset's on-device group (speakers the model was not
pre-trained on): its train split is streamed for training, its validation and test splits
are the held-out evaluation set. Accuracy is measured on the device before, during and after
training; a JSON summary and a PNG accuracy curve are written.
"""
import argparse
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from host_tools.protocol import Device, DeviceError  # noqa: E402
from model_prep.cli import at_least, positive  # noqa: E402
from model_prep.data import datasets, frontend  # noqa: E402
from model_prep.provenance import run_record  # noqa: E402


def device_samples(dataset, root, n_train, n_eval, seed):
    """(train x, train y, eval x, eval y) float features of the on-device group."""
    x_tr, y_tr = datasets.load_features(dataset, root, "train", "device")
    held = [datasets.load_features(dataset, root, s, "device") for s in ("validation", "test")]
    x_ev, y_ev = np.concatenate([h[0] for h in held]), np.concatenate([h[1] for h in held])
    rng = np.random.default_rng(seed)
    tr, ev = rng.permutation(len(x_tr))[:n_train], rng.permutation(len(x_ev))[:n_eval]
    return x_tr[tr], y_tr[tr], x_ev[ev], y_ev[ev]


def check_fits(info, dataset, root, x):
    """One clear error when the board's model was baked for other data: its input size, its classes in order
    (else every label streamed would train the wrong class, in silence)."""
    model = f"the model on the board ({info['model']}, input {info['input_shape']}, {info['num_classes']} classes)"
    per_sample = int(np.prod(x.shape[1:]))
    if per_sample != info["input_bytes"]:
        raise ValueError(f"--dataset {dataset} gives inputs of {per_sample} values {list(x.shape[1:])}; {model} "
                         f"takes {info['input_bytes']}: stream the dataset the model was baked for")
    names = datasets.labels(dataset, root)
    baked = list(info.get("labels", []))
    named = baked and baked != [str(i) for i in range(info["num_classes"])]   # bake's default: class numbers
    if len(names) != info["num_classes"] or named and baked != names:
        raise ValueError(f"--dataset {dataset} has the labels {names}; {model} was trained on "
                         f"{info.get('labels', str(info['num_classes']) + ' classes')}: stream the dataset "
                         f"the model was baked for")


def quantize(x, info):
    q = frontend.quantize_features(x, info["input_scale"], info["input_zero_point"])
    return q.reshape(len(x), -1)


def evaluate(dev, x, y, bar=None, outputs=None):
    """Accuracy of the board on (x, y); its raw output bytes appended to `outputs` when given."""
    correct = 0
    for xi, yi in zip(x, y):
        reply = dev.evaluate(xi.tobytes())
        correct += reply.pred == yi
        if outputs is not None:
            outputs.append(reply.logits.tobytes())
        if bar:
            bar.update(1)
    return correct / max(1, len(y))


def save_model(dev, args, info, q_ev, y_ev, outputs):
    """Pull the trained model off the board (host_tools/pull.py) and run it in tflite-micro on the held-out
    samples: {path, agree (outputs equal to the board's, byte for byte), tflm_acc}."""
    from host_tools.pull import pull
    from model_prep.tflm import run_tflm
    path = pull(dev, args.manifest, args.manifest_path, args.save_model, args.tflite, info=info,
                dataset=args.dataset)
    x = q_ev.reshape((len(q_ev), *info["input_shape"]))   # each sample with its batch dimension of 1
    got = run_tflm(path, x) if len(x) else np.zeros((0, 0))
    agree = sum(g.tobytes() == o for g, o in zip(got, outputs))
    pred = got.reshape(len(got), -1).argmax(axis=1) if len(got) else np.zeros(0, int)
    return {"path": str(path), "samples": len(outputs), "agree": int(agree),
            "tflm_acc": float((pred == y_ev).mean()) if len(y_ev) else 0.0}


def plot(curve, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([c[0] for c in curve], [100 * c[1] for c in curve], "o-")
    ax.set_xlabel("samples trained on the device")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(dev, args, port):
    from tqdm import tqdm
    info = dev.info()
    dev.reset()
    x_tr, y_tr, x_ev, y_ev = device_samples(args.dataset, args.data, args.train, args.eval, args.seed)
    check_fits(info, args.dataset, args.data, x_tr)
    if args.save_model:   # before training: a wrong --baked would only show after it
        from host_tools.pull import check_board
        args.tflite = check_board(info, args.manifest, args.manifest_path, args.tflite)   # found once
    rng = np.random.default_rng(args.seed)
    passes = [rng.permutation(len(x_tr)) for _ in range(args.epochs)]   # each pass in a new order
    order = np.concatenate(passes) if passes else np.zeros(0, int)
    q_tr, y_tr, q_ev = quantize(x_tr, info)[order], y_tr[order], quantize(x_ev, info)
    checkpoints = sorted({0, len(q_tr)} | set(range(args.curve_every, len(q_tr), args.curve_every)))
    total = len(q_tr) + len(checkpoints) * len(q_ev)
    curve, outputs = [], []
    t0 = time.time()
    with tqdm(total=total, desc=f"{info['board']}: train {len(q_tr)} / eval {len(q_ev)}", unit="frame",
              file=sys.stderr, disable=args.quiet) as bar:
        for i in range(len(q_tr) + 1):
            if i in checkpoints:
                curve.append((i, evaluate(dev, q_ev, y_ev, bar, outputs if i == len(q_tr) else None)))
            if i < len(q_tr):
                dev.train(int(y_tr[i]), q_tr[i].tobytes())
                bar.update(1)
    stats, info = dev.stats(), dev.info()
    pulled = save_model(dev, args, info, q_ev, y_ev, outputs) if args.save_model else None
    summary = {
        "board": info["board"], "model": info["model"], "scheme": info["scheme"], "port": port,
        "tflite_sha256": info.get("tflite_sha256"),   # which pre-training the board's model came from
        "dataset": args.dataset, "samples_trained": stats["samples_trained"], "eval_samples": len(q_ev),
        "acc_before": curve[0][1], "acc_after": curve[-1][1], "curve": curve,
        "train_running_acc": stats["train_correct"] / max(1, stats["samples_trained"]),
        "peak_sram_bytes": info["peak_sram_bytes"], "flash_bytes": info["flash_bytes"],
        "static_sram_bytes": info["static_sram_bytes"], "arena_bytes": info["arena_bytes"],
        "stack_bytes_used": info["stack_bytes_used"], "trainable_bytes": info["trainable_bytes"],
        "updates": info.get("updates", []), "planned_sram_bytes": info.get("planned_sram_bytes"),
        "ticks_per_train_step": stats["train_ticks"] / max(1, stats["samples_trained"]),
        "ticks_per_inference": stats["eval_ticks"] / max(1, stats["evals"]), "tick_hz": stats["tick_hz"],
        "seconds": round(time.time() - t0, 1), **({"saved_model": pulled} if pulled else {}), **run_record(),
    }
    return summary


def report(s):
    print(f"board {s['board']}  model {s['model']}  trains {s['scheme']}: {len(s['updates'])} layer(s)")
    for u in s["updates"]:
        weights = f"weights {u['channels']}/{u['of']} channels" if u["channels"] else "no weights"
        rows = f", kernel rows {u['rows']}/{u['rows_of']}" if u["channels"] and u["rows"] < u.get("rows_of", 0) else ""
        print(f"  {u['layer']:24s} {weights}{rows}{', bias' if u['bias'] else ''}")
    print(f"on-device accuracy on {s['eval_samples']} held-out samples: "
          f"before {100 * s['acc_before']:.1f} %  ->  after {100 * s['acc_after']:.1f} % "
          f"({s['samples_trained']} samples trained)")
    print(f"peak SRAM {s['peak_sram_bytes']} bytes (static {s['static_sram_bytes']} incl. arena "
          f"{s['arena_bytes']}, stack {s['stack_bytes_used']}; planned {s['planned_sram_bytes']})  "
          f"flash {s['flash_bytes']} bytes")
    if "saved_model" in s:
        m = s["saved_model"]
        print(f"trained model pulled off the board: {m['path']}; in tflite-micro its outputs equal the board's on "
              f"{m['agree']} of {m['samples']} held-out samples (accuracy {100 * m['tflm_acc']:.1f} %)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, choices=datasets.DATASETS)
    ap.add_argument("--data", type=Path, default=ROOT / "build/kws/corpus", help="dataset root")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="pyserial URL: /dev/ttyACM0, socket://127.0.0.1:PORT, ...")
    where.add_argument("--emulate", choices=("qemu-m7", "host"), help="start this emulated board first")
    ap.add_argument("--elf", type=Path, help="firmware to run with --emulate")
    ap.add_argument("--train", type=at_least(0), default=400, help="samples to train on (at most)")
    ap.add_argument("--epochs", type=at_least(0), default=1, help="passes over the training samples")
    ap.add_argument("--eval", type=at_least(1), default=200, help="held-out samples to evaluate (at most)")
    ap.add_argument("--curve-every", type=at_least(1), default=100, help="evaluate after every N trained samples")
    ap.add_argument("--timeout", type=positive, default=3.0, help="seconds to wait for each reply")
    ap.add_argument("--retries", type=at_least(1), default=3, help="tries per request before giving up")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("build/stream/summary.json"), help="JSON summary (PNG beside)")
    ap.add_argument("--save-model", type=Path, help="after training, pull the trained model off the board into this "
                    ".tflite and check it in tflite-micro (needs --baked)")
    ap.add_argument("--baked", type=Path, help="the baked model folder (model.json) the firmware was built from")
    ap.add_argument("--tflite", type=Path, help="with --save-model: the .tflite it was baked from (default: "
                    "model.json's)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.emulate and not args.elf:
        ap.error("--emulate needs --elf (the firmware to run)")
    if args.save_model and not args.baked:
        ap.error("--save-model needs --baked (the baked model folder the firmware was built from)")
    try:
        if args.save_model:
            from host_tools.pull import load_manifest
            args.manifest, args.manifest_path = load_manifest(args.baked)
        with ExitStack() as stack:
            port = args.port
            if args.emulate:
                from host_tools.boards import launch
                port = stack.enter_context(launch(args.emulate, args.elf))
            dev = stack.enter_context(Device(port, timeout=args.timeout, retries=args.retries))
            summary = run(dev, args, port)
    except (DeviceError, ValueError, FileNotFoundError, RuntimeError) as e:
        sys.exit(f"stream: {e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    plot(summary["curve"], args.out.with_suffix(".png"), f"{summary['model']} on {summary['board']}")
    report(summary)
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
