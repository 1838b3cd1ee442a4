"""The network as a list of operations with their shapes, built from an architecture spec dict.

Both the C99 emitter and the NumPy runtime walk this list, so neither needs torch: the spec is a
plain dict (``model.spec.to_dict()``, the spec stored in a .sqz file, or `CAFFE_SQUEEZENET_V1_0`
for the published .net file). Weight layers are numbered in network order, the order of
``squeezenet.models.weight_layers`` and of the layers in a compressed file.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CAFFE_SQUEEZENET_V1_0",
    "Conv",
    "Fire",
    "GlobalAveragePool",
    "MaxPool",
    "Network",
    "build_network",
]

# SqueezeNet v1.0 as the Deep Compression release trained it (Table 1 of the paper, the Caffe
# flavour): the .net file stores no architecture, so its spec lives here as data. A test checks it
# equals ``squeezenet1_0(caffe=True).spec.to_dict()``.
CAFFE_SQUEEZENET_V1_0: dict = {
    "fires": [
        {"squeeze": s, "expand1x1": e, "expand3x3": e, "bypass": None}
        for s, e in ((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256))
    ],
    "pool_after": [-1, 2, 6],
    "stem_channels": 96,
    "stem_kernel": 7,
    "stem_stride": 2,
    "stem_padding": 0,
    "num_classes": 1000,
    "conv10_padding": 1,
    "batch_norm": False,
    "dropout": 0.5,
    "input_size": 227,
    "input_channels": 3,
    "family": "squeezenet",
}


@dataclass(frozen=True)
class Conv:
    """A convolution (+ ReLU unless ``relu`` is False) of square kernel, stride and padding."""

    name: str  # the source module's name, e.g. "features.3.squeeze"
    layer: int  # index of its weights among the model's weight layers
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    in_size: int
    out_size: int
    relu: bool = True

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels, self.kernel, self.kernel)


@dataclass(frozen=True)
class MaxPool:
    """3x3 stride-2 max pooling with the output size rounded up (Caffe's rule, ``ceil_mode=True``)."""

    name: str
    channels: int
    in_size: int
    out_size: int
    kernel: int = 3
    stride: int = 2


@dataclass(frozen=True)
class Fire:
    """Squeeze, then expand 1x1 and 3x3 written side by side (the concatenation), then the bypass."""

    name: str
    squeeze: Conv
    expand1x1: Conv
    expand3x3: Conv
    bypass: Conv | str | None  # None, "identity", or the 1x1 bypass convolution (no ReLU)

    @property
    def in_channels(self) -> int:
        return self.squeeze.in_channels

    @property
    def out_channels(self) -> int:
        return self.expand1x1.out_channels + self.expand3x3.out_channels

    @property
    def size(self) -> int:
        return self.squeeze.in_size


@dataclass(frozen=True)
class GlobalAveragePool:
    name: str
    channels: int
    in_size: int


@dataclass(frozen=True)
class Network:
    input_channels: int
    input_size: int
    num_classes: int
    operations: tuple[Conv | MaxPool | Fire | GlobalAveragePool, ...]

    def convolutions(self) -> list[Conv]:
        """Every convolution in weight-layer order."""
        found: list[Conv] = []
        for operation in self.operations:
            if isinstance(operation, Conv):
                found.append(operation)
            elif isinstance(operation, Fire):
                found += [operation.squeeze, operation.expand1x1, operation.expand3x3]
                if isinstance(operation.bypass, Conv):
                    found.append(operation.bypass)
        assert [conv.layer for conv in found] == list(range(len(found))), "weight layers out of order"
        return found


def _conv_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _pool_size(size: int, kernel: int = 3, stride: int = 2) -> int:
    # PyTorch's ceil_mode rule: round up, but the last window must start inside the input.
    out = -(-(size - kernel) // stride) + 1
    if (out - 1) * stride >= size:
        out -= 1
    return out


def build_network(spec: dict) -> Network:
    """The operations of a SqueezeNet spec dict (BatchNorm already folded).

    Raises ValueError "unsupported layer ..." for what the runtimes do not implement: AlexNet's
    fully connected layers, and BatchNorm that has not been folded into its convolution.
    """
    if not isinstance(spec, dict):
        raise ValueError("architecture spec must be a mapping")
    family = spec.get("family")
    if family == "alexnet":
        raise ValueError("unsupported layer: Linear (AlexNet's fully connected classifier); export supports the SqueezeNet family")
    if family != "squeezenet":
        raise ValueError(f"unsupported layer: unknown model family {family!r}")
    if spec.get("batch_norm"):
        raise ValueError("unsupported layer: BatchNorm2d (fold it into the convolutions first: load_model(..., fold_bn=True))")
    try:
        channels, size = int(spec["input_channels"]), int(spec["input_size"])
        pools = set(spec["pool_after"])
        operations: list = []
        layer = 0
        # Module indices follow SqueezeNet.__init__: conv, ReLU, [pool], then Fire [, pool] ...
        stem_out = _conv_size(size, spec["stem_kernel"], spec["stem_stride"], spec["stem_padding"])
        operations.append(
            Conv("features.0", layer, channels, spec["stem_channels"], spec["stem_kernel"], spec["stem_stride"],
                 spec["stem_padding"], size, stem_out)
        )
        layer, module, channels, size = 1, 2, spec["stem_channels"], stem_out
        if -1 in pools:
            operations.append(MaxPool(f"features.{module}", channels, size, _pool_size(size)))
            module, size = module + 1, _pool_size(size)
        for index, row in enumerate(spec["fires"]):
            name = f"features.{module}"
            squeeze = Conv(f"{name}.squeeze", layer, channels, row["squeeze"], 1, 1, 0, size, size)
            expand1x1 = Conv(f"{name}.expand1x1", layer + 1, row["squeeze"], row["expand1x1"], 1, 1, 0, size, size)
            expand3x3 = Conv(f"{name}.expand3x3", layer + 2, row["squeeze"], row["expand3x3"], 3, 1, 1, size, size)
            layer += 3
            out_channels = row["expand1x1"] + row["expand3x3"]
            bypass = row.get("bypass")
            if bypass == "conv":
                bypass = Conv(f"{name}.bypass", layer, channels, out_channels, 1, 1, 0, size, size, relu=False)
                layer += 1
            elif bypass not in (None, "identity"):
                raise ValueError(f"unsupported layer: bypass {bypass!r} in {name}")
            operations.append(Fire(name, squeeze, expand1x1, expand3x3, bypass))
            channels = out_channels
            module += 1
            if index in pools:
                operations.append(MaxPool(f"features.{module}", channels, size, _pool_size(size)))
                module, size = module + 1, _pool_size(size)
        padding = spec["conv10_padding"]
        classifier_size = _conv_size(size, 1, 1, padding)
        operations.append(Conv("classifier.1", layer, channels, spec["num_classes"], 1, 1, padding, size, classifier_size))
        operations.append(GlobalAveragePool("classifier.3", spec["num_classes"], classifier_size))
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a SqueezeNet spec: missing or bad {error}") from None
    if min(op.out_size for op in operations if isinstance(op, (Conv, MaxPool))) < 1:
        raise ValueError(f"input size {spec['input_size']} is too small for this network")
    return Network(int(spec["input_channels"]), int(spec["input_size"]), int(spec["num_classes"]), tuple(operations))
