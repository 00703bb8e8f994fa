"""Tests of the framed serial protocol: host_tools/protocol.py and firmware/runtime/protocol.cc.

    .venv/bin/pytest tests/test_protocol.py -q

The C++ decoder is built with g++ and sanitizers from tests/cpp/protocol_test.cc and fed
command scripts (format at the top of that file); its events must match the Python decoder's.
"""

import json
import random
import socket
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from host_tools.protocol import (
    FRAME_START,
    MAX_PAYLOAD,
    Device,
    DeviceError,
    Err,
    EvalReply,
    Frame,
    FrameDecoder,
    Msg,
    TrainReply,
    crc16_ccitt,
    encode_frame,
)

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "firmware" / "runtime"


def corrupt(frame: bytes, index: int = -1) -> bytes:
    b = bytearray(frame)
    b[index] ^= 0x5A
    return bytes(b)


# -- CRC and framing (Python) ---------------------------------------------------------------


def test_crc_known_vectors():
    assert crc16_ccitt(b"123456789") == 0x29B1
    assert crc16_ccitt(b"") == 0xFFFF
    assert crc16_ccitt(b"A") == 0xB915
    assert crc16_ccitt(b"6789", crc16_ccitt(b"12345")) == 0x29B1


def test_encode_layout():
    f = encode_frame(Msg.TRAIN, b"\x03\x01\xff")
    assert f[:4] == bytes([0xA5, 3, 0, 0x02]) and f[4:7] == b"\x03\x01\xff"
    assert struct.unpack("<H", f[7:])[0] == crc16_ccitt(f[1:7])
    assert len(encode_frame(Msg.INFO)) == 6
    with pytest.raises(ValueError):
        encode_frame(Msg.EVAL, bytes(MAX_PAYLOAD + 1))


@pytest.mark.parametrize("length", [0, 1, 255, 256, MAX_PAYLOAD])
def test_round_trip(length):
    payload = bytes(random.Random(length).randrange(256) for _ in range(length))
    dec = FrameDecoder()
    assert dec.feed(encode_frame(0x83, payload)) == [Frame(0x83, payload)]
    assert dec.errors == [] and not dec.in_frame


def test_garbage_before_frames_is_skipped():
    a, b = encode_frame(Msg.INFO), encode_frame(Msg.EVAL, b"\x01\x02")
    dec = FrameDecoder()
    assert dec.feed(b"\x00\x13garbage" + a + b"\xff\x00" + b) == [Frame(1, b""), Frame(3, b"\x01\x02")]
    assert dec.errors == []


def test_split_across_feeds():
    stream = encode_frame(Msg.TRAIN, bytes(range(40))) + encode_frame(Msg.STATS)
    dec = FrameDecoder()
    frames = [f for i in range(len(stream)) for f in dec.feed(stream[i : i + 1])]
    assert frames == [Frame(2, bytes(range(40))), Frame(4, b"")]
    dec = FrameDecoder()
    assert dec.feed(stream[:5]) == [] and dec.feed(stream[5:]) == frames


def test_corrupted_crc_is_error_and_next_frame_decodes():
    good = encode_frame(Msg.PARAMS, b"\x00" * 6)
    dec = FrameDecoder()
    assert dec.feed(corrupt(good) + good) == [Frame(5, b"\x00" * 6)]
    assert dec.errors == [Err.BAD_CRC]
    dec = FrameDecoder()
    assert dec.feed(corrupt(good, 4) + good) == [Frame(5, b"\x00" * 6)]  # payload byte
    assert dec.errors == [Err.BAD_CRC]


def test_too_long_length_is_error_5_and_resyncs():
    good = encode_frame(Msg.INFO)
    dec = FrameDecoder()
    assert dec.feed(bytes([FRAME_START]) + struct.pack("<H", MAX_PAYLOAD + 1) + b"\x01xyz" + good) == [Frame(1, b"")]
    assert dec.errors == [Err.TOO_LONG]
    small = FrameDecoder(max_payload=4)
    assert small.feed(encode_frame(3, b"12345") + encode_frame(3, b"1234")) == [Frame(3, b"1234")]
    assert small.errors == [Err.TOO_LONG]


def test_truncated_frame():
    good = encode_frame(Msg.EVAL, b"abcdef")
    dec = FrameDecoder()
    assert dec.feed(good[:7]) == [] and dec.in_frame
    assert dec.timeout() is True and dec.errors == [Err.TRUNCATED]
    assert dec.timeout() is False  # nothing in progress any more
    assert dec.feed(good) == [Frame(3, b"abcdef")]


