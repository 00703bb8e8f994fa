"""datasets.load_features for every dataset, on tiny folders in the real layouts: splits, groups,
normalisation, caches, every error path, and the distribution shift of the built-in image sets."""
import csv
import pickle
import zlib

import numpy as np
import pytest
import soundfile
from PIL import Image

from model_prep.data import datasets, digits, frontend, images, mswc
from model_prep.data import speech_commands as sc
from model_prep.data.datasets import DatasetError

from test_speech_commands import make_corpus, write_wav


def pixels(x):
    """Inverse of images.normalize: float [N, 3, H, W] -> uint8 [N, H, W, 3]."""
    return np.rint((x.transpose(0, 2, 3, 1) * 0.5 + 0.5) * 255).astype(np.uint8)


# ---------------------------------------------------------------- the entry point

def test_names_info_and_frontend():
    assert datasets.DATASETS == ("kws", "mswc", "cifar10", "imagenet", "vww", "digits", "shapes")
    for name in datasets.DATASETS:
        info = datasets.info(name)
        assert info.name == name and info.kind in ("audio", "image") and info.transfer and info.layout
        if info.kind == "audio":
            assert info.input_shape == (1, 49, 10) and info.resolution is None
            assert datasets.frontend_config(name) == datasets.frontend_config("kws")
        else:
            assert info.input_shape == (3, info.resolution, info.resolution)
            assert datasets.frontend_config(name) is None and "resolution" in datasets.options(name)
    assert [n for n in datasets.DATASETS if datasets.info(n).built_in] == ["digits", "shapes"]
    assert datasets.labels("kws") == sc.LABELS
    assert datasets.labels("cifar10")[:2] == ["airplane", "automobile"]
    assert datasets.labels("vww") == ["non_person", "person"]
    assert datasets.labels("digits") == [str(d) for d in range(10)] and len(datasets.labels("shapes")) == 10


@pytest.mark.parametrize("call,message", [
    (lambda: datasets.load_features("mnist", None, "train", "all"), "unknown dataset 'mnist'"),
    (lambda: datasets.load_features("digits", None, "dev", "all"), "split 'dev': expected one of"),
    (lambda: datasets.load_features("digits", None, "train", "phone"), "group 'phone': expected one of"),
    (lambda: datasets.load_features("digits", None, "train", "all", size=3),
     "digits: unknown option.* size; known: resolution"),
    (lambda: datasets.labels("shapes", colour=1), "shapes: unknown option"),
    (lambda: datasets.load_features("cifar10", None, "train", "all"), "cifar10: no root folder given"),
    (lambda: datasets.labels("imagenet"), "None: not a folder"),
])
def test_entry_point_errors(call, message):
    with pytest.raises(DatasetError, match=message):
        call()


def test_kws_through_the_entry_point(tmp_path):
    corpus = make_corpus(tmp_path / "speech")
    x, y = datasets.load_features("kws", corpus, "validation", "all")
    assert x.shape == (len(y), 1, 49, 10) and x.dtype == np.float32 and y.dtype == np.int64
    x2, y2 = datasets.load_features("kws", corpus, "validation", "all", unknown_percentage=0, silence_percentage=0)
    assert len(y2) == 20 and set(y2.tolist()) == set(range(2, 12))


# ---------------------------------------------------------------- CIFAR-10

