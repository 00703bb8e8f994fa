"""Image datasets read from disk: CIFAR-10, ImageNet-style class folders, Visual Wake Words.

Every image dataset (these three, and the built-in digits and shapes) gives (x, y) with

    x float32 [N, 3, R, R]   RGB, x = (p / 255 - 0.5) / 0.5 in [-1, 1] for a pixel p in 0..255
                             (`normalize`, the one place this is written; int8 input scale 2/255
                             and zero point -1 make the quantized input exactly q = p - 128)
    y int64 [N]              index into the dataset's labels

Resizing (`square`): centre crop to a square on the shorter side, then PIL bilinear to R x R
(antialiased when shrinking). Greyscale and palette files are converted to RGB.

Layouts:

    cifar10   ROOT/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} (python pickles;
              ROOT may be that folder itself). train = batches 1-5 less the second half of
              data_batch_5 (45000), validation = that half (5000), test = test_batch (10000).
    imagenet  ROOT/train/<class>/*.{jpg,jpeg,png,bmp}, ROOT/val/<class>/*; classes = sorted folder
              names of train/. validation = val/; test = test/<class>/* if present, else val/ again.
    vww       ROOT/person/*, ROOT/non_person/* (the MLPerf Tiny vw_coco2014_96 layout), split by a hash
              of the file name (80 % train, 10 % validation, 10 % test); or ROOT/train/{person,non_person},
              ROOT/val/{...} (and optionally test/) split as imagenet. Labels: non_person = 0, person = 1.

Groups, a distribution shift with the same labels: an image is in "device" when
bucket(its key, "device") < DEVICE_PERCENT (20), where its key is "<batch>:<index>" for CIFAR-10
and its path relative to ROOT for the folders. Device images are seen through `camera_shift`
(a cheap camera: warm colour cast, lifted blacks and lower contrast, blur, sensor noise seeded by
the key); "pretrain" is every other image, unchanged; "all" is both.

Resized pixels are cached as uint8 in ROOT/.cache/<dataset>_<key>.npz, the key a hash of the
resolution and every selected file's path, size and mtime, so a changed file is never served stale.
"""
import concurrent.futures
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from model_prep.data.cache import cached_array
from model_prep.data.speech_commands import DatasetError

DEVICE_PERCENT = 20                                      # bucket(key, "device") < 20 -> device group
SPLIT_PERCENT = (80, 90)                                 # hash splits: < 80 train, < 90 validation, else test
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
CACHE_VERSION = 1                                        # bump when resizing changes

CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_LAYOUT = ("expected the CIFAR-10 python layout cifar-10-batches-py/data_batch_1..5 and test_batch "
                  "(pickled dicts with 'data' [N, 3072] uint8 and 'labels')")
VWW_LABELS = ["non_person", "person"]
IMAGENET_LAYOUT = "expected ROOT/train/<class>/*.jpg|png and ROOT/val/<class>/* (optional ROOT/test/<class>/*)"
VWW_LAYOUT = ("expected ROOT/person/* and ROOT/non_person/* images, or ROOT/train/ and ROOT/val/ "
              "each holding person/ and non_person/")


# ---------------------------------------------------------------- pixels

def normalize(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] = (p / 255 - 0.5) / 0.5."""
    x = np.asarray(images, np.float32).transpose(0, 3, 1, 2) / 255.0
    return np.ascontiguousarray((x - 0.5) / 0.5, dtype=np.float32)


def square(image: Image.Image, resolution: int) -> np.ndarray:
    """uint8 [R, R, 3]: centre crop to a square on the shorter side, then bilinear resize."""
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.BILINEAR)
    return np.asarray(image, np.uint8)


def read_image(path, resolution: int) -> np.ndarray:
    """One image file, squared and resized (see `square`)."""
    try:
        with Image.open(path) as image:
            image.load()
            return square(image, resolution)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{path}: cannot read image ({e}); expected a JPEG, PNG or BMP file") from None


def bucket(key: str, salt: str) -> int:
    """A deterministic number in [0, 100) for a key; different salts give independent buckets."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 100


