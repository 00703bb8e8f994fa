"""The keyword-spotting path end to end on a small real pipeline (see conftest.kws):
export names, simulator and host firmware bit-exact with tflite-micro, the on-device
emulated Cortex-M7 run (the training step against the simulator: tests/test_train_engine.py)."""
import hashlib
import json
import subprocess

import numpy as np
import pytest

from host_tools.boards import launch
from host_tools.protocol import Device, DeviceError, Msg
from model_prep.bake import Baked
from model_prep.data import datasets
from model_prep.scheme import trainable_layers
from model_prep.simulate import Simulator
from model_prep.tflite_graph import load_graph
from model_prep.tflm import run_tflm

from conftest import PY, ROOT


def device_inputs(kws, split, group="device", limit=None):
    x, y = datasets.load_features("kws", kws.corpus, split, group)
    return load_graph(kws.tflite).quantize_input(x)[:limit], y[:limit]


def test_export_names_layers_after_the_pytorch_modules(kws):
    g = load_graph(kws.tflite)
    names = {t.name for t in g.tensors}
    expected = {"input", "conv1", "conv1.weight", "classifier", "classifier.weight", "classifier.bias"}
    expected |= {f"blocks.{b}.{r}" for b in range(4) for r in ("dw", "pw")}
    assert expected <= names
    sidecar = json.loads(kws.tflite.with_suffix(".json").read_text())
    assert sidecar["labels"] == datasets.labels("kws")


def test_simulator_equals_tflite_micro_on_every_test_sample(kws):
    q, _ = device_inputs(kws, "test")
    q2, _ = device_inputs(kws, "test", group="pretrain")
    x = np.concatenate([q, q2])
    expected = run_tflm(kws.tflite, x[:, None]).reshape(len(x), -1)
    assert np.array_equal(Simulator.from_tflite(kws.tflite).run(x), expected)


def test_host_firmware_equals_tflite_micro_on_every_test_sample(kws):
    q, _ = device_inputs(kws, "test")
    expected = run_tflm(kws.tflite, q[:, None]).reshape(len(q), -1)
    with launch("host", kws.host_elf) as url, Device(url) as dev:
        got = np.stack([dev.evaluate(x.tobytes()).logits for x in q])
    assert np.array_equal(got, expected)


