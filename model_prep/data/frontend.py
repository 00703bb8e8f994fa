"""MLPerf Tiny keyword-spotting front end (MFCC), in numpy.

The reference is the MLPerf Tiny KWS training code (`get_dataset.py`):

    stfts = tf.signal.stft(wav, frame_length=480, frame_step=320, fft_length=None,   # 512
                           window_fn=tf.signal.hann_window)                          # periodic
    spectrograms = tf.abs(stfts)
    mel = tf.tensordot(spectrograms, tf.signal.linear_to_mel_weight_matrix(
        40, 257, 16000, 20.0, 4000.0), 1)                                            # HTK mel
    mfccs = tf.signal.mfccs_from_log_mel_spectrograms(tf.math.log(mel + 1e-6))[..., :10]

This module computes the same numbers without TensorFlow (tests/test_frontend.py checks it
against TF). One 1 s clip gives 49 frames x 10 coefficients.

The reference also divides each clip by its maximum sample before this front end. We do not:
a streaming device cannot, and a gain on the clip only adds a constant to the log-mel
energies, which moves coefficient 0 and nothing else (up to the 1e-6 offset).
"""
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class MfccConfig:
    sample_rate: int = 16000       # Hz of the input clip
    clip_samples: int = 16000      # every clip is padded with zeros / trimmed to this length (1 s)
    window_samples: int = 480      # STFT frame length (30 ms), periodic Hann window
    stride_samples: int = 320      # STFT hop (20 ms); frames = 1 + (16000 - 480) // 320 = 49
    fft_length: int = 512          # FFT size (next power of two >= window), 257 bins
    num_mel_bins: int = 40         # triangular HTK-mel filters
    num_mfcc: int = 10             # DCT coefficients kept
    lower_edge_hz: float = 20.0    # lowest mel filter edge
    upper_edge_hz: float = 4000.0  # highest mel filter edge
    log_offset: float = 1e-6       # log(mel + log_offset) keeps silence finite

    @property
    def num_frames(self) -> int:
        return 1 + (self.clip_samples - self.window_samples) // self.stride_samples


MFCC = MfccConfig()


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window, as tf.signal.hann_window(length, periodic=True)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def hz_to_mel(hz):
    """HTK mel scale, as TensorFlow uses: 1127 * ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hz, np.float64) / 700.0)


def mel_weight_matrix(cfg: MfccConfig = MFCC) -> np.ndarray:
    """[fft_length // 2 + 1, num_mel_bins] triangles, as tf.signal.linear_to_mel_weight_matrix."""
    num_bins = cfg.fft_length // 2 + 1
    bin_mel = hz_to_mel(np.linspace(0.0, cfg.sample_rate / 2.0, num_bins))[1:, None]  # DC bin zeroed
    edges = np.linspace(hz_to_mel(cfg.lower_edge_hz), hz_to_mel(cfg.upper_edge_hz), cfg.num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (center - lower)
    falling = (upper - bin_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.concatenate([np.zeros((1, cfg.num_mel_bins)), weights])


def dct_matrix(cfg: MfccConfig = MFCC) -> np.ndarray:
    """[num_mel_bins, num_mfcc] DCT-II scaled by 1/sqrt(2 * num_mel_bins), as
    tf.signal.mfccs_from_log_mel_spectrograms (then the first num_mfcc columns)."""
    n = cfg.num_mel_bins
    k = np.arange(cfg.num_mfcc)[None, :]
    i = np.arange(n)[:, None]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n)) / np.sqrt(2.0 * n)


@lru_cache(maxsize=8)
def _matrices(cfg: MfccConfig):
    return hann_window(cfg.window_samples), mel_weight_matrix(cfg), dct_matrix(cfg)


def fit_length(wav: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad the last axis to `length` samples."""
    wav = np.asarray(wav)
    if wav.shape[-1] >= length:
        return wav[..., :length]
    pad = [(0, 0)] * (wav.ndim - 1) + [(0, length - wav.shape[-1])]
    return np.pad(wav, pad)


def mfcc_batch(wavs, cfg: MfccConfig = MFCC, chunk: int = 256) -> np.ndarray:
    """float32 [N, num_frames, num_mfcc] for N clips (a 2-D array or a list of 1-D clips)."""
    if not isinstance(wavs, np.ndarray):
        wavs = [fit_length(np.asarray(w, np.float32), cfg.clip_samples) for w in wavs]
        wavs = np.stack(wavs) if wavs else np.zeros((0, cfg.clip_samples), np.float32)
    wavs = fit_length(wavs, cfg.clip_samples)
    window, mel, dct = _matrices(cfg)
    starts = np.arange(cfg.num_frames) * cfg.stride_samples
    frame_index = starts[:, None] + np.arange(cfg.window_samples)[None, :]
    out = np.empty((len(wavs), cfg.num_frames, cfg.num_mfcc), np.float32)
    for lo in range(0, len(wavs), chunk):
        frames = wavs[lo:lo + chunk].astype(np.float64)[:, frame_index] * window
        magnitude = np.abs(np.fft.rfft(frames, n=cfg.fft_length, axis=-1))
        log_mel = np.log(magnitude @ mel + cfg.log_offset)
        out[lo:lo + chunk] = log_mel @ dct
    return out


def mfcc(wav: np.ndarray, cfg: MfccConfig = MFCC) -> np.ndarray:
    """float32 [num_frames, num_mfcc] (49, 10) for one clip of floats in [-1, 1]."""
    return mfcc_batch(np.asarray(wav)[None, :], cfg)[0]


def quantize_features(features: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 q = clamp(round(x / scale) + zero_point, -128, 127), as TFLite's QUANTIZE op does it:
    the division in float32, then rounding half away from zero (std::round), not numpy's
    half-to-even, so host and firmware agree bit for bit."""
    x = np.asarray(features, np.float32) / np.float32(scale)
    x = x.astype(np.float64)
    rounded = np.sign(x) * np.floor(np.abs(x) + 0.5)
    return np.clip(rounded + int(zero_point), -128, 127).astype(np.int8)
