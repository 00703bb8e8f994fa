"""The espeak-ng corpus generator: layout, groups, splits, determinism, errors."""
import json
import shutil
import wave

import numpy as np
import pytest

from model_prep.data import synth_kws
from model_prep.data.speech_commands import KEYWORDS, SILENCE, UNKNOWN, device_speakers, load_split, speaker_of

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("kws") / "speech"
    synth_kws.main(["--out", str(out), "--seed", "0", "--quick"])
    return out


@needs_espeak
def test_layout_and_wav_format(quick):
    for word in synth_kws.WORDS:
        files = sorted((quick / word).glob("*.wav"))
        assert len(files) == (20 if word in KEYWORDS else 5)
        assert all(len(speaker_of(f.name)) == 8 for f in files)
    for f in [next((quick / "yes").glob("*.wav"))] + sorted((quick / "_background_noise_").glob("*.wav")):
        with wave.open(str(f)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
            assert w.getnframes() == (16000 if f.parent.name == "yes" else 160000)
    corpus = json.loads((quick / "corpus.json").read_text())
    assert corpus["version"] == synth_kws.VERSION and corpus["seed"] == 0 and corpus["clips"] == 300
    assert "eSpeak NG" in corpus["espeak_ng"]


@needs_espeak
def test_loader_reads_it(quick):
    train = load_split(quick, "train")
    labels = {e.label for e in train}
    assert {SILENCE, UNKNOWN} <= labels and len(labels) == 12
    for split in ("validation", "test"):
        assert load_split(quick, split)
    assert load_split(quick, "train", "device") and load_split(quick, "train", "pretrain")


def test_groups_are_disjoint_and_shifted():
    speakers = synth_kws.make_speakers(0)
    device = [s for s in speakers if s.group == "device"]
    pretrain = [s for s in speakers if s.group == "pretrain"]
    assert not {s.id for s in device} & {s.id for s in pretrain}
    assert not {s.voice for s in device} & {s.voice for s in pretrain}
    assert not {s.variant for s in device} & {s.variant for s in pretrain}
    assert len(device) >= 0.4 * len(speakers)
    assert all(s.band is not None for s in device) and all(s.band is None for s in pretrain)


def test_each_group_holds_out_a_tenth_of_its_speakers_for_validation_and_test():
    speakers = synth_kws.make_speakers(0)
    for group in ("pretrain", "device"):
        mine = [s for s in speakers if s.group == group]
        for split in ("validation", "test"):
            assert abs(sum(s.split == split for s in mine) - 0.1 * len(mine)) <= 1


@needs_espeak
def test_lists_and_device_file_match_the_speakers(quick):
    speakers = {s["id"]: s for s in json.loads((quick / "corpus.json").read_text())["speakers"]}
    for name, split in (("validation_list.txt", "validation"), ("testing_list.txt", "test")):
        for line in (quick / name).read_text().split():
            assert speakers[speaker_of(line)]["split"] == split
    device = device_speakers(quick, speakers)
    assert device == {i for i, s in speakers.items() if s["group"] == "device"}


@needs_espeak
def test_same_bytes_for_same_seed_whatever_the_jobs(tmp_path):
    a = synth_kws.generate(tmp_path / "a", seed=5, per_word=2, jobs=1, progress=False)
    b = synth_kws.generate(tmp_path / "b", seed=5, per_word=2, jobs=2, progress=False)
    assert a == b
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 10 * 2 + 20 * 1 + 5 + 4
    for f in files_a:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    c = synth_kws.generate(tmp_path / "c", seed=6, per_word=2, progress=False)
    assert c["speakers"] != a["speakers"]
    noise = "_background_noise_/pink_noise.wav"
    assert (tmp_path / "c" / noise).read_bytes() != (tmp_path / "a" / noise).read_bytes()


@needs_espeak
def test_regenerates_over_an_old_corpus_but_not_over_other_files(tmp_path):
    synth_kws.generate(tmp_path / "c", seed=1, per_word=1, progress=False)
    synth_kws.generate(tmp_path / "c", seed=1, per_word=1, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not empty and not a synth_kws corpus"):
        synth_kws.generate(tmp_path / "other", seed=1, per_word=1, progress=False)
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"


def test_missing_espeak_is_one_clear_error(tmp_path):
    with pytest.raises(synth_kws.EspeakError, match="/no/such/espeak-ng not found"):
        synth_kws.generate(tmp_path / "x", exe="/no/such/espeak-ng", progress=False)
    assert not (tmp_path / "x").exists()


def test_cli_without_espeak_exits_with_the_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit, match="synth_kws: espeak-ng not found on PATH; install it"):
        synth_kws.main(["--out", str(tmp_path / "x"), "--seed", "0", "--quick"])


@needs_espeak
def test_unknown_voice_is_a_clear_error():
    with pytest.raises(synth_kws.EspeakError, match="xx-nonexistent.*voice does not exist"):
        synth_kws.espeak("yes", "xx-nonexistent", "m1", 150, 50)


def test_parse_wav_bytes_accepts_the_streaming_header():
    samples = np.array([1, -2, 3], "<i2")
    header = (b"RIFF" + (0x7FFFF024).to_bytes(4, "little") + b"WAVE" + b"fmt " + (16).to_bytes(4, "little")
              + np.array([1, 1], "<u2").tobytes() + (22050).to_bytes(4, "little") + (44100).to_bytes(4, "little")
              + np.array([2, 16], "<u2").tobytes() + b"data" + (0x7FFFF000).to_bytes(4, "little"))
    rate, parsed = synth_kws.parse_wav_bytes(header + samples.tobytes())
    assert rate == 22050 and parsed.tolist() == [1, -2, 3]
    with pytest.raises(synth_kws.EspeakError, match="not a WAV"):
        synth_kws.parse_wav_bytes(b"Error: voice not found")


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "hum", "fan"])
def test_noise_is_unit_rms_and_seeded(kind):
    a = synth_kws.noise(kind, 16000, np.random.default_rng(1))
    assert a.shape == (16000,) and abs(np.sqrt(np.mean(a ** 2)) - 1) < 1e-6
    assert np.array_equal(a, synth_kws.noise(kind, 16000, np.random.default_rng(1)))