def test_doc_block_identical_in_python_and_cpp():
    def block(lines):
        start = next(i for i, ln in enumerate(lines) if ln.startswith("Frame format"))
        end = next(i for i, ln in enumerate(lines) if i > start and not ln.strip())
        return lines[start:end]

    py = (ROOT / "host_tools" / "protocol.py").read_text().splitlines()
    cc = [ln[3:] if ln.startswith("// ") else ln[2:] for ln in (RUNTIME / "protocol.h").read_text().splitlines()]
    assert block(py) == block(cc)
    assert "kMaxPayload = 2048" in (RUNTIME / "protocol.h").read_text() and MAX_PAYLOAD == 2048


# -- C++ decoder against the Python one -----------------------------------------------------


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    exe = tmp_path_factory.mktemp("protocol") / "protocol_test"
    cmd = ["g++", "-std=c++17", "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
           "-fno-sanitize-recover=all", f"-I{RUNTIME}", str(ROOT / "tests/cpp/protocol_test.cc"),
           str(RUNTIME / "protocol.cc"), "-o", str(exe)]  # fmt: skip
    subprocess.run(cmd, check=True)

    def run(lines: list[str]) -> list[str]:
        p = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        return p.stdout.splitlines()

    return run


class Script:
    """Driver commands plus the events the Python decoder gives for the same input and clock."""

    def __init__(self):
        self.lines, self.events = [], []
        self.dec, self.now, self.last = FrameDecoder(), 0, 0

    def new(self, capacity):
        self.lines.append(f"n {capacity}")
        self.dec = FrameDecoder(max_payload=capacity)

    def at(self, ms):
        self.lines.append(f"t {ms}")
        self.now = ms

    def poll(self):
        self.lines.append("p")
        self._timeout()

    def push(self, data: bytes):
        if not data:
            return
        self.lines.append("b " + data.hex())
        for byte in data:
            self._timeout()
            self.last = self.now
            self._record(self.dec.feed(bytes([byte])))

    def _timeout(self):
        if self.dec.in_frame and self.now - self.last >= 100:
            self.dec.timeout()
            self._record([])

    def _record(self, frames):
        self.events += [f"error {e}" for e in self.dec.errors]
        self.dec.errors.clear()
        self.events += [f"frame {f.type} {f.payload.hex()}".rstrip() for f in frames]


def test_cpp_crc_and_encoders_match_python(driver):
    payloads = [b"", b"\x00", bytes(range(256)), bytes(MAX_PAYLOAD)]
    out = driver(["c " + b"123456789".hex()] + [f"e {0x80 + i} {p.hex()}" for i, p in enumerate(payloads)]
                 + [f"e 1 {bytes(MAX_PAYLOAD + 1).hex()}", "r 6 100 label 99 out of range", "r 7 9 busy", "r 1 6 x"])  # fmt: skip
    assert out[0] == "crc 29b1"
    assert out[1:5] == [f"enc {encode_frame(0x80 + i, p).hex()}" for i, p in enumerate(payloads)]
    assert out[5] == "enc"  # too long: 0
    assert out[6] == "enc " + encode_frame(Msg.ERROR, b"\x06label 99 out of range").hex()
    assert out[7] == "enc " + encode_frame(Msg.ERROR, b"\x07bu").hex()  # cut to fit 9 bytes
    assert out[8] == "enc"  # not even the code fits


def test_cpp_decoder_scripted(driver):
    s = Script()
    good = encode_frame(Msg.TRAIN, b"\x01\xfe\x7f")
    s.push(b"noise" + good)  # garbage, then a frame
    s.push(corrupt(good))  # bad crc
    s.push(bytes([FRAME_START]) + struct.pack("<H", 5000) + good)  # too long, then resync
    s.push(encode_frame(0x42, b"")[:3] + b"")  # unknown type is not the decoder's business ...
    s.at(50), s.poll(), s.push(encode_frame(0x42, b"")[3:])  # ... and 50 ms is not a time-out
    s.push(good[:5]), s.at(149), s.poll(), s.at(150), s.poll(), s.poll()  # truncated once
    s.push(good[:5]), s.at(300), s.push(good)  # time-out seen by push; its 0xA5 starts the next frame
    s.new(4), s.push(encode_frame(3, b"12345") + encode_frame(3, b"1234"))
    s.new(0), s.push(encode_frame(3, b"1") + encode_frame(4, b""))
    assert s.events == [
        "frame 2 01fe7f", "error 1", "error 5", "frame 2 01fe7f", "frame 66",
        "error 2", "error 2", "frame 2 01fe7f", "error 5", "frame 3 31323334", "error 5", "frame 4",
    ]  # fmt: skip
    assert driver(s.lines) == s.events


