"""`squeezenet reproduce` on a tiny real slice of CIFAR-10: the wiring of every Table 2 row, the
run cache, and the report files (the numbers of the tiny schedule mean nothing)."""

from __future__ import annotations

import csv
import os

import pytest
from conftest import cifar_slice as make_cifar_slice

from squeezenet.cli import main
from squeezenet.compress.sqz import read_sqz_model, sqz_breakdown
from squeezenet.models import count_parameters, fold_batch_norm, squeezenet_cifar
from squeezenet.reproduce import design_space, table2
from squeezenet.reproduce.runs import RunCache, settings_key
from squeezenet.reproduce.schedules import schedule_named
from squeezenet.reproduce.table2 import Table2Plan
from squeezenet.reproduce.training import accuracy, load_splits, per_class
from squeezenet.training_data import load_image_folder

# Batches of 8 on a tiny schedule: one thread, here and in --threads (two waited at OpenMP barriers
# on a shared machine, and `reproduce --threads` sets torch's count for the rest of the process).
pytestmark = pytest.mark.usefixtures("one_thread")

IMAGES_PER_CLASS = 6  # 4 train (the tiny schedule's 4 per class) + 2 validation
VAL_SPLIT = 2


@pytest.fixture()
def cifar_slice(cifar_train, tmp_path, monkeypatch):
    """The first images of every class of the real CIFAR-10 train split, as a folder of symlinks;
    every cache (decoded images, finished runs) lives under tmp_path."""
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    return make_cifar_slice(tmp_path / "cifar", per_class=IMAGES_PER_CLASS)


def _reproduce(cli, *args: str) -> dict:
    status, result = cli("reproduce", *args, "--json")
    assert status == 0, cli.err
    return result


ALEXNET_BYTES = 4 * 35_855_178  # AlexNet fp32: 4 bytes per parameter of the folded model


