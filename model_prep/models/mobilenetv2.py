"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018).

The reference network at a width multiplier: a 3x3 stride-2 stem of 32 channels, 17 inverted
residual blocks in 7 stages (expansion t, channels c, repeats n, first stride s below), a 1x1
head of 1280 channels, global average pooling and a linear classifier. ReLU6 after every
conv but the projection; channels are width x c rounded to multiples of 8 (the reference's
rule, model_prep.models.blocks.make_divisible); the head keeps 1280 below width 1.

Defaults: width 0.35 (the MobileNetV2 of the on-device training paper, Lin et al. 2022)
at 128x128. For 32x32 inputs set `reduce_strides` to 1 or 2 (the stem and then the
first stage's stride-2 become stride 1). Layer names: see model_prep.models.blocks.

    width 0.35, 128x128, 1000 classes: 1.68 M params (0.40 M without the classifier), 20.2 M MACs,
    int8 activation arena (model_prep.plan) 405,696 bytes; width 1.0 at 224x224: 3.50 M params, 301 M MACs.
"""
from dataclasses import dataclass, asdict

from model_prep.models.blocks import InvertedResidualNet, make_divisible, specs_from_lists

# (expansion t, channels c, repeats n, first stride s), Table 2 of the paper (n: the config's repeats).
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


@dataclass(frozen=True)
class MobileNetV2Config:
    num_classes: int = 1000     # classifier outputs
    width: float = 0.35         # width multiplier (the paper's 0.35, 0.5, 0.75, 1.0, ...)
    resolution: int = 128       # input height = width (the network is fully convolutional; this is
                                # the size it is trained, calibrated and planned at)
    in_channels: int = 3        # 3 for RGB, 1 for grey images
    reduce_strides: int = 0     # the first N stride-2 layers (stem first) use stride 1: 1-2 for 32x32
    repeats: tuple = (1, 2, 3, 4, 3, 3, 1)  # blocks per stage (the paper's n); fewer for tiny variants
    head_channels: int = 1280   # 1x1 head before pooling, times max(1, width); 0: no head
    dropout: float = 0.2        # before the classifier (training only)

    def to_dict(self):
        return asdict(self)


def block_lists(repeats):
    """Per-block kernel sizes, expansion ratios, channels, strides (with the stem's stride first)."""
    if len(repeats) != len(STAGES) or min(repeats) < 1:
        raise ValueError(f"repeats {tuple(repeats)}: expected {len(STAGES)} counts of at least 1")
    kernels, expands, channels, strides = [], [], [], [2]
    for (t, c, _, s), n in zip(STAGES, repeats):
        for i in range(n):
            kernels.append(3)
            expands.append(t)
            channels.append(c)
            strides.append(s if i == 0 else 1)
    return kernels, expands, channels, strides


class MobileNetV2(InvertedResidualNet):
    def __init__(self, cfg: MobileNetV2Config = MobileNetV2Config()):
        stem_stride, specs = specs_from_lists(*block_lists(cfg.repeats), cfg.width, cfg.reduce_strides)
        head = make_divisible(cfg.head_channels * max(1.0, cfg.width)) if cfg.head_channels else 0
        super().__init__(cfg.in_channels, make_divisible(32 * cfg.width), specs, head, cfg.num_classes,
                         cfg.dropout, stem_stride)
        self.cfg = cfg
