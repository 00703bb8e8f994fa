"""Coloured geometric shapes, a built-in image dataset generated in memory for quick tests.

Ten classes (LABELS). Image i of a split is drawn from np.random.default_rng([seed, split, i]):
label i % 10, a random centre, radius (22-40 % of the side) and rotation (+-15 degrees), random
colours; rendered at SUPERSAMPLE x the resolution and box-filtered down (antialiased edges).
Sizes per split default to 2000 / 300 / 300 (option `sizes`); the same seed gives the same bytes.

Groups: image i is "device" when (i // 10) % 5 < 2 (40 %, every class equally), else "pretrain".
The two groups draw the same shapes in different styles:

    pretrain   a filled shape in a bright colour on a flat dark background
    device     the shape's outline only (stroke 20 % of its radius) in a dark colour on a light
               gradient background with sensor noise

so a model trained on pretrain is clearly worse on device and retraining its classifier on device
images recovers a good part (tests/test_datasets.py checks the shift).
"""
import colorsys
import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import distance_transform_edt

from model_prep.data.images import normalize
from model_prep.data.speech_commands import SPLITS

LABELS = ["circle", "triangle", "square", "pentagon", "hexagon", "star", "cross", "crescent", "arrow", "heart"]
SIZES = (2000, 300, 300)                 # train, validation, test images (both groups together)
DEVICE_BLOCKS = (2, 5)                   # (i // 10) % 5 < 2 -> device
STROKE = 0.2                             # device outline width / radius


def is_device(i: int) -> bool:
    return (i // 10) % DEVICE_BLOCKS[1] < DEVICE_BLOCKS[0]


def _polygon(n: int, radii=(1.0,), start=-90.0):
    count = n * len(radii)
    return [(radii[k % len(radii)] * math.cos(math.radians(start + 360.0 * k / count)),
             radii[k % len(radii)] * math.sin(math.radians(start + 360.0 * k / count))) for k in range(count)]


_A = 0.32                                # half width of the cross's arms
# Each shape: filled polygons and discs [("poly", points) | ("disc", (x, y, r)) | ("hole", (x, y, r))]
# in unit coordinates (radius 1, y down), drawn in order.
_PARTS = {
    "circle": [("disc", (0.0, 0.0, 1.0))],
    "triangle": [("poly", _polygon(3))],
    "square": [("poly", _polygon(4, start=-45.0))],
    "pentagon": [("poly", _polygon(5))],
    "hexagon": [("poly", _polygon(6))],
    "star": [("poly", _polygon(5, radii=(1.0, 0.45)))],
    "cross": [("poly", [(-_A, -1), (_A, -1), (_A, -_A), (1, -_A), (1, _A), (_A, _A), (_A, 1), (-_A, 1),
                        (-_A, _A), (-1, _A), (-1, -_A), (-_A, -_A)])],
    "crescent": [("disc", (0.0, 0.0, 1.0)), ("hole", (0.45, -0.25, 0.82))],
    "arrow": [("poly", [(0, -1), (0.72, -0.1), (0.28, -0.1), (0.28, 1), (-0.28, 1), (-0.28, -0.1), (-0.72, -0.1)])],
    "heart": [("disc", (-0.47, -0.38, 0.53)), ("disc", (0.47, -0.38, 0.53)),
              ("poly", [(-0.96, -0.22), (0.96, -0.22), (0.0, 0.98)])],
}


def shape_mask(label: int, size: int, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """bool [size, size]: the filled shape, centre (cx, cy), radius in pixels, rotated by angle (degrees)."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    place = lambda x, y: (cx + radius * (c * x - s * y), cy + radius * (s * x + c * y))  # noqa: E731
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    for kind, value in _PARTS[LABELS[label]]:
        if kind == "poly":
            draw.polygon([place(x, y) for x, y in value], fill=255)
        else:
            x, y = place(value[0], value[1])
            r = radius * value[2]
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255 if kind == "disc" else 0)
    return np.asarray(mask) > 127


def _colour(rng, saturation, value):
    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value)))


def render(rng: np.random.Generator, label: int, device: bool, resolution: int) -> np.ndarray:
    """uint8 [R, R, 3] of one shape in the pretrain (filled) or device (outline) style."""
    ss = max(2, math.ceil(128 / resolution))
    size = resolution * ss
    radius = rng.uniform(0.22, 0.40) * size
    cx, cy = rng.uniform(radius + ss, size - radius - ss, 2)
    mask = shape_mask(label, size, cx, cy, radius, rng.uniform(-15.0, 15.0))
    if device:
        mask = mask & (distance_transform_edt(mask) <= STROKE * radius)
        fg = _colour(rng, (0.3, 1.0), (0.05, 0.35))
        top, bottom = _colour(rng, (0.0, 0.35), (0.7, 1.0)), _colour(rng, (0.0, 0.35), (0.7, 1.0))
        t = np.linspace(0.0, 1.0, size)[:, None, None]
        if rng.random() < 0.5:
            t = t.transpose(1, 0, 2)
        bg = top * (1.0 - t) + bottom * t
    else:
        fg = _colour(rng, (0.5, 1.0), (0.65, 1.0))
        bg = np.broadcast_to(_colour(rng, (0.0, 0.6), (0.0, 0.35)), (size, size, 3))
    image = np.where(mask[..., None], fg, bg)
    image = image.reshape(resolution, ss, resolution, ss, 3).mean(axis=(1, 3))
    if device:
        image = image + 0.04 * rng.standard_normal(image.shape)
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


@lru_cache(maxsize=16)
def _generate(split: str, group: str, resolution: int, count: int, seed: int):
    index = [i for i in range(count) if group == "all" or is_device(i) == (group == "device")]
    images = np.zeros((len(index), resolution, resolution, 3), np.uint8)
    for n, i in enumerate(index):
        images[n] = render(np.random.default_rng([seed, SPLITS.index(split), i]), i % 10, is_device(i), resolution)
    return images, np.array([i % 10 for i in index], np.int64)


def load_shapes(split: str, group: str, resolution: int = 32, sizes=SIZES, seed: int = 0):
    """(x float32 [N, 3, R, R], y int64 [N]); `sizes` = images per split (train, validation, test)."""
    images, labels = _generate(split, group, int(resolution), int(sizes[SPLITS.index(split)]), int(seed))
    return normalize(images), labels.copy()
