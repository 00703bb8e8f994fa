"""scikit-learn's handwritten digits, a built-in image dataset (no root folder needed).

load_digits() gives 1797 real 8x8 greyscale digits (values 0..16, the UCI optdigits test set).
Each is scaled to 0..255, upsampled bilinearly to R x R (default 32) and replicated to 3 channels,
so every image model takes the same input; then images.normalize. Labels "0".."9".

Splits: a fixed permutation (np.random.default_rng(0)) of the 1797 images; its first 20 % are
test, the next 10 % validation, the rest train. Groups: the image at position p of the
permutation is "device" when p % 5 < 2 (40 %), else "pretrain".

The device group is the same task in another domain, "ink on paper": dark ink (blue-black) on
light tinted paper, with a slight blur and sensor noise, each image's tint and noise seeded by its
index. Pretrain is white digits on black. A model trained on pretrain does much worse on device;
retraining its classifier on device images recovers most of the gap (tests/test_datasets.py).
"""
from functools import lru_cache

import numpy as np
from PIL import Image

from model_prep.data.images import camera_shift, normalize

LABELS = [str(d) for d in range(10)]
TEST_FRACTION, VALIDATION_FRACTION = 0.2, 0.1
DEVICE_EVERY = (2, 5)                    # position % 5 < 2 -> device (40 %)


@lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.images * (255.0 / 16.0)).astype(np.float32), d.target.astype(np.int64)


def split_indices(split: str, group: str) -> np.ndarray:
    """Sorted indices into load_digits() of one split and group."""
    n = len(_digits()[1])
    order = np.random.default_rng(0).permutation(n)
    n_test, n_val = round(TEST_FRACTION * n), round(VALIDATION_FRACTION * n)
    span = {"test": (0, n_test), "validation": (n_test, n_test + n_val), "train": (n_test + n_val, n)}[split]
    positions = np.arange(*span)
    device = positions % DEVICE_EVERY[1] < DEVICE_EVERY[0]
    if group != "all":
        positions = positions[device if group == "device" else ~device]
    return np.sort(order[positions])


def upsample(image: np.ndarray, resolution: int) -> np.ndarray:
    """float32 [8, 8] -> float32 [R, R], PIL bilinear."""
    return np.asarray(Image.fromarray(np.asarray(image, np.float32)).resize((resolution, resolution), Image.BILINEAR))


def load_digits(split: str, group: str, resolution: int = 32):
    """(x float32 [N, 3, R, R], y int64 [N])."""
    images, targets = _digits()
    index = split_indices(split, group)
    out = np.zeros((len(index), resolution, resolution, 3), np.uint8)
    for i, k in enumerate(index):
        out[i] = np.rint(np.clip(upsample(images[k], resolution), 0, 255))[..., None]
    device = np.isin(index, split_indices(split, "device"))
    if device.any():
        out[device] = camera_shift(out[device], [f"digits:{k}" for k in index[device]])
    return normalize(out), targets[index].copy()
