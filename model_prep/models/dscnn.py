"""DS-CNN for keyword spotting, as in MLPerf Tiny (Zhang et al., "Hello Edge", 2017).

Input: one 49x10 MFCC map (N, 1, 49, 10). A 10x4 stride-2 convolution, then `blocks`
depthwise-separable blocks (3x3 depthwise + 1x1 pointwise, each with batch norm and ReLU),
global average pooling and a linear classifier. Module names become the layer names in the
exported .tflite (`conv1`, `blocks.0.dw`, `blocks.0.pw`, ..., `classifier`), so keep them stable.
"""
from dataclasses import dataclass, asdict

from torch import nn


@dataclass(frozen=True)
class DSCNNConfig:
    num_classes: int = 12        # MLPerf Tiny KWS: 10 words + silence + unknown
    filters: int = 64            # channels of every layer (MLPerf Tiny: 64)
    blocks: int = 4              # depthwise-separable blocks after the first conv
    input_hw: tuple = (49, 10)   # MFCC frames x coefficients
    dropout: float = 0.2         # before the classifier (training only)

    def to_dict(self):
        return asdict(self)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, kernel, stride=1, padding=0, groups=1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )


class DSBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.dw = ConvBNReLU(channels, channels, 3, padding=1, groups=channels)
        self.pw = ConvBNReLU(channels, channels, 1)

    def forward(self, x):
        return self.pw(self.dw(x))


class DSCNN(nn.Module):
    def __init__(self, cfg: DSCNNConfig = DSCNNConfig()):
        super().__init__()
        self.cfg = cfg
        # 'same'-style output: 49x10 -> 25x5 with a 10x4 kernel at stride 2.
        self.conv1 = ConvBNReLU(1, cfg.filters, (10, 4), stride=2, padding=(5, 1))
        self.blocks = nn.Sequential(*[DSBlock(cfg.filters) for _ in range(cfg.blocks)])
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.filters, cfg.num_classes)

    def forward(self, x):
        x = self.blocks(self.conv1(x))
        # adaptive pooling exports as one MEAN over H, W of the NHWC tensor (x.mean(dim=(2, 3))
        # would add a TRANSPOSE to NCHW first).
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(self.dropout(x))
