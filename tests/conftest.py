"""Shared fixtures: one small but real keyword-spotting pipeline per test session.

quick corpus (espeak-ng) -> pre-training (a few epochs) -> int8 export -> bake -> firmware for
host and qemu-m7. Every step runs the same CLI a user runs; the artefacts live in a session
temp folder. Set ODT_TEST_CACHE=DIR to keep them between runs while developing.
"""
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def run(*cmd, cwd=ROOT):
    """Run a command, failing the test with its output if it fails."""
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def runtime_library(folder, name):
    """firmware/runtime/<name>.cc with its test shim tests/cpp/<name>_shim.cc as a host shared library (ctypes)."""
    import ctypes
    so = Path(folder) / f"lib{name}.so"
    subprocess.run(["g++", "-std=c++17", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", "-shared",
                    "-fPIC", f"-I{ROOT}/firmware/runtime", ROOT / f"firmware/runtime/{name}.cc",
                    ROOT / f"tests/cpp/{name}_shim.cc", "-o", so], check=True)
    return ctypes.CDLL(str(so))


def build_firmware(board, model_dir, build_dir, app="app"):
    run("make", "-C", ROOT / "firmware", f"BOARD={board}", f"APP={app}", f"MODEL_DIR={model_dir}",
        f"BUILD_DIR={build_dir}")
    return Path(build_dir) / "firmware.elf"


@pytest.fixture
def one_torch_thread():
    """For tests of tiny ops: on a busy machine, waking OpenMP threads costs more than the op."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@dataclass
class KwsPipeline:
    corpus: Path
    checkpoint: Path
    tflite: Path
    baked: Path
    host_elf: Path
    qemu_elf: Path


@pytest.fixture(scope="session")
def kws(tmp_path_factory):
    cache = os.environ.get("ODT_TEST_CACHE")
    d = Path(cache) if cache else tmp_path_factory.mktemp("kws")
    d.mkdir(parents=True, exist_ok=True)
    p = KwsPipeline(d / "corpus", d / "dscnn.pt", d / "dscnn.tflite", d / "baked",
                    d / "fw-host" / "firmware.elf", d / "fw-qemu" / "firmware.elf")
    if not (p.corpus / "corpus.json").exists():
        run(PY, "-m", "model_prep.data.synth_kws", "--out", p.corpus, "--seed", 1, "--per-word", 60)
    if not p.checkpoint.exists():
        run(PY, "-m", "model_prep.pretrain", "--data", p.corpus, "--out", p.checkpoint, "--epochs", 30)
    if not p.tflite.exists():
        run(PY, "-m", "model_prep.export", p.checkpoint, "-o", p.tflite, "--data", p.corpus, "--calib", 200)
    run(PY, "-m", "model_prep.bake", p.tflite, "-o", p.baked, "--train", "classifier", "--lr", 0.02)
    build_firmware("host", p.baked, p.host_elf.parent)
    build_firmware("qemu-m7", p.baked, p.qemu_elf.parent)
    return p


@pytest.fixture(scope="session")
def digits_task(tmp_path_factory):
    """A quick image transfer task (search.tasks): MobileNetV2-w0.35 on 32x32 digits, pre-trained and exported."""
    from search import tasks
    cache = os.environ.get("ODT_TEST_CACHE")
    work = Path(cache) / "tasks" if cache else tmp_path_factory.mktemp("tasks")
    return tasks.prepare("digits", "mobilenetv2-w0.35", quick=True, work=work)
