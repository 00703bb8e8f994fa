"""The numpy MFCC front end equals the MLPerf Tiny TensorFlow definition."""
import shutil

import numpy as np
import pytest
from scipy.signal import resample_poly

from model_prep.data.frontend import MFCC, mel_weight_matrix, mfcc, mfcc_batch, quantize_features

tf = pytest.importorskip("tensorflow")


def tf_reference(wav):
    """The MLPerf Tiny KWS get_dataset.py front end, verbatim in TensorFlow."""
    stfts = tf.signal.stft(tf.constant(wav, tf.float32), frame_length=480, frame_step=320, fft_length=None,
                           window_fn=tf.signal.hann_window)
    spectrograms = tf.abs(stfts)
    weights = tf.signal.linear_to_mel_weight_matrix(40, stfts.shape[-1], 16000, 20.0, 4000.0)
    log_mel = tf.math.log(tf.tensordot(spectrograms, weights, 1) + 1e-6)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10].numpy()


def spoken(word, voice):
    from model_prep.data.synth_kws import espeak
    clip = resample_poly(espeak(word, voice, "m3", 170, 50), 320, 441)
    return np.pad(clip, (2000, 16000))[:16000].astype(np.float32)


def test_mel_matrix_equals_tf():
    ours = mel_weight_matrix(MFCC)
    ref = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 4000.0).numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-5)  # TF computes it in float32


rng = np.random.default_rng(0)
NOISE = {
    "uniform": rng.uniform(-1, 1, 16000).astype(np.float32),
    "quiet": (1e-3 * rng.standard_normal(16000)).astype(np.float32),
    "silence": np.zeros(16000, np.float32),
}


@pytest.mark.parametrize("name", sorted(NOISE))
def test_noise_equals_tf(name):
    np.testing.assert_allclose(mfcc(NOISE[name]), tf_reference(NOISE[name]), rtol=1e-5, atol=2e-4)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
@pytest.mark.parametrize("word,voice", [("yes", "en-us"), ("marvin", "en-gb-scotland"), ("stop", "en-029")])
def test_speech_equals_tf(word, voice):
    wav = spoken(word, voice)
    np.testing.assert_allclose(mfcc(wav), tf_reference(wav), rtol=1e-5, atol=2e-4)


def test_shape_dtype_deterministic():
    out = mfcc(NOISE["uniform"])
    assert out.shape == (49, 10) and out.dtype == np.float32
    assert np.array_equal(out, mfcc(NOISE["uniform"].copy()))


def test_pads_and_trims_to_one_second():
    short = NOISE["uniform"][:9000]
    np.testing.assert_array_equal(mfcc(short), mfcc(np.pad(short, (0, 7000))))
    np.testing.assert_array_equal(mfcc(np.concatenate([NOISE["uniform"], NOISE["uniform"]])), mfcc(NOISE["uniform"]))


def test_batch_equals_single():
    wavs = np.stack([NOISE["uniform"], NOISE["quiet"], NOISE["silence"]])
    batch = mfcc_batch(wavs, chunk=2)
    assert batch.shape == (3, 49, 10)
    for i in range(3):
        np.testing.assert_array_equal(batch[i], mfcc(wavs[i]))
    np.testing.assert_array_equal(mfcc_batch(list(wavs)), batch)
    assert mfcc_batch([]).shape == (0, 49, 10)


def test_quantize_rounds_half_away_from_zero_and_saturates():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, 1000.0, -1000.0], np.float32)
    q = quantize_features(x, scale=1.0, zero_point=0)
    assert q.dtype == np.int8
    assert q.tolist() == [1, 2, 3, -1, -2, 0, 127, -128]
    assert quantize_features(np.float32([0.25, -0.75]), 0.5, -3).tolist() == [-2, -5]
