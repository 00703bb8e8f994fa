"""Pre-train a model in float on the pre-training group of a dataset, and save a checkpoint.

    python -m model_prep.pretrain --dataset kws --data build/kws/corpus --out build/kws/dscnn.pt
    python -m model_prep.pretrain --dataset digits --model mcunet --resolution 32 \\
        --model-opt reduce_strides=2 --epochs 40 --out build/digits/mcunet.pt
    python -m model_prep.pretrain --dataset cifar10 --data data/cifar10 --model mobilenetv2 \\
        --width 0.35 --resolution 32 --model-opt reduce_strides=2 --out build/cifar10/mbv2.pt

Options are `--key value` (or `--key=value`) overrides of TrainConfig below; unknown keys are an error.
`--model-opt key=value` (repeatable) sets a field of the model's config (model_prep/models/),
`--data-opt key=value` an option of the dataset's loader (model_prep.data.datasets.options);
an unknown key is an error; tuples are comma-separated (`--model-opt kernel_sizes=3,5,7`).
The model's num_classes, in_channels and resolution (input_hw for DS-CNN) come from the data
unless set there. `--data` may be left out for built-in datasets (digits, shapes).
The checkpoint records the model config, the dataset and its options (--resolution and
--data-opt), labels and front end, so export needs nothing else.
"""
import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from model_prep import checkpoint, torch_threads
from model_prep.data import datasets
from model_prep.models.blocks import count_macs

AUGMENT_MODES = ("none", "crop", "crop+flip")
AUGMENT_AUTO = {"digits": "crop"}   # a mirrored digit is another symbol; other images get crop+flip


@dataclass
class TrainConfig:
    dataset: str = "kws"          # dataset name (model_prep.data.datasets.DATASETS)
    model: str = "dscnn"          # model name (model_prep.checkpoint.MODELS)
    epochs: int = 30              # passes over the pre-training split
    batch_size: int = 64
    lr: float = 3e-3              # AdamW peak learning rate (cosine decay to 0)
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2              # torch CPU threads
    resolution: int = 0           # image datasets: input height = width (0: the dataset's default)
    width: float = 0.0            # width multiplier of the model (0: the model's default)
    augment: str = "auto"         # none | crop | crop+flip; auto: none for audio features, crop for
                                  # digits, crop+flip for other images


def evaluate(model, x, y, batch=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].contiguous(memory_format=torch.channels_last)
            correct += (model(xb).argmax(1) == y[i:i + batch]).sum().item()
    return correct / max(1, len(x))


def augment_mode(cfg):
    if cfg.augment != "auto":
        if cfg.augment not in AUGMENT_MODES:
            raise ValueError(f"--augment {cfg.augment}: expected auto or one of {', '.join(AUGMENT_MODES)}")
        return cfg.augment
    if datasets.info(cfg.dataset).kind != "image":
        return "none"
    return AUGMENT_AUTO.get(cfg.dataset, "crop+flip")


