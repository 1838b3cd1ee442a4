"""The SqueezeNet family, written as data.

Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
size" (2016). A network is a `SqueezeNetSpec`: a stem convolution, a table of Fire rows, the
positions of the max-pool layers and a classifier convolution. v1.0, v1.1, the bypass variants of
Section 6, the metaparameter sweeps of Section 5 and the 32x32 CIFAR variants are all specs; the
module names match torchvision's, so a torchvision state_dict loads with ``strict=True``.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from squeezenet.architecture import (
    BYPASS_KINDS,
    Conv,
    FireSpec,
    MaxPool,
    SqueezeNetSpec,
    fire_rows_from_metaparameters,
    network,
    with_bypass,
)

__all__ = [
    "Fire",
    "FireSpec",
    "SqueezeNet",
    "SqueezeNetSpec",
    "fire_rows_from_metaparameters",
    "with_bypass",
    "squeezenet1_0",
    "squeezenet1_1",
    "squeezenet_cifar",
    "BYPASS_KINDS",
]


class Fire(nn.Module):
    """Squeeze 1x1 -> ReLU -> (expand 1x1 | expand 3x3) -> ReLU -> concatenate (+ bypass)."""

    def __init__(
        self,
        inplanes: int,
        squeeze_planes: int,
        expand1x1_planes: int,
        expand3x3_planes: int,
        *,
        batch_norm: bool = False,
        bypass: str | None = None,
    ) -> None:
        super().__init__()
        self.inplanes = inplanes
        # With BatchNorm the convolution bias is redundant; folding restores it.
        bias = not batch_norm
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, kernel_size=1, bias=bias)
        self.squeeze_bn = nn.BatchNorm2d(squeeze_planes) if batch_norm else nn.Identity()
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, kernel_size=1, bias=bias)
        self.expand1x1_bn = nn.BatchNorm2d(expand1x1_planes) if batch_norm else nn.Identity()
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, kernel_size=3, padding=1, bias=bias)
        self.expand3x3_bn = nn.BatchNorm2d(expand3x3_planes) if batch_norm else nn.Identity()
        self.expand3x3_activation = nn.ReLU(inplace=True)
        out_planes = expand1x1_planes + expand3x3_planes
        if bypass is None:
            self.bypass = None
        elif bypass == "identity":
            if inplanes != out_planes:
                raise ValueError(f"simple bypass needs equal channels, got {inplanes} -> {out_planes}")
            self.bypass = nn.Identity()
        elif bypass == "conv":
            convolution = nn.Conv2d(inplanes, out_planes, kernel_size=1, bias=bias)
            # With BatchNorm elsewhere, an unnormalised bypass diverged (NaN loss within the first
            # epoch at lr 0.1 on CIFAR-10); folding turns the pair back into one convolution.
            self.bypass = nn.Sequential(convolution, nn.BatchNorm2d(out_planes)) if batch_norm else convolution
        else:
            raise ValueError(f"unknown bypass {bypass!r}; expected None, 'identity' or 'conv'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = self.squeeze_activation(self.squeeze_bn(self.squeeze(x)))
        out = torch.cat(
            [
                self.expand1x1_activation(self.expand1x1_bn(self.expand1x1(squeezed))),
                self.expand3x3_activation(self.expand3x3_bn(self.expand3x3(squeezed))),
            ],
            1,
        )
        if self.bypass is not None:
            # Section 6: the bypass is added to the Fire module's (post-ReLU) output.
            out = out + self.bypass(x)
        return out


class SqueezeNet(nn.Module):
    def __init__(self, spec: SqueezeNetSpec) -> None:
        super().__init__()
        self.spec = spec
        # The layers are those of squeezenet.architecture.network, the description the codecs,
        # the NumPy runtime and the C emitter also read; BatchNorm follows each convolution.
        *body, classifier, _ = network(replace(spec, batch_norm=False)).operations
        layers: list[nn.Module] = []
        for operation in body:
            if isinstance(operation, Conv):  # the stem
                layers.append(nn.Conv2d(operation.in_channels, operation.out_channels, kernel_size=operation.kernel,
                                        stride=operation.stride, padding=operation.padding, bias=not spec.batch_norm))
                if spec.batch_norm:
                    layers.append(nn.BatchNorm2d(operation.out_channels))
                layers.append(nn.ReLU(inplace=True))
            elif isinstance(operation, MaxPool):
                layers.append(nn.MaxPool2d(operation.kernel, operation.stride, ceil_mode=operation.ceil_mode))
            else:
                bypass = "conv" if isinstance(operation.bypass, Conv) else operation.bypass
                layers.append(Fire(operation.in_channels, operation.squeeze.out_channels,
                                   operation.expand1x1.out_channels, operation.expand3x3.out_channels,
                                   batch_norm=spec.batch_norm, bypass=bypass))
        self.features = nn.Sequential(*layers)
        channels = classifier.in_channels
        final_conv = nn.Conv2d(channels, spec.num_classes, kernel_size=1, padding=spec.conv10_padding)
        self.classifier = nn.Sequential(
            nn.Dropout(p=spec.dropout), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                if module is final_conv:
                    # Small initial logits, as in the paper's Caffe solver.
                    nn.init.normal_(module.weight, mean=0.0, std=0.01)
                else:
                    nn.init.kaiming_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.constant_(module.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


# Pool positions of the two published versions (fire indices start at 0 for fire2).
_V1_0_POOLS = (-1, 2, 6)
_V1_1_POOLS = (-1, 1, 3)
_V1_1_FIRES = (
    FireSpec(16, 64, 64),
    FireSpec(16, 64, 64),
    FireSpec(32, 128, 128),
    FireSpec(32, 128, 128),
    FireSpec(48, 192, 192),
    FireSpec(48, 192, 192),
    FireSpec(64, 256, 256),
    FireSpec(64, 256, 256),
)


def squeezenet1_0(
    *, num_classes: int = 1000, caffe: bool = False, bypass: str = "none", **metaparameters
) -> SqueezeNet:
    """SqueezeNet v1.0 (Table 1). ``caffe=True`` gives the published Caffe release's flavour:
    conv10 with padding 1 and a 227x227 input. Metaparameters (Section 5) override v1.0's."""
    spec = SqueezeNetSpec(
        fires=fire_rows_from_metaparameters(**metaparameters),
        pool_after=_V1_0_POOLS,
        num_classes=num_classes,
        conv10_padding=1 if caffe else 0,
        input_size=227 if caffe else 224,
    )
    return SqueezeNet(with_bypass(spec, bypass))


