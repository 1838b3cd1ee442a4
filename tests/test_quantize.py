"""Trained quantization: k-means codebooks, the paper's centroid update, tied weights through training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.compress.caffe_net import read_net
from squeezenet.compress.quantize import (
    LayerQuantization,
    quantize_layer,
    quantize_model,
    tie_weights,
    to_sparse_layer,
    untie_weights,
)


def test_kmeans_linear_init_on_hand_written_weights():
    weight = torch.tensor([[0.0, 1.0, 1.2], [0.0, -1.0, -1.1], [2.0, 2.2, 0.0]])
    quantization = quantize_layer(weight, bits=2)
    # Linear init over [-1.1, 2.2]: -1.1, 0.55, 2.2; one Lloyd step gives the pair means, then stable.
    torch.testing.assert_close(quantization.codebook, torch.tensor([0.0, -1.05, 1.1, 2.1]))
    assert quantization.codes.tolist() == [[0, 2, 2], [0, 1, 1], [3, 3, 0]]
    assert quantization.bits == 2


def test_density_init_differs_from_linear():
    weight = torch.tensor([0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.19, 0.5, 3.0])
    # Linear: 0.10, 1.55, 3.00; midpoints 0.825 and 2.275 leave the middle centroid empty.
    linear = quantize_layer(weight, bits=2, init="linear")
    torch.testing.assert_close(linear.codebook, torch.tensor([0.0, 1.95 / 11, 1.55, 3.0]))
    # Density (quantiles of the CDF) starts in the crowd and ends with one centroid per group.
    density = quantize_layer(weight, bits=2, init="density")
    torch.testing.assert_close(density.codebook, torch.tensor([0.0, 0.145, 0.5, 3.0]))
    assert density.codes.tolist() == [1] * 10 + [2, 3]


def test_centroid_update_matches_paper_figure_3():
    # Han et al. 2016, Figure 3: weights, their cluster indices, and the gradient of a 4x4 layer.
    # Paper cluster c is our code c + 1 (our code 0 is the reserved zero).
    clusters = torch.tensor([[3, 0, 2, 1], [1, 1, 0, 3], [0, 3, 1, 0], [3, 1, 2, 2]])
    centroids = torch.tensor([-1.00, 0.00, 1.50, 2.00])
    gradient = torch.tensor(
        [[-0.03, -0.01, 0.03, 0.02], [-0.01, 0.01, -0.02, 0.12], [-0.01, 0.02, 0.04, 0.01], [-0.07, -0.02, 0.01, -0.02]]
    )
    layer = nn.Linear(4, 4, bias=False)
    quantization = LayerQuantization(torch.cat([torch.zeros(1), centroids]), clusters + 1, bits=3)
    model = nn.Sequential(layer)
    tie_weights(model, {"0": quantization})
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    (layer.weight * gradient).sum().backward()  # d loss / d weight == gradient
    codebook = layer.parametrizations.weight[0].codebook
    # Grouped and summed per centroid: -0.03, 0.04, 0.02, 0.04 (paper: "reduce").
    torch.testing.assert_close(codebook.grad, torch.tensor([0.0, -0.03, 0.04, 0.02, 0.04]))
    optimizer.step()
    # Paper's fine-tuned centroids: -0.97, -0.04, 1.48, 1.96.
    torch.testing.assert_close(layer.parametrizations.weight[0].codebook.detach(), torch.tensor([0.0, -0.97, -0.04, 1.48, 1.96]))
    torch.testing.assert_close(layer.weight, torch.tensor([0.0, -0.97, -0.04, 1.48, 1.96])[clusters + 1])


def test_weights_stay_tied_and_pruned_zeros_stay_zero_through_training():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    with torch.no_grad():
        for module in (model[0], model[3]):
            module.weight[module.weight.abs() < 0.05] = 0.0  # prune
    zeros = {name: module.weight == 0 for name, module in (("0", model[0]), ("3", model[3]))}
    quantizations = quantize_model(model, {"0": 3, "default": 2})
    assert [q.bits for q in quantizations.values()] == [3, 2]
    tie_weights(model, quantizations)
    # Momentum and weight decay would move a masked-but-stored zero; the zero code must not move.
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9, weight_decay=0.1)
    inputs, targets = torch.randn(16, 3, 6, 6), torch.randint(0, 5, (16,))
    for _ in range(5):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
        for name, module in (("0", model[0]), ("3", model[3])):
            shared = module.parametrizations.weight[0]
            assert torch.equal(module.weight, (shared.codebook * shared.keep)[quantizations[name].codes])
            assert torch.all(module.weight[zeros[name]] == 0)
            assert len(torch.unique(module.weight)) <= 2 ** quantizations[name].bits
    trained = untie_weights(model)
    assert not parametrize.is_parametrized(model[0]) and not parametrize.is_parametrized(model[3])
    for name, module in (("0", model[0]), ("3", model[3])):
        assert isinstance(module.weight, nn.Parameter) and module.weight.requires_grad
        assert torch.equal(module.weight.detach(), trained[name].weight())
        assert torch.equal((module.weight == 0) & ~zeros[name], torch.zeros_like(zeros[name]))
        assert float(trained[name].codebook[0]) == 0.0
        assert not torch.equal(trained[name].codebook, quantizations[name].codebook)  # it did train


def test_real_layer_keeps_sparsity_and_is_a_lloyd_fixed_point(published_net):
    layer = read_net(published_net)[3]  # fire2 expand3x3: 33% dense
    weight = torch.from_numpy(layer.dense_weight())
    quantization = quantize_layer(weight, bits=4)
    assert len(quantization.codebook) == 16
    assert torch.equal(quantization.codes == 0, weight == 0)
    for code in range(1, 16):  # every centroid is the mean of the weights assigned to it
        members = weight[quantization.codes == code].double()
        assert float(quantization.codebook[code]) == pytest.approx(float(members.mean()), abs=1e-6)
    sparse = to_sparse_layer(quantization, layer.bias, max_gap=7)
    assert int(sparse.gaps.max()) <= 7
    assert np.array_equal(sparse.dense_weight(), quantization.weight().numpy())
    assert np.array_equal(sparse.bias, layer.bias)


def test_invalid_arguments_raise_value_error():
    weight = torch.tensor([0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="bits"):
        quantize_layer(weight, bits=0)
    with pytest.raises(ValueError, match="initialisation"):
        quantize_layer(weight, bits=2, init="forgy")
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="no weight layer named conv9"):
        quantize_model(model, {"conv9": 4, "default": 4})
    with pytest.raises(ValueError, match="no bits given"):
        quantize_model(model, {})
    with pytest.raises(ValueError, match=r"codebook\[0\]"):
        LayerQuantization(torch.tensor([1.0, 2.0]), torch.tensor([0, 1]), bits=1)
    with pytest.raises(ValueError, match="codes"):
        LayerQuantization(torch.tensor([0.0, 2.0]), torch.tensor([0, 2]), bits=1)