@pytest.mark.parametrize("seed", range(4))
def test_cpp_decoder_fuzz_matches_python(driver, seed):
    rng = random.Random(seed)
    s = Script()
    if seed == 3:
        s.new(16)
    for _ in range(1500):
        kind = rng.randrange(8)
        length = rng.choice([0, 1, 2, 7, 16, 17, 100, rng.randrange(300), MAX_PAYLOAD, MAX_PAYLOAD + 1])
        frame = encode_frame(rng.randrange(256), rng.randbytes(min(length, MAX_PAYLOAD)))
        if length > MAX_PAYLOAD:
            frame = frame[:1] + struct.pack("<H", length) + frame[3:]
        if kind == 0:
            frame = corrupt(frame, rng.randrange(1, len(frame)))
        elif kind == 1:
            frame = frame[: rng.randrange(1, len(frame))]
        elif kind == 2:
            frame = rng.randbytes(rng.randrange(20))
        elif kind == 3:
            frame = bytes(rng.choice([0xA5, 0x00, 0xFF, 0x01, rng.randrange(256)]) for _ in range(rng.randrange(40)))
        s.push(frame)
        if rng.random() < 0.3:
            s.at(s.now + rng.choice([0, 1, 99, 100, 101, 500]))
            if rng.random() < 0.5:
                s.poll()
    assert s.events, "the fuzz should produce events"
    assert driver(s.lines) == s.events


def test_cpp_decoder_random_bytes_never_crash(driver):
    rng = random.Random(7)
    lines = []
    for i in range(300):
        lines += [f"t {i * 37}", "b " + rng.randbytes(rng.randrange(1, 400)).hex(), "p"]
    out = driver(lines)
    assert all(ln.split()[0] in ("frame", "error") for ln in out)


@pytest.mark.slow
def test_protocol_cc_builds_for_cortex_m7(tmp_path):
    cmd = ["arm-none-eabi-g++", "-std=c++17", "-mcpu=cortex-m7", "-mthumb", "-fno-exceptions", "-fno-rtti",
           "-Wall", "-Wextra", "-Werror", "-Os", "-c", str(RUNTIME / "protocol.cc"), "-o", str(tmp_path / "p.o")]  # fmt: skip
    subprocess.run(cmd, check=True)


# -- Device client against a fake device on a loopback TCP socket ---------------------------

BLOB = bytes(random.Random(1).randbytes(5000))


def fake_device(frame: Frame) -> bytes:
    """Replies like the firmware would (10 classes, a 5000-byte parameter blob)."""
    t, p = frame.type, frame.payload

    def error(code, text):
        return encode_frame(Msg.ERROR, bytes([code]) + text.encode())

    if t in (Msg.INFO, Msg.STATS):
        return encode_frame(t | 0x80, json.dumps({"classes": 10, "type": t}).encode())
    if t == Msg.TRAIN:
        if len(p) < 3:
            return error(Err.BAD_LENGTH, "TRAIN needs a sequence number and a label")
        if p[2] >= 10:
            return error(Err.BAD_VALUE, f"label {p[2]} out of range")
        return encode_frame(0x82, bytes([p[2]]) + struct.pack("<I", 1000 + len(p) - 2))
    if t == Msg.EVAL:
        return encode_frame(0x83, b"\x02" + struct.pack("<I", 77) + p[:3])
    if t == Msg.PARAMS:
        off, n = struct.unpack("<IH", p)
        return encode_frame(0x85, BLOB[off : off + n])
    if t == Msg.RESET:
        return encode_frame(0x86)
    return error(Err.UNKNOWN_TYPE, f"type {t}")


class Responder:
    """A thread on 127.0.0.1:<free port> that answers each request with reply(frame, n) (n counts from 1)."""

    def __init__(self, reply=lambda frame, n: fake_device(frame)):
        self.reply, self.requests = reply, []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(10)
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        dec = FrameDecoder()
        with conn, self.server:
            while data := conn.recv(4096):
                for frame in dec.feed(data):
                    self.requests.append(frame)
                    if out := self.reply(frame, len(self.requests)):
                        conn.sendall(out)


