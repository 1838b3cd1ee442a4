"""What a new user meets first (issue 17): outputs that must not replace inputs, file modes, missing
folders, class names, errors with --json, and flags that were silently ignored."""

import os
import stat
from pathlib import Path

import pytest
from conftest import CIFAR_CLASSES, REPO, cifar_slice, last_json

CIFAR_SQZ = REPO / "results" / "cifar10" / "squeezenet_cifar_dc8bit_huffman.sqz"
SUBSET = ("airplane", "cat", "dog")
PER_CLASS = 10


def run_in_process(cli, *args: str) -> tuple[int, str, str]:
    code, _ = cli(*args)
    return code, cli.out, cli.err


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def cifar_model():
    """The committed CIFAR model; each test sets the class names it needs."""
    from squeezenet.weights import load_model

    return load_model(CIFAR_SQZ)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def cifar_folder(root: Path, cifar_train: Path, classes, per_class: int = PER_CLASS) -> Path:
    """The first ``per_class`` photos of each class (0 makes an empty class folder): conftest's slice."""
    return cifar_slice(root, classes, per_class)


# 1. export never writes over its input, and --out must be the kind of path the format writes.

@pytest.mark.parametrize("out_name, format_", [
    ("m.sqz", "onnx"), ("m.sqz", "onnx-int8"), ("m.sqz", "c"), ("m.sqz/inside", "c"), ("link.onnx", "onnx"),
])
def test_export_refuses_to_overwrite_its_input(tmp_path, cli, out_name, format_):
    original = CIFAR_SQZ.read_bytes()
    model = tmp_path / "m.sqz"
    model.write_bytes(original)
    (tmp_path / "link.onnx").symlink_to(model)
    extra = ["--calibration-data", str(tmp_path)] if format_ == "onnx-int8" else []
    code, out, err = run_in_process(cli, "export", "--format", format_, "--weights", str(model),
                                    "--out", str(tmp_path / out_name), *extra)
    assert "would overwrite the input model" in one_line_error(code, err)
    assert model.read_bytes() == original


def test_onnx_export_needs_an_onnx_out(tmp_path, cli):
    code, out, err = run_in_process(cli, "export", "--format", "onnx", "--weights", str(CIFAR_SQZ),
                                    "--out", str(tmp_path / "x.sqz"))
    assert "does not end in .onnx" in one_line_error(code, err)
    assert not (tmp_path / "x.sqz").exists()


def test_output_over_input_helper_sees_hard_links(tmp_path):
    from squeezenet.commands._common import refuse_output_over_input

    model = tmp_path / "m.sqz"
    model.write_bytes(b"SQZ")
    os.link(model, tmp_path / "same.onnx")
    with pytest.raises(ValueError, match="would overwrite the input model"):
        refuse_output_over_input(tmp_path / "same.onnx", model)
    refuse_output_over_input(tmp_path / "other.onnx", model)  # a new name is fine
    refuse_output_over_input(tmp_path / "c-folder", model, files=("model.c",))


# 2. and 3. Modes of written files, and missing parent folders.

def test_atomic_write_gives_new_files_the_umask_mode_and_keeps_a_rewritten_files_mode(tmp_path, umask_022):
    from squeezenet.safe_io import atomic_write_bytes

    fresh = tmp_path / "fresh.bin"
    atomic_write_bytes(fresh, b"one")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
    os.umask(0o027)
    atomic_write_bytes(tmp_path / "group.bin", b"one")
    assert stat.S_IMODE((tmp_path / "group.bin").stat().st_mode) == 0o640
    fresh.chmod(0o604)
    atomic_write_bytes(fresh, b"two")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o604 and fresh.read_bytes() == b"two"


def test_output_folder_files_get_the_same_modes(tmp_path, umask_022):
    from squeezenet.export.output_folder import write_files

    folder = tmp_path / "engine"
    write_files(folder, {"model.c": b"int x;", "model.h": b""})
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o644}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    (folder / "model.c").chmod(0o600)
    write_files(folder, {"model.c": b"int y;", "model.h": b""})
    assert stat.S_IMODE((folder / "model.c").stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "model.h").stat().st_mode) == 0o644


