"""ProxylessNAS-Mobile (Cai, Zhu and Han, "ProxylessNAS: Direct Neural Architecture Search on
Target Task and Hardware", ICLR 2019), at width 0.3 as in the on-device training paper.

The searched mobile architecture (Figure 4 of the paper; block list as in the public
re-implementations of `proxyless_mobile`, 4.08 M params at width 1): a 32-channel 3x3
stride-2 stem, a 3x3 expand-1 block of 16, then inverted residual blocks with per-block
kernel sizes 3/5/7 and expansion ratios 3/6 over stages of 32, 40, 80, 96, 192 and 320
channels (the searched "zero" blocks are left out), a 1x1 head of 1280 and a linear
classifier. ReLU6 everywhere but the projections. Channels are width x listed, rounded to
multiples of 8; the stem and head follow the reference rules (the head keeps 1280 below
width 1). Layer names: see model_prep.models.blocks.

    width 0.3, 128x128, 1000 classes: 1.70 M params (0.41 M without the classifier), 21.2 M MACs,
    int8 activation arena (model_prep.plan) 209,280 bytes; width 1.0 at 224x224: 4.08 M params, 320 M MACs.
"""
from dataclasses import dataclass, asdict

from model_prep.models.blocks import InvertedResidualNet, make_divisible, specs_from_lists


@dataclass(frozen=True)
class ProxylessConfig:
    num_classes: int = 1000     # classifier outputs
    width: float = 0.3          # width multiplier on every listed channel count
    resolution: int = 128       # input height = width it is trained, calibrated and planned at
    in_channels: int = 3        # 3 for RGB, 1 for grey images
    reduce_strides: int = 0     # the first N stride-2 layers (stem first) use stride 1: 1-2 for 32x32
    stem_channels: int = 32     # 3x3 stride-2 stem (before width scaling)
    # One entry per block: depthwise kernel, expansion ratio, output channels (before width
    # scaling), stride. Stages of 16 | 32 | 40 | 80, 96 | 192, 320 channels.
    kernel_sizes: tuple = (3, 5, 3, 7, 3, 5, 5, 7, 5, 5, 5, 5, 5, 5, 5, 7, 7, 7, 7, 7)
    expand_ratios: tuple = (1, 3, 3, 3, 3, 3, 3, 6, 3, 3, 3, 6, 3, 3, 3, 6, 6, 3, 3, 6)
    channels: tuple = (16, 32, 32, 40, 40, 40, 40, 80, 80, 80, 80, 96, 96, 96, 96, 192, 192, 192, 192, 320)
    strides: tuple = (2, 1, 2, 1, 2, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1)  # stem first
    head_channels: int = 1280   # 1x1 head before pooling, times max(1, width); 0: no head
    dropout: float = 0.2        # before the classifier (training only)

    def to_dict(self):
        return asdict(self)


class ProxylessNAS(InvertedResidualNet):
    def __init__(self, cfg: ProxylessConfig = ProxylessConfig()):
        stem_stride, specs = specs_from_lists(cfg.kernel_sizes, cfg.expand_ratios, cfg.channels, cfg.strides,
                                              cfg.width, cfg.reduce_strides)
        head = make_divisible(cfg.head_channels * max(1.0, cfg.width)) if cfg.head_channels else 0
        super().__init__(cfg.in_channels, make_divisible(cfg.stem_channels * cfg.width), specs, head,
                         cfg.num_classes, cfg.dropout, stem_stride)
        self.cfg = cfg
