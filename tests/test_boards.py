"""Board layer: the Makefile, the host and QEMU boards, and host_tools.boards.

    .venv/bin/pytest tests/test_boards.py -q

Builds firmware/tests/echo for host, qemu-m7 and stm32f746 (build only) into temporary folders
and talks to it over pyserial socket:// URLs.
"""
import json
import random
import re
import subprocess
import time
from pathlib import Path

import pytest
import serial

from host_tools.boards import BoardError, exit_code, launch

ROOT = Path(__file__).resolve().parents[1]
# the stack reservation firmware/Makefile gives a build that does not set STACK_SIZE
STACK_DEFAULT = int(re.search(r"^STACK_SIZE \?= (\d+)", (ROOT / "firmware" / "Makefile").read_text(), re.M).group(1))
FIRMWARE = ROOT / "firmware"
ECHO = FIRMWARE / "tests" / "echo"
FLASH_LIMIT, SRAM_LIMIT = 1048576, 327680

BOARDS = ["host", "qemu-m7"]


def make(*targets, **variables) -> subprocess.CompletedProcess:
    args = [f"{k}={v}" for k, v in variables.items()]
    return subprocess.run(["make", "-C", str(FIRMWARE), "-j4", *targets, *args],
                          capture_output=True, text=True)


def build(board: str, build_dir: Path, app: Path = ECHO, **variables) -> Path:
    r = make(BOARD=board, APP=app, BUILD_DIR=build_dir, **variables)
    assert r.returncode == 0, r.stdout + r.stderr
    return build_dir / "firmware.elf"


@pytest.fixture(scope="session")
def echo_elf(tmp_path_factory):
    cache = {}

    def get(board: str) -> Path:
        if board not in cache:
            cache[board] = build(board, tmp_path_factory.mktemp(f"echo-{board}"))
        return cache[board]
    return get


def report(port: serial.Serial) -> dict:
    port.write(b"STK?")
    assert port.read(4) == b"STK?"
    line = port.readline().decode()
    assert line.startswith("STK ") and line.endswith("\n"), line
    fields = dict(kv.split("=") for kv in line.split()[1:])
    return {k: (v if k == "board" else int(v)) for k, v in fields.items()}


@pytest.mark.parametrize("board", BOARDS)
def test_echo_single_bytes(board, echo_elf):
    with launch(board, echo_elf(board)) as url, serial.serial_for_url(url, timeout=5) as port:
        for b in range(256):
            port.write(bytes([b]))
            assert port.read(1) == bytes([b])


@pytest.mark.parametrize("board", BOARDS)
def test_echo_4k_burst_loses_nothing(board, echo_elf):
    data = random.Random(0).randbytes(4096)
    with launch(board, echo_elf(board)) as url, serial.serial_for_url(url, timeout=10) as port:
        port.write(data)
        assert port.read(len(data)) == data


@pytest.mark.parametrize("board", BOARDS)
def test_input_queues_while_app_is_busy(board, echo_elf):
    # "WAIT": the app stops reading for 300 ms; 16 KB sent meanwhile overflow the 2 KB RX ring on
    # qemu-m7, whose UART must then hold back the socket (flow control) instead of dropping bytes.
    data = b"WAIT" + random.Random(1).randbytes(16384)
    with launch(board, echo_elf(board)) as url, serial.serial_for_url(url, timeout=10) as port:
        port.write(data)
        assert port.read(len(data)) == data


@pytest.mark.parametrize("board", BOARDS)
def test_exit_code(board, echo_elf):
    with launch(board, echo_elf(board)) as url:
        with serial.serial_for_url(url, timeout=5) as port:
            port.write(b"EXIT")
            assert port.read(4) == b"EXIT"
        assert exit_code(url) == 3


@pytest.mark.slow
def test_qemu_icount(echo_elf):
    with launch("qemu-m7", echo_elf("qemu-m7"), icount=True) as url:
        with serial.serial_for_url(url, timeout=5) as port:
            port.write(b"hello")
            assert port.read(5) == b"hello"
            assert report(port)["board"] == "qemu-m7"
            port.write(b"EXIT")
            assert port.read(4) == b"EXIT"
        assert exit_code(url) == 3


def test_host_report_is_zero(echo_elf):
    with launch("host", echo_elf("host")) as url, serial.serial_for_url(url, timeout=5) as port:
        r = report(port)
    assert r["board"] == "host" and r["tps"] == 1000000
    assert r["stack_used"] == r["flash"] == r["ram"] == 0
    assert json.loads((echo_elf("host").parent / "memory.json").read_text())["flash_bytes"] is None


@pytest.mark.slow
def test_qemu_report_matches_memory_json(echo_elf):
    elf = echo_elf("qemu-m7")
    with launch("qemu-m7", elf) as url, serial.serial_for_url(url, timeout=5) as port:
        first = report(port)
        time.sleep(0.3)
        second = report(port)
    mem = json.loads((elf.parent / "memory.json").read_text())
    assert mem == {"board": "qemu-m7", "flash_bytes": mem["flash_bytes"],
                   "static_sram_bytes": mem["static_sram_bytes"], "stack_reserved_bytes": STACK_DEFAULT,
                   "flash_limit": FLASH_LIMIT, "sram_limit": SRAM_LIMIT}
    assert first["board"] == "qemu-m7"
    assert 0 < first["stack_used"] < first["stack_size"] == STACK_DEFAULT
    assert 0 < first["flash"] < FLASH_LIMIT and 0 < first["ram"] < SRAM_LIMIT
    # The firmware's linker-symbol view agrees with the build's size report.
    assert abs(first["flash"] - mem["flash_bytes"]) <= 16
    assert first["ram"] == mem["static_sram_bytes"]
    assert second["millis"] > first["millis"]  # SysTick runs