def test_missing_parent_folders_are_created(tmp_path):
    from squeezenet.export.output_folder import write_files
    from squeezenet.safe_io import atomic_write_bytes

    atomic_write_bytes(tmp_path / "a" / "b" / "m.bin", b"x")
    assert (tmp_path / "a" / "b" / "m.bin").read_bytes() == b"x"
    write_files(tmp_path / "c" / "d" / "engine", {"model.h": b"h"})
    assert (tmp_path / "c" / "d" / "engine" / "model.h").read_bytes() == b"h"


# 12. Write errors name the target, never the hidden temporary.

def test_parent_that_is_a_file_is_one_line_naming_the_target(tmp_path):
    from squeezenet.safe_io import atomic_write_bytes

    (tmp_path / "plain").write_text("a file")
    target = tmp_path / "plain" / "m.sqz"
    with pytest.raises(OSError) as caught:
        atomic_write_bytes(target, b"x")
    assert str(caught.value) == f"cannot write {target}: {tmp_path / 'plain'} is a file, not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_read_only_folder_is_one_line_naming_the_target(tmp_path):
    from squeezenet.safe_io import atomic_write_bytes

    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError) as caught:
            atomic_write_bytes(folder / "m.sqz", b"x")
    finally:
        folder.chmod(0o755)
    assert str(caught.value) == f"cannot write {folder / 'm.sqz'}: permission denied"


def test_photo_shortage_says_how_many_the_folder_has(tmp_path, cifar_train):
    from squeezenet.export.photos import photo_paths

    folder = cifar_folder(tmp_path / "photos", cifar_train, ["cat"], per_class=2)
    everything = sorted((folder / "cat").iterdir())
    with pytest.raises(ValueError, match="it has 2, all excluded .* 4 more were asked for"):
        photo_paths(folder, 4, exclude=everything)


# 4. evaluate matches the folder's classes to the model's by name.

def test_a_class_subset_scores_as_it_does_within_the_full_folder(tmp_path, cifar_train, cifar_model):
    from squeezenet.data import find_images
    from squeezenet.evaluate import evaluate

    subset = find_images(cifar_folder(tmp_path / "subset", cifar_train, SUBSET))
    # The same photos inside a folder of all ten classes (the other seven empty): numbered by position.
    cifar_folder(tmp_path / "full", cifar_train, CIFAR_CLASSES, per_class=0)
    for name in SUBSET:
        for photo in subset.paths:
            if photo.parent.name == name:
                (tmp_path / "full" / name / photo.name).symlink_to(photo.resolve())
    full = find_images(tmp_path / "full")
    assert len(full.class_names) == 10 and len(subset.class_names) == 3

    cifar_model.class_names = None  # positions: the folder holds exactly the model's ten classes
    within_full = evaluate(cifar_model, full, "cifar", show_progress=False)
    cifar_model.class_names = list(CIFAR_CLASSES)
    alone = evaluate(cifar_model, subset, "cifar", show_progress=False)
    assert alone["images"] == within_full["images"] == 3 * PER_CLASS
    assert alone["top1"] == within_full["top1"] and alone["top5"] == within_full["top5"]
    assert alone["top1"] > 0.5  # a trained CIFAR model, on the right outputs


def test_a_subset_without_class_names_is_refused(tmp_path, cifar_train, cifar_model):
    from squeezenet.data import find_images
    from squeezenet.evaluate import evaluate

    cifar_model.class_names = None
    subset = find_images(cifar_folder(tmp_path / "subset", cifar_train, SUBSET, per_class=2))
    with pytest.raises(ValueError, match="3 classes and the model 10 without names"):
        evaluate(cifar_model, subset, "cifar", show_progress=False)


def test_imagenet_model_on_cifar_classes_is_refused_naming_them(tmp_path, cifar_train, published_net, cli):
    folder = cifar_folder(tmp_path / "cifar", cifar_train, SUBSET, per_class=2)
    code, out, err = run_in_process(cli, "evaluate", "--weights", str(published_net), "--data", str(folder),
                                    "--json")
    line = one_line_error(code, err)
    assert "the folder's classes airplane, cat, dog are not among the model's 1000 classes" in line
    assert last_json(out) == {"error": line}


