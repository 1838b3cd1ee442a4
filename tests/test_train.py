"""The trainer on a small slice of CIFAR-10: steps, metrics log, final checkpoint, bad input."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from squeezenet.cli import build_parser, main
from squeezenet.data import LabelledImages
from squeezenet.evaluate import evaluate
from squeezenet.train import (TrainConfig, config_for_preset, evaluate_accuracy, learning_rate, train,
                              training_crop_side)
from squeezenet.training_data import InputPipeline, load_image_folder, to_model_input
from squeezenet.weights import load_model

from conftest import CIFAR_TRAIN as CIFAR


def _slice(folder: Path, classes=("airplane", "frog", "truck"), per_class=24) -> Path:
    """An ImageFolder of symlinks to the first ``per_class`` images of some CIFAR-10 classes."""
    for name in classes:
        (folder / name).mkdir(parents=True)
        for source in sorted((CIFAR / name).iterdir())[:per_class]:
            (folder / name / source.name).symlink_to(source)
    return folder


@pytest.fixture
def cifar_slice(tmp_path):
    return _slice(tmp_path / "data")


def _config(tmp_path, data, **overrides) -> TrainConfig:
    settings = dict(arch="squeezenet_cifar_bn", data=str(data), val_split=4, epochs=2, batch_size=12, lr=0.05,
                    cache_dir=str(tmp_path / "cache"), threads=1, show_progress=False)
    return config_for_preset("fast", **{**settings, **overrides})


def test_learning_rate_schedules():
    poly = config_for_preset("paper", data="x")
    assert (poly.lr, poly.momentum, poly.weight_decay, poly.batch_size) == (0.04, 0.9, 2e-4, 512)
    assert learning_rate(0, 100, poly) == pytest.approx(0.04)
    assert learning_rate(50, 100, poly) == pytest.approx(0.02)
    assert learning_rate(99, 100, poly) == pytest.approx(0.0004)
    cycle = config_for_preset("fast", data="x", lr=1.0, warmup_fraction=0.25)
    assert learning_rate(0, 100, cycle) == pytest.approx(0.1)
    assert learning_rate(25, 100, cycle) == pytest.approx(1.0)
    assert learning_rate(100, 100, cycle) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown preset"):
        config_for_preset("slow")


def test_val_split_holds_out_last_images_of_each_class(cifar_slice, tmp_path):
    train_set, val_set = load_image_folder(cifar_slice, preset="cifar", image_size=32, val_split=5,
                                           cache_dir=tmp_path / "cache", show_progress=False)
    assert len(train_set) == 3 * 19 and len(val_set) == 3 * 5
    held_out = {(p.parent.name, p.name) for p in val_set.paths}
    expected = {(c, f"{n:04d}.jpg") for c in ("airplane", "frog", "truck") for n in range(19, 24)}
    assert held_out == expected
    # The cache holds exactly the decoded JPEG pixels.
    first = val_set.pixels[val_set.pixel_rows[0]]
    assert np.array_equal(first, np.asarray(Image.open(val_set.paths[0]).convert("RGB")))


def test_augmentation_shares_add_up_to_the_global_batch(cifar_slice, tmp_path):
    """A DDP process augments its rows exactly as a single process augments the same rows."""
    train_set, _ = load_image_folder(cifar_slice, preset="cifar", image_size=32, cache_dir=tmp_path / "cache",
                                     show_progress=False)
    pixels = torch.from_numpy(np.array(train_set.pixels[:8]))
    cifar = InputPipeline("cifar", 32)
    whole = to_model_input(pixels, cifar, generator=torch.Generator().manual_seed(7))
    halves = [to_model_input(pixels[rows], cifar, generator=torch.Generator().manual_seed(7), share=rows, global_size=8)
              for rows in (slice(0, 4), slice(4, 8))]
    assert torch.equal(torch.cat(halves), whole)
    assert whole.is_contiguous(memory_format=torch.channels_last)
    # Not the identity: pad-4 random crops and flips moved pixels.
    plain = to_model_input(pixels, cifar)
    assert not torch.equal(plain, whole)


def test_train_writes_log_and_a_checkpoint_that_evaluate_reads(cifar_slice, tmp_path):
    run = tmp_path / "run"
    result = train(_config(tmp_path, cifar_slice, out=str(run), precision="fp32", epochs=3))
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    for line in lines:
        assert set(line) >= {"epoch", "loss", "top1", "top5", "images_per_second", "lr", "seconds"}
    assert lines[-1]["loss"] < lines[0]["loss"]  # it learns something
    model = load_model(run / "final.pth")
    assert model.spec.num_classes == 3 and model.spec.batch_norm
    # The evaluate command's own pipeline (cifar preset) scores the held-out images identically.
    _, val_set = load_image_folder(cifar_slice, preset="cifar", image_size=32, val_split=4,
                                   cache_dir=tmp_path / "cache", show_progress=False)
    ours = evaluate_accuracy(model, val_set)
    theirs = evaluate(model, LabelledImages(tuple(val_set.paths), tuple(val_set.labels.tolist()),
                                            val_set.class_names), "cifar", show_progress=False)
    assert ours["images"] == theirs["images"] == 12
    assert ours["top1"] == pytest.approx(theirs["top1"]) == pytest.approx(result["top1"])


def test_flip_and_shift_evaluation_add_the_augmented_views_logits(cifar_slice, tmp_path):
    run = tmp_path / "run"
    result = train(_config(tmp_path, cifar_slice, out=str(run), precision="fp32", epochs=2, eval_flip=True,
                           eval_shift=2))
    model = load_model(run / "final.pth").eval()
    _, val_set = load_image_folder(cifar_slice, preset="cifar", image_size=32, val_split=4,
                                   cache_dir=tmp_path / "cache", show_progress=False)
    pixels = torch.from_numpy(np.array(val_set.pixels[val_set.pixel_rows]))
    inputs = to_model_input(pixels, InputPipeline("cifar", 32))

    def moved(view, by):  # the 32x32 window `by` pixels down-right of the reflect-padded view
        return F.pad(view, (2, 2, 2, 2), mode="reflect")[:, :, 2 + by:34 + by, 2 + by:34 + by]

    with torch.no_grad():
        plain, mirrored = model(inputs), model(inputs.flip(3))
        shifted = sum(model(view) + 0.5 * model(moved(view, -2)) + 0.5 * model(moved(view, 2))
                      for view in (inputs, inputs.flip(3)))
    assert not torch.allclose(plain, mirrored)  # the mirror image is a different input

    def accuracy(logits):
        return float((logits.argmax(1) == val_set.labels).float().mean())

    assert evaluate_accuracy(model, val_set)["top1"] == pytest.approx(accuracy(plain))
    assert evaluate_accuracy(model, val_set, flip=True)["top1"] == pytest.approx(accuracy(plain + mirrored))
    # The run validated with --eval-flip --eval-shift 2.
    assert evaluate_accuracy(model, val_set, flip=True, shift=2)["top1"] == pytest.approx(accuracy(shifted)) \
        == pytest.approx(result["top1"])
    # `squeezenet evaluate --flip [--shift 2]` scores the held-out JPEGs the same way.
    images = LabelledImages(tuple(val_set.paths), tuple(val_set.labels.tolist()), val_set.class_names)
    assert evaluate(model, images, "cifar", show_progress=False, flip=True)["top1"] == pytest.approx(accuracy(plain + mirrored))
    assert evaluate(model, images, "cifar", show_progress=False, flip=True, shift=2)["top1"] == pytest.approx(accuracy(shifted))


def test_train_keeps_parametrized_masks(cifar_slice, tmp_path):
    """Retraining a pruned model: a mask held by a parametrization stays in force."""
    from torch.nn.utils import parametrize

    from squeezenet.models import build_model
    from squeezenet.train import train_model

    class Mask(torch.nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, weight):
            return weight * self.mask

    torch.manual_seed(0)
    model = build_model("squeezenet_cifar_bn", num_classes=3)
    layer = model.features[0]
    mask = (torch.rand_like(layer.weight) > 0.5).float()
    parametrize.register_parametrization(layer, "weight", Mask(mask))
    train_set, val_set = load_image_folder(cifar_slice, preset="cifar", image_size=32, val_split=4,
                                           cache_dir=tmp_path / "cache", show_progress=False)
    before = layer.parametrizations.weight.original.detach().clone()
    train_model(model, train_set, val_set, _config(tmp_path, cifar_slice, epochs=1))
    assert not torch.equal(layer.parametrizations.weight.original, before)
    assert torch.all(layer.weight[mask == 0] == 0)


def _cli(args, capsys):
    code = main(["train", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_empty_folder_and_one_class_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = _cli(["--arch", "squeezenet_cifar", "--data", str(tmp_path / "empty"), "--out",
                         str(tmp_path / "run")], capsys)
    assert code == 2 and "no images in" in err and len(err.strip().splitlines()) == 1
    one = _slice(tmp_path / "one", classes=("cat",), per_class=5)
    code, _, err = _cli(["--arch", "squeezenet_cifar", "--data", str(one), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "only one class (cat)" in err and len(err.strip().splitlines()) == 1


def test_corrupt_jpeg_is_skipped_counted_and_reported(cifar_slice, tmp_path, capsys):
    (cifar_slice / "frog" / "0005x.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    code, out, _ = _cli(["--arch", "squeezenet_cifar_bn", "--data", str(cifar_slice), "--val-split", "4",
                         "--epochs", "1", "--batch-size", "12", "--cache-dir", str(tmp_path / "cache"),
                         "--out", str(tmp_path / "run"), "--json"], capsys)
    result = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert result["skipped_images"] == 1 and result["skipped"][0].endswith("frog/0005x.jpg")


def test_resume_from_another_arch_and_a_busy_folder_exit_2(cifar_slice, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--data", str(cifar_slice), "--val-split", "4", "--epochs", "1", "--batch-size", "12",
              "--cache-dir", str(tmp_path / "cache"), "--out", str(run), "--json"]
    assert _cli(["--arch", "squeezenet_cifar_bn", *common], capsys)[0] == 0
    code, _, err = _cli(["--arch", "alexnet_cifar", *common, "--resume"], capsys)
    assert code == 2 and "is a run of squeezenet_cifar_bn, not of alexnet_cifar" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = _cli(["--arch", "squeezenet_cifar_bn", *common], capsys)
    assert code == 2 and "already holds a run" in err
    with open(run / "train.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, _, err = _cli(["--arch", "squeezenet_cifar_bn", *common, "--resume", "--epochs", "2"], capsys)
    assert code == 2 and "another training run is using" in err


def test_classifier_learning_rate_and_initial_bias():
    """Fast preset: conv10 (behind SqueezeNet's final ReLU) starts with bias 1 and learns 10x slower."""
    from squeezenet.train import _optimizer, build_training_model

    config = config_for_preset("fast", arch="squeezenet_cifar_bn", data="x", dropout=0.0)
    model = build_training_model(config, num_classes=4)
    final_conv = model.classifier[1]
    assert model.spec.num_classes == 4 and model.spec.dropout == 0.0
    assert torch.equal(final_conv.bias, torch.ones(4))
    optimizer = _optimizer(model, config)
    scale_of = {id(p): (g["lr_scale"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    assert scale_of[id(final_conv.weight)] == (0.1, 5e-4)
    assert scale_of[id(final_conv.bias)] == (0.1, 0.0)
    assert scale_of[id(model.features[0].weight)] == (1.0, 5e-4)
    assert scale_of[id(model.features[1].weight)] == (1.0, 0.0)  # BatchNorm scale: no decay
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    paper = _optimizer(model, config_for_preset("paper", data="x"))
    assert all(g["lr_scale"] == 1.0 and g["weight_decay"] == 2e-4 for g in paper.param_groups)


def test_large_set_path_streams_through_transforms_v2_and_counts_bad_files(cifar_slice, tmp_path):
    """Over the cache limit the images stream through DataLoader workers; a corrupt file is skipped."""
    (cifar_slice / "truck" / "0003x.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    # 3 x 21 + 1 training files in batches of 16: every file is met in the epoch.
    config = _config(tmp_path, cifar_slice, epochs=1, val_split=3, batch_size=16, cache_limit_bytes=0, workers=0,
                     out=str(tmp_path / "run"))
    train_set, _ = load_image_folder(cifar_slice, preset="cifar", image_size=32, val_split=3, cache_limit_bytes=0,
                                     show_progress=False)
    assert train_set.pixels is None and len(train_set) == 3 * 21 + 1  # listed, not yet known to be bad
    result = train(config)
    assert result["skipped_images"] == 1 and result["skipped"][0].endswith("truck/0003x.jpg")
    assert not (tmp_path / "cache").exists()  # nothing was decoded into a cache
    assert 0.0 <= result["top1"] <= 1.0 and result["images_per_second"] > 0


def test_imagenet_preset_random_resized_crops_in_batch(cifar_slice, tmp_path):
    train_set, val_set = load_image_folder(cifar_slice, preset="imagenet", image_size=24, val_split=4,
                                           cache_dir=tmp_path / "cache", show_progress=False)
    assert train_set.pixels.shape[1:] == (27, 27, 3)  # 24 * 256 / 224, the centre-crop margin
    pixels = torch.from_numpy(np.array(train_set.pixels[train_set.pixel_rows[:6]]))
    augmented = to_model_input(pixels, InputPipeline("imagenet", 24), generator=torch.Generator().manual_seed(1))
    centre = to_model_input(pixels, InputPipeline("imagenet", 24))
    assert augmented.shape == centre.shape == (6, 3, 24, 24)
    assert not torch.allclose(augmented, centre)
    assert torch.isfinite(augmented).all()
    # A low-resolution phase gets RandomResizedCrops of its own side.
    smaller = to_model_input(pixels, InputPipeline("imagenet", 24, crop_size=16),
                             generator=torch.Generator().manual_seed(1))
    assert smaller.shape == (6, 3, 16, 16) and torch.isfinite(smaller).all()


def test_low_resolution_crops_are_windows_of_the_padded_images(cifar_slice, tmp_path):
    """A low-resolution epoch trains on 24-pixel windows of the pad-4 image at its own scale."""
    train_set, _ = load_image_folder(cifar_slice, preset="cifar", image_size=32, cache_dir=tmp_path / "cache",
                                     show_progress=False)
    pixels = torch.from_numpy(np.array(train_set.pixels[:6]))
    crops = to_model_input(pixels, InputPipeline("cifar", 32, channels_last=False, crop_size=24),
                           generator=torch.Generator().manual_seed(3))
    assert crops.shape == (6, 3, 24, 24)
    padded = to_model_input(torch.nn.functional.pad(pixels, (0, 0, 4, 4, 4, 4)),
                            InputPipeline("cifar", 40, channels_last=False))
    for crop, image in zip(crops, padded):
        windows = [image[:, top:top + 24, left:left + 24] for top in range(17) for left in range(17)]
        windows += [window.flip(2) for window in windows]
        assert any(torch.equal(crop, window) for window in windows)
    # The streamed path (transforms v2 in workers) gives crops of the same side.
    config = _config(tmp_path, cifar_slice, epochs=4, low_res_side=24, low_res_fraction=0.5)
    assert [training_crop_side(epoch, config) for epoch in range(4)] == [24, 24, None, None]
    from squeezenet.training_data import Batching, epoch_batches
    streamed, _ = load_image_folder(cifar_slice, preset="cifar", image_size=32, cache_limit_bytes=0,
                                    show_progress=False)
    batch = next(iter(epoch_batches(streamed, Batching(8, train=True, workers=0), epoch=0, crop_size=24)))
    assert batch.augmented and batch.pixels.shape == (8, 24, 24, 3)
    assert to_model_input(batch.pixels, InputPipeline("cifar", 32, crop_size=24)).shape == (8, 3, 24, 24)


def test_low_resolution_phase_and_sparse_evaluation_in_a_run(cifar_slice, tmp_path):
    run = tmp_path / "run"
    result = train(_config(tmp_path, cifar_slice, out=str(run), epochs=5, low_res_side=20, low_res_fraction=0.4,
                           eval_every=2))
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line.get("crop_side") for line in lines] == [20, 20, None, None, None]
    assert [line["epoch"] for line in lines if "top1" in line] == [2, 4, 5]  # every 2nd and the last
    assert result["top1"] == lines[-1]["top1"]
    assert load_model(run / "final.pth").spec.input_size == 32


def test_bad_low_resolution_and_evaluation_options_exit_2(cifar_slice, tmp_path, capsys):
    common = ["--arch", "squeezenet_cifar_bn", "--data", str(cifar_slice), "--val-split", "4", "--epochs", "1",
              "--batch-size", "12", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    for extra, message in ((["--low-res-side", "32"], "must be smaller than the input size 32"),
                           (["--low-res-side", "24", "--low-res-fraction", "1"], "fraction must be in [0, 1)"),
                           (["--eval-every", "0"], "eval-every must be at least 1"),
                           (["--eval-shift", "-1"], "eval-shift must be at least 0 pixels"),
                           (["--eval-shift", "32"], "evaluation shift of 32 pixels must be smaller than the input size 32")):
        code, _, err = _cli([*common, *extra], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "final.pth").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_train_on_gpu(cifar_slice, tmp_path):
    result = train(_config(tmp_path, cifar_slice, device="cuda", epochs=1, out=str(tmp_path / "run")))
    assert result["device"] == "cuda" and 0.0 <= result["top1"] <= 1.0
    assert load_model(tmp_path / "run" / "final.pth").spec.num_classes == 3


def test_config_defaults_come_from_the_preset_table():
    from squeezenet.train import TRAINING_RECIPES

    for preset, settings in TRAINING_RECIPES.items():
        config = TrainConfig(data="x", preset=preset)
        assert {name: getattr(config, name) for name in settings} == settings
    # An explicit value wins over the preset's, and checks still apply to the filled-in values.
    assert TrainConfig(data="x", preset="paper", lr=0.1).lr == 0.1
    with pytest.raises(ValueError, match="learning rate must be positive"):
        TrainConfig(data="x", lr=0.0)
    with pytest.raises(ValueError, match="unknown preset"):
        TrainConfig(data="x", preset="slow")


def test_every_config_field_is_a_train_flag(tmp_path, monkeypatch, capsys):
    """The flags are generated from TrainConfig: each field reaches the config the command builds."""
    from dataclasses import fields

    import squeezenet.train

    seen = []
    monkeypatch.setattr(squeezenet.train, "train", lambda config: seen.append(config) or {"epochs": config.epochs})
    required = ["--arch", "squeezenet_cifar", "--data", "d", "--out", str(tmp_path / "run")]
    assert _cli([*required, "--json"], capsys)[0] == 0
    assert seen[-1] == config_for_preset("fast", arch="squeezenet_cifar", data="d", out=str(tmp_path / "run"),
                                         show_progress=False)
    assert _cli([*required, "--preset", "paper", "--lr", "0.5", "--no-channels-last", "--eval-flip", "--val-split",
                 "3", "--threads", "2", "--no-nesterov", "--clip-grad-norm", "1.5", "--json"], capsys)[0] == 0
    config = seen[-1]
    assert (config.preset, config.lr, config.weight_decay, config.channels_last, config.eval_flip) == \
        ("paper", 0.5, 2e-4, False, True)
    assert (config.val_split, config.threads, config.nesterov, config.clip_grad_norm) == (3, 2, False, 1.5)
    # Every field but show_progress (the command's --json) has a flag of its own.
    flags = {action.dest for action in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    assert {f.name for f in fields(TrainConfig)} - flags == {"show_progress"}
    # argparse's own checks: choices, types, the validation folder or split.
    for extra in (["--augment", "none"], ["--epochs", "two"], ["--val-split", "3", "--val-data", "v"],
                  ["--on-bad-image", "ignore"]):
        with pytest.raises(SystemExit) as stop:
            _cli([*required, *extra], capsys)
        assert stop.value.code == 2


def test_training_state_is_a_plain_dict_on_disk(tmp_path):
    from squeezenet.training_state import TrainingState

    state = TrainingState(epoch=2, step=5, loss_sum=3.5, loss_count=7, history=[{"epoch": 1, "loss": 0.5}],
                          elapsed=1.25, rng_states=[torch.get_rng_state()])
    torch.save({"model": {}, **state.to_dict()}, tmp_path / "state.pth")
    loaded = TrainingState.from_dict(torch.load(tmp_path / "state.pth", weights_only=True))
    assert loaded.to_dict().keys() == state.to_dict().keys()
    assert (loaded.epoch, loaded.step, loaded.loss_sum, loaded.loss_count, loaded.history, loaded.elapsed) == \
        (2, 5, 3.5, 7, [{"epoch": 1, "loss": 0.5}], 1.25)
    assert torch.equal(loaded.rng_states[0], state.rng_states[0])
