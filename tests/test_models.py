from dataclasses import replace

import pytest
import torch
import torchvision
from torch import nn

from squeezenet.models import (
    ARCHITECTURES,
    Fire,
    build_model,
    count_macs,
    count_parameters,
    fire_rows_from_metaparameters,
    fold_batch_norm,
    model_from_spec,
    squeezenet1_0,
    squeezenet_cifar,
    with_bypass,
)

# Small batches through each architecture: one thread (two wait at OpenMP barriers on a shared machine).
pytestmark = pytest.mark.usefixtures("one_thread")

# Parameter counts: the three the paper/torchvision publish, and ours for the derived variants.
EXPECTED_PARAMS = {
    "squeezenet1_0": 1_248_424,
    "squeezenet1_0_caffe": 1_248_424,
    "squeezenet1_0_simple_bypass": 1_248_424,
    "squeezenet1_0_complex_bypass": 1_589_672,
    "squeezenet1_1": 1_235_496,
    "alexnet": 61_100_840,
    "squeezenet_cifar": 727_626,
    "squeezenet_cifar_bn": 730_570,
    "squeezenet_cifar_bn_wide": 1_632_522,
    "squeezenet_cifar_bn_wide_simple_bypass": 1_632_522,
    "squeezenet_cifar_simple_bypass": 727_626,
    "squeezenet_cifar_complex_bypass": 1_064_778,
    "squeezenet1_0_cifar": 727_626,
    "squeezenet1_0_cifar_bn": 730_570,
    "alexnet_cifar": 35_855_178,
    "alexnet_cifar_bn": 35_856_330,
}


