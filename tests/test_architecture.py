"""The torch-free architecture description is the one the torch models are built from.

Every codec and runtime takes layer shapes from ``squeezenet.architecture``; these tests hold it to
the torch models, architecture by architecture, and check that the codecs import no torch.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from squeezenet.architecture import network, spec_from_dict, weight_shapes
from squeezenet.models import ARCHITECTURES, build_model, model_from_spec, weight_layers


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_weight_layers_match_the_torch_model(arch):
    with torch.device("meta"):
        spec = build_model(arch, num_classes=7).spec.to_dict()
        folded = model_from_spec({**spec, "batch_norm": False})
    layers = network(spec | {"batch_norm": False}).weight_layers()
    assert [layer.name for layer in layers] == [name for name, _ in weight_layers(folded)]
    assert [shape for shape, _ in weight_shapes({**spec, "batch_norm": False})] == [
        tuple(module.weight.shape) for _, module in weight_layers(folded)]
    assert spec_from_dict(spec).to_dict() == spec


@pytest.mark.parametrize("arch", ["squeezenet1_0_caffe", "squeezenet1_1", "squeezenet_cifar_complex_bypass",
                                  "alexnet", "alexnet_cifar"])
def test_operation_sizes_match_the_torch_activations(arch):
    model = build_model(arch, num_classes=5).eval()
    size = model.spec.input_size
    shapes = {}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape)))
             for name, module in model.named_modules() if name]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    for operation in network(model.spec).operations:
        if hasattr(operation, "out_size") and operation.name in shapes:
            assert shapes[operation.name][-1] == operation.out_size, operation.name


@pytest.mark.parametrize("bad", [{"stem_stride": 0}, {"input_size": 3}, {"num_classes": 0},
                                 {"fires": [{"squeeze": -1, "expand1x1": 4, "expand3x3": 4}]}, {"pool_after": [[1]]}])
def test_bad_specs_are_value_errors(bad):
    spec = build_model("squeezenet1_1").spec.to_dict() | bad
    with pytest.raises(ValueError):
        weight_shapes(spec)


def test_codecs_and_numpy_runtime_import_no_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import squeezenet.architecture, squeezenet.compress.sqz, squeezenet.compress.caffe_net, "
            "squeezenet.runtime_numpy, squeezenet.export.graph\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
