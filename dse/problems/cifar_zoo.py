"""The CIFAR-sized networks reliability studies compare on (no weights): VGG with batch norm,
MobileNetV2, DenseNet-BC, GoogLeNet and a ResNet-18, all for 32x32 inputs.

Each is the paper's network with the changes CIFAR training uses: a 3x3 stride-1 stem instead of the
ImageNet stem (no early 4x downsampling, which would leave 8x8 feature maps after the stem), and a
global average pool before the classifier. Every builder takes ``num_classes`` (10 / 100 / 43 for
the CIFAR-10, CIFAR-100 and GTSRB heads) and ``in_channels``. Pools use ``ceil_mode`` and end in an
adaptive pool, so the same network also runs on the smaller inputs the tests use: on 32x32 (even
sizes at every pool) that changes nothing.

Every MAC sits in an ``nn.Conv2d`` or ``nn.Linear`` the profiler sees, and nothing in ``forward``
depends on values, so ``torch.fx`` traces each one (the fast fault-injection engine needs that).
"""

from __future__ import annotations

import torch
from torch import nn

from dse.problems.models import BasicBlock


def _conv_bn(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1,
             act: type[nn.Module] = nn.ReLU) -> list[nn.Module]:
    """Conv (no bias: batch norm follows), batch norm, activation."""
    return [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch), act()]


class _Classifier(nn.Sequential):
    """Global average pool, flatten, one Linear."""

    def __init__(self, features: int, num_classes: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(features, num_classes))


class _Net(nn.Module):
    """``features`` then ``classifier``: the shape every network here has."""

    features: nn.Module
    classifier: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# -- VGG (Simonyan & Zisserman 2015) with batch norm ------------------------------------------
_VGG = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


