"""The architectures as data, without torch: specs, the paper's metaparameters, and the network's
operations with their shapes.

Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
size" (2016). A SqueezeNet is a `SqueezeNetSpec`: a stem convolution, a table of Fire rows (Table 1),
the positions of the max-pool layers and a classifier convolution; v1.0, v1.1, the bypass variants
of Section 6 and the metaparameter sweeps of Section 5 are all specs. AlexNet, the baseline, is an
`AlexNetSpec`. `network(spec)` lists a spec's operations in order with every shape, numbering the
weight layers as the torch models and the compressed files order them. Everything that needs a
layer's shape takes it from here: the torch models (`squeezenet.models`), the `.sqz` and `.net`
codecs, the NumPy runtime and the C emitter, so none of them imports torch for it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

__all__ = [
    "BYPASS_KINDS",
    "CAFFE_SQUEEZENET_V1_0",
    "ALEXNET_HIDDEN",
    "AdaptiveAveragePool",
    "AlexNetSpec",
    "Conv",
    "Fire",
    "FireSpec",
    "GlobalAveragePool",
    "Linear",
    "MaxPool",
    "Network",
    "SqueezeNetSpec",
    "alexnet_convolutions",
    "alexnet_pooled_side",
    "check_num_classes",
    "fire_rows_from_metaparameters",
    "network",
    "spec_from_dict",
    "weight_shapes",
    "with_bypass",
]

BYPASS_KINDS = ("none", "simple", "complex")


def check_num_classes(num_classes) -> None:
    # bool is an int subclass, but True classes is a mistake, not one class.
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"the number of classes must be a whole number of at least 1, got {num_classes!r}")


# --- SqueezeNet ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FireSpec:
    """One row of the paper's Table 1: s1x1, e1x1, e3x3, and the bypass around the module."""

    squeeze: int
    expand1x1: int
    expand3x3: int
    bypass: str | None = None  # None, "identity" (simple bypass) or "conv" (complex bypass)

    @property
    def out_channels(self) -> int:
        return self.expand1x1 + self.expand3x3


