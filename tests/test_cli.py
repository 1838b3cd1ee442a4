"""The foundation's commands end to end, on the real published model and real photos."""

import json
import subprocess
import sys

import pytest
import torch
import torchvision

from squeezenet.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squeezenet", *args], capture_output=True, text=True, timeout=300)


def run_in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """The CLI's main() in this process (no interpreter start-up): exit status, stdout, stderr."""
    try:
        code = main(list(args))
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_published_model_accuracy_on_real_photos(published_net, imagenet_samples):
    """The port check: the paper reports 57.5% / 80.3% on ImageNet val; far below means a wrong port."""
    result = run_cli("evaluate", "--weights", str(published_net), "--data", str(imagenet_samples), "--json")
    assert result.returncode == 0, result.stderr
    metrics = last_json(result.stdout)
    assert metrics["images"] >= 500 and metrics["skipped"] == 0
    assert metrics["preprocess"] == "caffe"
    assert 0.55 <= metrics["top1"] <= 0.75
    assert 0.75 <= metrics["top5"] <= 0.92


def test_evaluate_flip_and_shift_flags_are_reported(published_net, imagenet_samples, capsys):
    common = ["evaluate", "--weights", str(published_net), "--data", str(imagenet_samples), "--limit", "8", "--json"]
    plain, flipped = run_in_process(capsys, *common), run_in_process(capsys, *common, "--flip", "--shift", "8")
    assert plain.returncode == flipped.returncode == 0, flipped.stderr
    plain, flipped = last_json(plain.stdout), last_json(flipped.stdout)
    assert (plain["flip"], plain["shift"], flipped["flip"], flipped["shift"]) == (False, 0, True, 8)
    assert plain["images"] == flipped["images"] == 8
    bad = run_in_process(capsys, *common, "--shift", "-1")
    assert bad.returncode == 2 and "--shift must be at least 0 pixels" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_predict_names_the_right_classes(published_net, imagenet_samples, capsys):
    photos = [imagenet_samples / "n01440764_tench.JPEG", imagenet_samples / "n02391049_zebra.JPEG"]
    assert main(["predict", *map(str, photos), "--weights", str(published_net), "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    tops = [p["top"] for p in result["predictions"]]
    assert [t[0]["name"] for t in tops] == ["tench", "zebra"]
    assert all(len(t) == 5 for t in tops)
    assert all(t[0]["probability"] > 0.5 for t in tops)


def test_info_for_architecture_and_file(published_net, capsys):
    assert main(["info", "--arch", "squeezenet1_1", "--json"]) == 0
    info = last_json(capsys.readouterr().out)
    assert info["params"] == 1_235_496 and info["fp32_bytes"] == 4 * 1_235_496
    assert info["macs"] == 349_151_936
    assert main(["info", "--weights", str(published_net), "--json"]) == 0
    info = last_json(capsys.readouterr().out)
    assert info["file_bytes"] == 675_763 and info["nonzero_params"] == 419_897  # weights and biases
    assert info["arch"] == "squeezenet1_0_caffe"


def test_torchvision_state_dict_and_safetensors(tmp_path, sample_photos, capsys):
    from squeezenet.weights import load_model, save_safetensors

    torch.manual_seed(0)
    reference = torchvision.models.squeezenet1_1().eval()
    pth = tmp_path / "squeezenet1_1.pth"
    torch.save(reference.state_dict(), pth)
    model = load_model(pth)  # architecture inferred from the state dict
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    st = tmp_path / "m.safetensors"
    save_safetensors(st, model)
    with torch.no_grad():
        assert torch.equal(load_model(st)(x), reference(x))
    assert main(["predict", str(sample_photos[0]), "--weights", str(st), "--json"]) == 0
    assert last_json(capsys.readouterr().out)["preprocess"] == "torchvision"


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "--weights", "missing.net", "--data", "."], "not found"),
        (["info", "--arch", "resnet9000"], "unknown architecture"),
        (["info"], "give --arch or --weights"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    result = run_in_process(capsys, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_truncated_net_file(published_net, imagenet_samples, tmp_path, capsys):
    cut = tmp_path / "cut.net"
    cut.write_bytes(published_net.read_bytes()[:5000])
    result = run_in_process(capsys, "evaluate", "--weights", str(cut), "--data", str(imagenet_samples))
    assert result.returncode == 2 and "truncated" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_text_file_as_image(published_net, tmp_path, capsys):
    fake = tmp_path / "photo.jpg"
    fake.write_text("this is not a JPEG")
    result = run_in_process(capsys, "predict", str(fake), "--weights", str(published_net))
    assert result.returncode == 2 and "not a readable image" in result.stderr
    assert "Traceback" not in result.stderr


def test_weights_that_do_not_fit_the_architecture(tmp_path, capsys):
    pth = tmp_path / "v11.pth"
    torch.save(torchvision.models.squeezenet1_1().state_dict(), pth)
    result = run_in_process(capsys, "info", "--weights", str(pth), "--arch", "squeezenet1_0")
    assert result.returncode == 2 and "do not fit" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_flag_is_exit_2(capsys):
    result = run_in_process(capsys, "evaluate", "--frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_no_network_download_is_one_line(tmp_path, monkeypatch):
    from squeezenet.weights import download

    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path))
    with pytest.raises(OSError, match="cannot download"):
        download("https://127.0.0.1:9/none.net", "0" * 64)


def test_url_weights_are_hash_checked(tmp_path, monkeypatch, published_net):
    """A cached download whose content does not match the hash in its name is refused and removed."""
    from squeezenet.weights import resolve_weights

    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path))
    url = "https://example.invalid/models/compressed-deadbeef.net"
    cached = tmp_path / "compressed-deadbeef.net"
    cached.write_bytes(published_net.read_bytes())  # sha256 starts with e4ab6960, not deadbeef
    with pytest.raises(ValueError, match="does not match"):
        resolve_weights(url)
    assert not cached.exists()
    good = tmp_path / "compressed-e4ab6960.net"
    good.write_bytes(published_net.read_bytes())
    assert resolve_weights("https://example.invalid/models/compressed-e4ab6960.net") == good