class VGG(_Net):
    """Five stages of 3x3 conv-BN-ReLU (64, 128, 256, 512, 512 channels) each ending in a 2x2 max
    pool; the CIFAR head is one Linear on the 512 features."""

    def __init__(self, depth: int = 16, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if depth not in _VGG:
            raise ValueError(f"VGG depth must be one of {sorted(_VGG)}, got {depth}")
        layers: list[nn.Module] = []
        ch = in_channels
        for width, convs in zip((64, 128, 256, 512, 512), _VGG[depth], strict=True):
            for _ in range(convs):
                layers += _conv_bn(ch, width)
                ch = width
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.classifier = _Classifier(512, num_classes)


def vgg_bn(depth: int = 16, num_classes: int = 10, in_channels: int = 3) -> VGG:
    return VGG(depth, num_classes, in_channels)


# -- MobileNetV2 (Sandler et al. 2018) --------------------------------------------------------
# (expansion t, output channels c, repeats n, first stride s): the paper's table 2 with the CIFAR
# change of stride 1 in the stem and the second stage (32x32 -> 4x4 at the last stage).
_MOBILENET = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
              (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise, linear 1x1 projection; identity shortcut when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_ch * expansion
        layers = _conv_bn(in_ch, hidden, 1, act=nn.ReLU6) if expansion != 1 else []
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6)
        layers += [nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class MobileNetV2(_Net):
    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        layers = _conv_bn(in_channels, 32, act=nn.ReLU6)
        ch = 32
        for t, c, n, s in _MOBILENET:
            for i in range(n):
                layers.append(InvertedResidual(ch, c, s if i == 0 else 1, t))
                ch = c
        layers += _conv_bn(ch, 1280, 1, act=nn.ReLU6)
        self.features = nn.Sequential(*layers)
        self.classifier = _Classifier(1280, num_classes)


def mobilenet_v2(num_classes: int = 10, in_channels: int = 3) -> MobileNetV2:
    return MobileNetV2(num_classes, in_channels)


# -- DenseNet-BC (Huang et al. 2017) ----------------------------------------------------------
_DENSENET = {121: (32, (6, 12, 24, 16)), 161: (48, (6, 12, 36, 24))}


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv to 4k channels, BN-ReLU-3x3 conv to k; its output is concatenated on."""

    def __init__(self, in_ch: int, growth: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_ch), nn.ReLU(), nn.Conv2d(in_ch, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth), nn.ReLU(),
            nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class DenseNet(_Net):
    """Stem 3x3 conv to 2k channels; dense blocks joined by transitions (BN-ReLU-1x1 conv halving
    the channels, 2x2 average pool); BN-ReLU; the classifier."""

    def __init__(self, depth: int = 121, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if depth not in _DENSENET:
            raise ValueError(f"DenseNet depth must be one of {sorted(_DENSENET)}, got {depth}")
        growth, blocks = _DENSENET[depth]
        ch = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ch, 3, padding=1, bias=False)]
        for b, count in enumerate(blocks):
            for _ in range(count):
                layers.append(DenseLayer(ch, growth))
                ch += growth
            if b < len(blocks) - 1:
                layers += [nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, ch // 2, 1, bias=False),
                           nn.AvgPool2d(2, ceil_mode=True)]
                ch //= 2
        layers += [nn.BatchNorm2d(ch), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = _Classifier(ch, num_classes)


def densenet(depth: int = 121, num_classes: int = 10, in_channels: int = 3) -> DenseNet:
    return DenseNet(depth, num_classes, in_channels)


# -- GoogLeNet (Szegedy et al. 2015) ----------------------------------------------------------
# Inception modules: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection), the paper's table 1;
# "M" is a 3x3 stride-2 max pool (32 -> 16 -> 8).
_INCEPTION = ((64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64), "M",
              (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64),
              (128, 128, 256, 24, 64, 64), (112, 144, 288, 32, 64, 64),
              (256, 160, 320, 32, 128, 128), "M",
              (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128))


class Inception(nn.Module):
    """Four parallel branches concatenated: 1x1; 1x1-3x3; 1x1-5x5; 3x3 max pool-1x1."""

    def __init__(self, in_ch: int, n1: int, r3: int, n3: int, r5: int, n5: int, pool: int):
        super().__init__()
        self.b1 = nn.Sequential(*_conv_bn(in_ch, n1, 1))
        self.b3 = nn.Sequential(*_conv_bn(in_ch, r3, 1), *_conv_bn(r3, n3, 3))
        self.b5 = nn.Sequential(*_conv_bn(in_ch, r5, 1), *_conv_bn(r5, n5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), *_conv_bn(in_ch, pool, 1))
        self.out_channels = n1 + n3 + n5 + pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class GoogLeNet(_Net):
    """A 3x3 conv stem to 192 channels, nine inception modules, the classifier on 1024 features."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        layers = _conv_bn(in_channels, 192)
        ch = 192
        for spec in _INCEPTION:
            if spec == "M":
                layers.append(nn.MaxPool2d(3, 2, 1))
                continue
            module = Inception(ch, *spec)
            layers.append(module)
            ch = module.out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = _Classifier(ch, num_classes)


def googlenet(num_classes: int = 10, in_channels: int = 3) -> GoogLeNet:
    return GoogLeNet(num_classes, in_channels)


# -- ResNet-18 (He et al. 2016), CIFAR stem ---------------------------------------------------
class ResNet18(_Net):
    """A 3x3 stride-1 stem to 64 channels, four stages of two basic blocks (64, 128, 256, 512;
    stride 2 from the second stage), the classifier on 512 features."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        layers = _conv_bn(in_channels, 64)
        ch = 64
        for stage, width in enumerate((64, 128, 256, 512)):
            for i in range(2):
                layers.append(BasicBlock(ch, width, 2 if stage and not i else 1))
                ch = width
        self.features = nn.Sequential(*layers)
        self.classifier = _Classifier(512, num_classes)


def resnet18(num_classes: int = 10, in_channels: int = 3) -> ResNet18:
    return ResNet18(num_classes, in_channels)