def test_device_requests():
    r = Responder()
    with Device(r.url, timeout=2.0) as dev:
        assert dev.info() == {"classes": 10, "type": 1}
        assert dev.stats()["type"] == 4
        assert dev.train(3, np.arange(-4, 4, dtype=np.int8)) == TrainReply(pred=3, ticks=1009)
        assert dev.train(4, b"\x01\x02") == TrainReply(pred=4, ticks=1003)
        ev = dev.evaluate(np.array([-128, 0, 127, 5], dtype=np.int8))
        assert isinstance(ev, EvalReply) and (ev.pred, ev.ticks) == (2, 77)
        assert ev.logits.dtype == np.int8 and ev.logits.tolist() == [-128, 0, 127]
        assert dev.params(100, 16) == BLOB[100:116]
        assert dev.read_params(len(BLOB)) == BLOB
        dev.reset()
        with pytest.raises(TypeError, match="int8"):
            dev.evaluate(np.zeros(4, dtype=np.float32))
    assert r.requests[2].type == Msg.TRAIN
    assert r.requests[2].payload[2:] == bytes([3]) + np.arange(-4, 4, dtype=np.int8).tobytes()
    seq = struct.unpack_from("<H", r.requests[2].payload)[0]
    assert struct.unpack_from("<H", r.requests[3].payload)[0] == (seq + 1) & 0xFFFF
    assert [f.type for f in r.requests[-4:-1]] == [Msg.PARAMS] * 3  # 5000 bytes in 2048-byte chunks


def test_device_retries_a_corrupted_reply():
    r = Responder(lambda f, n: corrupt(fake_device(f)) if n == 1 else fake_device(f))
    with Device(r.url, timeout=2.0) as dev:
        assert dev.train(1, b"\x00") == TrainReply(1, 1002)
    assert len(r.requests) == 2
    assert r.requests[0] == r.requests[1], "a retry resends the same sequence number"


def test_device_retries_truncated_reply_and_busy():
    r = Responder(lambda f, n: fake_device(f)[:4] if n == 1 else
                  encode_frame(Msg.ERROR, b"\x07busy") if n == 2 else fake_device(f))  # fmt: skip
    with Device(r.url, timeout=0.3) as dev:
        assert dev.info()["classes"] == 10
    assert len(r.requests) == 3


def test_device_no_reply_names_port_and_request():
    r = Responder(lambda f, n: None)
    with Device(r.url, timeout=0.2, retries=3) as dev, pytest.raises(DeviceError) as e:
        dev.train(1, b"\x00")
    assert str(e.value) == f"{r.url}: no reply to TRAIN after 3 tries (timeout 0.2 s)"
    assert len(r.requests) == 3


def test_device_bad_value_is_not_retried():
    r = Responder()
    with Device(r.url, timeout=2.0) as dev:
        with pytest.raises(DeviceError, match=r"TRAIN failed: device error 6 \(bad value\): label 99 out of range"):
            dev.train(99, b"\x00")
        assert len(r.requests) == 1
        with pytest.raises(DeviceError, match="device error 4"):
            dev._request(Msg.TRAIN)  # empty TRAIN: bad length, not retried either
        assert len(r.requests) == 2
        assert dev.train(2, b"") == TrainReply(2, 1001)  # the link still works


def test_device_unexpected_reply_type():
    r = Responder(lambda f, n: encode_frame(0x84, b"{}"))
    with Device(r.url, timeout=1.0, retries=2) as dev, pytest.raises(DeviceError) as e:
        dev.train(1, b"")
    assert "TRAIN failed after 2 tries" in str(e.value) and "unexpected reply type 0x84" in str(e.value)


def test_loop_url_echo_is_not_a_reply():
    with Device("loop://", timeout=0.2, retries=1) as dev, pytest.raises(DeviceError, match="unexpected reply type 0x01"):
        dev.info()


@pytest.mark.parametrize("url", ["/dev/odt-no-such-port", "socket://127.0.0.1:1", "nonsense://x"])
def test_device_bad_port(url):
    with pytest.raises(DeviceError) as e:
        Device(url)
    assert url in str(e.value) and "/dev/ttyACM0" in str(e.value) and "socket://HOST:PORT" in str(e.value)
