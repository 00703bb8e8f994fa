"""Speech Commands loader: splits, groups, _unknown_/_silence_, features cache, every error path."""
import math
import wave
import zlib

import numpy as np
import pytest

from model_prep.data import speech_commands as sc
from model_prep.data.speech_commands import KEYWORDS, LABELS, SILENCE, UNKNOWN, DatasetError, Example, load_split

SPEAKERS = ["aaaa0001", "bbbb0002", "cccc0003", "dddd0004"]


def write_wav(path, samples, rate=16000, width=2, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples).tobytes())


def make_corpus(root, words=KEYWORDS + ["bed", "cat", "dog"], repeats=2, noise=True):
    """Every speaker says every word `repeats` times; speaker 2 is validation, speaker 3 test."""
    rng = np.random.default_rng(0)
    validation, test = [], []
    for word in words:
        for s, speaker in enumerate(SPEAKERS):
            for n in range(repeats):
                rel = f"{word}/{speaker}_nohash_{n}.wav"
                write_wav(root / rel, (rng.standard_normal(16000) * 3000).astype("<i2"))
                (validation if s == 2 else test if s == 3 else []).append(rel)
    (root / "validation_list.txt").write_text("\n".join(validation) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    if noise:
        write_wav(root / "_background_noise_" / "white_noise.wav", (rng.standard_normal(160000) * 1000).astype("<i2"))
    return root


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path / "speech")


def test_labels_follow_tf_convention():
    assert LABELS[:2] == ["_silence_", "_unknown_"] and (SILENCE, UNKNOWN) == (0, 1)
    assert LABELS[2:] == ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


def test_splits_come_from_the_list_files(corpus):
    for split, speaker in (("train", None), ("validation", SPEAKERS[2]), ("test", SPEAKERS[3])):
        words = [e for e in load_split(corpus, split) if e.label != SILENCE]
        assert words
        if speaker:
            assert {e.speaker for e in words} == {speaker}
        else:
            assert {e.speaker for e in words} == set(SPEAKERS[:2])


def test_keywords_unknown_and_silence_counts(corpus):
    examples = load_split(corpus, "train")
    known = [e for e in examples if e.label >= 2]
    assert len(known) == 10 * 2 * 2                     # 10 keywords, 2 train speakers, 2 repeats
    assert sum(e.label == UNKNOWN for e in examples) == math.ceil(len(known) * 0.10)
    assert sum(e.label == SILENCE for e in examples) == math.ceil(len(known) * 0.10)
    assert {e.path.split("/")[0] for e in examples if e.label == UNKNOWN} <= {"bed", "cat", "dog"}
    assert all(LABELS[e.label] == e.path.split("/")[0] for e in known)
    more = load_split(corpus, "train", unknown_percentage=25, silence_percentage=0)
    assert sum(e.label == UNKNOWN for e in more) == 10 and not any(e.label == SILENCE for e in more)
    every = load_split(corpus, "train", unknown_percentage=100)
    assert sum(e.label == UNKNOWN for e in every) == 12  # capped at the 3 words x 2 speakers x 2 repeats


def test_deterministic_for_a_seed(corpus):
    assert load_split(corpus, "train", seed=3) == load_split(corpus, "train", seed=3)
    assert load_split(corpus, "train", seed=3) != load_split(corpus, "train", seed=4)


def test_silence_slices_stay_in_their_split_region(corpus):
    for split, (lo, hi) in sc.NOISE_REGIONS.items():
        silence = [e for e in load_split(corpus, split) if e.label == SILENCE]
        assert silence and all(e.path == "_background_noise_/white_noise.wav" and e.speaker == "" for e in silence)
        assert all(lo * 160000 <= e.offset and e.offset + 16000 <= hi * 160000 for e in silence)
        audio = sc.example_audio(silence[0], corpus)
        expected = sc.read_wav(corpus / silence[0].path)[silence[0].offset:silence[0].offset + 16000]
        np.testing.assert_array_equal(audio, expected)