def squeezenet1_1(*, num_classes: int = 1000, bypass: str = "none") -> SqueezeNet:
    """SqueezeNet v1.1: a 3x3 stem of 64 channels and earlier pooling, 2.4x less computation."""
    spec = SqueezeNetSpec(
        fires=_V1_1_FIRES,
        pool_after=_V1_1_POOLS,
        stem_channels=64,
        stem_kernel=3,
        num_classes=num_classes,
    )
    return SqueezeNet(with_bypass(spec, bypass))


def squeezenet_cifar(
    *, num_classes: int = 10, batch_norm: bool = False, bypass: str = "none", pools: str = "1.1",
    **metaparameters,
) -> SqueezeNet:
    """32x32-input SqueezeNet: a 3x3 stride-1 stem of 64 channels, then the Fire modules.

    ``pools`` picks the published version whose pool positions it keeps: "1.1" pools after the stem,
    fire3 and fire5 (most Fires run at 4x4 pixels, the cheapest); "1.0" after the stem, fire4 and
    fire8 (fire5-fire8 run at 8x8 pixels: 1.6x the training time per image on this CPU). The Fire
    rows come from the Section 5 metaparameters (v1.0's by default, which equal v1.1's rows).
    """
    if pools not in ("1.0", "1.1"):
        raise ValueError(f"unknown pool layout {pools!r}; choose 1.0 or 1.1")
    spec = SqueezeNetSpec(
        fires=fire_rows_from_metaparameters(**metaparameters),
        pool_after=_V1_0_POOLS if pools == "1.0" else _V1_1_POOLS,
        stem_channels=64,
        stem_kernel=3,
        stem_stride=1,
        stem_padding=1,
        num_classes=num_classes,
        batch_norm=batch_norm,
        input_size=32,
    )
    return SqueezeNet(with_bypass(spec, bypass))
