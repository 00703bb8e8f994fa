"""Google Speech Commands v2 loader with the MLPerf Tiny 12-label set.

Layout (the real corpus, or one written by `python -m model_prep.data.synth_kws --out DIR --seed 0`):

    ROOT/<word>/<speaker>_nohash_<n>.wav     16-bit PCM mono WAV, 1 s at 16 kHz (other rates are resampled)
    ROOT/validation_list.txt                 relative paths ("yes/0a7c2a8d_nohash_0.wav"), one a line
    ROOT/testing_list.txt                    same; every word file in neither list is train
    ROOT/_background_noise_/*.wav            long noise recordings, the source of _silence_
    ROOT/device_speakers.txt                 optional: speaker ids of the "device" group, one a line

Labels: `LABELS[0] = "_silence_"`, `LABELS[1] = "_unknown_"`, then the ten keywords, the order of
TensorFlow's speech_commands example (`prepare_words_list`). _unknown_ is every other word, subsampled
(deterministically from `seed`) to `unknown_percentage` of the keyword examples; _silence_ is 1 s slices
of the background noise, `silence_percentage` of the keyword examples (both 10 %, the TF defaults).
Each noise file is cut in three regions, the first 80 % for train, the next 10 % for validation, the
last 10 % for test, so silence and noise augmentation never leak across splits.

Groups: the speaker id is the file name before "_nohash_". The "device" group is the speakers listed in
device_speakers.txt, or, without that file, the speakers with zlib.crc32(speaker) % 100 < 20;
"pretrain" is every other speaker; "all" is both. _silence_ has no speaker and is in every group.

    from model_prep.data.speech_commands import load_split, features
    X, y = features(load_split("data/speech", "train", "pretrain"), "data/speech")  # [N,49,10], [N]
"""
import dataclasses
import hashlib
import json
import math
import os
import wave
import zlib
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from model_prep.data.cache import cached_array
from model_prep.data.frontend import MFCC, MfccConfig, fit_length, mfcc_batch

LABELS = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SILENCE, UNKNOWN = 0, 1
KEYWORDS = LABELS[2:]
SPLITS = ("train", "validation", "test")
GROUPS = ("all", "pretrain", "device")
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
BACKGROUND_DIR = "_background_noise_"
DEVICE_SPEAKERS_FILE = "device_speakers.txt"
DEVICE_CRC_PERCENT = 20                                         # crc32(speaker) % 100 < 20 -> device
NOISE_REGIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0)}
LAYOUT = ("expected the Speech Commands v2 layout ROOT/<word>/<speaker>_nohash_<n>.wav "
          "with validation_list.txt and testing_list.txt")


class DatasetError(ValueError):
    """The folder is missing, malformed or holds an unreadable file; the message names the path."""


@dataclass(frozen=True)
class Example:
    path: str       # relative to ROOT: "yes/0a7c2a8d_nohash_0.wav", or "_background_noise_/x.wav" for _silence_
    label: int      # index into LABELS
    speaker: str    # file name before "_nohash_"; "" for _silence_
    offset: int = 0  # _silence_ only: first sample (16 kHz) of the 1 s slice of the noise file


# ---------------------------------------------------------------- WAV files