def key_rng(key: str, salt: str) -> np.random.Generator:
    """A generator seeded by a key alone, so an image looks the same whatever else is loaded."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "little"))


def camera_shift(images: np.ndarray, keys) -> np.ndarray:
    """uint8 [N, H, W, 3] as a cheap camera sees them: warm colour cast, lifted blacks and lower
    contrast, a Gaussian blur of sigma R / 64 pixels, and sensor noise (sigma 5 % of full scale)
    seeded by each image's key."""
    x = np.asarray(images, np.float32) / 255.0
    x = 0.12 + 0.7 * x * np.array([1.0, 0.92, 0.75], np.float32)
    sigma = images.shape[1] / 64.0
    out = np.empty(images.shape, np.uint8)
    for i, key in enumerate(keys):
        blurred = gaussian_filter(x[i], sigma=(sigma, sigma, 0), mode="nearest")
        noisy = blurred + 0.05 * key_rng(key, "camera").standard_normal(blurred.shape, np.float32)
        out[i] = np.clip(np.rint(noisy * 255.0), 0, 255)
    return out


def in_group(keys, group: str, percent: int = DEVICE_PERCENT) -> np.ndarray:
    """Boolean mask of the keys in `group` ("all", "pretrain" or "device")."""
    device = np.array([bucket(k, "device") < percent for k in keys], bool)
    return np.ones(len(keys), bool) if group == "all" else device if group == "device" else ~device


def finish(images: np.ndarray, labels, keys, percent: int = DEVICE_PERCENT):
    """(x, y) of selected images: device-group images go through camera_shift, then normalize."""
    images = np.array(images, np.uint8)
    device = in_group(keys, "device", percent)
    if device.any():
        images[device] = camera_shift(images[device], [k for k, d in zip(keys, device) if d])
    return normalize(images), np.asarray(labels, np.int64)


def cached(cache_dir, name: str, parts, compute) -> np.ndarray:
    """compute() -> uint8 array, cached in cache_dir/<name>_<hash of parts>.npz."""
    h = hashlib.sha256(f"{name}|{CACHE_VERSION}".encode())
    for p in parts:
        h.update(f"{p}\n".encode())
    return cached_array(Path(cache_dir) / f"{name}_{h.hexdigest()[:20]}.npz", compute)


def read_images(root, files, resolution: int) -> np.ndarray:
    """uint8 [N, R, R, 3] of files relative to root, decoded in parallel, cached."""
    root = Path(root)

    def compute():
        out = np.zeros((len(files), resolution, resolution, 3), np.uint8)
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            for i, image in enumerate(pool.map(lambda f: read_image(root / f, resolution), files)):
                out[i] = image
        return out

    def stamp(f):
        st = (root / f).stat()
        return f"{f}|{st.st_size}|{st.st_mtime_ns}"

    return cached(root / ".cache", "images", [resolution] + [stamp(f) for f in files], compute)


# ---------------------------------------------------------------- CIFAR-10

def cifar10_dir(root) -> Path:
    """The folder holding the batches: ROOT/cifar-10-batches-py or ROOT itself."""
    if root is None or not Path(root).is_dir():
        raise DatasetError(f"{root}: not a folder; {CIFAR10_LAYOUT}")
    inner = Path(root) / "cifar-10-batches-py"
    return inner if inner.is_dir() else Path(root)


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, 32, 32, 3], int64 [N]) of one pickled batch."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: missing; {CIFAR10_LAYOUT}")
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data = np.asarray(batch["data"], np.uint8)
        labels = np.asarray(batch["labels"], np.int64)
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise ValueError(f"'data' has shape {data.shape} for {len(labels)} labels")
        if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_LABELS)):
            raise ValueError("labels outside 0..9")
    except Exception as e:  # a pickle can raise nearly anything
        raise DatasetError(f"{path}: not a CIFAR-10 batch ({type(e).__name__}: {e}); {CIFAR10_LAYOUT}") from None
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar10(root, split: str, group: str, resolution: int = 32):
    """(x float32 [N, 3, R, R], y int64 [N]) of CIFAR-10; see the module docstring for splits and groups."""
    folder = cifar10_dir(root)
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    images, labels, keys = [], [], []
    for name in names:
        data, y = read_cifar_batch(folder / name)
        index = np.arange(len(y))
        if name == "data_batch_5" and split != "test":
            half = len(y) // 2
            index = index[half:] if split == "validation" else index[:half]
        elif split == "validation":
            continue
        images.append(data[index])
        labels.append(y[index])
        keys += [f"{name}:{i}" for i in index]
    images, labels = np.concatenate(images), np.concatenate(labels)
    mask = in_group(keys, group)
    images, labels, keys = images[mask], labels[mask], [k for k, m in zip(keys, mask) if m]
    if resolution != 32:
        stamps = [f"{n}|{(folder / n).stat().st_size}|{(folder / n).stat().st_mtime_ns}" for n in names]
        images = cached(folder / ".cache", "cifar10", [resolution, split, group] + stamps,
                        lambda: np.stack([square(Image.fromarray(im), resolution) for im in images])
                        if len(images) else np.zeros((0, resolution, resolution, 3), np.uint8))
    return finish(images, labels, keys)