def make_cifar(root, per_batch=10, seed=0):
    """The python pickle layout, with bytes keys as the real (python 2) pickles have."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, per_batch).tolist(),
                 b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [n.encode() for n in images.CIFAR10_LABELS], b"num_cases_per_batch": per_batch}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def test_cifar10_splits_pixels_and_groups(tmp_path):
    folder = make_cifar(tmp_path)
    counts = {s: len(datasets.load_features("cifar10", tmp_path, s, "all")[1]) for s in datasets.SPLITS}
    assert counts == {"train": 45, "validation": 5, "test": 10}     # batches 1-4 + half of 5 | half of 5 | test
    x, y = datasets.load_features("cifar10", folder, "train", "all")  # ROOT may be the batches folder itself
    assert x.shape == (45, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= -1.0 and x.max() <= 1.0
    raw, labels, keys = [], [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        batch = pickle.loads((folder / name).read_bytes(), encoding="bytes")
        keep = 5 if name == "data_batch_5" else 10
        raw.append(batch[b"data"][:keep].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels += batch[b"labels"][:keep]
        keys += [f"{name}:{i}" for i in range(keep)]
    raw, labels = np.concatenate(raw), np.array(labels)
    device = images.in_group(keys, "device")
    assert 0 < device.sum() < 45
    pre_x, pre_y = datasets.load_features("cifar10", tmp_path, "train", "pretrain")
    np.testing.assert_allclose(pre_x, (raw[~device].transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.5, atol=1e-6)
    assert pre_y.tolist() == labels[~device].tolist()
    dev_x, dev_y = datasets.load_features("cifar10", tmp_path, "train", "device")
    shifted = images.camera_shift(raw[device], [k for k, d in zip(keys, device) if d])
    np.testing.assert_array_equal(dev_x, images.normalize(shifted))
    assert dev_y.tolist() == labels[device].tolist() and not np.array_equal(shifted, raw[device])
    x_all, y_all = datasets.load_features("cifar10", tmp_path, "train", "all")
    np.testing.assert_array_equal(x_all[~device], pre_x)
    np.testing.assert_array_equal(x_all[device], dev_x)


def test_cifar10_resolution_and_cache(tmp_path, monkeypatch):
    make_cifar(tmp_path)
    x, _ = datasets.load_features("cifar10", tmp_path, "test", "all", resolution=20)
    assert x.shape == (10, 3, 20, 20)
    assert len(list((tmp_path / "cifar-10-batches-py" / ".cache").glob("cifar10_*.npz"))) == 1
    monkeypatch.setattr(images, "square", lambda *a: pytest.fail("cache not used"))
    np.testing.assert_array_equal(datasets.load_features("cifar10", tmp_path, "test", "all", resolution=20)[0], x)


@pytest.mark.parametrize("damage,message", [
    ("missing", "test_batch: missing; expected the CIFAR-10 python layout"),
    ("garbage", "test_batch: not a CIFAR-10 batch"),
    ("shape", "test_batch: not a CIFAR-10 batch .*'data' has shape"),
    ("keys", "test_batch: not a CIFAR-10 batch .*KeyError"),
])
def test_cifar10_errors_name_the_file(tmp_path, damage, message):
    path = make_cifar(tmp_path) / "test_batch"
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"\x80\x02not a pickle")
    elif damage == "shape":
        path.write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}))
    else:
        path.write_bytes(pickle.dumps({b"images": []}))
    with pytest.raises(DatasetError, match=message):
        datasets.load_features("cifar10", tmp_path, "test", "all")


def test_cifar10_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="nope: not a folder; expected the CIFAR-10 python layout"):
        datasets.load_features("cifar10", tmp_path / "nope", "train", "all")


# ---------------------------------------------------------------- image folders

def write_image(path, size=(40, 30), colour=None, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    if colour is None:
        data = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    else:
        data = np.broadcast_to(np.array(colour, np.uint8), (size[1], size[0], 3))
    Image.fromarray(np.ascontiguousarray(data)).save(path)


def make_folders(root, subs=("train", "val"), classes=("cat", "dog", "fish"), per_class=4):
    for sub in subs:
        for c, name in enumerate(classes):
            for i in range(per_class):
                ext = ".png" if i % 2 else ".jpg"
                write_image(root / sub / name / f"{sub}_{name}_{i}{ext}", size=(40 + 8 * i, 30), seed=c * 100 + i)
    return root


def test_imagenet_folders(tmp_path):
    root = make_folders(tmp_path / "inet")
    assert datasets.labels("imagenet", root) == ["cat", "dog", "fish"]
    x, y = datasets.load_features("imagenet", root, "train", "all", resolution=16)
    assert x.shape == (12, 3, 16, 16) and y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    val = datasets.load_features("imagenet", root, "validation", "all", resolution=16)
    test = datasets.load_features("imagenet", root, "test", "all", resolution=16)   # no test/: val again
    np.testing.assert_array_equal(val[0], test[0])
    make_folders(root, subs=("test",), classes=("dog",), per_class=2)
    test = datasets.load_features("imagenet", root, "test", "all", resolution=16)
    assert test[1].tolist() == [1, 1]
    pre = datasets.load_features("imagenet", root, "train", "pretrain", resolution=16)
    dev = datasets.load_features("imagenet", root, "train", "device", resolution=16)
    assert len(pre[1]) + len(dev[1]) == 12
    few = datasets.load_features("imagenet", root, "train", "all", resolution=16, max_per_class=1)
    assert few[1].tolist() == [0, 1, 2]
    assert datasets.load_features("imagenet", root, "train", "all")[0].shape[2:] == (128, 128)


def test_images_are_centre_cropped_then_resized(tmp_path):
    """A 60x20 image: red 20-pixel borders left and right, a blue centre square."""
    data = np.zeros((20, 60, 3), np.uint8)
    data[:, :20] = data[:, 40:] = (255, 0, 0)
    data[:, 20:40] = (0, 0, 255)
    path = tmp_path / "train" / "sky" / "a.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(data).save(path)
    out = images.read_image(path, 10)
    assert out.shape == (10, 10, 3) and np.all(out == (0, 0, 255))
    assert images.read_image(path, 20).tolist() == data[:, 20:40].tolist()


def test_image_cache_is_used_and_follows_file_changes(tmp_path, monkeypatch):
    root = make_folders(tmp_path / "inet", per_class=2)
    x, _ = datasets.load_features("imagenet", root, "validation", "pretrain", resolution=8)
    assert len(list((root / ".cache").glob("images_*.npz"))) == 1
    with monkeypatch.context() as m:
        m.setattr(images, "read_image", lambda *a: pytest.fail("cache not used"))
        again, _ = datasets.load_features("imagenet", root, "validation", "pretrain", resolution=8)
        np.testing.assert_array_equal(again, x)
    rel = [f"val/{c}/{f}" for c in ("cat", "dog", "fish") for f in sorted(p.name for p in (root / "val" / c).iterdir())]
    first = [r for r, m in zip(rel, images.in_group(rel, "pretrain")) if m][0]
    write_image(root / first, colour=(255, 255, 255))
    x2, _ = datasets.load_features("imagenet", root, "validation", "pretrain", resolution=8)
    assert np.all(x2[0] == 1.0) and np.array_equal(x2[1:], x[1:])


@pytest.mark.parametrize("damage,message", [
    ("no_root", "nope: not a folder; expected ROOT/train/<class>"),
    ("no_train", "train: missing; expected ROOT/train/<class>"),
    ("no_val", "val: missing; expected ROOT/train/<class>"),
    ("empty_class", "train/dog: no images"),
    ("extra_class", "val/zebra: class folder not in"),
    ("flat_val", "val: no class folders"),
    ("bad_image", "train/cat/train_cat_0.jpg: cannot read image"),
])
def test_imagenet_errors(tmp_path, damage, message):
    root = make_folders(tmp_path / "inet", per_class=2)
    split = "validation" if damage in ("no_val", "extra_class", "flat_val") else "train"
    if damage == "no_root":
        root = tmp_path / "nope"
    elif damage == "no_train":
        (root / "train").rename(root / "training")
    elif damage == "no_val":
        (root / "val").rename(root / "valid")
    elif damage == "empty_class":
        for f in (root / "train" / "dog").iterdir():
            f.unlink()
    elif damage == "extra_class":
        write_image(root / "val" / "zebra" / "z.png")
    elif damage == "flat_val":
        for f in list((root / "val").rglob("*.*")):
            f.rename(root / "val" / f.name)
        for d in [d for d in (root / "val").iterdir() if d.is_dir()]:
            d.rmdir()
    else:
        (root / "train" / "cat" / "train_cat_0.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(DatasetError, match=message):
        datasets.load_features("imagenet", root, split, "all", resolution=8)


def make_vww_flat(root, per_class=30):
    for c, name in enumerate(images.VWW_LABELS):
        for i in range(per_class):
            write_image(root / name / f"COCO_{name}_{i:04d}.jpg", size=(24, 24), seed=c * 1000 + i)
    return root


def test_vww_flat_layout_hash_split(tmp_path):
    root = make_vww_flat(tmp_path / "vww")
    got = {s: datasets.load_features("vww", root, s, "all", resolution=8) for s in datasets.SPLITS}
    assert sum(len(y) for _, y in got.values()) == 60 and all(len(y) for _, y in got.values())
    assert set(got["train"][1].tolist()) == {0, 1}
    keys = {s: {p.tobytes() for p in x} for s, (x, _) in got.items()}
    assert not keys["train"] & keys["validation"] and not keys["train"] & keys["test"]
    expected_train = sum(images.bucket(f"{n}/COCO_{n}_{i:04d}.jpg", "split") < 80
                         for n in images.VWW_LABELS for i in range(30))
    assert len(got["train"][1]) == expected_train
    assert datasets.load_features("vww", root, "test", "all")[0].shape[1:] == (3, 96, 96)


def test_vww_train_val_layout(tmp_path):
    root = tmp_path / "vww"
    make_vww_flat(root / "train", per_class=5)
    make_vww_flat(root / "val", per_class=2)
    assert len(datasets.load_features("vww", root, "train", "all", resolution=8)[1]) == 10
    assert datasets.load_features("vww", root, "test", "all", resolution=8)[1].tolist() == [0, 0, 1, 1]
    (root / "val" / "person").rename(root / "val" / "people")
    with pytest.raises(DatasetError, match="val/person: missing class folder"):
        datasets.load_features("vww", root, "validation", "all", resolution=8)


def test_vww_malformed(tmp_path):
    write_image(tmp_path / "person" / "a.jpg")
    with pytest.raises(DatasetError, match="no person/ and non_person/ folders"):
        datasets.load_features("vww", tmp_path, "train", "all")


# ---------------------------------------------------------------- the built-in image sets

def nearest_centroid(x_train, y_train, x_test, y_test):
    centroids = np.stack([x_train[y_train == k].mean(0) for k in range(10)])
    return float((((x_test[:, None] - centroids[None]) ** 2).sum(-1).argmin(1) == y_test).mean())


def random_features(x, width=32, seed=0):
    """A frozen random 3x3 convolution, ReLU, 8x8 average pooling: a stand-in for pre-trained features."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((27, width)).astype(np.float32) / np.sqrt(27)
    b = 0.3 * rng.standard_normal(width).astype(np.float32)
    n, _, h, _ = x.shape
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([p[:, :, i:i + h, j:j + h] for i in range(3) for j in range(3)], 2).reshape(n, 27, h, h)
    f = np.maximum(np.einsum("nkhw,kf->nfhw", cols, w) + b[None, :, None, None], 0)
    return f.reshape(n, width, h // 8, 8, h // 8, 8).mean((3, 5)).reshape(n, -1)


def test_digits_splits_groups_and_determinism():
    sizes = {s: len(digits.split_indices(s, "all")) for s in datasets.SPLITS}
    assert sizes == {"train": 1258, "validation": 180, "test": 359} and sum(sizes.values()) == 1797
    every = np.concatenate([digits.split_indices(s, g) for s in datasets.SPLITS for g in ("pretrain", "device")])
    assert sorted(every.tolist()) == list(range(1797))                    # disjoint and complete
    x, y = datasets.load_features("digits", None, "validation", "all")
    assert x.shape == (180, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= -1.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x, datasets.load_features("digits", "/ignored", "validation", "all")[0])
    pre, _ = datasets.load_features("digits", None, "validation", "pretrain")
    assert np.array_equal(pre[:, 0], pre[:, 1]) and np.array_equal(pre[:, 0], pre[:, 2])  # grey, 3 channels
    assert pre.min() == -1.0                                                                 # black background
    assert datasets.load_features("digits", None, "test", "device", resolution=16)[0].shape[1:] == (3, 16, 16)


def test_shapes_deterministic_sizes_balanced():
    a = datasets.load_features("shapes", None, "test", "all", sizes=(10, 10, 50), seed=3)
    b = datasets.load_features("shapes", None, "test", "all", sizes=(10, 10, 50), seed=3)
    c = datasets.load_features("shapes", None, "test", "all", sizes=(10, 10, 50), seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0]) and a[1].tolist() == c[1].tolist() == list(range(10)) * 5
    pre = datasets.load_features("shapes", None, "test", "pretrain", sizes=(10, 10, 50), seed=3)
    dev = datasets.load_features("shapes", None, "test", "device", sizes=(10, 10, 50), seed=3)
    assert (len(pre[1]), len(dev[1])) == (30, 20) and np.bincount(dev[1]).tolist() == [2] * 10
    assert {p.tobytes() for p in a[0]} == {p.tobytes() for p in np.concatenate([pre[0], dev[0]])}
    x, _ = datasets.load_features("shapes", None, "train", "all", resolution=24, sizes=(20, 0, 0))
    assert x.shape == (20, 3, 24, 24) and x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("name,opts,features", [
    ("digits", {}, random_features),
    ("shapes", {"sizes": (1000, 200, 200)}, lambda x: x.reshape(len(x), -1)),
], ids=["digits", "shapes"])
def test_device_group_is_a_real_shift(name, opts, features):
    """Features fixed, classifier fit on pretrain vs on device, both scored on held-out device data:
    the device group is clearly another domain, and a classifier retrained on it recovers."""
    load = lambda s, g: datasets.load_features(name, None, s, g, **opts)  # noqa: E731
    x_pre, y_pre = load("train", "pretrain")
    x_dev, y_dev = load("train", "device")
    x_held, y_held = [np.concatenate(a) for a in zip(load("validation", "device"), load("test", "device"))]
    f_pre, f_dev, f_held = features(x_pre), features(x_dev), features(x_held)
    across = nearest_centroid(f_pre, y_pre, f_held, y_held)
    within = nearest_centroid(f_dev, y_dev, f_held, y_held)
    assert within > across + 0.15, (across, within)


