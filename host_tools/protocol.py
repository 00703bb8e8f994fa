"""Framed serial protocol between the host tools and firmware/runtime/protocol.{h,cc}.

Frame format (both directions):
  0xA5 | len (u16 LE, payload bytes) | type (u8) | payload (len bytes) | crc (u16 LE)
  crc = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout)
        over len, type and payload. Max payload: 2048 bytes.
  A receiver skips bytes before a 0xA5 start byte silently (no error).
  A len above the max is error 5, a crc mismatch is error 1, and a frame
  left unfinished for 100 ms without a byte is error 2 (truncated).
  After a frame or an error the receiver hunts for 0xA5 again, starting
  with the next byte it receives.
Message types (host requests; the reply type is request | 0x80, or 0x7F):
  0x01 INFO    req: empty, or u32 LE offset.      resp 0x81: UTF-8 JSON text (device-defined keys) from
               that offset (0 when empty), at most the max payload; a shorter reply ends the text
  0x02 TRAIN   req: u16 LE seq, u8 label[, input]. resp 0x82: u8 predicted class (before the update), u32 LE ticks
  0x03 EVAL    req: [input].                      resp 0x83: u8 predicted class, u32 LE ticks, output (if it fits)
  0x04 STATS   req: empty.                        resp 0x84: UTF-8 JSON text
  0x05 PARAMS  req: u32 LE offset, u16 LE length. resp 0x85: those bytes of the trainable-parameter blob
  0x06 RESET   req: empty.                        resp 0x86: empty (device restores its trainable parameters)
  0x07 LOAD    req: u32 LE offset, bytes.         resp 0x87: empty (the bytes are written into the model input)
  0x08 OUTPUT  req: u32 LE offset, u16 LE length. resp 0x88: those bytes of the last output
  0x7F ERROR   resp only: u8 code, short UTF-8 message. Codes: 1 bad CRC, 2 truncated frame
               (inter-byte time-out), 3 unknown type, 4 bad payload length for the type,
               5 payload too long, 6 bad value (e.g. label out of range), 7 device busy/internal.
  A TRAIN that repeats the sequence number of the last TRAIN is answered again without
  training, so a retried request never trains twice. TRAIN and EVAL without input bytes run
  on the input staged by LOAD (for inputs larger than one frame).

Usage:
    with Device("socket://127.0.0.1:5555") as dev:   # or /dev/ttyACM0
        print(dev.info())
        reply = dev.train(3, features_int8)            # TrainReply(pred, ticks)
"""

from __future__ import annotations

import json
import os
import struct
import time
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import serial

FRAME_START = 0xA5
MAX_PAYLOAD = 2048
FRAME_OVERHEAD = 6  # start, len (2), type, crc (2)
INTER_BYTE_TIMEOUT_MS = 100
RETRY_PAUSE_S = 0.15  # longer than the device's inter-byte time-out, so it drops a partial frame


class Msg(IntEnum):
    INFO = 0x01
    TRAIN = 0x02
    EVAL = 0x03
    STATS = 0x04
    PARAMS = 0x05
    RESET = 0x06
    LOAD = 0x07
    OUTPUT = 0x08
    ERROR = 0x7F


RESPONSE_BIT = 0x80


class Err(IntEnum):
    BAD_CRC = 1
    TRUNCATED = 2
    UNKNOWN_TYPE = 3
    BAD_LENGTH = 4
    TOO_LONG = 5
    BAD_VALUE = 6
    BUSY = 7


ERROR_TEXT = {
    Err.BAD_CRC: "bad CRC",
    Err.TRUNCATED: "truncated frame",
    Err.UNKNOWN_TYPE: "unknown type",
    Err.BAD_LENGTH: "bad payload length",
    Err.TOO_LONG: "payload too long",
    Err.BAD_VALUE: "bad value",
    Err.BUSY: "device busy",
}
NOT_RETRIED = {Err.UNKNOWN_TYPE, Err.BAD_LENGTH, Err.BAD_VALUE}  # they will not get better


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE; pass the previous result as `crc` to continue a running CRC."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        crc &= 0xFFFF
    return crc


def encode_frame(type: int, payload: bytes = b"") -> bytes:
    if not 0 <= type <= 0xFF:
        raise ValueError(f"frame type {type} is not a byte")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD}-byte maximum")
    body = struct.pack("<HB", len(payload), type) + bytes(payload)
    return bytes([FRAME_START]) + body + struct.pack("<H", crc16_ccitt(body))


@dataclass(frozen=True)
class Frame:
    type: int
    payload: bytes