def augment(x, mode, gen):
    """Random shifts of up to 1/8 of the side (zero padding) and, with flip, horizontal mirroring."""
    if mode == "none":
        return x
    n, _, h, w = x.shape
    p = max(1, h // 8)
    padded = nn.functional.pad(x, (p, p, p, p))
    dy, dx = torch.randint(0, 2 * p + 1, (2, n), generator=gen)
    x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if mode == "crop+flip":
        flip = torch.rand(n, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x


def model_config(cfg, model_opts, x, num_classes):
    """The model's config fields: taken from the data, then --width, then --model-opt."""
    fields = {f.name for f in dataclasses.fields(checkpoint.config_class(cfg.model))}
    config = {"num_classes": num_classes}
    if "in_channels" in fields:
        config["in_channels"] = int(x.shape[1])
    if "resolution" in fields and x.shape[2] == x.shape[3]:
        config["resolution"] = int(x.shape[2])
    if "input_hw" in fields:
        config["input_hw"] = tuple(int(s) for s in x.shape[2:])
    if cfg.width:
        config["width"] = cfg.width
    config.update(model_opts)
    return config


def train(cfg, data_root, out, model_opts=None, data_opts=None):
    torch.manual_seed(cfg.seed)
    torch_threads.set_threads(cfg.threads)
    options = dict(data_opts or {})
    if cfg.resolution:
        options["resolution"] = cfg.resolution
    def load(split, group):
        return [torch.from_numpy(a) for a in datasets.load_features(cfg.dataset, data_root, split, group, **options)]
    x_tr, y_tr = load("train", "pretrain")
    x_va, y_va = load("validation", "pretrain")
    labels = datasets.labels(cfg.dataset, data_root, **options)
    model = checkpoint.build(cfg.model, model_config(cfg, model_opts or {}, x_tr, len(labels)))
    mode = augment_mode(cfg)
    params = sum(p.numel() for p in model.parameters())
    macs = count_macs(model, x_tr[:1])
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((len(x_tr) + cfg.batch_size - 1) // cfg.batch_size)
    # OneCycleLR needs a warm-up of at least two steps: tiny (smoke-test) runs stretch it
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 5),
                                                pct_start=max(0.1, 2.5 / max(steps, 5)))
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
    t0 = time.time()
    print(f"pre-training {cfg.model} ({params / 1e6:.2f} M params, {macs / 1e6:.1f} M MACs) on {cfg.dataset} "
          f"{tuple(x_tr.shape[1:])}: {len(x_tr)} train / {len(x_va)} validation samples, augment {mode}")
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for i in range(0, len(x_tr), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            xb = augment(x_tr[idx], mode, aug_gen).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(xb), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if epoch % 5 == 4 or epoch == cfg.epochs - 1:
            print(f"  epoch {epoch + 1:3d}/{cfg.epochs}  loss {total / len(x_tr):.4f}  "
                  f"val acc {evaluate(model, x_va, y_va):.4f}  ({time.time() - t0:.0f} s)")
    model = model.to(memory_format=torch.contiguous_format).eval()
    metrics = {"val_acc": evaluate(model, x_va, y_va), "train_samples": len(x_tr), "seconds": time.time() - t0,
               "params": params, "macs": macs, "train_config": dataclasses.asdict(cfg)}
    checkpoint.save(out, model, cfg.model, cfg.dataset, labels, datasets.frontend_config(cfg.dataset), metrics,
                    dataset_options=options)
    print(f"wrote {out}  (validation accuracy {metrics['val_acc']:.4f})")
    return metrics


def _parse(text, default, what):
    """A command-line string as the type of `default` (bool, int, float, str, or a tuple of those)."""
    if not isinstance(text, str):   # already a value (called from Python)
        text = ",".join(map(str, text)) if isinstance(text, (tuple, list)) else str(text)
    try:
        if isinstance(default, bool):
            if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("1", "true", "yes")
        if isinstance(default, tuple):
            item = default[0] if default else 0
            return tuple(_parse(t, item, what) for t in text.split(",") if t)
        return type(default)(text)
    except ValueError:
        raise SystemExit(f"pretrain: {what}: cannot read '{text}' as {type(default).__name__}") from None


LOWEST = {   # the smallest value each number of TrainConfig takes (and whether it may equal it)
    "epochs": (1, True), "batch_size": (1, True), "lr": (0, False), "weight_decay": (0, True), "threads": (1, True),
    "resolution": (0, True), "width": (0, True)}


def parse_config(pairs):
    cfg = TrainConfig()
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in pairs:
        if key not in fields:
            raise SystemExit(f"pretrain: unknown option --{key.replace('_', '-')}; known: "
                             f"{', '.join('--' + k.replace('_', '-') for k in fields)}")
        v = _parse(value, getattr(cfg, key), f"--{key}")
        low, equal = LOWEST.get(key, (None, True))
        if low is not None and (v < low or v == low and not equal):
            what = f"a number {'>=' if equal else '>'} {low}"
            what += " (0: the default)" if key in ("resolution", "width") else ""
            raise SystemExit(f"pretrain: --{key.replace('_', '-')} {value}: expected {what}")
        setattr(cfg, key, v)
    return cfg


def parse_opts(items, defaults, flag, owner):
    """{key: value} from `key=value` strings, typed after `defaults` (str where the default is None)."""
    opts = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"pretrain: {flag} {item}: expected key=value")
        if key not in defaults:
            raise SystemExit(f"pretrain: {owner} has no option '{key}'; known: {', '.join(defaults) or 'none'}")
        default = defaults[key]
        if default is None:
            default = ("",) if "," in value else ""
        opts[key] = _parse(value, default, f"{flag} {key}")
    return opts


def overrides_help():
    """The --key value overrides of TrainConfig, with their defaults (for --help)."""
    items = [f"--{f.name.replace('_', '-')} {f.default}" for f in dataclasses.fields(TrainConfig)]
    return "training config, each as --key value (defaults): " + ", ".join(items)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False, epilog=overrides_help())
    ap.add_argument("--data", type=Path, default=None, help="dataset root (not needed for built-in datasets)")
    ap.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    ap.add_argument("--model-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="a field of the model's config (repeatable)")
    ap.add_argument("--data-opt", action="append", default=[], metavar="KEY=VALUE",
                    help="an option of the dataset's loader, recorded in the checkpoint (repeatable)")
    args, rest = ap.parse_known_args(argv)
    pairs, i = [], 0
    while i < len(rest):   # --key value or --key=value
        key, eq, value = rest[i].partition("=")
        if not key.startswith("--") or (not eq and i + 1 >= len(rest)):
            raise SystemExit(f"pretrain: expected --key value pairs, got {' '.join(rest[i:])}")
        if not eq:
            i, value = i + 1, rest[i + 1]
        pairs.append((key[2:].replace("-", "_"), value))
        i += 1
    cfg = parse_config(pairs)
    try:
        model_fields = {f.name: f.default for f in dataclasses.fields(checkpoint.config_class(cfg.model))}
        data_options = datasets.options(cfg.dataset)
    except ValueError as e:
        raise SystemExit(f"pretrain: {e}") from None
    model_opts = parse_opts(args.model_opt, model_fields, "--model-opt", f"model '{cfg.model}'")
    data_opts = parse_opts(args.data_opt, data_options, "--data-opt", f"dataset '{cfg.dataset}'")
    try:
        train(cfg, args.data, args.out, model_opts, data_opts)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"pretrain: {e}")


if __name__ == "__main__":
    main()