def test_evaluate_progress_counts_images(tmp_path, cifar_train, cifar_model, monkeypatch):
    import squeezenet.evaluate as evaluate_module
    from squeezenet.data import find_images

    counted = []

    class Bar:
        def __init__(self, iterable, *, total, **_):
            counted.append(total)

        def __enter__(self):
            return self

        def __exit__(self, *_):
            return False

        def update(self, count):
            counted.append(count)

    monkeypatch.setattr(evaluate_module, "progress", Bar)
    cifar_model.class_names = list(CIFAR_CLASSES)
    images = find_images(cifar_folder(tmp_path / "photos", cifar_train, CIFAR_CLASSES, per_class=1))
    evaluate_module.evaluate(cifar_model, images, "cifar", batch_size=4)
    assert counted[0] == 10 and sum(counted[1:]) == 10


# 5. and 6. Errors with --json, and a bare `squeezenet`.

def test_json_errors_are_the_last_stdout_line(cli):
    code, out, err = run_in_process(cli, "evaluate", "--weights", "missing.net", "--data", ".", "--json")
    line = one_line_error(code, err)
    assert last_json(out) == {"error": line}
    code, out, err = run_in_process(cli, "evaluate", "--json", "--frobnicate")
    line = one_line_error(code, err)
    assert last_json(out) == {"error": line}
    code, out, err = run_in_process(cli, "evaluate", "--weights", "missing.net", "--data", ".")
    assert code == 2 and out == ""  # without --json, stdout stays empty


def test_bare_command_lists_the_commands(cli):
    code, out, err = run_in_process(cli)
    assert code == 2
    for command in ("evaluate", "predict", "compress", "export"):
        assert command in err
    assert "arguments are required" not in err


# 7. Plain http weights are refused.

def test_http_weights_are_refused(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path))
    code, out, err = run_in_process(cli, "info", "--weights", "http://example.invalid/m-e4ab6960.net")
    assert "https only" in one_line_error(code, err)
    assert list(tmp_path.iterdir()) == []


# 8. predict skips an unreadable image by default.

def test_predict_lists_a_bad_image_and_predicts_the_others(tmp_path, imagenet_samples, published_net, cli):
    good = imagenet_samples / "n01440764_tench.JPEG"
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(good.read_bytes()[:200])
    code, out, err = run_in_process(cli, "predict", str(bad), str(good), "--weights", str(published_net), "--json")
    assert code == 0, err
    result = last_json(out)
    first, second = result["predictions"]
    assert first["image"] == str(bad) and "not a readable image" in first["error"] and first["top"] == []
    assert second["top"][0]["name"] == "tench" and "error" not in second
    assert result["skipped"] == 1
    code, out, err = run_in_process(cli, "predict", str(bad), str(good), "--weights", str(published_net),
                                    "--on-bad-image", "fail")
    assert "not a readable image" in one_line_error(code, err)


# 10. and 11. export's human summary, and flags the chosen format would ignore.

def test_export_summary_is_readable(tmp_path, cli):
    code, out, err = run_in_process(cli, "export", "--format", "c", "--weights", str(CIFAR_SQZ),
                                    "--out", str(tmp_path / "engine"))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert "quantized at export: no" in lines
    files = next(line for line in lines if line.startswith("files: "))
    assert f"{tmp_path / 'engine' / 'model.c'}, {tmp_path / 'engine' / 'model.h'}" in files
    assert "[" not in out and "False" not in out and "True" not in out


@pytest.mark.parametrize("args, message", [
    (["--format", "c", "--check-images", "4"], "--check-images needs --calibration-data"),
    (["--format", "onnx", "--calibration-images", "4"], "--calibration-images applies to --format onnx-int8 and c "
                                                         "--precision int8 only"),
    (["--format", "c", "--calibration-images", "4"], "--calibration-images applies to --format onnx-int8 and c "
                                                      "--precision int8 only"),
    (["--format", "c", "--on-bad-image", "fail"], "--on-bad-image applies to the photos of --calibration-data"),
    (["--format", "c", "--precision", "int8"], "--precision int8 needs --calibration-data"),
    (["--format", "onnx", "--precision", "int8"], "--precision applies to --format c"),
    (["--format", "c", "--ram-bytes", "4096"], "--ram-bytes applies to --target cortex-m7"),
])
def test_export_refuses_flags_it_would_ignore(tmp_path, cli, args, message):
    out = tmp_path / ("engine" if "c" in args else "m.onnx")
    code, _, err = run_in_process(cli, "export", "--weights", str(CIFAR_SQZ), "--out", str(out), *args)
    assert message in one_line_error(code, err)
    assert not out.exists()