def test_qemu_end_to_end_stream_trains_and_matches_host(kws, tmp_path):
    out = tmp_path / "summary.json"
    r = subprocess.run([PY, "host_tools/stream.py", "--dataset", "kws", "--data", kws.corpus,
                        "--emulate", "qemu-m7", "--elf", kws.qemu_elf, "--train", "150", "--epochs", "2",
                        "--eval", "80", "--curve-every", "300", "--out", out, "--quiet",
                        "--save-model", tmp_path / "adapted.tflite", "--baked", kws.baked],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(out.read_text())
    assert s["board"] == "qemu-m7" and s["samples_trained"] >= 100
    # the summary names the model the board runs by its file's hash (runs on two machines are comparable)
    sha = hashlib.sha256(kws.tflite.read_bytes()).hexdigest()
    assert len(s["tflite_sha256"]) >= 16 and sha.startswith(s["tflite_sha256"]), (s["tflite_sha256"], sha)
    assert s["acc_after"] > s["acc_before"], s["curve"]
    assert 0 < s["peak_sram_bytes"] <= 320 * 1024 and 0 < s["flash_bytes"] <= 1024 * 1024
    assert s["stack_bytes_used"] > 0 and out.with_suffix(".png").stat().st_size > 0
    # the trained model pulled off the board gives the board's outputs in tflite-micro (its classifier trained)
    m = s["saved_model"]
    assert m["agree"] == m["samples"] == s["eval_samples"] and m["tflm_acc"] == s["acc_after"]
    pulled, baked = load_graph(m["path"]), load_graph(kws.tflite)
    w = trainable_layers(baked)["classifier"].inputs[1]
    assert not np.array_equal(pulled.tensors[w].data, baked.tensors[w].data)
    n = s["eval_samples"]
    assert f"tflite-micro its outputs equal the board's on {n} of {n} held-out" in r.stdout, r.stdout
    # The emulated board computes exactly what the host build computes.
    q, _ = device_inputs(kws, "test", limit=20)
    outputs = {}
    for board, elf in (("qemu-m7", kws.qemu_elf), ("host", kws.host_elf)):
        with launch(board, elf) as url, Device(url) as dev:
            outputs[board] = [dev.evaluate(x.tobytes()).logits for x in q]
    assert np.array_equal(outputs["qemu-m7"], outputs["host"])


def test_bake_rejects_a_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    r = subprocess.run([PY, "-m", "model_prep.bake", bad, "-o", tmp_path / "out"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "not a TFLite flatbuffer" in r.stderr and str(bad) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_stream_reports_an_unreachable_port_clearly(tmp_path):
    r = subprocess.run([PY, "host_tools/stream.py", "--dataset", "kws", "--port", "socket://127.0.0.1:9",
                        "--timeout", "0.5", "--retries", "1", "--out", tmp_path / "s.json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "socket://127.0.0.1:9" in r.stderr and "Traceback" not in r.stderr


def test_stream_refuses_a_dataset_the_board_was_not_baked_for(kws, tmp_path):
    r = subprocess.run([PY, "host_tools/stream.py", "--dataset", "digits", "--emulate", "host", "--elf", kws.host_elf,
                        "--train", "5", "--eval", "5", "--out", tmp_path / "s.json", "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "--dataset digits gives inputs of 3072 values" in r.stderr and "takes 490" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "s.json").exists()


def test_stream_refuses_labels_in_another_order(kws):
    import importlib.util
    spec = importlib.util.spec_from_file_location("stream", ROOT / "host_tools" / "stream.py")
    stream = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stream)
    names = datasets.labels("kws")
    x = np.zeros((2, 49, 10, 1), np.float32)
    info = {"model": "m", "input_shape": [1, 49, 10, 1], "input_bytes": 490, "num_classes": len(names)}
    stream.check_fits({**info, "labels": names}, "kws", kws.corpus, x)
    stream.check_fits({**info, "labels": [str(i) for i in range(len(names))]}, "kws", kws.corpus, x)  # unnamed
    with pytest.raises(ValueError, match="has the labels"):
        stream.check_fits({**info, "labels": names[1:] + names[:1]}, "kws", kws.corpus, x)
    with pytest.raises(ValueError, match="has the labels"):
        stream.check_fits({**info, "num_classes": 10, "labels": [str(i) for i in range(10)]}, "kws", kws.corpus, x)


def _replies(port, data, wait=0.6):
    """Send raw bytes, collect the frames that come back within `wait` seconds."""
    import time
    from host_tools.protocol import FrameDecoder
    port.write(data)
    decoder, frames, end = FrameDecoder(), [], time.time() + wait
    while time.time() < end:
        frames += decoder.feed(port.read(256))
    return frames


@pytest.mark.parametrize("board", ["qemu-m7", "host"])
def test_firmware_answers_bad_frames_with_error_frames_and_keeps_working(kws, board):
    import serial
    from host_tools.protocol import Err, Msg, encode_frame
    elf = kws.qemu_elf if board == "qemu-m7" else kws.host_elf
    good = encode_frame(Msg.INFO)
    corrupt = bytearray(encode_frame(Msg.EVAL, bytes(490)))
    corrupt[10] ^= 0xFF
    cases = {
        Err.BAD_CRC: bytes(corrupt),
        Err.UNKNOWN_TYPE: encode_frame(0x33, b"xyz"),
        Err.BAD_LENGTH: encode_frame(Msg.EVAL, bytes(17)),
        Err.BAD_VALUE: encode_frame(Msg.TRAIN, bytes([7, 0, 200]) + bytes(490)),
        Err.TOO_LONG: b"\xa5\xff\xff\x02",
        Err.TRUNCATED: encode_frame(Msg.EVAL, bytes(490))[:100],
    }
    with launch(board, elf) as url, serial.serial_for_url(url, timeout=0.1) as port:
        for code, data in cases.items():
            frames = _replies(port, data)
            assert frames and frames[0].type == Msg.ERROR and frames[0].payload[0] == code, (code, frames)
            port.reset_input_buffer()
            info = [f for f in _replies(port, good) if f.type == Msg.INFO | 0x80]
            assert info and json.loads(info[0].payload)["board"] == board, code


def test_app_builds_for_the_stm32f746_within_its_memory(kws, tmp_path):
    from conftest import build_firmware
    elf = build_firmware("stm32f746", kws.baked, tmp_path / "fw-stm32")
    mem = json.loads((elf.parent / "memory.json").read_text())
    assert mem["board"] == "stm32f746"
    assert 0 < mem["flash_bytes"] <= 1024 * 1024
    assert Baked(kws.tflite).plan.arena_bytes < mem["static_sram_bytes"] <= 320 * 1024


def test_a_retried_train_request_trains_once(kws):
    xs, ys = device_inputs(kws, "train", limit=2)
    with launch("host", kws.host_elf) as url, Device(url) as dev:
        dev.reset()
        first = dev.train(int(ys[0]), xs[0].tobytes())
        blob = dev.read_params(dev.info()["params_bytes"])
        dev._train_seq -= 1                 # what a retry after a lost reply sends again
        assert dev.train(int(ys[0]), xs[0].tobytes()) == first
        assert dev.read_params(len(blob)) == blob and dev.stats()["samples_trained"] == 1
        dev.train(int(ys[1]), xs[1].tobytes())
        assert dev.stats()["samples_trained"] == 2


def test_evaluate_reports_float_and_int8_accuracy_per_group(kws):
    r = subprocess.run([PY, "-m", "model_prep.evaluate", kws.checkpoint, kws.tflite, "--data", kws.corpus],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert set(rows) == {"pretrain", "device"}
    for row in rows.values():
        float_acc, int8_acc = float(row[2].rstrip("%")), float(row[3].rstrip("%"))
        assert 0 <= int8_acc <= 100 and abs(float_acc - int8_acc) < 15
    assert float(rows["pretrain"][3].rstrip("%")) > float(rows["device"][3].rstrip("%")), "no speaker shift"


def test_inputs_can_be_staged_with_load_for_inputs_larger_than_a_frame(kws):
    q, _ = device_inputs(kws, "test", limit=3)
    with launch("host", kws.host_elf) as url, Device(url) as dev:
        info = dev.info()
        direct = [dev.evaluate(x.tobytes()) for x in q]
        for x, d in zip(q, direct):
            dev.load_input(x.tobytes(), chunk=100)          # as for a 96x96x3 image
            r = dev._request(Msg.EVAL)                      # EVAL with no input: the staged one
            assert r[0] == d.pred and np.array_equal(np.frombuffer(r[5:], np.int8), d.logits)
            assert dev.read_output(info["output_bytes"]) == d.logits.tobytes()
        with pytest.raises(DeviceError, match="no input staged"):
            dev._request(Msg.EVAL)                          # the staged input was consumed
        dev.load_input(q[0].tobytes(), chunk=128)
        assert dev._request(Msg.TRAIN, b"\x01\x00\x02", retries=1)[0] == direct[0].pred