class FrameDecoder:
    """Byte-stream to frames, the same state machine as odt::FrameDecoder.

    feed() returns the complete frames; frame errors (Err.BAD_CRC, Err.TOO_LONG,
    Err.TRUNCATED) are appended to `errors` in the order they happen. There is no
    clock here: the caller calls timeout() when the line went quiet.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = min(max_payload, MAX_PAYLOAD)
        self.errors: list[int] = []
        self.reset()

    def reset(self) -> None:
        """Drop any frame in progress without recording an error."""
        self._hunting = True
        self._header = b""  # len (2) and type, once a start byte was seen
        self._payload = bytearray()
        self._length = 0

    @property
    def in_frame(self) -> bool:
        return not self._hunting

    @property
    def wanted(self) -> int:
        """The fewest bytes that could complete the next step (a good read size)."""
        if self._hunting:
            return 1
        if len(self._header) < 3:
            return 3 - len(self._header)
        return self._length + 2 - len(self._payload)

    def timeout(self) -> bool:
        """The line went quiet: drop a frame in progress as Err.TRUNCATED. True if there was one."""
        if self._hunting:
            return False
        self.errors.append(Err.TRUNCATED)
        self.reset()
        return True

    def feed(self, data: bytes) -> list[Frame]:
        data = bytes(data)
        frames = []
        i = 0
        while i < len(data):
            if self._hunting:
                j = data.find(FRAME_START, i)
                if j < 0:
                    break
                self._hunting, self._header, i = False, b"", j + 1
            elif len(self._header) < 3:
                self._header += data[i : i + 1]
                i += 1
                if len(self._header) == 2:
                    self._length = self._header[0] | self._header[1] << 8
                    if self._length > self.max_payload:
                        self.errors.append(Err.TOO_LONG)
                        self.reset()
            else:
                take = self._length + 2 - len(self._payload)  # payload and crc
                self._payload += data[i : i + take]
                i += take
                if len(self._payload) == self._length + 2:
                    payload = bytes(self._payload[: self._length])
                    crc = self._payload[-2] | self._payload[-1] << 8
                    if crc == crc16_ccitt(payload, crc16_ccitt(self._header)):
                        frames.append(Frame(self._header[2], payload))
                    else:
                        self.errors.append(Err.BAD_CRC)
                    self.reset()
        return frames


@dataclass(frozen=True)
class TrainReply:
    pred: int  # predicted class before the update
    ticks: int  # device ticks spent on the step


@dataclass(frozen=True)
class EvalReply:
    pred: int
    ticks: int
    logits: np.ndarray  # int8


class DeviceError(RuntimeError):
    """A request failed for good: names the port, the request and what happened."""


def _features_bytes(features) -> bytes:
    if isinstance(features, (bytes, bytearray, memoryview)):
        return bytes(features)
    arr = np.asarray(features)
    if arr.dtype != np.int8:
        raise TypeError(f"features must be bytes or an int8 array, got dtype {arr.dtype}")
    return arr.tobytes()


class Device:
    """Client for the firmware's serial protocol over any pyserial URL.

    `timeout` (seconds) bounds the wait for each reply; `retries` is how many times
    a request is sent in all before DeviceError. Time-outs, corrupt replies and
    device errors 1, 2, 5, 7 are retried; errors 3, 4, 6 are not.
    """

    def __init__(self, url: str, timeout: float = 2.0, retries: int = 3, baudrate: int = 115200):
        self.url, self.timeout, self.retries = url, timeout, max(1, retries)
        try:
            self._ser = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, write_timeout=timeout)
        except (serial.SerialException, ValueError, OSError) as e:
            raise DeviceError(
                f"cannot open {url!r}: {e}; expected a pyserial URL like /dev/ttyACM0 or socket://HOST:PORT"
            ) from e
        self._decoder = FrameDecoder()
        self._train_seq = int.from_bytes(os.urandom(2), "little")   # fresh per session

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._ser.close()

    # -- requests ------------------------------------------------------------------------

    def info(self) -> dict:
        """The device's INFO JSON, read in as many replies as it takes (a long scheme's exceeds one frame)."""
        text = self._request(Msg.INFO)
        chunk = text
        while len(chunk) == MAX_PAYLOAD:
            chunk = self._request(Msg.INFO, struct.pack("<I", len(text)))
            text += chunk
        return self._parse_json(Msg.INFO, text)

    def stats(self) -> dict:
        return self._json(Msg.STATS)

    def train(self, label: int, features) -> TrainReply:
        if not 0 <= label <= 0xFF:
            raise ValueError(f"label {label} does not fit in a byte")
        self._train_seq = (self._train_seq + 1) & 0xFFFF   # one per sample, the same on every retry
        head = struct.pack("<HB", self._train_seq, label)
        payload = self._with_input(Msg.TRAIN, head, _features_bytes(features))
        if len(payload) != 5:
            raise self._error(Msg.TRAIN, f"reply of {len(payload)} bytes, expected 5")
        return TrainReply(payload[0], struct.unpack_from("<I", payload, 1)[0])

    def evaluate(self, features, output_bytes: int | None = None) -> EvalReply:
        """Prediction and output; an output too large for the reply is read with OUTPUT (give its size)."""
        payload = self._with_input(Msg.EVAL, b"", _features_bytes(features))
        if len(payload) < 5:
            raise self._error(Msg.EVAL, f"reply of {len(payload)} bytes, expected at least 5")
        out = payload[5:]
        if not out and output_bytes:
            out = self.read_output(output_bytes)
        return EvalReply(payload[0], struct.unpack_from("<I", payload, 1)[0], np.frombuffer(out, dtype=np.int8).copy())

    def load_input(self, data: bytes, chunk: int = MAX_PAYLOAD - 4) -> None:
        """Stages an input of any size on the device for the next TRAIN or EVAL."""
        for off in range(0, len(data), chunk):
            self._request(Msg.LOAD, struct.pack("<I", off) + data[off:off + chunk])

    def read_output(self, total: int, chunk: int = MAX_PAYLOAD) -> bytes:
        """The first `total` bytes of the output of the last forward pass."""
        return b"".join(self._request(Msg.OUTPUT, struct.pack("<IH", off, min(chunk, total - off)))
                        for off in range(0, total, chunk))

    def params(self, offset: int, length: int) -> bytes:
        if not 0 <= length <= MAX_PAYLOAD:
            raise ValueError(f"length {length} is outside 0..{MAX_PAYLOAD}")
        payload = self._request(Msg.PARAMS, struct.pack("<IH", offset, length))
        if len(payload) != length:
            raise self._error(Msg.PARAMS, f"reply of {len(payload)} bytes, expected {length}")
        return payload

    def read_params(self, total: int, chunk: int = MAX_PAYLOAD) -> bytes:
        """The first `total` bytes of the trainable-parameter blob, in `chunk`-byte requests."""
        return b"".join(self.params(off, min(chunk, total - off)) for off in range(0, total, chunk))

    def read_trained(self, params: list[dict]) -> dict:
        """{(layer, "weights" | "bias"): array} of the trained tensors, as model.json's "params" lays them out."""
        blob = self.read_params(sum(p["bytes"] for p in params))
        return {(p["layer"], p["tensor"]): np.frombuffer(blob, np.dtype(p["dtype"]).newbyteorder("<"),
                                                         int(np.prod(p["shape"])), p["offset"]).reshape(p["shape"])
                for p in params}

    def reset(self) -> None:
        self._request(Msg.RESET)

    # -- transport -----------------------------------------------------------------------

    def _error(self, msg: Msg, what: str) -> DeviceError:
        return DeviceError(f"{self.url}: {msg.name} failed: {what}")

    def _with_input(self, msg: Msg, head: bytes, data: bytes) -> bytes:
        """`msg` carrying its input, or, for an input too large for one frame, LOAD then `msg`."""
        if len(head) + len(data) <= MAX_PAYLOAD:
            return self._request(msg, head + data)
        for attempt in range(self.retries):   # a staged input serves one request: retry LOAD with it
            self.load_input(data)
            try:
                return self._request(msg, head, retries=1)
            except DeviceError:
                if attempt == self.retries - 1:
                    raise

    def _json(self, msg: Msg) -> dict:
        return self._parse_json(msg, self._request(msg))

    def _parse_json(self, msg: Msg, payload: bytes) -> dict:
        try:
            return json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self._error(msg, f"reply is not UTF-8 JSON ({e})") from e

    def _request(self, msg: Msg, payload: bytes = b"", retries: int | None = None) -> bytes:
        """Sends one request and returns the payload of its reply, retrying as documented."""
        frame = encode_frame(msg, payload)
        problems = []
        retries = retries or self.retries
        for attempt in range(retries):
            if attempt:
                time.sleep(RETRY_PAUSE_S)
                self._ser.reset_input_buffer()
            try:
                self._ser.write(frame)
                reply = self._read_frame()
            except serial.SerialException as e:
                raise self._error(msg, f"serial port error: {e}") from e
            if isinstance(reply, str):
                problems.append(reply)
            elif reply.type == msg | RESPONSE_BIT:
                return reply.payload
            elif reply.type == Msg.ERROR and reply.payload:
                code = reply.payload[0]
                text = reply.payload[1:].decode("utf-8", "replace")
                name = ERROR_TEXT.get(code, "unknown error")
                problem = f"device error {code} ({name}): {text}"
                if code in NOT_RETRIED:
                    raise self._error(msg, problem)
                problems.append(problem)
            else:
                problems.append(f"unexpected reply type 0x{reply.type:02X} ({len(reply.payload)} bytes)")
        if all(p == "no reply" for p in problems):
            raise DeviceError(f"{self.url}: no reply to {msg.name} after {retries} tries (timeout {self.timeout} s)")
        raise DeviceError(f"{self.url}: {msg.name} failed after {retries} tries: " + "; ".join(problems))

    def _read_frame(self) -> Frame | str:
        """The next frame, or a short text saying why none came in time."""
        self._decoder.reset()
        self._decoder.errors.clear()
        deadline = time.monotonic() + self.timeout
        while True:
            data = self._ser.read(self._decoder.wanted)
            frames = self._decoder.feed(data)
            if frames:
                return frames[0]
            if self._decoder.errors:
                return f"corrupt reply ({ERROR_TEXT[self._decoder.errors[-1]]})"
            if time.monotonic() >= deadline:
                return "incomplete reply" if self._decoder.in_frame else "no reply"