def read_wav(path) -> np.ndarray:
    """Whole 16-bit PCM mono WAV as float32 in [-1, 1), resampled to 16 kHz."""
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate, frames = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            data = f.readframes(frames)
    except (OSError, EOFError, wave.Error) as e:
        raise DatasetError(f"{path}: cannot read WAV ({e}); expected 16-bit PCM mono") from None
    if len(data) < frames * channels * width:   # a cut-off copy or download: the clip would be padded with silence
        raise DatasetError(f"{path}: truncated WAV: its header says {frames} samples, the file holds "
                           f"{len(data) // max(1, channels * width)}")
    if channels != 1 or width != 2:
        raise DatasetError(f"{path}: {channels} channel(s) of {8 * width}-bit samples; expected 16-bit PCM mono")
    samples = np.frombuffer(data[:len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0
    if rate != SAMPLE_RATE:
        g = gcd(SAMPLE_RATE, rate)
        samples = resample_poly(samples, SAMPLE_RATE // g, rate // g).astype(np.float32)
    return samples


def load_wav(path) -> np.ndarray:
    """float32 [16000]: a 1 s clip, zero-padded or trimmed."""
    return fit_length(read_wav(path), CLIP_SAMPLES)


@lru_cache(maxsize=16)
def _read_noise(path: str, stamp: tuple) -> np.ndarray:
    return read_wav(path)  # `stamp` (size, mtime) keys the cache to the file's contents


def _noise(root, rel: str) -> np.ndarray:
    path = Path(root) / rel
    st = path.stat()
    return _read_noise(str(path), (st.st_size, st.st_mtime_ns))


# ---------------------------------------------------------------- the folder

def speaker_of(filename: str) -> str:
    """"0a7c2a8d_nohash_3.wav" -> "0a7c2a8d"."""
    name = os.path.basename(filename)
    if "_nohash_" not in name:
        raise DatasetError(f"{filename}: file name lacks '_nohash_'; expected <speaker>_nohash_<n>.wav")
    return name.split("_nohash_")[0]


def word_files(root) -> dict[str, list[str]]:
    """{word: sorted relative paths} for every ROOT/<word>/ folder holding .wav files."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder; {LAYOUT}")
    words = {}
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith(("_", ".")):
            files = sorted(f"{d.name}/{f.name}" for f in d.glob("*.wav"))
            if files:
                words[d.name] = files
    if not words:
        raise DatasetError(f"{root}: no word folders found; {LAYOUT}")
    missing = [w for w in KEYWORDS if w not in words]
    if missing:
        raise DatasetError(f"{root}: no folder with .wav files for keyword(s) {', '.join(missing)}; {LAYOUT}")
    for files in words.values():
        for f in files:
            speaker_of(f)
    return words


def read_list(root, name: str, known: set[str]) -> set[str]:
    """Relative paths in ROOT/<name>; each must name a word file that exists."""
    path = Path(root) / name
    if not path.is_file():
        raise DatasetError(f"{path}: missing; {LAYOUT}")
    entries = set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        entry = line.strip().replace("\\", "/")
        if not entry:
            continue
        if entry not in known:
            raise DatasetError(f"{path}:{n}: '{entry}' is not a WAV file under {root}; "
                               "expected paths like yes/<speaker>_nohash_0.wav")
        entries.add(entry)
    return entries


def split_of_files(root, words: dict[str, list[str]]) -> dict[str, str]:
    """{relative path: "train" | "validation" | "test"} from the two list files."""
    files = {f for fs in words.values() for f in fs}
    validation = read_list(root, "validation_list.txt", files)
    test = read_list(root, "testing_list.txt", files)
    both = sorted(validation & test)
    if both:
        raise DatasetError(f"{Path(root) / 'testing_list.txt'}: '{both[0]}' is also in validation_list.txt; "
                           "a file belongs to one split")
    return {f: "test" if f in test else "validation" if f in validation else "train" for f in files}


def device_speakers(root, speakers) -> set[str]:
    """Speakers of the "device" group: ROOT/device_speakers.txt if present, else crc32 % 100 < 20."""
    path = Path(root) / DEVICE_SPEAKERS_FILE
    if path.is_file():
        return {s.strip() for s in path.read_text().splitlines() if s.strip() and not s.startswith("#")}
    return {s for s in speakers if zlib.crc32(s.encode()) % 100 < DEVICE_CRC_PERCENT}


def noise_files(root) -> list[str]:
    """Sorted relative paths of ROOT/_background_noise_/*.wav."""
    folder = Path(root) / BACKGROUND_DIR
    files = sorted(f"{BACKGROUND_DIR}/{f.name}" for f in folder.glob("*.wav")) if folder.is_dir() else []
    if not files:
        raise DatasetError(f"{folder}: no background noise .wav files; _silence_ examples and noise "
                           "augmentation are cut from ROOT/_background_noise_/*.wav")
    return files


def noise_region(length: int, split: str) -> tuple[int, int]:
    """[start, end) samples of a noise file that belong to `split`."""
    lo, hi = NOISE_REGIONS[split]
    return int(lo * length), int(hi * length)


# ---------------------------------------------------------------- splits

def load_split(root, split: str, group: str = "all", seed: int = 0,
               silence_percentage: float = 10.0, unknown_percentage: float = 10.0) -> list[Example]:
    """Examples of one split and speaker group: keywords, then _unknown_, then _silence_."""
    if split not in SPLITS:
        raise DatasetError(f"split '{split}': expected one of {', '.join(SPLITS)}")
    if group not in GROUPS:
        raise DatasetError(f"group '{group}': expected one of {', '.join(GROUPS)}")
    words = word_files(root)
    split_of = split_of_files(root, words)
    speakers = {speaker_of(f) for fs in words.values() for f in fs}
    device = device_speakers(root, speakers)

    def wanted(f):
        s = speaker_of(f)
        return split_of[f] == split and (group == "all" or (s in device) == (group == "device"))

    known, pool = [], []
    for word, files in words.items():
        label = LABELS.index(word) if word in KEYWORDS else UNKNOWN
        (known if label != UNKNOWN else pool).extend(Example(f, label, speaker_of(f)) for f in files if wanted(f))
    if not known:
        raise DatasetError(f"{root}: no keyword examples for split '{split}', group '{group}'")

    rng = np.random.default_rng([seed, SPLITS.index(split), GROUPS.index(group)])
    n_unknown = min(len(pool), math.ceil(len(known) * unknown_percentage / 100))
    unknown = [pool[i] for i in sorted(rng.choice(len(pool), n_unknown, replace=False))]
    n_silence = math.ceil(len(known) * silence_percentage / 100)
    return known + unknown + silence_examples(root, split, n_silence, rng)


def silence_examples(root, split: str, count: int, rng: np.random.Generator) -> list[Example]:
    """`count` 1 s slices of the background noise, from the files' `split` region."""
    if count <= 0:
        return []
    files = noise_files(root)
    out = []
    for i in rng.integers(len(files), size=count):
        start, end = noise_region(len(_noise(root, files[i])), split)
        offset = int(rng.integers(start, max(start, end - CLIP_SAMPLES) + 1))
        out.append(Example(files[i], SILENCE, "", offset))
    return out


# ---------------------------------------------------------------- audio and features

def example_audio(example: Example, root) -> np.ndarray:
    """float32 [16000] clip of one example."""
    if example.label == SILENCE:
        return fit_length(_noise(root, example.path)[example.offset:example.offset + CLIP_SAMPLES], CLIP_SAMPLES)
    return load_wav(Path(root) / example.path)


def clips(examples: list[Example], root) -> np.ndarray:
    """float32 [N, 16000]."""
    out = np.zeros((len(examples), CLIP_SAMPLES), np.float32)
    for i, e in enumerate(examples):
        out[i] = example_audio(e, root)
    return out


def background_noise(root, split: str = "train") -> list[np.ndarray]:
    """The `split` region of each background noise file, for augmentation."""
    out = []
    for f in noise_files(root):
        noise = _noise(root, f)
        start, end = noise_region(len(noise), split)
        out.append(noise[start:end])
    return out


def augment(clip: np.ndarray, noises: list[np.ndarray], rng: np.random.Generator, time_shift: int = 1600,
            background_frequency: float = 0.8, background_volume: float = 0.1) -> np.ndarray:
    """MLPerf Tiny / TF speech_commands training augmentation: shift by up to `time_shift` samples
    (100 ms) either way, zero-filled; with probability `background_frequency` add a random 1 s of a
    random noise at a gain uniform in [0, background_volume); clip to [-1, 1]."""
    n = len(clip)
    shift = int(rng.integers(-time_shift, time_shift + 1))
    use_noise, volume = rng.random() < background_frequency, rng.uniform(0.0, background_volume)
    out = np.zeros(n, np.float32)
    if shift >= 0:
        out[shift:] = clip[:n - shift]
    else:
        out[:shift] = clip[-shift:]
    if noises and use_noise:
        noise = noises[int(rng.integers(len(noises)))]
        offset = int(rng.integers(0, max(0, len(noise) - n) + 1))
        out += volume * fit_length(noise[offset:offset + n], n)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def cache_key(examples: list[Example], root, cfg: MfccConfig) -> str:
    """Hash of the front-end settings and every example (path, label, offset, file size and mtime)."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    stamps = {}
    for e in examples:
        if e.path not in stamps:
            st = (Path(root) / e.path).stat()
            stamps[e.path] = f"{st.st_size}:{st.st_mtime_ns}"
        h.update(f"{e.path}|{e.label}|{e.offset}|{stamps[e.path]}\n".encode())
    return h.hexdigest()[:20]


def features(examples: list[Example], root, cfg: MfccConfig = MFCC, cache: bool = True):
    """(X float32 [N, 49, 10], y int64 [N]); cached in ROOT/.cache/mfcc_<key>.npz."""
    y = np.array([e.label for e in examples], np.int64)
    path = Path(root) / ".cache" / f"mfcc_{cache_key(examples, root, cfg)}.npz"
    return cached_array(path, lambda: mfcc_batch(clips(examples, root), cfg), cache), y
