#!/usr/bin/env python3
"""Pull the model a board has trained off it, as an int8 .tflite (and its sidecar).

    .venv/bin/python host_tools/pull.py --port /dev/ttyACM0 --baked build/kws/baked -o build/adapted/dscnn.tflite

Reads the trained weights and biases with PARAMS (laid out as the baked model.json says) and writes
them into the .tflite the firmware was baked from (model_prep.adapted). The board must run that bake:
its INFO (model hash, trainable bytes) is checked against model.json first. The adapted model runs
in tflite-micro with the board's outputs bit for bit (`stream.py --save-model` checks this on its
held-out samples) and bakes again, so the adaptation can be flashed and kept. On an emulated board,
whose state ends with its process, use `stream.py --save-model`, which pulls before it stops.
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from host_tools.protocol import Device, DeviceError  # noqa: E402
from model_prep import adapted  # noqa: E402
from model_prep.bake import FORMAT as BAKED  # noqa: E402
from model_prep.cli import at_least, positive  # noqa: E402


def load_manifest(baked):
    """model.json of a baked model (the folder bake wrote, or the file itself)."""
    path = Path(baked)
    path = path / "model.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no model.json (expected the folder `model_prep.bake -o` wrote)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from e
    if manifest.get("format") != BAKED:
        raise ValueError(f"{path}: format {manifest.get('format')!r}, expected '{BAKED}' (bake's model.json)")
    return manifest, path


def check_board(info, manifest, where, tflite=None):
    """One clear error unless the board runs the firmware of this bake, it trains something, and the .tflite it
    was baked from is at hand; that .tflite's path."""
    said = f"the board runs {info.get('model')} (model sha256 {info.get('tflite_sha256')}, scheme {info.get('scheme')})"
    if info.get("tflite_sha256") != manifest["tflite_sha256"] or info.get("trainable_bytes") != sum(
            p["bytes"] for p in manifest["params"]):
        raise ValueError(f"{said}; {where} is {manifest['model']} (sha256 {manifest['tflite_sha256']}, scheme "
                         f"{manifest['scheme']}): pass the --baked folder the board's firmware was built from")
    if not manifest["params"]:
        raise ValueError(f"{said}; its scheme trains nothing, so there is nothing to pull")
    return adapted.source(manifest, tflite)


def pull(dev, manifest, where, out, tflite=None, info=None, **record):
    """Read the board's trained parameters and write the adapted model to `out`; returns its path."""
    info = info or dev.info()
    tflite = check_board(info, manifest, where, tflite)
    trained = dev.read_trained(manifest["params"])
    stats = dev.stats()
    return adapted.write(manifest, trained, out, tflite, board=info.get("board"),
                         samples_trained=stats.get("samples_trained"), **record)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", required=True, help="pyserial URL: /dev/ttyACM0, socket://127.0.0.1:PORT, ...")
    ap.add_argument("--baked", type=Path, required=True, help="the baked model folder (model.json) of the firmware")
    ap.add_argument("-o", "--out", type=Path, required=True, help="the adapted .tflite (its .json beside it)")
    ap.add_argument("--tflite", type=Path, help="the .tflite the firmware was baked from (default: model.json's)")
    ap.add_argument("--timeout", type=positive, default=3.0, help="seconds to wait for each reply")
    ap.add_argument("--retries", type=at_least(1), default=3, help="tries per request before giving up")
    args = ap.parse_args(argv)
    try:
        manifest, where = load_manifest(args.baked)
        with Device(args.port, timeout=args.timeout, retries=args.retries) as dev:
            path = pull(dev, manifest, where, args.out, args.tflite, port=args.port)
    except (DeviceError, ValueError, FileNotFoundError) as e:
        sys.exit(f"pull: {e}")
    meta = json.loads(path.with_suffix(".json").read_text())["adapted"]
    print(f"wrote {path} (and {path.with_suffix('.json').name}): {manifest['model']} as trained on "
          f"{meta['board']} by {meta['samples_trained']} samples, {len(meta['layers'])} layer(s) updated")


if __name__ == "__main__":
    main()
