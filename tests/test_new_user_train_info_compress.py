"""What a new user met in a fresh clone (issue 17): one-line errors instead of tracebacks, options
that were silently ignored, `info` reporting what it loaded, and training and retraining results
that are shown rather than hidden."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import CIFAR_TRAIN, REPO, cifar_slice, last_json

from squeezenet.commands import compress as compress_command
from squeezenet.commands import train as train_command
from squeezenet.models import ARCHITECTURES, build_model, squeezenet_cifar
from squeezenet.weights import save_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

CIFAR_SQZ = REPO / "results" / "cifar10" / "squeezenet_cifar_dc6bit_ans.sqz"


THREE = ("airplane", "frog", "truck")


def _run(cli, *argv) -> tuple[int, str, str]:
    code, _ = cli(*argv)
    return code, cli.out, cli.err


def _one_line_error(cli, *argv) -> str:
    code, _, err = _run(cli, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# 1. Counts below 1: one line, not a traceback, and 0 classes is not silently 1000.

@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("num_classes", [0, -5])
def test_every_builder_refuses_fewer_than_one_class(arch, num_classes):
    with torch.device("meta"), pytest.raises(ValueError, match="at least 1"):
        build_model(arch, num_classes=num_classes)


@pytest.mark.parametrize("arch", ["squeezenet1_1", "alexnet", "squeezenet_cifar"])
@pytest.mark.parametrize("num_classes", ["0", "-5"])
def test_info_refuses_fewer_than_one_class(arch, num_classes, cli):
    line = _one_line_error(cli, "info", "--arch", arch, "--num-classes", num_classes)
    assert f"--num-classes must be at least 1, got {num_classes}" in line


@pytest.mark.parametrize("option, value, message", [
    ("--threads", "0", "threads must be at least 1, got 0"),
    ("--threads", "-1", "threads must be at least 1, got -1"),
    ("--workers", "-1", "workers must be at least 0, got -1"),
    ("--weight-decay", "-1", "weight decay must be at least 0, got -1.0"),
])
def test_train_refuses_bad_counts_before_touching_the_run_folder(option, value, message, tmp_path, cli):
    out = tmp_path / "run"
    line = _one_line_error(cli, "train", "--arch", "squeezenet_cifar", "--data", str(CIFAR_TRAIN),
                           "--out", str(out), option, value)
    assert message in line
    assert not out.exists()


# 2 and 3. info reports what it loaded, and refuses options it would ignore.

def test_info_reports_the_loaded_architecture_and_refuses_a_different_arch(tmp_path, cli):
    torch.manual_seed(0)
    checkpoint = tmp_path / "small.pth"
    save_checkpoint(checkpoint, squeezenet_cifar())
    # squeezenet1_1 has the same layer shapes as squeezenet_cifar, so only the specs tell them apart.
    line = _one_line_error(cli, "info", "--weights", str(checkpoint), "--arch", "squeezenet1_1")
    assert "holds a squeezenet_cifar model, not --arch squeezenet1_1" in line
    code, out, _ = _run(cli, "info", "--weights", str(checkpoint), "--arch", "squeezenet_cifar", "--json")
    info = last_json(out)
    assert code == 0 and info["arch"] == "squeezenet_cifar" and info["input_size"] == 32 and info["num_classes"] == 10
    line = _one_line_error(cli, "info", "--weights", str(checkpoint), "--num-classes", "10")
    assert "--num-classes goes only with --arch" in line


def test_info_accepts_the_batch_norm_arch_of_a_folded_sqz(cli):
    code, out, _ = _run(cli, "info", "--weights", str(CIFAR_SQZ), "--arch", "squeezenet1_0_cifar_bn", "--json")
    info = last_json(out)
    assert code == 0 and info["arch"] == "squeezenet1_0_cifar"  # the file holds the folded form
    assert info["nonzero_params"] < info["params"]  # pruned weights are counted from the file


def test_info_for_an_architecture_has_no_nonzero_count(cli):
    code, out, _ = _run(cli, "info", "--arch", "squeezenet_cifar", "--num-classes", "7", "--json")
    info = last_json(out)
    assert code == 0 and info["nonzero_params"] is None and info["num_classes"] == 7
    code, out, _ = _run(cli, "info", "--arch", "squeezenet_cifar")
    assert code == 0 and "nonzero_params  n/a (--arch alone has no trained weights" in out


# 4 to 6. compress and decompress options.

@pytest.mark.parametrize("command, out_name, message", [
    ("compress", "plain.txt", "--out must end in .sqz, got plain.txt"),
    ("decompress", "plain.txt", "--out must end in .pth, .pt or .safetensors, got plain.txt"),
])
def test_output_suffix_is_checked(command, out_name, message, published_net, tmp_path, cli):
    line = _one_line_error(cli, command, "--weights", str(published_net), "--out", str(tmp_path / out_name))
    assert message in line
    assert not (tmp_path / out_name).exists()


@pytest.mark.parametrize("option, value", [
    ("--epochs", "2"), ("--prune-rounds", "3"), ("--lr", "0.1"), ("--centroid-lr", "0.01"), ("--val-split", "5"),
    ("--batch-size", "64"),
])
def test_compress_refuses_retraining_options_without_finetune_data(option, value, published_net, tmp_path, cli):
    out = tmp_path / "x.sqz"
    line = _one_line_error(cli, "compress", "--weights", str(published_net), "--out", str(out), "--prune", "0.5",
                           option, value)
    assert f"{option} only apply with --finetune-data" in line
    assert not out.exists()


@pytest.mark.parametrize("option", ["--epochs", "--batch-size", "--prune-rounds"])
def test_compress_names_the_count_below_one(option, published_net, tmp_path, cli):
    line = _one_line_error(cli, "compress", "--weights", str(published_net), "--out", str(tmp_path / "x.sqz"),
                           "--prune", "0.5", "--finetune-data", str(tmp_path), option, "0")
    assert f"{option} must be at least 1, got 0" in line


def test_train_out_on_a_file_and_a_batch_larger_than_the_data(tmp_path, cli):
    data = cifar_slice(tmp_path / "data", THREE, 6)
    common = ["train", "--arch", "squeezenet_cifar", "--data", str(data), "--epochs", "1",
              "--cache-dir", str(tmp_path / "cache")]
    taken = tmp_path / "notes.txt"
    taken.write_text("not a run folder")
    line = _one_line_error(cli, *common, "--batch-size", "6", "--out", str(taken))
    assert f"--out {taken} is a file; give a run folder" in line
    line = _one_line_error(cli, *common, "--out", str(tmp_path / "run"))
    assert "the batch size 512 is larger than the 18 training images; pass --batch-size N (at most 18)" in line
    assert not (tmp_path / "run").exists()


# 7, 9 and 10. Training: validation lines, the summary without validation, resume checks.

def test_training_reports_validation_and_resume_refuses_other_data(tmp_path, cli, capsys):
    data = cifar_slice(tmp_path / "data", THREE)
    other = cifar_slice(tmp_path / "other", ("airplane", "frog", "ship"))
    run = tmp_path / "run"
    common = ["train", "--arch", "squeezenet_cifar_bn", "--epochs", "1", "--batch-size", "12",
              "--cache-dir", str(tmp_path / "cache"), "--threads", "1"]
    code, out, err = _run(cli, *common, "--data", str(data), "--val-split", "2", "--out", str(run))
    assert code == 0, err
    epoch_lines = [line for line in err.splitlines() if line.startswith("epoch 1/1: loss ")]
    assert len(epoch_lines) == 1 and "validation top-1 " in epoch_lines[0] and "images/s" in epoch_lines[0]
    assert "validation top-1 " in out and "no validation set" not in out

    line = _one_line_error(cli, *common, "--data", str(data), "--val-split", "3", "--out", str(run), "--resume")
    assert "was trained with --val-split 2, not 3" in line
    line = _one_line_error(cli, *common, "--data", str(other), "--val-split", "2", "--out", str(run), "--resume")
    assert f"was trained with --data {data}, not {other}" in line

    missing = tmp_path / "never-trained"
    line = _one_line_error(cli, *common, "--data", str(data), "--out", str(missing), "--resume")
    assert "nothing to resume" in line
    assert not missing.exists()

    code, out, err = _run(cli, *common, "--data", str(data), "--out", str(tmp_path / "unvalidated"), "--json")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1  # --json: stdout is the one JSON object
    result = json.loads(out)
    assert result["top1"] is None
    train_command.summarize(result)
    assert "no validation set (pass --val-split K or --val-data DIR)" in capsys.readouterr().out


# 8. compress shows each retraining stage.

def test_compress_labels_and_prints_each_retraining_stage(tmp_path, cli, capsys, monkeypatch):
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    classes = ("airplane", "frog", "truck")
    data = cifar_slice(tmp_path / "data", classes, 8)
    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny.pth"
    save_checkpoint(checkpoint, squeezenet_cifar(num_classes=3, base_e=8, incr_e=8, squeeze_ratio=0.25,
                                                 batch_norm=True), classes=list(classes), preprocess="cifar")
    code, out, err = _run(cli, "compress", "--weights", str(checkpoint), "--out", str(tmp_path / "tiny.sqz"),
                          "--prune", "0.5", "--prune-rounds", "2", "--bits", "4", "--finetune-data", str(data),
                          "--val-split", "2", "--batch-size", "9", "--json")
    assert code == 0, err
    result = last_json(out)
    assert [record["stage"] for record in result["retraining"]] == ["prune round 1/2", "prune round 2/2", "centroids"]
    compress_command.summarize(result)
    lines = capsys.readouterr().out.splitlines()
    stage_lines = lines[lines.index("retraining:") + 1:]
    assert len(stage_lines) == 3
    for line, record in zip(stage_lines, result["retraining"]):
        assert line.strip().startswith(record["stage"] + " ")
        assert f"loss {record['loss']:.4f}, validation top-1 {100 * record['top1']:.1f}%" in line
