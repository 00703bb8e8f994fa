"""Building blocks of the MobileNetV2-family networks (MobileNetV2, MCUNet-style, ProxylessNAS).

All three are one network, `InvertedResidualNet`: a 3x3 stride-2 stem, a list of inverted
residual blocks (Sandler et al., "MobileNetV2", 2018), an optional 1x1 head, global average
pooling and a linear classifier. Module names become the layer names of the exported .tflite:

    stem, blocks.{i}.pw1 (1x1 expand; absent at expand ratio 1), blocks.{i}.dw (k x k depthwise),
    blocks.{i}.pw2 (1x1 linear projection), head, classifier

and a block whose input and output agree in shape (stride 1, same channels) adds its input to
its output (`blocks.{i}.add` in the .tflite). Keep these names stable: schemes refer to them.
"""
from dataclasses import dataclass

import torch
from torch import nn


def make_divisible(v, divisor=8):
    """Round a channel count to a multiple of `divisor`, never below 90% of v (the MobileNetV2 reference rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class ConvBN(nn.Sequential):
    """Conv2d (no bias) + BatchNorm + optional ReLU6. Index 0 is the conv (export drops the '.0')."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU6())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> k x k depthwise (ReLU6) -> 1x1 linear project, + input when shapes agree."""

    def __init__(self, cin, cout, kernel, stride, expand):
        super().__init__()
        mid = cin * expand
        self.pw1 = ConvBN(cin, mid, 1) if expand != 1 else None
        self.dw = ConvBN(mid, mid, kernel, stride, groups=mid)
        self.pw2 = ConvBN(mid, cout, 1, act=False)
        self.use_res = stride == 1 and cin == cout   # export names this block's ADD `blocks.{i}.add`

    def forward(self, x):
        y = self.pw2(self.dw(self.pw1(x) if self.pw1 is not None else x))
        return x + y if self.use_res else y


@dataclass(frozen=True)
class BlockSpec:
    kernel: int      # depthwise kernel size
    expand: int      # expansion ratio of pw1 (1: no pw1)
    channels: int    # output channels (after width scaling)
    stride: int


class InvertedResidualNet(nn.Module):
    """stem -> blocks -> [head] -> global average pool -> [dropout] -> classifier."""

    def __init__(self, in_channels, stem_channels, specs, head_channels, num_classes, dropout=0.0,
                 stem_stride=2):
        super().__init__()
        self.stem = ConvBN(in_channels, stem_channels, 3, stem_stride)
        blocks, c = [], stem_channels
        for s in specs:
            blocks.append(InvertedResidual(c, s.channels, s.kernel, s.stride, s.expand))
            c = s.channels
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBN(c, head_channels, 1) if head_channels else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(head_channels or c, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        if self.head is not None:
            x = self.head(x)
        # adaptive pooling exports as one MEAN over H, W of the NHWC tensor (no TRANSPOSE).
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(self.dropout(x))


def drop_strides(strides, n):
    """The stride list with its first n stride-2 entries set to 1 (for small inputs, e.g. 32x32)."""
    out = []
    for s in strides:
        if s == 2 and n > 0:
            s, n = 1, n - 1
        out.append(s)
    return out


def specs_from_lists(kernels, expands, channels, strides, width, reduce_strides=0):
    """BlockSpecs from per-block lists; the first stride belongs to the stem."""
    lens = {len(kernels), len(expands), len(channels), len(strides) - 1}
    if len(lens) != 1:
        raise ValueError(f"per-block lists differ in length: kernel_sizes {len(kernels)}, expand_ratios "
                         f"{len(expands)}, channels {len(channels)}, strides {len(strides)} (stem + blocks)")
    strides = drop_strides(strides, reduce_strides)
    specs = [BlockSpec(int(k), int(e), make_divisible(c * width), int(s))
             for k, e, c, s in zip(kernels, expands, channels, strides[1:])]
    return strides[0], specs


def count_macs(model, example):
    """Multiply-accumulates of one forward pass over `example` (batch 1) in Conv2d and Linear layers."""
    total = 0

    def hook(m, i, o):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += o[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        else:
            total += o[0].numel() * m.in_features
    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    with torch.no_grad():
        model.eval()(example[:1])
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total