def test_groups_from_device_speakers_file(corpus):
    (corpus / "device_speakers.txt").write_text(f"{SPEAKERS[0]}\n\n")
    device = load_split(corpus, "train", "device")
    pretrain = load_split(corpus, "train", "pretrain")
    assert {e.speaker for e in device if e.speaker} == {SPEAKERS[0]}
    assert {e.speaker for e in pretrain if e.speaker} == {SPEAKERS[1]}
    assert any(e.label == SILENCE for e in device) and any(e.label == SILENCE for e in pretrain)


def test_groups_from_crc_without_file(tmp_path):
    speakers = [f"{i:08x}" for i in range(40)]
    assert sc.device_speakers(tmp_path, speakers) == {s for s in speakers if zlib.crc32(s.encode()) % 100 < 20}
    assert 0 < len(sc.device_speakers(tmp_path, speakers)) < 40


def test_no_examples_for_a_group_is_an_error(corpus):
    (corpus / "device_speakers.txt").write_text("nobody\n")
    with pytest.raises(DatasetError, match="no keyword examples for split 'train', group 'device'"):
        load_split(corpus, "train", "device")


def test_load_wav_pads_trims_scales_and_resamples(tmp_path):
    write_wav(tmp_path / "short.wav", np.full(8000, 16384, "<i2"))
    short = sc.load_wav(tmp_path / "short.wav")
    assert short.dtype == np.float32 and short.shape == (16000,)
    assert np.all(short[:8000] == 0.5) and np.all(short[8000:] == 0)
    write_wav(tmp_path / "long.wav", np.zeros(20000, "<i2"))
    assert sc.load_wav(tmp_path / "long.wav").shape == (16000,)
    write_wav(tmp_path / "8k.wav", np.zeros(8000, "<i2"), rate=8000)
    assert sc.read_wav(tmp_path / "8k.wav").shape == (16000,)


def test_features_shapes_and_cache(corpus, monkeypatch):
    examples = load_split(corpus, "validation")
    X, y = sc.features(examples, corpus)
    assert X.shape == (len(examples), 49, 10) and X.dtype == np.float32
    assert y.dtype == np.int64 and y.tolist() == [e.label for e in examples]
    assert len(list((corpus / ".cache").glob("mfcc_*.npz"))) == 1
    monkeypatch.setattr(sc, "mfcc_batch", lambda *a, **k: pytest.fail("cache not used"))
    X2, _ = sc.features(examples, corpus)
    np.testing.assert_array_equal(X, X2)


def test_features_cache_follows_file_changes(corpus):
    examples = load_split(corpus, "validation")
    X, _ = sc.features(examples, corpus)
    write_wav(corpus / examples[0].path, np.zeros(16000, "<i2"))
    X2, _ = sc.features(examples, corpus)
    assert not np.array_equal(X[0], X2[0]) and np.array_equal(X[1:], X2[1:])


def test_augment_is_deterministic_shifts_and_mixes(corpus):
    clip = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)
    noises = sc.background_noise(corpus, "train")
    assert len(noises) == 1 and len(noises[0]) == 128000
    a = sc.augment(clip, noises, np.random.default_rng(7))
    assert np.array_equal(a, sc.augment(clip, noises, np.random.default_rng(7)))
    assert a.shape == (16000,) and a.dtype == np.float32 and np.abs(a).max() <= 1.0
    shifted = sc.augment(clip, noises, np.random.default_rng(7), background_frequency=0.0)
    shift = int(np.random.default_rng(7).integers(-1600, 1601))
    expected = np.zeros_like(clip)
    if shift >= 0:
        expected[shift:] = clip[:16000 - shift]
    else:
        expected[:shift] = clip[-shift:]
    np.testing.assert_array_equal(shifted, expected)


# ---------------------------------------------------------------- error paths

