"""An MCUNet-style network (Lin et al., "MCUNet: Tiny Deep Learning on IoT Devices", NeurIPS 2020):
a MobileNetV2-like backbone whose blocks each have their own depthwise kernel (3/5/7) and
expansion ratio (3/4/6), sized so that int8 inference fits the STM32F746 (320 KB SRAM).

This is not a searched MCUNet model (those come out of TinyNAS with their weights); it is a
hand-made member of the same design space, listed in the config below so it can be changed.
The early, high-resolution blocks have small expansions (the inverted bottleneck is what
sets the activation peak), later blocks use larger kernels and expansions (cheap at low
resolution). No 1x1 head: the classifier reads the last block's 160 channels, which keeps
the always-trained classifier small. Layer names: see model_prep.models.blocks.

At its default 96x96x3 input and 1000 classes: 0.72 M parameters (0.56 M without the
classifier), 15.5 M MACs, and an int8 activation arena of 115,296 bytes (113 KiB): the peak of
model_prep.plan.plan_arena over the exported .tflite (`Baked(tflite).plan.arena_bytes`), every
tensor unshared while live and the stride-2 layers' PAD copies included. The peak is the PAD
before block 1's stride-2 depthwise (48x48x24 and its 50x50x24 padded copy). For comparison,
MobileNetV2-w0.35 at 128x128 needs 405,696 bytes and ProxylessNAS-w0.3 at 128x128 209,280.
"""
from dataclasses import dataclass, asdict

from model_prep.models.blocks import InvertedResidualNet, make_divisible, specs_from_lists

@dataclass(frozen=True)
class MCUNetConfig:
    num_classes: int = 1000     # classifier outputs
    width: float = 1.0          # width multiplier on every listed channel count
    resolution: int = 96        # input height = width it is trained, calibrated and planned at
    in_channels: int = 3        # 3 for RGB, 1 for grey images
    reduce_strides: int = 0     # the first N stride-2 layers (stem first) use stride 1: 1-2 for 32x32
    stem_channels: int = 16     # 3x3 stride-2 stem
    # One entry per block: depthwise kernel, expansion ratio, output channels, stride.
    # Stages (at 96x96): 8 @48 | 16 @24 | 24 @12 | 40, 48 @6 | 96, 160 @3.
    kernel_sizes: tuple = (3, 3, 5, 7, 3, 5, 7, 5, 3, 5, 3, 7, 5, 3, 7)
    expand_ratios: tuple = (1, 3, 4, 4, 4, 3, 6, 4, 4, 6, 4, 6, 6, 4, 6)
    channels: tuple = (8, 16, 16, 24, 24, 24, 40, 40, 40, 48, 48, 96, 96, 96, 160)
    strides: tuple = (2, 1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 2, 1, 1, 1)  # stem first
    head_channels: int = 0      # 1x1 head before pooling; 0: none
    dropout: float = 0.2        # before the classifier (training only)

    def to_dict(self):
        return asdict(self)


class MCUNet(InvertedResidualNet):
    def __init__(self, cfg: MCUNetConfig = MCUNetConfig()):
        stem_stride, specs = specs_from_lists(cfg.kernel_sizes, cfg.expand_ratios, cfg.channels, cfg.strides,
                                              cfg.width, cfg.reduce_strides)
        head = make_divisible(cfg.head_channels * cfg.width) if cfg.head_channels else 0
        super().__init__(cfg.in_channels, make_divisible(cfg.stem_channels * cfg.width), specs, head,
                         cfg.num_classes, cfg.dropout, stem_stride)
        self.cfg = cfg
