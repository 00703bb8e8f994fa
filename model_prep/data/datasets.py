"""One entry point to every dataset: features and labels by (name, root, split, group, options).

    from model_prep.data import datasets
    x, y = datasets.load_features("cifar10", "data/cifar10", "train", "pretrain")   # [N,3,32,32], [N]
    x, y = datasets.load_features("digits", None, "test", "device", resolution=48)  # built in: no root
    datasets.labels("imagenet", "data/imagenette"); datasets.info("vww").transfer

Splits are "train", "validation", "test"; groups are "all", "pretrain" (what the model is
pre-trained on) and "device" (what the device adapts to); "all" is both. The two groups are
disjoint and share one label set, so the classifier keeps its size on the device:

    kws       speaker groups (speech_commands: device_speakers.txt, else crc32(speaker) % 100 < 20)
    mswc      speaker groups, the same rule on the splits CSV's SPEAKER column (mswc)
    cifar10   20 % of the images by a hash of their key, seen through images.camera_shift
    imagenet  the same, keyed by file path
    vww       the same, keyed by file path
    digits    40 % of the images, through images.camera_shift (digits)
    shapes    40 % of the images, drawn as outlines on light noisy backgrounds (shapes)

Audio gives MFCCs [N, 1, 49, 10] (frontend.MFCC). Images give RGB [N, 3, R, R] normalised as
(p / 255 - 0.5) / 0.5 (images.normalize); greyscale digits are replicated to 3 channels.
Options are keyword arguments of the dataset's loader (listed by `options(name)`); an unknown one
is an error. Every problem with a folder raises DatasetError, one line naming the path.
"""
import inspect
from dataclasses import asdict, dataclass

import numpy as np

from model_prep.data import digits, frontend, images, mswc, shapes, speech_commands
from model_prep.data.speech_commands import GROUPS, SPLITS, DatasetError

DATASETS = ("kws", "mswc", "cifar10", "imagenet", "vww", "digits", "shapes")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: str                        # "audio" (MFCC features) or "image" (normalised RGB)
    input_shape: tuple[int, ...]     # (C, H, W) of one example with the default options
    resolution: int | None           # default square image side (option `resolution`); None for audio
    built_in: bool                   # True: needs no root folder (generated, or shipped with a package)
    layout: str                      # what the root folder holds
    transfer: str                    # what the "pretrain" and "device" groups are


def _image(name, resolution, built_in, layout, transfer):
    return DatasetInfo(name, "image", (3, resolution, resolution), resolution, built_in, layout, transfer)


_MFCC_SHAPE = (1, frontend.MFCC.num_frames, frontend.MFCC.num_mfcc)
_CAMERA = "a cheap camera (colour cast, low contrast, blur, sensor noise)"
_INFO = {
    "kws": DatasetInfo("kws", "audio", _MFCC_SHAPE, None, False,
                       "Speech Commands v2: <word>/<speaker>_nohash_<n>.wav, validation_list.txt, testing_list.txt",
                       "speakers: device = device_speakers.txt, else crc32(speaker) % 100 < 20; same 12 labels"),
    "mswc": DatasetInfo("mswc", "audio", _MFCC_SHAPE, None, False,
                        "Multilingual Spoken Words: <lang>/clips/<word>/*.opus|wav, optional <lang>/<lang>_splits.csv",
                        "speakers: device = crc32(SPEAKER) % 100 < 20 (file name without a speaker); same keywords"),
    "cifar10": _image("cifar10", 32, False, "cifar-10-batches-py/: data_batch_1..5, test_batch (python pickles)",
                      f"20 % of the images (hash of batch:index) seen through {_CAMERA}; same 10 labels"),
    "imagenet": _image("imagenet", 128, False, "train/<class>/*.jpg|png, val/<class>/*, optional test/<class>/*",
                       f"20 % of the images (hash of the path) seen through {_CAMERA}; same classes"),
    "vww": _image("vww", 96, False, "person/ and non_person/ (hash split), or train/ and val/ each holding both",
                  f"20 % of the images (hash of the path) seen through {_CAMERA}; same 2 labels"),
    "digits": _image("digits", 32, True, "built in: scikit-learn load_digits (1797 real 8x8 digits)",
                     f"40 % of the digits seen through {_CAMERA}; same 10 labels"),
    "shapes": _image("shapes", 32, True, "built in: generated in memory (10 shapes, 2000/300/300 per split)",
                     "40 % drawn as dark outlines on light noisy gradients instead of filled bright shapes; "
                     "same 10 labels"),
}


def _kws(root, split, group, seed: int = 0, silence_percentage: float = 10.0, unknown_percentage: float = 10.0):
    examples = speech_commands.load_split(root, split, group, seed, silence_percentage, unknown_percentage)
    x, y = speech_commands.features(examples, root, frontend.MFCC)
    return np.ascontiguousarray(x[:, None, :, :], dtype=np.float32), np.asarray(y, dtype=np.int64)


_LOADERS = {
    "kws": _kws,
    "mswc": mswc.load_mswc,
    "cifar10": images.load_cifar10,
    "imagenet": images.load_imagenet,
    "vww": images.load_vww,
    "digits": lambda root, split, group, **o: digits.load_digits(split, group, **o),
    "shapes": lambda root, split, group, **o: shapes.load_shapes(split, group, **o),
}
_OPTIONS_OF = {"digits": digits.load_digits, "shapes": shapes.load_shapes}


def options(name) -> dict:
    """{option: default} that load_features(name, ...) accepts."""
    _check(name)
    fn = _OPTIONS_OF.get(name, _LOADERS[name])
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.default is not inspect.Parameter.empty}


def info(name) -> DatasetInfo:
    _check(name)
    return _INFO[name]


def labels(name, root=None, **opts) -> list[str]:
    """Class names, index = label. imagenet reads them from ROOT/train; mswc from `words` (else ROOT)."""
    _check_options(name, opts)
    if name == "kws":
        return list(speech_commands.LABELS)
    if name == "mswc":
        keep = inspect.signature(mswc.labels).parameters
        return mswc.labels(root, **{k: v for k, v in opts.items() if k in keep})
    if name == "imagenet":
        return images.imagenet_labels(root)
    return list({"cifar10": images.CIFAR10_LABELS, "vww": images.VWW_LABELS,
                 "digits": digits.LABELS, "shapes": shapes.LABELS}[name])


def load_features(name, root, split, group, **opts):
    """(x float32 [N, C, H, W], y int64 [N]) for one split and group of a dataset."""
    _check(name)
    if split not in SPLITS:
        raise DatasetError(f"split '{split}': expected one of {', '.join(SPLITS)}")
    if group not in GROUPS:
        raise DatasetError(f"group '{group}': expected one of {', '.join(GROUPS)}")
    _check_options(name, opts)
    if root is None and not _INFO[name].built_in:
        raise DatasetError(f"{name}: no root folder given; expected {_INFO[name].layout}")
    x, y = _LOADERS[name](root, split, group, **opts)
    return np.ascontiguousarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)


def frontend_config(name):
    """The MFCC front end (a dict of frontend.MfccConfig) for audio datasets, None for images."""
    _check(name)
    return asdict(frontend.MFCC) if _INFO[name].kind == "audio" else None


def _check(name):
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)}")


def _check_options(name, opts):
    _check(name)
    known = options(name)
    unknown = sorted(set(opts) - set(known))
    if unknown:
        raise DatasetError(f"{name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}")