def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="not a folder; expected the Speech Commands v2 layout"):
        load_split(tmp_path / "nope", "train")


def test_no_word_folders(tmp_path):
    (tmp_path / "empty_word").mkdir()
    with pytest.raises(DatasetError, match=f"{tmp_path}: no word folders found; expected"):
        load_split(tmp_path, "train")


def test_missing_keyword(tmp_path):
    make_corpus(tmp_path, words=[w for w in KEYWORDS if w != "stop"])
    with pytest.raises(DatasetError, match="keyword\\(s\\) stop"):
        load_split(tmp_path, "train")


@pytest.mark.parametrize("name", ["validation_list.txt", "testing_list.txt"])
def test_missing_list_file(corpus, name):
    (corpus / name).unlink()
    with pytest.raises(DatasetError, match=f"{name}: missing"):
        load_split(corpus, "train")


def test_list_names_missing_wav(corpus):
    with open(corpus / "testing_list.txt", "a") as f:
        f.write("yes/ffff0000_nohash_0.wav\n")
    with pytest.raises(DatasetError, match="testing_list.txt:.*'yes/ffff0000_nohash_0.wav' is not a WAV file"):
        load_split(corpus, "train")


def test_file_in_both_lists(corpus):
    with open(corpus / "testing_list.txt", "a") as f:
        f.write(f"yes/{SPEAKERS[2]}_nohash_0.wav\n")
    with pytest.raises(DatasetError, match="also in validation_list.txt"):
        load_split(corpus, "train")


def test_bad_file_name(corpus):
    write_wav(corpus / "yes" / "recording.wav", np.zeros(16000, "<i2"))
    with pytest.raises(DatasetError, match="recording.wav: file name lacks '_nohash_'"):
        load_split(corpus, "train")


def test_no_background_noise_when_silence_requested(tmp_path):
    make_corpus(tmp_path, noise=False)
    with pytest.raises(DatasetError, match="_background_noise_: no background noise .wav files"):
        load_split(tmp_path, "train")
    assert not any(e.label == SILENCE for e in load_split(tmp_path, "train", silence_percentage=0))


@pytest.mark.parametrize("kind", ["8-bit", "stereo", "garbage", "empty"])
def test_unreadable_wav_names_the_file(tmp_path, kind):
    path = tmp_path / "yes" / "aaaa0001_nohash_9.wav"
    if kind == "8-bit":
        write_wav(path, np.zeros(16000, np.uint8), width=1)
    elif kind == "stereo":
        write_wav(path, np.zeros(32000, "<i2"), channels=2)
    else:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"" if kind == "empty" else b"not a wav file at all")
    with pytest.raises(DatasetError, match=f"{path}: .*expected 16-bit PCM mono"):
        sc.load_wav(path)


def test_a_truncated_wav_is_an_error_not_silence(tmp_path):
    path = tmp_path / "yes" / "aaaa0001_nohash_9.wav"
    write_wav(path, np.ones(16000, "<i2"))
    path.write_bytes(path.read_bytes()[:44 + 2 * 100])   # the header's sizes say 16000 samples, 100 remain
    with pytest.raises(DatasetError, match=f"{path}: truncated WAV: its header says 16000 samples, the file holds 100"):
        sc.load_wav(path)


def test_features_of_a_bad_wav_names_the_file(corpus):
    bad = corpus / "yes" / f"{SPEAKERS[0]}_nohash_0.wav"
    write_wav(bad, np.zeros(16000, np.uint8), width=1)
    with pytest.raises(DatasetError, match=str(bad)):
        sc.features(load_split(corpus, "train"), corpus)


@pytest.mark.parametrize("split,group", [("dev", "all"), ("train", "phone")])
def test_bad_split_or_group(corpus, split, group):
    with pytest.raises(DatasetError, match="expected one of"):
        load_split(corpus, split, group)


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)
    assert Example("yes/a_nohash_0.wav", 2, "a").offset == 0