# ---------------------------------------------------------------- Multilingual Spoken Words

WORDS = ["uno", "dos", "tres", "cuatro"]
SPEAKERS = ["spk_a", "spk_b", "spk_c", "spk_d", "spk_e", "spk_f"]


def tone(word, n):
    t = np.arange(48000) / 48000.0
    return (0.3 * np.sin(2 * np.pi * (300 + 150 * WORDS.index(word) + 10 * n) * t)).astype(np.float32)


def make_mswc(root, lang="es", per_word=6, fmt="opus", splits=True):
    """ROOT/<lang>/clips/<word>/common_voice_<lang>_<id>.<fmt> (+ <lang>_splits.csv); word w has
    per_word + w clips, so the most frequent words are the last ones."""
    rows = []
    for w, word in enumerate(WORDS):
        for n in range(per_word + w):
            name = f"common_voice_{lang}_{1000 * w + n}.{fmt}"
            path = root / lang / "clips" / word / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "opus":
                soundfile.write(str(path), tone(word, n), 48000, format="OGG", subtype="OPUS")
            else:
                write_wav(path, (tone(word, n)[::3] * 32767).astype("<i2"))
            rows.append(["TRAIN" if n % 3 == 0 or n % 3 == 1 else "DEV" if n % 2 else "TEST",
                         f"{word}/{name}", word, "True", SPEAKERS[n % len(SPEAKERS)], "FEMALE"])
    if splits:
        with open(root / lang / f"{lang}_splits.csv", "w", newline="") as f:
            csv.writer(f).writerows([["SET", "LINK", "WORD", "VALID", "SPEAKER", "GENDER"]] + rows)
    return root


