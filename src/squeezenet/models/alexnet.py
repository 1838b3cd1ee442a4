"""AlexNet, the paper's baseline: torchvision's layout, plus a 32x32-input variant for CIFAR-10.

The CIFAR variant keeps AlexNet's five convolutions and three 4096-wide classifier layers, so the
parameter ratio to SqueezeNet stays of the paper's order (about 50x) at CPU scale.
"""

from __future__ import annotations

import torch
from torch import nn

from squeezenet.architecture import ALEXNET_HIDDEN, AlexNetSpec, alexnet_convolutions, alexnet_pooled_side

__all__ = ["AlexNet", "AlexNetSpec", "alexnet", "alexnet_cifar"]


class AlexNet(nn.Module):
    def __init__(self, spec: AlexNetSpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        channels = spec.input_channels
        for out_channels, kernel, stride, padding, pool in alexnet_convolutions(spec):
            layers.append(nn.Conv2d(channels, out_channels, kernel, stride, padding, bias=not spec.batch_norm))
            if spec.batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(2) if spec.small_input else nn.MaxPool2d(kernel_size=3, stride=2))
            channels = out_channels
        self.features = nn.Sequential(*layers)
        pooled = alexnet_pooled_side(spec)
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        self.classifier = nn.Sequential(
            nn.Dropout(p=spec.dropout),
            nn.Linear(channels * pooled * pooled, ALEXNET_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Dropout(p=spec.dropout),
            nn.Linear(ALEXNET_HIDDEN, ALEXNET_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Linear(ALEXNET_HIDDEN, spec.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def alexnet(*, num_classes: int = 1000) -> AlexNet:
    """AlexNet as in torchvision (61,100,840 parameters for 1000 classes)."""
    return AlexNet(AlexNetSpec(num_classes=num_classes))


def alexnet_cifar(*, num_classes: int = 10, batch_norm: bool = False) -> AlexNet:
    return AlexNet(AlexNetSpec(small_input=True, num_classes=num_classes, batch_norm=batch_norm, input_size=32))
