"""AlexNet, the paper's baseline: torchvision's layout, plus a 32x32-input variant for CIFAR-10.

The CIFAR variant keeps AlexNet's five convolutions and three 4096-wide classifier layers, so the
parameter ratio to SqueezeNet stays of the paper's order (about 50x) at CPU scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

__all__ = ["AlexNet", "AlexNetSpec", "alexnet", "alexnet_cifar"]


@dataclass(frozen=True)
class AlexNetSpec:
    small_input: bool = False  # True: 32x32 input (3x3 stride-1 stem, 2x2 pools)
    num_classes: int = 1000
    batch_norm: bool = False
    dropout: float = 0.5
    input_size: int = 224
    input_channels: int = 3
    family: str = field(default="alexnet", init=False)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AlexNetSpec":
        try:
            return cls(**{k: v for k, v in data.items() if k != "family"})
        except TypeError as error:
            raise ValueError(f"not an AlexNet spec: {error}") from None


# (out_channels, kernel, stride, padding, max pool after) for the ImageNet and 32x32 inputs.
_IMAGENET_CONVS = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, False), (256, 3, 1, 1, True))
_SMALL_CONVS = ((64, 3, 1, 1, True), (192, 3, 1, 1, True), (384, 3, 1, 1, False), (256, 3, 1, 1, False), (256, 3, 1, 1, True))


class AlexNet(nn.Module):
    def __init__(self, spec: AlexNetSpec) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        channels = spec.input_channels
        for out_channels, kernel, stride, padding, pool in _SMALL_CONVS if spec.small_input else _IMAGENET_CONVS:
            layers.append(nn.Conv2d(channels, out_channels, kernel, stride, padding, bias=not spec.batch_norm))
            if spec.batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            if pool:
                layers.append(nn.MaxPool2d(2) if spec.small_input else nn.MaxPool2d(kernel_size=3, stride=2))
            channels = out_channels
        self.features = nn.Sequential(*layers)
        pooled = 4 if spec.small_input else 6
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        self.classifier = nn.Sequential(
            nn.Dropout(p=spec.dropout),
            nn.Linear(channels * pooled * pooled, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=spec.dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, spec.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def alexnet(*, num_classes: int = 1000) -> AlexNet:
    """AlexNet as in torchvision (61,100,840 parameters for 1000 classes)."""
    return AlexNet(AlexNetSpec(num_classes=num_classes))


def alexnet_cifar(*, num_classes: int = 10, batch_norm: bool = False) -> AlexNet:
    return AlexNet(AlexNetSpec(small_input=True, num_classes=num_classes, batch_norm=batch_norm, input_size=32))