@dataclass(frozen=True)
class SqueezeNetSpec:
    """Everything needed to rebuild a SqueezeNet with no other file."""

    fires: tuple[FireSpec, ...]
    pool_after: tuple[int, ...]  # fire indices followed by a max pool; -1 means after the stem
    stem_channels: int = 96
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_padding: int = 0
    num_classes: int = 1000
    conv10_padding: int = 0  # 1 in the published Caffe release
    batch_norm: bool = False
    dropout: float = 0.5
    input_size: int = 224
    input_channels: int = 3
    family: str = field(default="squeezenet", init=False)

    def __post_init__(self) -> None:
        check_num_classes(self.num_classes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SqueezeNetSpec":
        data = {k: v for k, v in data.items() if k != "family"}
        try:
            fires = tuple(FireSpec(**row) for row in data.pop("fires"))
            data["pool_after"] = tuple(data["pool_after"])
            return cls(fires=fires, **data)
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a SqueezeNet spec: {error}") from None


def fire_rows_from_metaparameters(
    *,
    base_e: int = 128,
    incr_e: int = 128,
    freq: int = 2,
    pct3x3: float = 0.5,
    squeeze_ratio: float = 0.125,
    num_fire: int = 8,
) -> tuple[FireSpec, ...]:
    """Section 5.1: e_i = base_e + incr_e * floor(i / freq), s_i = SR * e_i, e3x3 = pct3x3 * e_i.

    v1.0 is base_e=128, incr_e=128, freq=2, pct3x3=0.5, SR=0.125. Channel counts are rounded to
    the nearest integer and kept at least 1 (the paper's 1% and 99% sweep points need that).
    """
    if not 0.0 < pct3x3 < 1.0:
        raise ValueError(f"pct3x3 must be in (0, 1), got {pct3x3}")
    if not 0.0 < squeeze_ratio:
        raise ValueError(f"squeeze_ratio must be positive, got {squeeze_ratio}")
    if base_e < 1 or incr_e < 0 or freq < 1 or num_fire < 1:
        raise ValueError("need base_e >= 1, incr_e >= 0, freq >= 1, num_fire >= 1")
    rows = []
    for i in range(num_fire):
        expand = base_e + incr_e * math.floor(i / freq)
        expand3x3 = min(max(1, round(pct3x3 * expand)), expand - 1)
        rows.append(FireSpec(max(1, round(squeeze_ratio * expand)), expand - expand3x3, expand3x3))
    return tuple(rows)


def with_bypass(spec: SqueezeNetSpec, kind: str) -> SqueezeNetSpec:
    """Section 6: 'simple' adds identity bypasses around fire3, fire5, fire7 and fire9 (where the
    channel counts match); 'complex' also adds 1x1 convolution bypasses around the others."""
    if kind not in BYPASS_KINDS:
        raise ValueError(f"unknown bypass {kind!r}; expected one of {', '.join(BYPASS_KINDS)}")
    fires = []
    for index, row in enumerate(spec.fires):
        # Paper numbering starts at fire2, so fire3, fire5, ... are the odd indices here.
        if kind == "none":
            bypass = None
        elif index % 2 == 1:
            bypass = "identity"
        else:
            bypass = "conv" if kind == "complex" else None
        fires.append(replace(row, bypass=bypass))
    return replace(spec, fires=tuple(fires))


# --- AlexNet -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlexNetSpec:
    small_input: bool = False  # True: 32x32 input (3x3 stride-1 stem, 2x2 pools)
    num_classes: int = 1000
    batch_norm: bool = False
    dropout: float = 0.5
    input_size: int = 224
    input_channels: int = 3
    family: str = field(default="alexnet", init=False)

    def __post_init__(self) -> None:
        check_num_classes(self.num_classes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AlexNetSpec":
        try:
            return cls(**{k: v for k, v in data.items() if k != "family"})
        except TypeError as error:
            raise ValueError(f"not an AlexNet spec: {error}") from None


# (out_channels, kernel, stride, padding, max pool after) for the ImageNet and 32x32 inputs.
_IMAGENET_CONVS = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False), (256, 3, 1, 1, False),
                   (256, 3, 1, 1, True))
_SMALL_CONVS = ((64, 3, 1, 1, True), (192, 3, 1, 1, True), (384, 3, 1, 1, False), (256, 3, 1, 1, False),
                (256, 3, 1, 1, True))
ALEXNET_HIDDEN = 4096  # width of the two hidden fully connected layers


def alexnet_convolutions(spec: AlexNetSpec) -> tuple[tuple[int, int, int, int, bool], ...]:
    """(out_channels, kernel, stride, padding, max pool after) of each convolution; the 32x32 variant
    pools 2x2, the ImageNet one 3x3 stride 2, both rounding down."""
    return _SMALL_CONVS if spec.small_input else _IMAGENET_CONVS


def alexnet_pooled_side(spec: AlexNetSpec) -> int:
    """Side of the adaptive average pool before the classifier (torchvision: 6; 32x32 variant: 4)."""
    return 4 if spec.small_input else 6


def spec_from_dict(data) -> SqueezeNetSpec | AlexNetSpec:
    """The spec object of ``model.spec.to_dict()`` (as stored in checkpoints and .sqz files)."""
    if not isinstance(data, dict):
        raise ValueError("architecture spec must be a mapping")
    family = data.get("family")
    if family == "squeezenet":
        return SqueezeNetSpec.from_dict(data)
    if family == "alexnet":
        return AlexNetSpec.from_dict(data)
    raise ValueError(f"unknown model family {family!r} in architecture spec")


# --- Operations ----------------------------------------------------------------------------------


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
    """Max pooling; ``ceil_mode`` rounds the output size up (Caffe's rule, SqueezeNet) or down (AlexNet)."""

    name: str
    channels: int
    in_size: int
    out_size: int
    kernel: int = 3
    stride: int = 2
    ceil_mode: bool = True


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
class AdaptiveAveragePool:
    """Average pooling to a fixed ``out_size`` square (AlexNet's, before the classifier)."""

    name: str
    channels: int
    in_size: int
    out_size: int


