"""Test-time augmentation sums the logits of exactly the mirrored and shifted views, with their weights."""

import numpy as np
import pytest
import torch
from conftest import sorted_names
from PIL import Image
from torch import nn

from squeezenet.test_time_augmentation import augmented_logits


class _ReadsPixels(nn.Module):
    """A stand-in model whose 'logits' are the pixels at the centre (16, 16) and the corner (0, 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.layouts: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.layouts.append(x.is_contiguous(memory_format=torch.channels_last))
        return torch.cat([x[:, :, 16, 16], x[:, :, 0, 0]], dim=1)


@pytest.fixture
def cifar_batch(cifar_train) -> torch.Tensor:
    """Four real CIFAR-10 images as a float NCHW batch in channels_last memory, as the trainer feeds them."""
    paths = [cifar_train / name / sorted_names(cifar_train / name)[0] for name in ("airplane", "cat", "ship", "truck")]
    pixels = np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)  # NHWC storage: channels_last


def test_no_augmentation_is_the_model_itself(cifar_batch):
    model = _ReadsPixels()
    assert torch.equal(augmented_logits(model, cifar_batch), model(cifar_batch))
    assert len(model.layouts) == 2  # one pass through augmented_logits, one direct


def test_flip_and_shift_views_and_weights(cifar_batch):
    x, model = cifar_batch, _ReadsPixels()
    got = augmented_logits(model, x, flip=True, shift=2)
    mirrored = x.flip(3)
    expected = torch.zeros_like(got)
    for view in (x, mirrored):
        # Unshifted (weight 1); moved by 2 pixels each way (weight 1/2). The up-left copy's corner comes
        # from the reflect padding: pixel (-2, -2) mirrors to (2, 2).
        expected += torch.cat([view[:, :, 16, 16], view[:, :, 0, 0]], 1)
        expected += 0.5 * torch.cat([view[:, :, 14, 14], view[:, :, 2, 2]], 1)
        expected += 0.5 * torch.cat([view[:, :, 18, 18], view[:, :, 2, 2]], 1)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)  # same terms, other summation order
    assert not torch.equal(got, augmented_logits(model, x, flip=True))  # the shifted views count
    assert len(model.layouts) == 6 + 2  # 6 views with the flip and the shifts, 2 with the flip alone
    assert all(model.layouts)  # every view keeps the channels_last memory the model was given


def test_bad_shifts_are_refused(cifar_batch):
    with pytest.raises(ValueError, match="at least 0 pixels"):
        augmented_logits(_ReadsPixels(), cifar_batch, shift=-1)
    with pytest.raises(ValueError, match="larger than 32x32"):
        augmented_logits(_ReadsPixels(), cifar_batch, shift=32)