def test_every_builder_is_counted():
    assert set(EXPECTED_PARAMS) == set(ARCHITECTURES)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_parameter_count_and_forward(arch):
    model = build_model(arch).eval()
    assert count_parameters(model) == EXPECTED_PARAMS[arch]
    size = model.spec.input_size
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, model.spec.num_classes)
    # The spec alone rebuilds the same architecture.
    rebuilt = model_from_spec(model.spec.to_dict())
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "ours, theirs",
    [("squeezenet1_0", torchvision.models.squeezenet1_0), ("squeezenet1_1", torchvision.models.squeezenet1_1),
     ("alexnet", torchvision.models.alexnet)],
)
def test_torchvision_weights_load_strict_and_match(ours, theirs):
    torch.manual_seed(0)
    reference = theirs().eval()
    model = build_model(ours).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_wide_cifar_variant_is_v1_1_with_fires_one_and_a_half_times_as_wide():
    base, wide = build_model("squeezenet_cifar_bn").spec, build_model("squeezenet_cifar_bn_wide").spec
    assert wide.pool_after == base.pool_after and wide.batch_norm
    for narrow, broad in zip(base.fires, wide.fires, strict=True):
        assert (broad.squeeze, broad.expand1x1, broad.expand3x3) == (
            3 * narrow.squeeze // 2, 3 * narrow.expand1x1 // 2, 3 * narrow.expand3x3 // 2)


def test_wide_cifar_simple_bypass_adds_identities_around_fire3_5_7_9_only():
    wide = build_model("squeezenet_cifar_bn_wide").spec
    bypassed = build_model("squeezenet_cifar_bn_wide_simple_bypass").spec
    assert [row.bypass for row in bypassed.fires] == [None, "identity"] * 4
    assert [replace(row, bypass=None) for row in bypassed.fires] == list(wide.fires)
    # The identity is really added: zeroing the Fire's own branches leaves its input unchanged.
    fire = [m for m in build_model("squeezenet_cifar_bn_wide_simple_bypass").features if isinstance(m, Fire)][1]
    for bn in (fire.expand1x1_bn, fire.expand3x3_bn):
        nn.init.zeros_(bn.weight)
        nn.init.zeros_(bn.bias)
    x = torch.randn(2, fire.inplanes, 8, 8)
    assert torch.equal(fire.eval()(x), x)


def test_metaparameters_reproduce_v1_0():
    rows = fire_rows_from_metaparameters(base_e=128, incr_e=128, freq=2, pct3x3=0.5, squeeze_ratio=0.125)
    got = [(r.squeeze, r.expand1x1, r.expand3x3) for r in rows]
    assert got == [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
                   (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]
    torchvision_shapes = {k: v.shape for k, v in torchvision.models.squeezenet1_0().state_dict().items()}
    assert {k: v.shape for k, v in squeezenet1_0().state_dict().items()} == torchvision_shapes


def test_metaparameter_extremes_and_errors():
    rows = fire_rows_from_metaparameters(pct3x3=0.01, squeeze_ratio=1.0)
    assert rows[0] == rows[0].__class__(128, 127, 1)
    rows = fire_rows_from_metaparameters(pct3x3=0.99)
    assert (rows[-1].expand1x1, rows[-1].expand3x3) == (5, 507)
    with pytest.raises(ValueError, match="pct3x3"):
        fire_rows_from_metaparameters(pct3x3=1.0)


def test_bypass_positions():
    simple = squeezenet1_0(bypass="simple").spec.fires
    complex_ = squeezenet1_0(bypass="complex").spec.fires
    # fire2..fire9: simple bypass around fire3, 5, 7, 9; complex adds 1x1 convolutions on the others.
    assert [f.bypass for f in simple] == [None, "identity"] * 4
    assert [f.bypass for f in complex_] == ["conv", "identity"] * 4
    with pytest.raises(ValueError, match="bypass"):
        with_bypass(squeezenet1_0().spec, "diagonal")


def test_bypass_changes_the_function():
    torch.manual_seed(0)
    plain = squeezenet1_0().eval()
    bypassed = squeezenet1_0(bypass="simple").eval()
    bypassed.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert not torch.allclose(plain(x), bypassed(x))


def test_caffe_flavour_is_a_flag():
    plain, caffe = squeezenet1_0(), squeezenet1_0(caffe=True)
    assert plain.classifier[1].padding == (0, 0) and caffe.classifier[1].padding == (1, 1)
    assert caffe.spec.input_size == 227
    assert all(m.ceil_mode for m in caffe.modules() if isinstance(m, torch.nn.MaxPool2d))
    assert count_macs(caffe, 227) > count_macs(plain, 224)


@pytest.mark.parametrize("arch", ["squeezenet_cifar_bn", "alexnet_cifar_bn", "complex_bypass_bn"])
def test_fold_batch_norm_is_exact(arch):
    torch.manual_seed(0)
    if arch == "complex_bypass_bn":  # the 1x1 bypass convolutions carry their own BatchNorm
        model = squeezenet_cifar(bypass="complex", batch_norm=True)
        assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 1 + 8 * 3 + 4
    else:
        model = build_model(arch)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # give the running statistics non-trivial values
            model(torch.randn(16, 3, 32, 32) * 2 + 0.5)
    model.eval()
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert not folded.spec.batch_norm
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)


def test_macs_of_v1_0():
    # 224x224 SqueezeNet v1.0: about 0.82 GMAC (the commonly quoted ~0.8 GFLOP-MAC figure).
    assert count_macs(squeezenet1_0(), 224) == 818_924_576


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet50")
    with pytest.raises(ValueError, match="family"):
        model_from_spec({"family": "vgg"})


@pytest.mark.parametrize("arch, sizes", [
    ("squeezenet_cifar_bn", [16, 16, 8, 8, 4, 4, 4, 4]),  # v1.1's pools: after the stem, fire3, fire5
    ("squeezenet1_0_cifar_bn", [16, 16, 16, 8, 8, 8, 8, 4]),  # v1.0's: after the stem, fire4, fire8
])
def test_cifar_pool_layouts_put_the_fires_at_their_versions_resolutions(arch, sizes):
    model = build_model(arch).eval()
    seen = []
    for module in model.modules():
        if isinstance(module, Fire):
            module.register_forward_hook(lambda _m, _i, output: seen.append(output.shape[-1]))
    model(torch.zeros(1, 3, 32, 32))
    assert seen == sizes