@pytest.fixture
def mswc_root(tmp_path):
    return make_mswc(tmp_path / "mswc")


def test_mswc_opus_with_splits_csv(mswc_root):
    assert datasets.labels("mswc", mswc_root, num_words=2) == ["cuatro", "tres"]      # most clips first
    assert datasets.labels("mswc", mswc_root, words=["uno", "dos"], unknown=True) == ["_unknown_", "uno", "dos"]
    x, y = datasets.load_features("mswc", mswc_root, "train", "all", words="uno,dos")
    rows = list(csv.DictReader(open(mswc_root / "es" / "es_splits.csv")))
    train = [r for r in rows if r["SET"] == "TRAIN" and r["WORD"] in ("uno", "dos")]
    assert x.shape == (len(train), 1, 49, 10) and x.dtype == np.float32 and np.isfinite(x).all()
    assert y.tolist() == [("uno", "dos").index(r["WORD"]) for r in train]
    # the same front end as kws: the clip decoded, resampled to 16 kHz, then frontend.mfcc
    clip = mswc.read_audio(mswc_root / "es" / "clips" / train[0]["LINK"])
    np.testing.assert_allclose(x[0, 0], frontend.mfcc(clip), rtol=1e-5, atol=1e-5)
    assert clip.shape == (16000,) and 0.2 < np.abs(clip).max() < 0.4