def test_stm32f746_builds(tmp_path):
    r = make(BOARD="stm32f746", APP=ECHO, BUILD_DIR=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "memory report (stm32f746)" in r.stdout
    mem = json.loads((tmp_path / "memory.json").read_text())
    assert mem["board"] == "stm32f746" and 0 < mem["flash_bytes"] < FLASH_LIMIT
    sections = subprocess.run(["arm-none-eabi-size", "-A", str(tmp_path / "firmware.elf")],
                              capture_output=True, text=True, check=True).stdout
    assert re.search(r"^\.isr_vector\s+\d+\s+134217728$", sections, re.M)  # 0x08000000
    assert (tmp_path / "firmware.map").is_file()


def _stlink_attached() -> bool:
    return any(p.read_text().strip() == "0483" for p in Path("/sys/bus/usb/devices").glob("*/idVendor"))


@pytest.mark.skipif(_stlink_attached(), reason="an ST-LINK is attached: would really flash")
def test_flash_without_probe_fails_clearly(tmp_path):
    r = make("flash", BOARD="stm32f746", APP=ECHO, BUILD_DIR=tmp_path)
    assert r.returncode != 0
    assert "make flash: no ST-LINK probe found" in r.stdout + r.stderr


def test_flash_other_board_is_an_error(tmp_path):
    r = make("flash", BOARD="host", APP=ECHO, BUILD_DIR=tmp_path)
    assert r.returncode != 0 and "only BOARD=stm32f746 can be flashed" in r.stdout


def test_config_info(tmp_path):
    r = make("config_info", BOARD="host", APP=ECHO, BUILD_DIR=tmp_path)
    assert r.returncode == 0 and f"BUILD_DIR   = {tmp_path}" in r.stdout
    assert "echo.cc" in r.stdout


def _static_array_app(tmp_path: Path) -> Path:
    app = tmp_path / "big"
    app.mkdir()
    (app / "big.cc").write_text(
        '#include "hal.h"\n'
        "static volatile uint8_t g_big[BIG_BYTES];\n"
        "int main(int argc, char** argv) { hal_init(argc, argv); g_big[argc] = 1; return g_big[0]; }\n")
    return app


@pytest.mark.slow
def test_linker_enforces_320k_sram(tmp_path):
    # Fill RAM exactly to 320 KiB (QEMU's mps2-an500 has 4 MiB), then 64 bytes more must not link.
    app = _static_array_app(tmp_path)
    build("qemu-m7", tmp_path / "b0", app=app, EXTRA_CFLAGS="-DBIG_BYTES=1024")
    mem = json.loads((tmp_path / "b0" / "memory.json").read_text())
    free = SRAM_LIMIT - mem["stack_reserved_bytes"] - mem["static_sram_bytes"]
    full = build("qemu-m7", tmp_path / "b1", app=app, EXTRA_CFLAGS=f"-DBIG_BYTES={1024 + free}")
    mem = json.loads((full.parent / "memory.json").read_text())
    assert mem["static_sram_bytes"] + mem["stack_reserved_bytes"] == SRAM_LIMIT
    bad = make(BOARD="qemu-m7", APP=app, BUILD_DIR=tmp_path / "b2",
               EXTRA_CFLAGS=f"-DBIG_BYTES={1024 + free + 64}")
    assert bad.returncode != 0
    assert re.search(r"region `RAM' overflowed|will not fit in region `RAM'", bad.stderr), bad.stderr


@pytest.mark.slow
def test_qemu_stack_overflow_faults(tmp_path):
    app = tmp_path / "deep"
    app.mkdir()
    (app / "deep.cc").write_text(
        '#include "hal.h"\n'
        "static int deep(int n) { volatile uint8_t pad[64]; pad[0] = (uint8_t)n;\n"
        "  return n == 0 ? 0 : deep(n - 1) + pad[0]; }\n"
        "int main(int argc, char** argv) { hal_init(argc, argv); uint8_t b;\n"
        "  while (hal_read(&b, 1, 1000) == 0) {}\n"
        "  return deep(b * 1000); }\n")
    elf = build("qemu-m7", tmp_path / "build", app=app)
    with launch("qemu-m7", elf) as url:
        with serial.serial_for_url(url, timeout=5) as port:
            port.write(bytes([1]))  # 1000 frames: ~100 KB of stack, far over 16 KiB
            assert exit_code(url) == 131  # 128 + HardFault



def test_launch_reports_early_death(tmp_path):
    dies = tmp_path / "dies"
    dies.write_text("#!/bin/sh\necho 'boom: no such model' >&2\nexit 7\n")
    dies.chmod(0o755)
    with pytest.raises(BoardError, match=r"(?s)exited with status 7.*boom: no such model"):
        with launch("host", dies):
            pass


@pytest.mark.parametrize("board,firmware,says", [
    ("qemu-m7", "text", "is not an ELF file"),        # QEMU would load it as raw bytes and hang
    ("qemu-m7", "host", "ELF for another machine"),
    ("host", "qemu-m7", "Arm ELF, which the host cannot run"),
])
def test_launch_refuses_firmware_for_another_board(tmp_path, echo_elf, board, firmware, says):
    if firmware == "text":
        elf = tmp_path / "model.tflite"
        elf.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    else:
        elf = echo_elf(firmware)
    with pytest.raises(BoardError, match=f"{says}.*make firmware BOARD={board}"):
        with launch(board, elf):
            pass
