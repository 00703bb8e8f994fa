"""Pre-train a model in float on the pre-training group of a dataset, and save a checkpoint.

    python -m model_prep.pretrain --dataset kws --data build/kws/corpus --out build/kws/dscnn.pt

Options are `--key value` overrides of TrainConfig below; unknown keys are an error.
The checkpoint records the model config, labels and front end, so export needs nothing else.
"""
import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from model_prep import checkpoint
from model_prep.data import datasets


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


def evaluate(model, x, y, batch=256):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / max(1, len(x))


def train(cfg, data_root, out):
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    load = lambda split, group: [torch.from_numpy(a) for a in datasets.load_features(cfg.dataset, data_root, split, group)]
    x_tr, y_tr = load("train", "pretrain")
    x_va, y_va = load("validation", "pretrain")
    labels = datasets.labels(cfg.dataset)
    model = checkpoint.build(cfg.model, {"num_classes": len(labels)})
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((len(x_tr) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.time()
    print(f"pre-training {cfg.model} on {cfg.dataset}: {len(x_tr)} train / {len(x_va)} validation samples")
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for i in range(0, len(x_tr), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            loss = loss_fn(model(x_tr[idx].contiguous(memory_format=torch.channels_last)), y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if epoch % 5 == 4 or epoch == cfg.epochs - 1:
            print(f"  epoch {epoch + 1:3d}/{cfg.epochs}  loss {total / len(x_tr):.4f}  "
                  f"val acc {evaluate(model, x_va, y_va):.4f}  ({time.time() - t0:.0f} s)")
    model = model.to(memory_format=torch.contiguous_format).eval()
    metrics = {"val_acc": evaluate(model, x_va, y_va), "train_samples": len(x_tr), "seconds": time.time() - t0}
    checkpoint.save(out, model, cfg.model, cfg.dataset, labels, datasets.frontend_config(cfg.dataset), metrics)
    print(f"wrote {out}  (validation accuracy {metrics['val_acc']:.4f})")
    return metrics


def parse_config(pairs):
    cfg = TrainConfig()
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in pairs:
        if key not in fields:
            raise SystemExit(f"pretrain: unknown option --{key}; known: {', '.join('--' + k for k in fields)}")
        setattr(cfg, key, type(getattr(cfg, key))(value))
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="dataset root")
    ap.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    args, rest = ap.parse_known_args(argv)
    pairs = []
    for i in range(0, len(rest), 2):
        if not rest[i].startswith("--") or i + 1 >= len(rest):
            raise SystemExit(f"pretrain: expected --key value pairs, got {' '.join(rest[i:])}")
        pairs.append((rest[i][2:].replace("-", "_"), rest[i + 1]))
    cfg = parse_config(pairs)
    try:
        train(cfg, args.data, args.out)
    except ValueError as e:
        sys.exit(f"pretrain: {e}")


if __name__ == "__main__":
    main()
