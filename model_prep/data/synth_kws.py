"""Synthetic keyword-spotting corpus in the Google Speech Commands v2 layout, spoken by espeak-ng.

    python -m model_prep.data.synth_kws --out data/speech --seed 0           # ~6000 clips, ~1 min on 2 cores
    python -m model_prep.data.synth_kws --out /tmp/kws --seed 0 --quick      # ~300 clips, seconds (tests)

The real corpus cannot be downloaded here, so this writes one that model_prep.data.speech_commands
reads like the real one:

    DIR/<word>/<speaker>_nohash_<n>.wav    1 s, 16 kHz, 16-bit mono; 10 keywords + 20 unknown words
    DIR/_background_noise_/*.wav           10 s each: white, pink, brown noise, mains hum, fan
    DIR/validation_list.txt, testing_list.txt   ~10 % / ~10 % of the speakers of each group
    DIR/device_speakers.txt                the on-device group's speakers
    DIR/corpus.json                        generator version, seed, parameters, speakers

A speaker is an espeak-ng (voice, variant) pair, its id the first 8 hex digits of sha1("voice+variant").
Speakers form two disjoint groups. "pretrain" speaks with the plain US/British voices and the
ordinary male/female variants, mid pitch and rate, over white/pink noise at a high SNR. "device" is
the shift a deployed model meets: other accents (Scottish, Caribbean, New York, West Midlands), the
Klatt synthesizer and old/rough variants, low pitch and slow or fast speech, a band-limited cheap
microphone, and brown and fan noise at a lower SNR.

Each utterance gets its own rate, pitch, gain, position in the clip, noise and SNR, drawn from a
generator seeded by (seed, word, clip index), so the output bytes depend only on the seed, the
parameters and the espeak-ng version, not on the number of parallel jobs.
"""
import argparse
import concurrent.futures
import dataclasses
import hashlib
import json
import shutil
import struct
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, resample_poly, sosfilt

from model_prep.cli import at_least
from model_prep.data.speech_commands import BACKGROUND_DIR, DEVICE_SPEAKERS_FILE, KEYWORDS

VERSION = 1
UNKNOWN_WORDS = ["bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin",
                 "nine", "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero"]
WORDS = KEYWORDS + UNKNOWN_WORDS
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
ESPEAK_RATE = 22050                      # espeak-ng writes 22.05 kHz; 16000 / 22050 = 320 / 441
NOISE_SECONDS = 10
HELD_OUT_FRACTION = 0.1                  # of each group's speakers, for validation and again for test


@dataclass(frozen=True)
class GroupStyle:
    voices: tuple[str, ...]              # espeak-ng voices (accents)
    variants: tuple[str, ...]            # espeak-ng variants (-v voice+variant); speakers = voices x variants
    pitch: tuple[tuple[int, int], ...]   # ranges of a speaker's base pitch (espeak -p, 0..99)
    rate: tuple[tuple[int, int], ...]    # ranges of a speaker's base rate (espeak -s, words per minute)
    noises: tuple[str, ...]              # noise kinds mixed into each utterance
    snr_db: tuple[float, float]          # speech-to-noise ratio range
    band_hz: tuple[tuple[int, int], tuple[int, int]] | None  # microphone band-pass: (low range, high range)


PRETRAIN = GroupStyle(
    voices=("en-us", "en-gb", "en-gb-x-rp", "en-gb-x-gbclan"),
    variants=("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4",
              "adam", "Alex", "Andy", "Annie", "john", "linda", "steph"),
    pitch=((35, 65),), rate=((150, 190),),
    noises=("white", "pink"), snr_db=(15.0, 35.0), band_hz=None)
DEVICE = GroupStyle(
    voices=("en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-gbcwmd"),
    variants=("klatt", "klatt2", "klatt3", "klatt4", "klatt5", "croak", "grandma", "grandpa",
              "m8", "f5", "aunty", "norbert", "travis", "victor"),
    pitch=((10, 30), (70, 90)), rate=((115, 140), (200, 230)),
    noises=("brown", "fan"), snr_db=(10.0, 25.0), band_hz=((250, 450), (2600, 3600)))