# ---------------------------------------------------------------- class folders (imagenet, vww)

def class_files(folder: Path, classes=None, max_per_class=None) -> dict[str, list[str]]:
    """{class: sorted image file names} of folder/<class>/; every class folder must hold images."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: missing")
    names = classes if classes is not None else sorted(
        d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not names:
        raise DatasetError(f"{folder}: no class folders (a flat folder of images needs sorting into <class>/)")
    out = {}
    for name in names:
        d = folder / name
        if not d.is_dir():
            raise DatasetError(f"{d}: missing class folder")
        files = sorted(f.name for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            raise DatasetError(f"{d}: no images ({', '.join(IMAGE_SUFFIXES)}) in a class folder")
        out[name] = files[:max_per_class] if max_per_class else files
    return out


def load_folders(root: Path, files: dict[str, list[str]], labels: list[str], group: str, resolution: int,
                 split_of=None):
    """(x, y) of {class folder relative to root: files}; split_of filters by key (a hash split)."""
    rel, y = [], []
    for folder, names in files.items():
        label = labels.index(Path(folder).name)
        for n in names:
            key = f"{folder}/{n}"
            if split_of is None or split_of(key):
                rel.append(key)
                y.append(label)
    mask = in_group(rel, group)
    rel, y = [r for r, m in zip(rel, mask) if m], [v for v, m in zip(y, mask) if m]
    if not rel:
        raise DatasetError(f"{root}: no images for group '{group}'")
    return finish(read_images(root, rel, resolution), y, rel)


def imagenet_labels(root) -> list[str]:
    """Sorted class folder names of ROOT/train."""
    if root is None or not Path(root).is_dir():
        raise DatasetError(f"{root}: not a folder; {IMAGENET_LAYOUT}")
    train = Path(root) / "train"
    if not train.is_dir():
        raise DatasetError(f"{train}: missing; {IMAGENET_LAYOUT}")
    labels = sorted(d.name for d in train.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not labels:
        raise DatasetError(f"{train}: no class folders; {IMAGENET_LAYOUT}")
    return labels


def held_out_folder(root: Path, split: str, layout: str) -> str:
    """"train", "val", or for test "test" when ROOT/test exists, else "val"."""
    if split == "train":
        return "train"
    if split == "test" and (root / "test").is_dir():
        return "test"
    if not (root / "val").is_dir():
        raise DatasetError(f"{root / 'val'}: missing; {layout}")
    return "val"


def load_imagenet(root, split: str, group: str, resolution: int = 128, max_per_class: int | None = None):
    """(x float32 [N, 3, R, R], y int64 [N]) of an ImageNet-style folder; `max_per_class` keeps the
    first files (sorted by name) of each class."""
    labels = imagenet_labels(root)
    root = Path(root)
    sub = held_out_folder(root, split, IMAGENET_LAYOUT)
    files = class_files(root / sub, max_per_class=max_per_class)
    unknown = sorted(set(files) - set(labels))
    if unknown:
        raise DatasetError(f"{root / sub / unknown[0]}: class folder not in {root / 'train'}; {IMAGENET_LAYOUT}")
    return load_folders(root, {f"{sub}/{c}": f for c, f in files.items()}, labels, group, resolution)


def load_vww(root, split: str, group: str, resolution: int = 96, max_per_class: int | None = None):
    """(x float32 [N, 3, R, R], y int64 [N]) of Visual Wake Words (non_person = 0, person = 1)."""
    if root is None or not Path(root).is_dir():
        raise DatasetError(f"{root}: not a folder; {VWW_LAYOUT}")
    root = Path(root)
    if (root / "train").is_dir():
        sub = held_out_folder(root, split, VWW_LAYOUT)
        files = class_files(root / sub, VWW_LABELS, max_per_class)
        return load_folders(root, {f"{sub}/{c}": f for c, f in files.items()}, VWW_LABELS, group, resolution)
    if not all((root / c).is_dir() for c in VWW_LABELS):
        raise DatasetError(f"{root}: no person/ and non_person/ folders; {VWW_LAYOUT}")
    files = class_files(root, VWW_LABELS, max_per_class)
    lo, hi = SPLIT_PERCENT
    wanted = {"train": lambda b: b < lo, "validation": lambda b: lo <= b < hi, "test": lambda b: b >= hi}[split]
    return load_folders(root, files, VWW_LABELS, group, resolution, lambda key: wanted(bucket(key, "split")))