def test_mswc_groups_are_speakers_and_unknown(mswc_root):
    device = {s for s in SPEAKERS if zlib.crc32(s.encode()) % 100 < 20}
    assert device and device != set(SPEAKERS)
    rows = list(csv.DictReader(open(mswc_root / "es" / "es_splits.csv")))
    for group in ("pretrain", "device"):
        _, examples, names = mswc.load_split(mswc_root, "train", group, words=["tres", "cuatro"])
        expected = [r for r in rows if r["SET"] == "TRAIN" and r["WORD"] in names
                    and (r["SPEAKER"] in device) == (group == "device")]
        assert [e.speaker for e in examples] == [r["SPEAKER"] for r in expected]
    _, examples, names = mswc.load_split(mswc_root, "train", "all", words=["tres", "cuatro"], unknown=True,
                                         unknown_percentage=50)
    known = [e for e in examples if e.label > 0]
    unknown = [e for e in examples if e.label == 0]
    assert names[0] == "_unknown_" and len(unknown) == -(-len(known) // 2)
    assert {e.path.split("/")[1] for e in unknown} <= {"uno", "dos"}
    again = mswc.load_split(mswc_root, "train", "all", words=["tres", "cuatro"], unknown=True, unknown_percentage=50)
    assert again[1] == examples


def test_mswc_wav_without_csv_hash_split(tmp_path):
    root = make_mswc(tmp_path / "m", lang="ca", fmt="wav", splits=False)
    got = {s: mswc.load_split(root / "ca", s, "all", words=WORDS)[1] for s in datasets.SPLITS}
    paths = {s: {e.path for e in ex} for s, ex in got.items() if ex}
    assert sum(len(p) for p in paths.values()) == sum(6 + w for w in range(4))
    assert not paths["train"] & paths.get("validation", set())
    assert all(images.bucket(p.split("/")[-1], "split") < 80 for p in paths["train"])
    x, y = datasets.load_features("mswc", root, "train", "device", language="ca", words=WORDS)
    assert len(x) == len(y) == len(mswc.load_split(root, "train", "device", "ca", WORDS)[1])


def test_mswc_features_cache(mswc_root, monkeypatch):
    x, _ = datasets.load_features("mswc", mswc_root, "validation", "all", words=WORDS)
    assert len(list((mswc_root / "es" / ".cache").glob("mfcc_*.npz"))) == 1
    monkeypatch.setattr(mswc, "mfcc_batch", lambda *a, **k: pytest.fail("cache not used"))
    np.testing.assert_array_equal(datasets.load_features("mswc", mswc_root, "validation", "all", words=WORDS)[0], x)


def test_mswc_language_choice(tmp_path):
    make_mswc(tmp_path, lang="es", per_word=3)
    make_mswc(tmp_path, lang="eu", per_word=3, splits=False)
    with pytest.raises(DatasetError, match="languages es, eu; pass language="):
        datasets.load_features("mswc", tmp_path, "train", "all")
    assert len(datasets.load_features("mswc", tmp_path, "train", "all", language="eu")[1]) > 0
    assert len(datasets.load_features("mswc", tmp_path / "es", "train", "all")[1]) > 0


@pytest.mark.parametrize("damage,message", [
    ("no_root", "nope: not a folder; expected the Multilingual Spoken Words layout"),
    ("no_language", "fr/clips: missing"),
    ("no_word", "es_splits.csv: no clips for word\\(s\\) cinco"),
    ("bad_opus", "common_voice_es_0.opus: cannot read audio"),
    ("csv_names_missing_file", "es_splits.csv: 'uno/common_voice_es_1.opus' is not a file"),
    ("bad_set", "es_splits.csv:2: SET 'HOLDOUT'"),
    ("bad_header", "es_splits.csv: no column\\(s\\) LINK"),
    ("empty_clips", "clips: no audio files in word folders"),
])
def test_mswc_errors(tmp_path, damage, message):
    root = make_mswc(tmp_path / "m", per_word=2)
    lang = root / "es"
    opts = {"words": ["uno", "dos"]}
    csv_path = lang / "es_splits.csv"
    if damage == "no_root":
        root = tmp_path / "nope"
    elif damage == "no_language":
        opts["language"] = "fr"
    elif damage == "no_word":
        opts["words"] = ["uno", "cinco"]
    elif damage == "bad_opus":
        (lang / "clips" / "uno" / "common_voice_es_0.opus").write_bytes(b"OggS but not really")
    elif damage == "csv_names_missing_file":
        (lang / "clips" / "uno" / "common_voice_es_1.opus").unlink()
    elif damage == "bad_set":
        csv_path.write_text(csv_path.read_text().replace("TRAIN", "HOLDOUT", 1))
    elif damage == "bad_header":
        csv_path.write_text(csv_path.read_text().replace("LINK", "PATH", 1))
    else:
        csv_path.unlink()
        for f in (lang / "clips").rglob("*.opus"):
            f.unlink()
    with pytest.raises(DatasetError, match=message):
        datasets.load_features("mswc", root, "train", "all", **opts)