def _table2_rows_cache_and_reports(cifar_slice, tmp_path, cli, groups: tuple[str, ...]):
    """`reproduce table2 --rows GROUPS`: the rows, their .sqz files, the run cache and the reports."""
    out, results = tmp_path / "reports", tmp_path / "results"
    args = ("table2", "--data", str(cifar_slice), "--schedule", "tiny", "--val-split", str(VAL_SPLIT),
            "--out", str(out), "--results", str(results), "--threads", "1", "--rows", ",".join(groups))
    first = _reproduce(cli, *args)
    rows = first["rows"]
    squeezenet = rows[4:] if "alexnet" in groups else rows
    if "alexnet" in groups:
        labels = [(row["architecture"], row["approach"], row["data_type"]) for row in rows]
        assert labels[:4] == [("AlexNet", "None (baseline)", "32 bit"),
                              ("AlexNet", "SVD (rank 16 features.6, features.8)", "32 bit"),
                              ("AlexNet", "Network Pruning", "32 bit"), ("AlexNet", "Deep Compression (Huffman)", "5-8 bit")]
        assert rows[0]["original_bytes"] == ALEXNET_BYTES
        assert all(row["compressed_bytes"] < row["original_bytes"] for row in rows[1:4])
    assert [row["architecture"] for row in squeezenet] == ["SqueezeNet"] * 8
    assert [row["data_type"] for row in squeezenet[2:]] == ["8 bit", "8 bit", "6 bit", "6 bit", "4 bit", "4 bit"]
    # Sizes: every compression shrinks the model.
    assert all(row["compressed_bytes"] < row["original_bytes"] for row in squeezenet[1:])
    assert squeezenet[0]["compressed_bytes"] == 4 * count_parameters(fold_batch_norm(squeezenet_cifar(batch_norm=True)))
    for row in rows:
        assert row["reduction_vs_alexnet"] == pytest.approx(ALEXNET_BYTES / row["compressed_bytes"])
    # The compressed SqueezeNet rows are real .sqz files of exactly the reported size, readable back.
    # Their headers name the classes (the folder's, in label order) and the preprocessing, so predict
    # and evaluate need no flags. Their accuracy is the file's: the model read back from --results
    # scores exactly the reported top-1 / top-5 on the same validation images (a second path).
    val = load_splits(cifar_slice, schedule_named("tiny"), val_split=VAL_SPLIT, show_progress=False).val
    for row in squeezenet[2:]:
        assert os.path.getsize(row["file"]) == row["compressed_bytes"] == sqz_breakdown(row["file"])["total"]
        model = read_sqz_model(row["file"])
        assert count_parameters(model) == squeezenet[0]["compressed_bytes"] // 4
        assert model.class_names == sorted(path.name for path in cifar_slice.iterdir()) and model.preprocess == "cifar"
        again = accuracy(model, val)
        assert (again["top1"], again["top5"], again["val_images"]) == (row["top1"], row["top5"], len(val))
    assert squeezenet[4]["compressed_bytes"] < squeezenet[2]["compressed_bytes"]  # 6 bits are smaller than 8
    runs = 9 if "alexnet" in groups else 5
    assert first["runs_computed"] == runs and first["runs_reused"] == 0
    # The reports: a markdown table with the stamp, and a csv with one line per row.
    text = (out / "table2.md").read_text()
    assert text.count("\n| CIFAR-10 |") == len(rows) == 4 * ("alexnet" in groups) + 8
    assert f"Command: `squeezenet reproduce table2 --data {cifar_slice}" in text and "Machine: " in text and "Date: " in text
    with open(out / "table2.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [int(line["compressed_bytes"]) for line in table] == [row["compressed_bytes"] for row in rows]
    # A rerun refuses to overwrite the reports and the .sqz files (committed ones, in the repository)...
    report_before = (out / "table2.md").read_bytes()
    assert cli("reproduce", *args)[0] == 2
    error = cli.err.strip()
    assert str(out / "table2.md") in error and "--force" in error and "\n" not in error
    assert (out / "table2.md").read_bytes() == report_before
    # ... and with --force redoes nothing and reports the same rows.
    second = _reproduce(cli, *args, "--force")
    assert second["runs_computed"] == 0 and second["runs_reused"] == runs
    assert [row["compressed_bytes"] for row in second["rows"]] == [row["compressed_bytes"] for row in rows]
    assert [row["top1"] for row in second["rows"]] == [row["top1"] for row in rows]


def test_table2_squeezenet_rows_cache_and_reports(cifar_slice, tmp_path, cli):
    """Every CI run: the SqueezeNet row group (baseline, pruning, 8/6/4-bit Deep Compression in both
    coders), its .sqz files, the run cache and the reports. The AlexNet rows: the slow test below."""
    _table2_rows_cache_and_reports(cifar_slice, tmp_path, cli, ("squeezenet",))


@pytest.mark.slow
def test_table2_every_row_cache_and_reports(cifar_slice, tmp_path, cli, monkeypatch):
    # The default SVD row factorises the two 4096x4096 fc layers (a full SVD, ~25 s of CPU each);
    # the wiring check factorises two convolutions instead, through the same code.
    plan = Table2Plan(alexnet_svd_rank=16, alexnet_svd_layers=("features.6", "features.8"))
    monkeypatch.setattr(table2, "TABLE2_PLAN", plan)
    _table2_rows_cache_and_reports(cifar_slice, tmp_path, cli, ("alexnet", "squeezenet"))


def test_design_space_and_bypass_reports(cifar_slice, tmp_path, cli, monkeypatch):
    # Two points per sweep keep the test short; the sweep code is the one the CLI runs.
    monkeypatch.setattr(design_space, "SQUEEZE_RATIOS", (0.125, 0.25))
    monkeypatch.setattr(design_space, "PCT3X3_VALUES", (0.25, 0.5))
    out = tmp_path / "reports"
    common = ("--data", str(cifar_slice), "--schedule", "tiny", "--val-split", str(VAL_SPLIT), "--out", str(out))
    sweep = _reproduce(cli, "design-space", *common)
    assert [(row["sweep"], row["squeeze_ratio"], row["pct3x3"]) for row in sweep["rows"]] == [
        ("squeeze ratio", 0.125, 0.5), ("squeeze ratio", 0.25, 0.5), ("pct3x3", 0.5, 0.25), ("pct3x3", 0.5, 0.5)]
    sizes = [row["parameters"] for row in sweep["rows"]]
    assert sizes[0] < sizes[1] and sizes[2] < sizes[3]  # more squeeze filters, more 3x3 filters: bigger
    # Every point trains with the schedule's 2 seeds: 2 runs per point, summarised by mean and spread.
    assert sweep["runs_computed"] == 8
    for row in sweep["rows"]:
        assert row["seeds"] == [0, 1] and len(row["top1_per_seed"]) == 2
        assert row["top1"] == pytest.approx(sum(row["top1_per_seed"]) / 2)
        assert row["top1_std"] == pytest.approx(abs(row["top1_per_seed"][0] - row["top1_per_seed"][1]) / 2 ** 0.5)
    with open(out / "design_space.csv") as handle:
        lines = list(csv.DictReader(handle))
    assert [line["seeds"] for line in lines] == ["0;1"] * 4
    assert [float(value) for value in lines[0]["top1_per_seed"].split(";")] == pytest.approx(
        sweep["rows"][0]["top1_per_seed"], abs=1e-4)
    assert float(lines[0]["top1_std"]) == pytest.approx(sweep["rows"][0]["top1_std"])
    markdown = (out / "design_space.md").read_text()
    assert "Top-1 (mean ± std)" in markdown and "sample standard deviation" in markdown
    first = sweep["rows"][0]
    assert f"{100 * first['top1']:.1f}% ± {100 * first['top1_std']:.1f}" in markdown
    # --cached-only trains nothing: it reports the finished runs and names the missing ones.
    partial = _reproduce(cli, "bypass", *common, "--cached-only")
    assert [row["bypass"] for row in partial["rows"]] == ["none"] and partial["missing"] == ["simple", "complex"]
    assert partial["runs_computed"] == 0 and "not finished" in (out / "bypass.md").read_text().lower()
    bypass = _reproduce(cli, "bypass", *common, "--force")  # replaces the --cached-only report
    vanilla, simple, complex_ = bypass["rows"]
    assert simple["parameters"] == vanilla["parameters"] < complex_["parameters"]
    # Vanilla is the SR=0.125 sweep point: both of its seeds are reused, so the seed is in the key.
    assert bypass["runs_computed"] == 4 and bypass["runs_reused"] == 2
    assert vanilla["top1_per_seed"] == sweep["rows"][0]["top1_per_seed"]
    for name in ("design_space.md", "bypass.md"):
        assert "Command: `squeezenet reproduce" in (out / name).read_text()
    for name in ("design_space_sr.png", "design_space_pct3x3.png", "bypass.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "design_space.csv").read_text().splitlines()) == 1 + 4


def test_imagenet_track_rows(published_net, imagenet_samples, tmp_path, published_sqz8):
    from squeezenet.reproduce.imagenet_track import imagenet_rows

    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted(imagenet_samples.glob("*.JPEG"))[:4]:
        os.symlink(path, photos / path.name)
    rows = imagenet_rows(RunCache(tmp_path / "runs"), photos, published_net, [], tmp_path / "work")
    published, reencoded = rows
    assert published["compressed_bytes"] == 675_763 and published["original_bytes"] == 4 * 1_248_424
    assert published["track"] == "ImageNet (2 sample photos)"  # the evaluation half only
    # The re-encoding is lossless: the same predictions from a smaller file.
    assert reencoded["compressed_bytes"] < published["compressed_bytes"]
    assert (reencoded["top1"], reencoded["top5"]) == (published["top1"], published["top5"])
    # It is `squeezenet compress --bits 8` of the .net (conftest's published_sqz8), byte for byte, and
    # every weight and bias is bit-identical to the published model's.
    assert published_sqz8.read_bytes() == open(reencoded["file"], "rb").read()
    assert reencoded["compressed_bytes"] == 542_720
    from squeezenet.weights import load_model

    original, decoded = load_model(published_net).state_dict(), read_sqz_model(reencoded["file"]).state_dict()
    assert original.keys() == decoded.keys()
    assert all(original[name].dtype == decoded[name].dtype and original[name].equal(decoded[name]) for name in original)


def test_run_cache_reuses_and_redoes(tmp_path):
    cache = RunCache(tmp_path)
    calls = []

    def compute(folder):
        calls.append(folder)
        (folder / "artifact.txt").write_text("made")
        return {"value": len(calls)}

    first = cache.run("step", {"lr": 0.1}, compute)
    again = cache.run("step", {"lr": 0.1}, compute)
    changed = cache.run("step", {"lr": 0.2}, compute)
    assert (first.result, again.result, changed.result) == ({"value": 1}, {"value": 1}, {"value": 2})
    assert again.reused and not changed.reused and first.folder == again.folder != changed.folder
    assert settings_key({"a": 1, "b": 2}) == settings_key({"b": 2, "a": 1})
    (first.folder / "result.json").write_text("{not json")  # a damaged record is redone, not trusted
    assert cache.run("step", {"lr": 0.1}, compute).result == {"value": 3}
    with pytest.raises(ValueError, match="plain JSON"):
        cache.run("step", {"lr": object()}, compute)


def test_per_class_subset(cifar_slice):
    train, val = load_image_folder(cifar_slice, preset="cifar", image_size=32, val_split=VAL_SPLIT,
                                   show_progress=False)
    subset = per_class(train, 3)
    assert len(train) == 40 and len(val) == 20 and len(subset) == 30
    assert subset.labels.bincount().tolist() == [3] * 10
    assert set(subset.paths) <= set(train.paths) and not set(subset.paths) & set(val.paths)


def test_bad_input_is_one_line_exit_2(tmp_path, cli):
    assert cli("reproduce", "table2", "--data", tmp_path / "missing", "--schedule", "tiny",
               "--out", tmp_path / "reports", "--results", tmp_path / "results")[0] == 2
    error = cli.err.strip()
    assert error.startswith("squeezenet reproduce: error:") and "missing" in error and "\n" not in error


def test_restore_batch_norm_computes_the_folded_function(cifar_slice):
    import torch

    from squeezenet.reproduce.deep_compression import restore_batch_norm
    from squeezenet.reproduce.training import calibration_inputs

    train, _ = load_image_folder(cifar_slice, preset="cifar", image_size=32, val_split=VAL_SPLIT, show_progress=False)
    inputs = calibration_inputs(train, 16)
    torch.manual_seed(0)
    trained = squeezenet_cifar(batch_norm=True)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for module in trained.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    folded = fold_batch_norm(trained.eval())
    restored = restore_batch_norm(folded, inputs)
    assert restored.spec.batch_norm and not folded.spec.batch_norm
    with torch.no_grad():
        expected = folded(inputs)
        assert torch.allclose(restored.eval()(inputs), expected, atol=1e-4, rtol=1e-4)
        # In train mode each BatchNorm normalises by the batch's own statistics, which equal the
        # recorded ones on the calibration batch: the function is the same there too (dropout off).
        restored.train()
        for module in restored.modules():
            if isinstance(module, torch.nn.Dropout):
                module.eval()
        assert torch.allclose(restored(inputs), expected, atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="still has BatchNorm"):
        restore_batch_norm(trained, inputs)


def test_equal_time_schedule_trains_squeezenet_for_its_own_epochs(cifar_slice, tmp_path):
    from dataclasses import replace

    from squeezenet.models import build_model
    from squeezenet.reproduce.schedules import schedule_named
    from squeezenet.reproduce.training import load_splits

    schedule = replace(schedule_named("tiny"), squeezenet_epochs=2)
    assert "AlexNet 1 epoch(s), SqueezeNet 2 (the same training time)" in schedule.describe()
    splits = load_splits(cifar_slice, schedule, val_split=VAL_SPLIT, show_progress=False)
    run = table2._baseline(RunCache(tmp_path / "runs"), "squeezenet", lambda: build_model(table2.SQUEEZENET_ARCH),
                           splits, schedule, False)
    assert run.result["training"]["epochs"] == 2
    assert [record["epoch"] for record in run.result["training"]["history"]] == [1, 2]


def _refusal(cli, *args: str) -> str:
    assert cli("reproduce", *args)[0] == 2
    error = cli.err.strip()
    assert error.startswith("squeezenet reproduce: error:") and "\n" not in error
    return error


def test_output_paths_are_checked_before_any_work(cifar_slice, tmp_path, cli):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    runs = tmp_path / "runs"
    common = ("--data", str(cifar_slice), "--schedule", "tiny", "--val-split", str(VAL_SPLIT), "--run-cache", str(runs))
    error = _refusal(cli, "design-space", *common, "--out", str(a_file))
    assert "--out" in error and "is a file" in error
    error = _refusal(cli, "table2", *common, "--out", str(tmp_path / "reports"), "--results", str(a_file / "sub"))
    assert "--results" in error and "cannot be created" in error
    error = _refusal(cli, "bypass", "--data", str(cifar_slice), "--schedule", "tiny", "--out", str(tmp_path / "reports"),
                     "--run-cache", str(a_file))
    assert "--run-cache" in error
    error = _refusal(cli, "bypass", *common, "--out", str(tmp_path / "reports"), "--cache-dir", str(a_file))
    assert "--cache-dir" in error
    # Nothing was read or trained: no run folder, no decoded-image cache, no report folder.
    assert not runs.exists() and not (tmp_path / "cache").exists() and not (tmp_path / "reports").exists()


def test_cache_dir_is_the_decoded_image_cache(cifar_slice, tmp_path, cli):
    images, runs = tmp_path / "decoded", tmp_path / "runs"
    result = _reproduce(cli, "bypass", "--data", str(cifar_slice), "--schedule", "tiny", "--val-split", str(VAL_SPLIT),
                        "--out", str(tmp_path / "reports"), "--cache-dir", str(images), "--run-cache", str(runs),
                        "--cached-only")
    assert result["runs_computed"] == 0 and result["missing"] == ["none", "simple", "complex"]
    assert any(images.iterdir())  # the decoded images went where --cache-dir says
    assert not (tmp_path / "cache").exists()  # ... and not to the default cache


def test_imagenet_options_come_in_pairs(cifar_slice, tmp_path, published_net, imagenet_samples, cli):
    common = ("table2", "--data", str(cifar_slice), "--schedule", "tiny", "--out", str(tmp_path / "reports"),
              "--run-cache", str(tmp_path / "runs"))
    error = _refusal(cli, *common, "--imagenet-photos", str(imagenet_samples))
    assert "--imagenet-photos needs --imagenet-net" in error
    error = _refusal(cli, *common, "--imagenet-net", str(published_net))
    assert "--imagenet-net needs --imagenet-photos" in error
    error = _refusal(cli, *common, "--imagenet-sqz", str(published_net))
    assert "--imagenet-sqz needs" in error
    assert "table2 only" in _refusal(cli, "bypass", *common[1:], "--imagenet-net", str(published_net))
    assert not (tmp_path / "runs").exists()


def test_schedule_help_lists_every_schedule(capsys):
    from squeezenet.reproduce.schedules import SCHEDULES

    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, schedule in SCHEDULES.items():
        assert schedule.summary and f"{name}: {' '.join(schedule.summary.split())}" in text
