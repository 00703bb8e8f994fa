"""Shared steps of the firmware benchmarks: bake a scheme, build it for a board, run it, count instructions.

    from host_tools import firmware_bench as fb
    info = fb.bake(tflite, scheme, "build/bench-firmware/kws/baked")       # model.json as a dict
    fw = fb.build("qemu-m7", baked_dir, build_dir)     # {"elf", "flash_bytes", ...}; DoesNotFit if the linker refuses
    m = fb.run_qemu(fw["elf"], info, trains=3)          # INFO after training + instructions per EVAL / TRAIN
    c = fb.callgrind(host_elf, info, trains=1)          # the same counted by valgrind on the host build

Instructions on qemu-m7: QEMU runs with -icount shift=0, so its virtual clock advances one nanosecond per
guest instruction, and hal_ticks() reads CMSDK TIMER0 at the 25 MHz system clock (hal_qemu.cc): one tick
is 40 instructions (TICK_INSTRUCTIONS). Checked against QEMU's own trace (-d in_asm,exec,nochain, summing
the instructions of every translation block executed): DS-CNN, one EVAL request to reply 16,378,799
instructions; its forward 407,376 ticks x 40 = 16,295,040 (the rest is the frame's CRC and reply); with
shift=1, 2, 3 the ticks double each time. An EVAL's ticks cover the forward, a TRAIN's the forward with
its saves plus the backward and updates (the "training step" of the benchmarks).
On the host (board "host", no memory limit) valgrind's callgrind counts x86-64 instructions: inclusive cost
of odt::forward_with_saves (+ odt::train_step for a TRAIN), so only host rows compare with host rows.
"""
import json
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from host_tools.boards import exit_code, launch
from host_tools.protocol import Device
from model_prep import bake as bake_mod

ROOT = Path(__file__).resolve().parent.parent
FLASH_LIMIT = 1024 * 1024        # STM32F746 (the linker scripts enforce both)
SRAM_LIMIT = 320 * 1024
SRAM_256K = 256 * 1024           # the budget of Lin et al.'s title
TICK_INSTRUCTIONS = 40           # qemu-m7 under -icount shift=0 (see above)
NO_FIT = re.compile(r"overflowed by \d+ bytes|will not fit in region[^\n]*|section .* overlaps[^\n]*")


class DoesNotFit(RuntimeError):
    """The linker refused the build: it does not fit the chip's flash or SRAM (the message says which)."""


def bake(tflite, scheme, out_dir, lr=0.05):
    """Bake `tflite` training `scheme` (None or no layers: inference only) into out_dir; returns model.json."""
    train = "none" if scheme is None or not scheme.layers else "classifier"
    bake_mod.bake(tflite, out_dir, train=train, scheme=scheme if train != "none" else None, lr=lr)
    return json.loads((Path(out_dir) / "model.json").read_text())


def build(board, baked_dir, build_dir, stack_size=None):
    """make -C firmware for `board` (stack_size: bytes reserved for the stack, default the Makefile's);
    {"elf", **memory.json}. DoesNotFit with the linker's words if refused."""
    build_dir = Path(build_dir)
    for stale in ("firmware.elf", "memory.json"):
        (build_dir / stale).unlink(missing_ok=True)
    r = subprocess.run(["make", "-s", "-C", str(ROOT / "firmware"), f"BOARD={board}", "APP=app",
                        f"MODEL_DIR={Path(baked_dir).resolve()}", f"BUILD_DIR={build_dir.resolve()}"]
                       + ([f"STACK_SIZE={stack_size}"] if stack_size else []),
                       capture_output=True, text=True)
    if r.returncode != 0:
        why = NO_FIT.findall(r.stdout + r.stderr)
        if why:
            raise DoesNotFit("; ".join(dict.fromkeys(why)))
        raise RuntimeError(f"firmware build failed ({board}, {baked_dir}):\n{(r.stdout + r.stderr)[-3000:]}")
    memory = build_dir / "memory.json"
    return {"elf": build_dir / "firmware.elf", **(json.loads(memory.read_text()) if memory.exists() else {})}


def random_samples(info, n, seed):
    """n (label, int8 input) pairs, uniformly random."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(info["input_shape"]))
    return [(int(rng.integers(info["num_classes"])), rng.integers(-128, 128, size, dtype=np.int8)) for _ in range(n)]


def run_qemu(elf, info, trains=3, seed=0):
    """EVAL once, TRAIN `trains` times on random data on qemu-m7 (icount); INFO read after the last step.

    {"info": INFO, "instructions_inference", "instructions_train_step" (the last TRAIN's, forward included),
     "train_ticks": [each TRAIN's ticks]}"""
    samples = random_samples(info, max(trains, 1), seed)
    with launch("qemu-m7", elf, icount=True) as url, Device(url, timeout=60) as dev:
        eval_ticks = dev.evaluate(samples[0][1]).ticks
        ticks = [dev.train(label, x).ticks for label, x in samples[:trains]]
        device_info = dev.info()
    return {"info": device_info, "instructions_inference": eval_ticks * TICK_INSTRUCTIONS,
            "instructions_train_step": ticks[-1] * TICK_INSTRUCTIONS if ticks else None, "train_ticks": ticks}


def _callgrind_run(elf, requests, info, seed):
    """Inclusive instructions per function name (odt::...) of the host ELF serving `requests` (eval|train)."""
    with tempfile.TemporaryDirectory(prefix="bench_cg_") as tmp:
        out, wrapper = Path(tmp) / "callgrind.out", Path(tmp) / "run.sh"
        wrapper.write_text(f'#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out} '
                           f'"{Path(elf).resolve()}" "$@"\n')
        wrapper.chmod(0o755)
        with launch("host", wrapper, timeout=120) as url:
            with Device(url, timeout=600, retries=1) as dev:
                for kind, (label, x) in zip(requests, random_samples(info, len(requests), seed)):
                    if kind == "train":
                        dev.train(label, x)
                    else:
                        dev.evaluate(x)
            if exit_code(url, timeout=120) != 0:      # the host board exits when its client hangs up
                raise RuntimeError(f"callgrind run of {elf} failed")
        report = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
                                capture_output=True, text=True, check=True).stdout
    cost = {}
    for line in report.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?\S*?:?(odt::\w+)\(", line)
        if m:
            cost.setdefault(m.group(2), int(m.group(1).replace(",", "")))
    return cost


def callgrind(elf, info, trains=1, seed=0):
    """Host instructions of one inference and of one training step (forward + backward + updates)."""
    ev = _callgrind_run(elf, ["eval"], info, seed)
    result = {"instructions_inference": ev["odt::forward_with_saves"], "instructions_train_step": None}
    if trains:
        tr = _callgrind_run(elf, ["train"] * trains, info, seed)
        result["instructions_train_step"] = (tr["odt::forward_with_saves"] + tr["odt::train_step"]) // trains
    return result
