"""Run a firmware ELF on a board and hand back a pyserial URL to talk to it.

    from host_tools.boards import launch, exit_code
    with launch("qemu-m7", Path("build/firmware/qemu-m7/echo/firmware.elf")) as url:
        with serial.serial_for_url(url, timeout=5) as port:
            port.write(b"EXIT")
        assert exit_code(url) == 3      # the code the firmware passed to hal_exit()

Boards: "host" (native executable, run with --port PORT) and "qemu-m7" (QEMU mps2-an500,
UART0 on a TCP socket, semihosting exit). Both give "socket://127.0.0.1:PORT", so applications
never need to know which board they run on. The real STM32F746G-DISCO is programmed with
`make -C firmware BOARD=stm32f746 flash` and reached at its ST-LINK serial port (/dev/ttyACM0).
"""
from __future__ import annotations

import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

BOARDS = ("host", "qemu-m7")
QEMU = "qemu-system-arm"


class BoardError(RuntimeError):
    """The board process failed to start or died early; the message includes its output."""


def qemu_command(elf: Path, port: int, icount: bool = False) -> list[str]:
    """QEMU mps2-an500 (Cortex-M7) with UART0 on a TCP server socket (see platform notes)."""
    cmd = [QEMU, "-M", "mps2-an500", "-cpu", "cortex-m7", "-display", "none", "-monitor", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
           "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"]
    # shift=0: one virtual ns per instruction, so virtual time (SysTick, hal_ticks) counts
    # instructions reproducibly.
    return cmd + (["-icount", "shift=0"] if icount else [])


def host_command(elf: Path, port: int) -> list[str]:
    return [str(elf), "--port", str(port)]


class _Process:
    """A board process whose stdout+stderr are collected by a thread (so its pipe never fills)."""

    def __init__(self, cmd: list[str], port: int):
        self.port = port
        self.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        for raw in self.popen.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            # hal_host prints "listening on 127.0.0.1:PORT"; QEMU prints
            # "QEMU waiting for connection on: disconnected:tcp:127.0.0.1:PORT,server=on".
            if f"127.0.0.1:{self.port}" in line and ("listening" in line or "waiting" in line):
                self.ready.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._drainer.join(timeout=5)   # it ends at EOF; closing the pipe under it would break its read
        if not self._drainer.is_alive():
            self.popen.stdout.close()


_running: dict[str, _Process] = {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(board: str, elf: Path, icount: bool, timeout: float) -> _Process:
    for _ in range(3):  # the free port may be taken before the process binds it: retry
        port = _free_port()
        cmd = host_command(elf, port) if board == "host" else qemu_command(elf, port, icount)
        proc = _Process(cmd, port)
        deadline = time.monotonic() + timeout
        while not proc.ready.wait(0.02):
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                break
        if proc.ready.is_set():
            return proc
        proc.stop()
        time.sleep(0.05)  # let the drain thread collect the last lines
        if "in use" not in proc.output():
            why = "exited with status %s" % proc.popen.returncode if proc.popen.returncode is not None \
                else f"did not listen within {timeout:.0f} s"
            raise BoardError(f"{board}: {' '.join(cmd)}\n{why}; its output:\n{proc.output()}")
    raise BoardError(f"{board}: no free TCP port after 3 tries")


EM_ARM = 40   # ELF e_machine of 32-bit Arm


def _check_elf(board: str, elf: Path) -> None:
    """One clear error for a file that is not this board's firmware: QEMU would run any file as raw bytes and
    hang, the host cannot run an Arm image (the host board runs any native executable)."""
    with open(elf, "rb") as f:
        head = f.read(20)
    is_elf = head[:4] == b"\x7fELF" and len(head) == 20
    machine = int.from_bytes(head[18:20], "little" if head[5:6] == b"\x01" else "big") if is_elf else None
    build = f"expected the firmware.elf `make firmware BOARD={board}` builds"
    if board == "qemu-m7" and not is_elf:
        raise BoardError(f"launch: {elf} is not an ELF file; {build}")
    if board == "qemu-m7" and machine != EM_ARM:
        raise BoardError(f"launch: {elf} is an ELF for another machine (e_machine {machine}, not Arm); {build}")
    if board == "host" and machine == EM_ARM:
        raise BoardError(f"launch: {elf} is an Arm ELF, which the host cannot run; {build}")


@contextmanager
def launch(board: str, elf: Path, icount: bool = False, timeout: float = 20.0) -> Iterator[str]:
    """Start `elf` on `board` and yield "socket://127.0.0.1:PORT" once the port accepts.

    The process is killed when the block exits. icount (qemu-m7 only): deterministic virtual time.
    """
    if board not in BOARDS:
        raise ValueError(f"launch: board must be one of {BOARDS}, got {board!r} "
                         "(stm32f746: `make -C firmware BOARD=stm32f746 flash`, then its serial port)")
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise FileNotFoundError(f"launch: no firmware at {elf}")
    _check_elf(board, elf)
    proc = _start(board, elf, icount, timeout)
    url = f"socket://127.0.0.1:{proc.port}"
    _running[url] = proc
    try:
        yield url
    finally:
        _running.pop(url, None)
        proc.stop()


def exit_code(url: str, timeout: float = 10.0) -> int:
    """Wait for the board behind `url` (inside its launch block) to exit; return its status.

    qemu-m7: the code passed to hal_exit() (semihosting SYS_EXIT_EXTENDED); 128 + exception
    number after a fault (131: HardFault, e.g. a stack overflow). host: the process status.
    """
    proc = _running[url]
    try:
        return proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BoardError(f"board at {url} still running after {timeout} s; output:\n"
                         f"{proc.output()}") from None


def output(url: str) -> str:
    """What the board process printed so far (stdout and stderr), for error messages."""
    return _running[url].output()
