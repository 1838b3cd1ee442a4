"""SVD baseline: Eckart-Young error, energy knob, factorised layers compute the same function."""

from __future__ import annotations

import pytest
import torch

from squeezenet.compress.svd import factorize_model, fp32_bytes, low_rank_factors
from squeezenet.models import squeezenet_cifar

pytestmark = pytest.mark.usefixtures("one_thread")



def test_truncated_svd_error_is_the_discarded_singular_values():
    torch.manual_seed(0)
    weight = torch.randn(40, 30, dtype=torch.float64)
    singular = torch.linalg.svdvals(weight)
    factors = low_rank_factors(weight, rank=10)
    error = torch.linalg.norm(weight - factors.second @ factors.first)
    assert factors.rank == 10
    assert float(error) == pytest.approx(float(torch.sqrt((singular[10:] ** 2).sum())), rel=1e-5)


def test_energy_picks_the_smallest_rank_that_keeps_it():
    weight = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.5])) # energies 9, 4, 1, 0.25 of 14.25
    assert low_rank_factors(weight, energy=9 / 14.25).rank == 1
    assert low_rank_factors(weight, energy=13.1 / 14.25).rank == 3
    assert low_rank_factors(weight, energy=1.0).rank == 4
    with pytest.raises(ValueError):
        low_rank_factors(weight, rank=2, energy=0.5)


def test_factorised_convolutions_compute_the_same_function_at_full_rank_and_shrink_at_low_rank():
    torch.manual_seed(0)
    model = squeezenet_cifar(base_e=16, incr_e=16, squeeze_ratio=0.25).eval()
    images = torch.randn(2, 3, 32, 32)
    same, ranks = factorize_model(model, energy=1.0, layers=["features.0"])
    assert ranks == {}  # full rank would be no smaller: the layer stays dense
    small, ranks = factorize_model(model, rank={"features.0": 4, "classifier.1": 8})
    assert ranks == {"features.0": 4, "classifier.1": 8}
    assert fp32_bytes(small) < fp32_bytes(model)
    assert small(images).shape == model(images).shape
    # A rank equal to the layer's true rank reproduces it exactly (up to float rounding).
    with torch.no_grad():
        conv = model.features[0]
        low = low_rank_factors(conv.weight, rank=3)
        conv.weight.copy_((low.second @ low.first).reshape(conv.weight.shape))
    exact, _ = factorize_model(model, rank={"features.0": 3})
    torch.testing.assert_close(exact(images), model(images), rtol=1e-4, atol=1e-5)
