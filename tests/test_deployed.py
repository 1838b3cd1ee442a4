"""`squeezenet evaluate` scores what ships: an ONNX file and an exported C folder, on real photos,
with the same top-1 as the model file they came from (the same weights, run by other engines)."""

from __future__ import annotations

import pytest
from conftest import cifar_slice

MODEL = "results/cifar10/squeezenet_cifar_dc6bit_huffman.sqz"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return cifar_slice(tmp_path_factory.mktemp("photos"), per_class=6, from_end=True)


def test_onnx_and_c_folder_score_like_the_model_file(cli, tmp_path, photos):
    status, reference = cli("evaluate", "--weights", MODEL, "--data", photos, "--json")
    assert status == 0 and reference["images"] == 60
    assert cli("export", "--format", "onnx", "--weights", MODEL, "--out", tmp_path / "m.onnx", "--json")[0] == 0
    assert cli("export", "--format", "c", "--weights", MODEL, "--out", tmp_path / "c", "--json")[0] == 0
    for artifact in (tmp_path / "m.onnx", tmp_path / "c"):
        status, result = cli("evaluate", "--weights", artifact, "--data", photos, "--json")
        assert status == 0, artifact
        # The preprocessing comes from the artifact itself (ONNX metadata, the preset model.h names).
        assert result["preprocess"] == "cifar"
        assert (result["top1"], result["top5"], result["images"]) == (
            reference["top1"], reference["top5"], reference["images"]), artifact


def test_artifacts_refuse_arch_and_a_folder_that_is_not_an_export(cli, tmp_path, photos):
    assert cli("export", "--format", "onnx", "--weights", MODEL, "--out", tmp_path / "m.onnx", "--json")[0] == 0
    status, result = cli("evaluate", "--weights", tmp_path / "m.onnx", "--arch", "squeezenet_cifar", "--data",
                         photos, "--json")
    assert status == 2 and "--arch applies to model files" in result["error"]
    (tmp_path / "empty").mkdir()
    status, result = cli("evaluate", "--weights", tmp_path / "empty", "--data", photos, "--json")
    assert status == 2 and "folder" in result["error"]
