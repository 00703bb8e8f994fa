"""The Cortex-M7 DSP paths of conv2d_s8, depthwise_conv2d_s8 and fully_connected_s8 equal their
plain C paths bit for bit (tests/test_kernels.py proves the plain paths against tflite-micro).

    .venv/bin/pytest tests/test_kernels_dsp.py -q

Builds firmware/tests/kernels_dsp three ways: qemu-m7 (DSP paths compiled in), qemu-m7 with
-DODT_PLAIN_KERNELS and host (plain paths only), runs each, and reads its JSON report: per kernel
the pseudo-random cases run through both paths, the mismatches and a checksum of the outputs.
Every build must see the same outputs, so the checksums agree across boards too.
"""
import json
import re
import subprocess
from pathlib import Path

import pytest
import serial

from host_tools.boards import exit_code, launch

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "firmware" / "tests" / "kernels_dsp"
KERNELS = ("conv2d_s8", "depthwise_conv2d_s8", "fully_connected_s8")
BUILDS = {"qemu-m7": ("qemu-m7", ""), "qemu-m7-plain": ("qemu-m7", "-DODT_PLAIN_KERNELS"),
          "host": ("host", "")}


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    cache = {}

    def get(build: str) -> Path:
        if build not in cache:
            board, cflags = BUILDS[build]
            out = tmp_path_factory.mktemp(f"kernels_dsp-{build}")
            r = subprocess.run(["make", "-C", str(ROOT / "firmware"), "-j4", f"BOARD={board}",
                                f"APP={APP}", f"BUILD_DIR={out}", f"EXTRA_CFLAGS={cflags}"],
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stdout + r.stderr
            cache[build] = out / "firmware.elf"
        return cache[build]
    return get


@pytest.fixture(scope="module")
def reports(elf):
    """Per build: {kernel: its JSON line}, plus "bench"."""
    cache = {}

    def get(build: str) -> dict:
        if build not in cache:
            lines = {}
            with launch(BUILDS[build][0], elf(build)) as url:
                with serial.serial_for_url(url, timeout=30) as port:
                    while "bench" not in lines:
                        line = port.readline().decode()
                        assert line.endswith("\n"), f"no report within 30 s: {line!r}"
                        r = json.loads(line)
                        lines[r.get("kernel", "bench")] = r
                assert exit_code(url) == 0
            cache[build] = lines
        return cache[build]
    return get


@pytest.mark.parametrize("build", BUILDS)
def test_tuned_equals_plain(build, reports):
    r = reports(build)
    for k in KERNELS:
        assert r[k]["dsp"] == (build == "qemu-m7"), r[k]
        assert r[k]["cases"] >= 1000 and r[k]["mismatches"] == 0, r[k]


def test_outputs_agree_across_boards(reports):
    # The M7's DSP paths, its plain paths and the host's (the ones checked against TFLM).
    sums = {b: [reports(b)[k]["checksum"] for k in KERNELS] for b in BUILDS}
    assert len({tuple(s) for s in sums.values()}) == 1, sums


def _instructions(elf: Path) -> dict[str, set[str]]:
    """Mnemonics used by each odt:: kernel function of the ELF."""
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "-C", str(elf)], check=True,
                         capture_output=True, text=True).stdout
    found, current = {}, None
    for line in dis.splitlines():
        head = re.match(r"^[0-9a-f]+ <odt::(\w+)\(", line)
        if head:
            current = found.setdefault(head.group(1), set())
        elif not line.strip():
            current = None
        elif current is not None and (m := re.match(r"^\s+[0-9a-f]+:\s+(?:[0-9a-f]{4} ?)+\s+(\w+)", line)):
            current.add(m.group(1))
    return found


def test_dsp_instructions_compiled_in(elf):
    tuned, plain = _instructions(elf("qemu-m7")), _instructions(elf("qemu-m7-plain"))
    assert "smlad" in tuned["conv2d_s8"] and "smlad" in tuned["fully_connected_s8"]
    assert "smlabb" in tuned["depthwise_conv2d_s8"] and "smlatt" in tuned["depthwise_conv2d_s8"]
    for k in KERNELS:
        assert not {"smlad", "smlabb"} & (plain[k] | tuned[f"{k}_plain"]), k
