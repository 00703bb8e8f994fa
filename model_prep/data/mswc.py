"""Multilingual Spoken Words Corpus (MLCommons) keywords, through the same MFCC front end as kws.

Layout (the real corpus, one folder per language):

    ROOT/<lang>/clips/<word>/*.opus      48 kHz Opus in OGG (the release), or .wav (the 16 kHz wav release);
                                         any rate is resampled to 16 kHz, then padded / trimmed to 1 s
    ROOT/<lang>/<lang>_splits.csv        optional: columns SET,LINK,WORD,VALID,SPEAKER,GENDER; SET is TRAIN,
                                         DEV or TEST, LINK the clip relative to clips/ ("<word>/<file>.opus")

ROOT may also be the language folder itself. Without `language`, ROOT must hold exactly one.

Splits: from the splits CSV (rows with VALID false are skipped, clips it does not list are unused);
without it, by a hash of the file name: images.bucket(name, "split") < 80 train, < 90 validation,
else test. Groups: by speaker, as kws: "device" is the speakers with crc32(speaker) % 100 < 20, the
speaker being the CSV's SPEAKER column, or the file name where there is none ("NA" or no CSV).

Labels: the keywords `words` in the order given (default: the `num_words` words with the most clips,
ties by name); with `unknown=True`, "_unknown_" first, then the keywords, and every other word is
_unknown_, subsampled (from `seed`) to `unknown_percentage` of the keyword examples, as kws does.

MFCCs are cached in <lang folder>/.cache/mfcc_<key>.npz (speech_commands.cache_key: front end,
paths, labels, file sizes and mtimes).
"""
import concurrent.futures
import csv
import math
import os
import zlib
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

from model_prep.data import speech_commands as sc
from model_prep.data.cache import cached_array
from model_prep.data.frontend import MFCC, MfccConfig, fit_length, mfcc_batch
from model_prep.data.images import SPLIT_PERCENT, bucket

UNKNOWN = "_unknown_"
AUDIO_SUFFIXES = (".opus", ".ogg", ".wav", ".flac")
CSV_SETS = {"TRAIN": "train", "DEV": "validation", "VALIDATION": "validation", "VAL": "validation", "TEST": "test"}
LAYOUT = ("expected the Multilingual Spoken Words layout ROOT/<lang>/clips/<word>/*.opus (or .wav), "
          "optionally with ROOT/<lang>/<lang>_splits.csv")
DatasetError = sc.DatasetError


# ---------------------------------------------------------------- the folder

def language_dir(root, language=None) -> Path:
    """ROOT/<language>, or ROOT itself when it holds clips/."""
    if root is None or not Path(root).is_dir():
        raise DatasetError(f"{root}: not a folder; {LAYOUT}")
    root = Path(root)
    if (root / "clips").is_dir() and (language is None or root.name == language):
        return root
    if language is not None:
        if not (root / language / "clips").is_dir():
            raise DatasetError(f"{root / language / 'clips'}: missing; {LAYOUT}")
        return root / language
    found = sorted(d.name for d in root.iterdir() if (d / "clips").is_dir())
    if len(found) != 1:
        raise DatasetError(f"{root}: {'no language folders' if not found else 'languages ' + ', '.join(found)}"
                           f"; pass language=...; {LAYOUT}")
    return root / found[0]


def splits_csv(lang_dir: Path) -> Path | None:
    path = lang_dir / f"{lang_dir.name}_splits.csv"
    return path if path.is_file() else None


