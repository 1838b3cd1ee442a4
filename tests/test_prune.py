"""Pruning: hand-checked masks, masks that hold through momentum SGD, the schedule, prune-retrain."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from squeezenet.compress.pipeline import prune_model
from squeezenet.compress.prune import (
    apply_masks,
    iterative_pruning,
    magnitude_masks,
    mask_sparsities,
    remove_masks,
    sensitivity_masks,
    sparsity_at,
)
from squeezenet.models import squeezenet_cifar, weight_layers

pytestmark = pytest.mark.usefixtures("one_thread")



class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


def hand_model() -> TwoLayers:
    model = TwoLayers()
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([0.1, -0.5]).reshape(2, 1, 1, 1))
        model.fc.weight.copy_(torch.tensor([[0.1, -0.5], [0.3, -0.05]]))
    return model


def test_magnitude_masks_keep_the_largest_weights_and_leave_the_model_alone():
    model = hand_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks = magnitude_masks(model, {"fc": 0.5, "default": 0.0})
    assert masks["fc"].tolist() == [[False, True], [True, False]]
    assert masks["conv"].all()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert magnitude_masks(model, 0.5)["conv"].flatten().tolist() == [False, True]
    with pytest.raises(ValueError, match="no weight layer named"):
        magnitude_masks(model, {"fc7": 0.5})


def test_sensitivity_rule_is_quality_times_std():
    model = hand_model()
    weights = torch.tensor([0.1, -0.5, 0.3, -0.05])
    threshold = 1.0 * weights.std()  # 0.3304: keeps -0.5 only
    assert 0.3 < threshold < 0.5
    masks = sensitivity_masks(model, {"fc": 1.0, "default": 0.0})
    assert masks["fc"].tolist() == [[False, True], [False, False]]
    assert mask_sparsities(masks) == {"conv": 0.0, "fc": 0.75}


def test_masks_hold_through_momentum_sgd_and_bake_to_plain_zeros():
    torch.manual_seed(0)
    model = squeezenet_cifar(base_e=8, incr_e=8, squeeze_ratio=0.25)
    masks = magnitude_masks(model, 0.7)
    apply_masks(model, masks)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-2)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    start = {name: module.weight.detach().clone() for name, module in weight_layers(model)}
    for _ in range(4):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    for name, module in weight_layers(model):
        assert (module.weight[~masks[name]] == 0).all(), name
        # the stored original did move where pruned (momentum and decay), but is never used
    moved = sum(int((module.weight != start[name]).sum()) for name, module in weight_layers(model))
    assert moved > 0
    remove_masks(model)
    assert not any(parametrize.is_parametrized(m) for _, m in weight_layers(model))
    for name, module in weight_layers(model):
        assert torch.equal(module.weight == 0, ~masks[name] | (module.weight == 0)), name
        assert int((module.weight[~masks[name]] != 0).sum()) == 0
    assert set(model.state_dict()) == set(squeezenet_cifar(base_e=8, incr_e=8, squeeze_ratio=0.25).state_dict())


def test_sparsity_schedule_is_a_cubic_ramp():
    assert sparsity_at(0, 0.1, 0.9, 2, 10) == 0.1
    assert sparsity_at(2, 0.1, 0.9, 2, 10) == 0.1
    assert sparsity_at(6, 0.1, 0.9, 2, 10) == pytest.approx(0.9 + (0.1 - 0.9) * 0.5**3)
    assert sparsity_at(10, 0.1, 0.9, 2, 10) == 0.9
    assert sparsity_at(99, 0.1, 0.9, 2, 10) == 0.9
    values = [sparsity_at(step, 0.0, 0.8, 0, 20) for step in range(21)]
    assert values == sorted(values)
    with pytest.raises(ValueError):
        sparsity_at(0, 0.9, 0.1, 0, 10)
    with pytest.raises(ValueError):
        sparsity_at(0, 0.0, 0.5, 10, 0)


def test_iterative_pruning_ramps_masks_and_trains_with_them_held():
    torch.manual_seed(0)
    model = squeezenet_cifar(base_e=8, incr_e=8, squeeze_ratio=0.25)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    seen = []

    def train_one_epoch(student):
        optimizer = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9)
        for _ in range(2):
            optimizer.zero_grad()
            nn.functional.cross_entropy(student(images), labels).backward()
            optimizer.step()
        zeros = {name: module.weight == 0 for name, module in weight_layers(student)}
        seen.append(zeros)

    masks = iterative_pruning(model, {"features.0": 0.2, "default": 0.6}, train_one_epoch, 3)
    sparsities = [mask_sparsities({name: ~zeros for name, zeros in round_.items()}) for round_ in seen]
    # the cubic ramp over three rounds: 1 - (1 - t/3)**3 of the final sparsity at t = 1, 2, 3
    assert sparsities[0]["classifier.1"] == pytest.approx(0.6 * (1 - (2 / 3) ** 3), abs=0.01)
    assert sparsities[1]["classifier.1"] == pytest.approx(0.6 * (1 - (1 / 3) ** 3), abs=0.01)
    assert sparsities[2]["classifier.1"] == pytest.approx(0.6, abs=0.01)
    for name, module in weight_layers(model):
        final = 0.2 if name == "features.0" else 0.6
        assert mask_sparsities(masks)[name] == pytest.approx(final, abs=1 / module.weight.numel())
        assert (module.weight[~masks[name]] == 0).all()
        assert not parametrize.is_parametrized(module)
    for earlier, later in zip(seen, seen[1:]):  # pruned weights never come back
        assert all((later[name] | ~earlier[name]).all() for name in earlier)


def test_prune_model_accepts_paper_layer_names():
    model = squeezenet_cifar(base_e=8, incr_e=8, squeeze_ratio=0.25)
    pruned = prune_model(model, sparsity={"conv1": 0.5, "fire2": 0.25, "default": 0.0})
    layers = dict(weight_layers(pruned))
    assert float((layers["features.0"].weight == 0).float().mean()) == pytest.approx(0.5, abs=0.01)
    assert float((layers["features.3.expand3x3"].weight == 0).float().mean()) == pytest.approx(0.25, abs=0.01)
    assert int((layers["classifier.1"].weight == 0).sum()) == 0
    assert int((dict(weight_layers(model))["features.0"].weight == 0).sum()) == 0  # the input is untouched