GROUPS = {"pretrain": PRETRAIN, "device": DEVICE}


class EspeakError(RuntimeError):
    """espeak-ng is missing or failed."""


@dataclass(frozen=True)
class Speaker:
    id: str          # sha1("voice+variant")[:8]
    voice: str
    variant: str
    group: str       # "pretrain" | "device"
    split: str       # "train" | "validation" | "test"
    pitch: int       # base espeak pitch
    rate: int        # base espeak rate
    band: tuple[int, int] | None  # microphone pass band in Hz, None = flat


@dataclass(frozen=True)
class Utterance:
    word: str
    path: str        # relative to the corpus root
    speaker: Speaker
    seed: tuple      # seeds this utterance's generator


# ---------------------------------------------------------------- speakers and plan

def speaker_id(voice: str, variant: str) -> str:
    return hashlib.sha1(f"{voice}+{variant}".encode()).hexdigest()[:8]


def pick_range(ranges, rng) -> int:
    lo, hi = ranges[int(rng.integers(len(ranges)))]
    return int(rng.integers(lo, hi + 1))


def make_speakers(seed: int) -> list[Speaker]:
    """Every (voice, variant) of both groups; each group's speakers, ordered by id (a hash),
    give the first ~10 % to validation, the next ~10 % to test, the rest to train."""
    speakers = []
    for group, style in GROUPS.items():
        ids = sorted((speaker_id(v, var), v, var) for v in style.voices for var in style.variants)
        held_out = max(1, round(HELD_OUT_FRACTION * len(ids)))
        for rank, (sid, voice, variant) in enumerate(ids):
            split = "validation" if rank < held_out else "test" if rank < 2 * held_out else "train"
            rng = np.random.default_rng([seed, 3, int(sid, 16)])
            pitch, rate = pick_range(style.pitch, rng), pick_range(style.rate, rng)
            band = None if style.band_hz is None else tuple(int(rng.integers(lo, hi + 1)) for lo, hi in style.band_hz)
            speakers.append(Speaker(sid, voice, variant, group, split, pitch, rate, band))
    assert len({s.id for s in speakers}) == len(speakers), "speaker id collision"
    return speakers


def plan(speakers: list[Speaker], seed: int, per_word: int, unknown_per_word: int) -> list[Utterance]:
    """Clip i of a word goes to speaker perm[i % S] of a per-word shuffle, as repeat n = i // S."""
    out = []
    for w, word in enumerate(WORDS):
        perm = np.random.default_rng([seed, 1, w]).permutation(len(speakers))
        for i in range(per_word if word in KEYWORDS else unknown_per_word):
            s = speakers[perm[i % len(speakers)]]
            out.append(Utterance(word, f"{word}/{s.id}_nohash_{i // len(speakers)}.wav", s, (seed, 2, w, i)))
    return out


# ---------------------------------------------------------------- audio