@dataclass(frozen=True)
class Linear:
    """A fully connected layer (+ ReLU unless ``relu`` is False) over the flattened input."""

    name: str
    layer: int
    in_features: int
    out_features: int
    relu: bool = True

    @property
    def weight_shape(self) -> tuple[int, int]:
        return (self.out_features, self.in_features)


@dataclass(frozen=True)
class Network:
    input_channels: int
    input_size: int
    num_classes: int
    operations: tuple

    def weight_layers(self) -> list[Conv | Linear]:
        """Every convolution and fully connected layer, in weight-layer order."""
        found: list = []
        for operation in self.operations:
            if isinstance(operation, (Conv, Linear)):
                found.append(operation)
            elif isinstance(operation, Fire):
                found += [operation.squeeze, operation.expand1x1, operation.expand3x3]
                if isinstance(operation.bypass, Conv):
                    found.append(operation.bypass)
        assert [layer.layer for layer in found] == list(range(len(found))), "weight layers out of order"
        return found

    def convolutions(self) -> list[Conv]:
        """Every convolution in weight-layer order (the whole list for the SqueezeNet family)."""
        return [layer for layer in self.weight_layers() if isinstance(layer, Conv)]


def _conv_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _pool_size(size: int, kernel: int, stride: int, ceil_mode: bool) -> int:
    if not ceil_mode:
        return (size - kernel) // stride + 1
    # PyTorch's ceil_mode rule: round up, but the last window must start inside the input.
    out = -(-(size - kernel) // stride) + 1
    if (out - 1) * stride >= size:
        out -= 1
    return out


def _whole(value, what: str, minimum: int = 1) -> int:
    """A count from a spec (possibly read from an untrusted file): an int, not a bool, >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be a whole number of at least {minimum}, got {value!r}")
    return value


def _squeezenet_operations(spec: SqueezeNetSpec) -> tuple:
    channels = _whole(spec.input_channels, "input_channels")
    size = _whole(spec.input_size, "input_size")
    kernel, stride = _whole(spec.stem_kernel, "stem_kernel"), _whole(spec.stem_stride, "stem_stride")
    padding = _whole(spec.stem_padding, "stem_padding", 0)
    stem_channels = _whole(spec.stem_channels, "stem_channels")
    pools = set(spec.pool_after)
    if not all(isinstance(index, int) and not isinstance(index, bool) for index in pools):
        raise ValueError("pool_after must list fire indices")
    operations: list = []
    # Module indices follow SqueezeNet.__init__: conv, ReLU, [pool], then Fire [, pool] ...
    stem_out = _conv_size(size, kernel, stride, padding)
    operations.append(Conv("features.0", 0, channels, stem_channels, kernel, stride, padding, size, stem_out))
    layer, module, channels, size = 1, 2, stem_channels, stem_out
    if -1 in pools:
        operations.append(MaxPool(f"features.{module}", channels, size, _pool_size(size, 3, 2, True)))
        module, size = module + 1, _pool_size(size, 3, 2, True)
    for index, row in enumerate(spec.fires):
        name = f"features.{module}"
        squeeze = _whole(row.squeeze, f"{name} squeeze")
        expand1x1, expand3x3 = _whole(row.expand1x1, f"{name} expand1x1"), _whole(row.expand3x3, f"{name} expand3x3")
        fire_convs = (Conv(f"{name}.squeeze", layer, channels, squeeze, 1, 1, 0, size, size),
                      Conv(f"{name}.expand1x1", layer + 1, squeeze, expand1x1, 1, 1, 0, size, size),
                      Conv(f"{name}.expand3x3", layer + 2, squeeze, expand3x3, 3, 1, 1, size, size))
        layer += 3
        out_channels = expand1x1 + expand3x3
        bypass = row.bypass
        if bypass == "conv":
            bypass = Conv(f"{name}.bypass", layer, channels, out_channels, 1, 1, 0, size, size, relu=False)
            layer += 1
        elif bypass == "identity":
            if channels != out_channels:
                raise ValueError(f"simple bypass needs equal channels, got {channels} -> {out_channels} in {name}")
        elif bypass is not None:
            raise ValueError(f"unsupported layer: bypass {bypass!r} in {name}")
        operations.append(Fire(name, *fire_convs, bypass))
        channels = out_channels
        module += 1
        if index in pools:
            operations.append(MaxPool(f"features.{module}", channels, size, _pool_size(size, 3, 2, True)))
            module, size = module + 1, _pool_size(size, 3, 2, True)
    padding = _whole(spec.conv10_padding, "conv10_padding", 0)
    classifier_size = _conv_size(size, 1, 1, padding)
    operations.append(Conv("classifier.1", layer, channels, spec.num_classes, 1, 1, padding, size, classifier_size))
    operations.append(GlobalAveragePool("classifier.3", spec.num_classes, classifier_size))
    return tuple(operations)


def _alexnet_operations(spec: AlexNetSpec) -> tuple:
    channels = _whole(spec.input_channels, "input_channels")
    size = _whole(spec.input_size, "input_size")
    operations: list = []
    module = 0
    for layer, (out_channels, kernel, stride, padding, pool) in enumerate(alexnet_convolutions(spec)):
        out_size = _conv_size(size, kernel, stride, padding)
        operations.append(Conv(f"features.{module}", layer, channels, out_channels, kernel, stride, padding, size,
                               out_size))
        module += 3 if spec.batch_norm else 2  # conv, [BatchNorm,] ReLU
        channels, size = out_channels, out_size
        if pool:
            pool_kernel, pool_stride = (2, 2) if spec.small_input else (3, 2)
            pooled = _pool_size(size, pool_kernel, pool_stride, False)
            operations.append(MaxPool(f"features.{module}", channels, size, pooled, pool_kernel, pool_stride, False))
            module, size = module + 1, pooled
    side = alexnet_pooled_side(spec)
    operations.append(AdaptiveAveragePool("avgpool", channels, size, side))
    features = channels * side * side
    operations += [Linear("classifier.1", 5, features, ALEXNET_HIDDEN),
                   Linear("classifier.4", 6, ALEXNET_HIDDEN, ALEXNET_HIDDEN),
                   Linear("classifier.6", 7, ALEXNET_HIDDEN, spec.num_classes, relu=False)]
    return tuple(operations)


def network(spec: SqueezeNetSpec | AlexNetSpec | dict) -> Network:
    """The operations of a spec (object or ``to_dict()`` form) with every shape.

    Module names are those of the BatchNorm-free model (the form compressed files and the runtimes
    hold). Raises ValueError for a spec that describes no network (sizes that are not positive whole
    numbers, an input too small for the layers, an unknown bypass).
    """
    spec = spec_from_dict(spec) if isinstance(spec, dict) else spec
    try:
        if isinstance(spec, SqueezeNetSpec):
            operations = _squeezenet_operations(spec)
        else:
            operations = _alexnet_operations(spec)
    except (TypeError, AttributeError) as error:
        raise ValueError(f"not a {spec.family} spec: missing or bad {error}") from None
    sizes = [op.out_size for op in operations if isinstance(op, (Conv, MaxPool, AdaptiveAveragePool))]
    if min(sizes) < 1:
        raise ValueError(f"input size {spec.input_size} is too small for this network")
    return Network(spec.input_channels, spec.input_size, spec.num_classes, operations)


def weight_shapes(spec: SqueezeNetSpec | AlexNetSpec | dict) -> list[tuple[tuple[int, ...], bool]]:
    """(weight shape, has bias) of every weight layer of the BatchNorm-free model, in network order.

    Every layer of the folded models has a bias (folding gives the BatchNorm's shift to it).
    """
    return [(layer.weight_shape, True) for layer in network(spec).weight_layers()]


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