def read_splits(path: Path) -> list[tuple[str, str, str, str]]:
    """(clip path relative to clips/, word, split, speaker) of every valid row of a splits CSV."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = {(name or "").strip().upper(): name for name in reader.fieldnames or []}
        missing = [c for c in ("SET", "LINK", "WORD") if c not in fields]
        if missing:
            raise DatasetError(f"{path}: no column(s) {', '.join(missing)}; expected a header "
                               "SET,LINK,WORD,VALID,SPEAKER,GENDER")
        get = lambda row, col: (row.get(fields.get(col, ""), "") or "").strip()  # noqa: E731
        for n, row in enumerate(reader, 2):
            split = CSV_SETS.get(get(row, "SET").upper())
            if split is None:
                raise DatasetError(f"{path}:{n}: SET '{get(row, 'SET')}'; expected TRAIN, DEV or TEST")
            if get(row, "VALID").lower() in ("false", "0"):
                continue
            link = get(row, "LINK").replace("\\", "/").removeprefix("clips/")
            speaker = get(row, "SPEAKER")
            rows.append((link, get(row, "WORD") or link.split("/")[0], split,
                         "" if speaker.upper() in ("", "NA", "NAN") else speaker))
    return rows


def list_clips(lang_dir: Path) -> list[tuple[str, str, str, str]]:
    """(clip path relative to clips/, word, split, speaker) of every audio file, split by a file-name hash."""
    lo, hi = SPLIT_PERCENT
    rows = []
    for d in sorted((lang_dir / "clips").iterdir()):
        if d.is_dir():
            for f in sorted(os.listdir(d)):
                if f.lower().endswith(AUDIO_SUFFIXES):
                    b = bucket(f, "split")
                    split = "train" if b < lo else "validation" if b < hi else "test"
                    rows.append((f"{d.name}/{f}", d.name, split, ""))
    if not rows:
        raise DatasetError(f"{lang_dir / 'clips'}: no audio files in word folders; {LAYOUT}")
    return rows


def corpus(lang_dir: Path):
    """(rows, source): rows from the splits CSV if present, else from the folders."""
    path = splits_csv(lang_dir)
    return (read_splits(path), path) if path else (list_clips(lang_dir), lang_dir / "clips")


def top_words(rows, count: int) -> list[str]:
    counts = {}
    for _, word, _, _ in rows:
        counts[word] = counts.get(word, 0) + 1
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:count]]


def keywords(rows, words=None, num_words: int = 10) -> list[str]:
    """`words` as a list (a comma-separated string is split), or the `num_words` most frequent words."""
    if words is None:
        return top_words(rows, num_words)
    words = [w.strip() for w in words.split(",")] if isinstance(words, str) else list(words)
    return [w for w in words if w]


def labels(root, language=None, words=None, num_words: int = 10, unknown: bool = False) -> list[str]:
    """["_unknown_"] if unknown, then the keywords (ROOT is read only when `words` is None)."""
    if words is None:
        words = keywords(corpus(language_dir(root, language))[0], None, num_words)
    else:
        words = keywords(None, words)
    return ([UNKNOWN] if unknown else []) + words


def is_device(speaker: str) -> bool:
    return zlib.crc32(speaker.encode()) % 100 < sc.DEVICE_CRC_PERCENT


# ---------------------------------------------------------------- examples

def load_split(root, split: str, group: str, language=None, words=None, num_words: int = 10,
               unknown: bool = False, unknown_percentage: float = 10.0, seed: int = 0):
    """(language folder, [speech_commands.Example], labels): keywords, then _unknown_ if asked."""
    lang_dir = language_dir(root, language)
    rows, source = corpus(lang_dir)
    words = keywords(rows, words, num_words)
    names = ([UNKNOWN] if unknown else []) + words
    if len(set(names)) != len(names):
        raise DatasetError(f"words {', '.join(words)}: a word is listed twice (or is '{UNKNOWN}')")
    present = {w for _, w, _, _ in rows}
    missing = [w for w in words if w not in present]
    if missing:
        raise DatasetError(f"{source}: no clips for word(s) {', '.join(missing)}; {LAYOUT}")
    known, pool = [], []
    for link, word, s, speaker in rows:
        speaker = speaker or Path(link).stem
        if s != split or (group != "all" and is_device(speaker) != (group == "device")):
            continue
        if word in names:
            known.append(sc.Example(f"clips/{link}", names.index(word), speaker))
        elif unknown:
            pool.append(sc.Example(f"clips/{link}", 0, speaker))
    if not known:
        raise DatasetError(f"{source}: no keyword clips for split '{split}', group '{group}'")
    rng = np.random.default_rng([seed, sc.SPLITS.index(split), sc.GROUPS.index(group)])
    n_unknown = min(len(pool), math.ceil(len(known) * unknown_percentage / 100))
    examples = known + [pool[i] for i in sorted(rng.choice(len(pool), n_unknown, replace=False))]
    for e in examples:
        if not (lang_dir / e.path).is_file():
            raise DatasetError(f"{source}: '{e.path.removeprefix('clips/')}' is not a file under {lang_dir / 'clips'}")
    return lang_dir, examples, names


# ---------------------------------------------------------------- audio and features

def read_audio(path) -> np.ndarray:
    """float32 [16000]: a clip (Opus/OGG, WAV, FLAC), mixed to mono, resampled to 16 kHz, padded / trimmed to 1 s."""
    path = Path(path)
    if path.suffix.lower() == ".wav":
        return sc.load_wav(path)
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as e:
        raise DatasetError(f"{path}: cannot read audio ({e}); expected an Opus (OGG) or WAV clip") from None
    samples = data.mean(axis=1)
    if rate != sc.SAMPLE_RATE:
        g = gcd(sc.SAMPLE_RATE, rate)
        samples = resample_poly(samples, sc.SAMPLE_RATE // g, rate // g).astype(np.float32)
    return fit_length(samples, sc.CLIP_SAMPLES)


def features(lang_dir: Path, examples, cfg: MfccConfig = MFCC, cache: bool = True):
    """(X float32 [N, 49, 10], y int64 [N]); cached in <lang folder>/.cache/mfcc_<key>.npz."""
    y = np.array([e.label for e in examples], np.int64)
    path = lang_dir / ".cache" / f"mfcc_{sc.cache_key(examples, lang_dir, cfg)}.npz"
    def compute():
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            return mfcc_batch(np.stack(list(pool.map(lambda e: read_audio(lang_dir / e.path), examples))), cfg)
    return cached_array(path, compute, cache), y


def load_mswc(root, split: str, group: str, language=None, words=None, num_words: int = 10,
              unknown: bool = False, unknown_percentage: float = 10.0, seed: int = 0):
    """(x float32 [N, 1, 49, 10], y int64 [N]) of one split and speaker group."""
    lang_dir, examples, _ = load_split(root, split, group, language, words, num_words, unknown,
                                       unknown_percentage, seed)
    X, y = features(lang_dir, examples)
    return np.ascontiguousarray(X[:, None], dtype=np.float32), y