def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of unit-RMS noise of one kind at 16 kHz."""
    t = np.arange(n) / SAMPLE_RATE
    white = rng.standard_normal(n)
    if kind == "white":
        x = white
    elif kind in ("pink", "brown", "fan"):
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        f[0] = f[1]
        shape = {"pink": f ** -0.5, "brown": f ** -1.0, "fan": 1 / (1 + (f / 300) ** 2)}[kind]
        x = np.fft.irfft(np.fft.rfft(white) * shape, n)
        if kind == "fan":
            x *= 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
    elif kind == "hum":
        mains = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 2 * np.pi)) / h for h in (1, 2, 3, 5))
        x = x + 0.05 * white
    else:
        raise ValueError(f"noise kind '{kind}'")
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def parse_wav_bytes(data: bytes) -> tuple[int, np.ndarray]:
    """(sample rate, int16 samples) of a RIFF WAV in memory. espeak-ng --stdout leaves the size
    fields at their streaming placeholder, so the data chunk runs to the end of the bytes."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EspeakError(f"espeak-ng output is not a WAV ({len(data)} bytes)")
    pos, rate = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if chunk == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, pos + 8)
            if (fmt, channels, bits) != (1, 1, 16):
                raise EspeakError(f"espeak-ng WAV is format {fmt}, {channels} channels, {bits} bits")
        elif chunk == b"data":
            body = data[pos + 8:]
            return rate, np.frombuffer(body[:len(body) // 2 * 2], "<i2")
        pos += 8 + size + (size & 1)
    raise EspeakError("espeak-ng WAV has no data chunk")


def espeak(word: str, voice: str, variant: str, rate: int, pitch: int, exe: str = "espeak-ng") -> np.ndarray:
    """float32 speech at 22.05 kHz."""
    cmd = [exe, "-v", f"{voice}+{variant}", "-s", str(rate), "-p", str(pitch), "--stdout", word]
    try:
        done = subprocess.run(cmd, capture_output=True, check=True)
    except FileNotFoundError:
        raise EspeakError(f"{exe} not found; install it (apt-get install espeak-ng)") from None
    except subprocess.CalledProcessError as e:
        raise EspeakError(f"{' '.join(cmd)} failed: {e.stderr.decode(errors='replace').strip()}") from None
    if not done.stdout.startswith(b"RIFF"):
        raise EspeakError(f"{' '.join(cmd)} wrote no WAV: {done.stderr.decode(errors='replace').strip()}")
    rate_hz, samples = parse_wav_bytes(done.stdout)
    if rate_hz != ESPEAK_RATE:
        raise EspeakError(f"espeak-ng wrote {rate_hz} Hz, expected {ESPEAK_RATE}")
    return samples.astype(np.float32) / 32768.0


def render(u: Utterance, exe: str = "espeak-ng") -> np.ndarray:
    """int16 [16000]: the word at a random rate, pitch, gain and position, through the speaker's
    microphone, plus noise at a random SNR."""
    rng = np.random.default_rng(list(u.seed))
    s = u.speaker
    style = GROUPS[s.group]
    rate = int(np.clip(round(s.rate * (1 + 0.08 * rng.standard_normal())), 80, 400))
    pitch = int(np.clip(round(s.pitch + 5 * rng.standard_normal()), 0, 99))
    speech = resample_poly(espeak(u.word, s.voice, s.variant, rate, pitch, exe), 320, 441)
    if s.band is not None:
        speech = sosfilt(butter(2, s.band, "bandpass", fs=SAMPLE_RATE, output="sos"), speech)
    loud = np.flatnonzero(np.abs(speech) > 0.02 * np.abs(speech).max())
    if not loud.size:
        raise EspeakError(f"espeak-ng spoke silence for '{u.word}' with {s.voice}+{s.variant}")
    speech = speech[loud[0]:loud[-1] + 1][:CLIP_SAMPLES]
    speech *= np.exp(rng.uniform(np.log(0.1), np.log(0.9))) / np.abs(speech).max()
    start = int(rng.integers(0, CLIP_SAMPLES - len(speech) + 1))
    clip = np.zeros(CLIP_SAMPLES)
    clip[start:start + len(speech)] = speech
    kind = style.noises[int(rng.integers(len(style.noises)))]
    snr_db = rng.uniform(*style.snr_db)
    speech_rms = np.sqrt(np.mean(speech ** 2))
    clip += noise(kind, CLIP_SAMPLES, rng) * speech_rms * 10 ** (-snr_db / 20)
    return to_int16(clip)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(samples.astype("<i2").tobytes())


def background_noises(seed: int) -> dict[str, np.ndarray]:
    """{file name: int16 [10 s]} for ROOT/_background_noise_/."""
    files = {"white_noise.wav": ("white", 0.1), "pink_noise.wav": ("pink", 0.1), "brown_noise.wav": ("brown", 0.1),
             "hum.wav": ("hum", 0.05), "fan.wav": ("fan", 0.1)}
    return {name: to_int16(rms * noise(kind, NOISE_SECONDS * SAMPLE_RATE, np.random.default_rng([seed, 4, k])))
            for k, (name, (kind, rms)) in enumerate(files.items())}


# ---------------------------------------------------------------- the corpus

def espeak_version(exe: str = "espeak-ng") -> str:
    if shutil.which(exe) is None:
        raise EspeakError(f"{exe} not found on PATH; install it (apt-get install espeak-ng)")
    return subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def prepare_out(out: Path):
    """Create `out`, or clear it if it is an earlier corpus; refuse any other non-empty folder."""
    if out.exists() and any(out.iterdir()):
        if not (out / "corpus.json").is_file():
            raise SystemExit(f"{out}: not empty and not a synth_kws corpus (no corpus.json); choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def generate(out, seed: int = 0, per_word: int = 400, unknown_per_word: int | None = None,
             jobs: int = 2, exe: str = "espeak-ng", progress: bool = True) -> dict:
    """Write the corpus to `out`; return the corpus.json contents."""
    version = espeak_version(exe)
    out = Path(out)
    unknown_per_word = max(1, per_word // 4) if unknown_per_word is None else unknown_per_word
    speakers = make_speakers(seed)
    utterances = plan(speakers, seed, per_word, unknown_per_word)
    prepare_out(out)
    for word in WORDS:
        (out / word).mkdir()
    (out / BACKGROUND_DIR).mkdir()
    for name, samples in background_noises(seed).items():
        write_wav(out / BACKGROUND_DIR / name, samples)

    t0 = time.time()

    def work(u):
        write_wav(out / u.path, render(u, exe))

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for done, _ in enumerate(pool.map(work, utterances), 1):
            if progress and (done % 200 == 0 or done == len(utterances)):
                print(f"\rsynth_kws: {done}/{len(utterances)} clips, {time.time() - t0:.0f} s",
                      end="\n" if done == len(utterances) else "", file=sys.stderr, flush=True)

    for split, name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        (out / name).write_text("".join(f"{u.path}\n" for u in sorted(utterances, key=lambda u: u.path)
                                        if u.speaker.split == split))
    (out / DEVICE_SPEAKERS_FILE).write_text("".join(f"{s.id}\n" for s in speakers if s.group == "device"))
    corpus = {
        "generator": "model_prep.data.synth_kws", "version": VERSION, "espeak_ng": version,
        "seed": seed, "per_word": per_word, "unknown_per_word": unknown_per_word,
        "keywords": KEYWORDS, "unknown_words": UNKNOWN_WORDS, "sample_rate": SAMPLE_RATE,
        "noise_seconds": NOISE_SECONDS, "held_out_fraction": HELD_OUT_FRACTION,
        "groups": {g: dataclasses.asdict(style) for g, style in GROUPS.items()},
        "speakers": [dataclasses.asdict(s) for s in speakers],
        "clips": len(utterances),
    }
    (out / "corpus.json").write_text(json.dumps(corpus, indent=1) + "\n")
    return corpus


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="corpus folder (created; an earlier corpus is replaced)")
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--per-word", type=at_least(1),
                   help="clips per keyword (default 400, 20 with --quick); each unknown word gets a quarter")
    p.add_argument("--quick", action="store_true", help="small corpus for tests")
    p.add_argument("--jobs", type=at_least(1), default=2, help="parallel espeak-ng processes")
    a = p.parse_args(argv)
    per_word = a.per_word or (20 if a.quick else 400)
    t0 = time.time()
    try:
        corpus = generate(a.out, a.seed, per_word, jobs=a.jobs)
    except EspeakError as e:
        raise SystemExit(f"synth_kws: {e}")
    print(f"synth_kws: wrote {corpus['clips']} clips, {len(corpus['speakers'])} speakers to {a.out} "
          f"in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
