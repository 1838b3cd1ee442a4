"""The NumPy runtime runs .net and .sqz files where torch cannot even be imported, and agrees with PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from squeezenet.compress.sparse import SparseLayer
from squeezenet.compress.sqz import read_sqz_model
from squeezenet.export.graph import CAFFE_SQUEEZENET_V1_0, build_network
from squeezenet.export.photos import photo_batch
from squeezenet.models import squeezenet1_0, squeezenet_cifar, weight_layers
from squeezenet.runtime_numpy import NumpyModel, read_compressed

TOLERANCE = 1e-4

# Runs in a fresh interpreter where `import torch` raises ImportError.
_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None
import json, numpy as np
from squeezenet.runtime_numpy import load_numpy_model
images = np.load(sys.argv[1])
outputs = {}
for path in sys.argv[3:]:
    outputs[path] = load_numpy_model(path)(images).tolist()
try:
    import torch
    imported = True
except ImportError:
    imported = False
json.dump({"logits": outputs, "torch_imported": imported,
           "torch_modules": sorted(m for m in sys.modules if m.startswith("torch") and sys.modules[m] is not None)},
          open(sys.argv[2], "w"))
"""


def test_runs_net_and_sqz_without_torch_and_matches_pytorch(tmp_path, published_net, published_model, imagenet_samples,
                                                           published_encodings):
    sqz = tmp_path / "published.sqz"
    sqz.write_bytes(published_encodings["huffman"])  # the published layers at 8 bits, Huffman-coded
    images, _ = photo_batch(imagenet_samples, "caffe", 227, 2, offset=11)
    np.save(tmp_path / "images.npy", images)
    result_path = tmp_path / "result.json"
    subprocess.run([sys.executable, "-c", _WITHOUT_TORCH, str(tmp_path / "images.npy"), str(result_path),
                    str(published_net), str(sqz)], check=True, timeout=120)
    result = json.loads(result_path.read_text())
    assert result["torch_imported"] is False and result["torch_modules"] == []
    with torch.no_grad():
        reference = published_model(torch.from_numpy(images)).numpy()
        from_sqz = read_sqz_model(sqz)(torch.from_numpy(images)).numpy()
    for path, expected in ((published_net, reference), (sqz, from_sqz)):
        logits = np.asarray(result["logits"][str(path)], dtype=np.float32)
        assert (logits.argmax(1) == expected.argmax(1)).all()
        assert np.abs(logits - expected).max() < TOLERANCE


def test_published_spec_table_is_squeezenet_1_0_caffe():
    expected = json.loads(json.dumps(squeezenet1_0(caffe=True).spec.to_dict()))
    assert CAFFE_SQUEEZENET_V1_0 == expected


@pytest.mark.parametrize("bypass", ["simple", "complex"])
def test_bypass_variants_match_pytorch(cifar_train, bypass):
    torch.manual_seed(2)
    model = squeezenet_cifar(bypass=bypass, base_e=32, incr_e=32).eval()
    layers = []
    for _, module in weight_layers(model):
        weight = module.weight.detach().numpy()
        codebook = np.concatenate([[0.0], np.unique(weight)]).astype(np.float32)  # exact: every value is an entry
        layers.append(SparseLayer.from_dense(weight, module.bias.detach().numpy(), codebook))
    runtime = NumpyModel(build_network(model.spec.to_dict()), layers)
    images, _ = photo_batch(cifar_train, "cifar", 32, 4)
    with torch.no_grad():
        reference = model(torch.from_numpy(images)).numpy()
    assert np.abs(runtime(images) - reference).max() < TOLERANCE


def test_bad_files_raise_value_error(tmp_path, published_net):
    truncated = tmp_path / "short.net"
    truncated.write_bytes(published_net.read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated .net file"):
        read_compressed(truncated)
    with pytest.raises(ValueError, match="reads compressed .net or .sqz"):
        read_compressed(_touch(tmp_path / "model.pth"))
    corrupt = tmp_path / "bad.sqz"
    corrupt.write_bytes(b"SQZ\x01" + bytes(40))
    with pytest.raises(ValueError, match="CRC32"):
        read_compressed(corrupt)
    with pytest.raises(FileNotFoundError):
        read_compressed(tmp_path / "missing.net")


def _touch(path):
    path.write_bytes(b"x")
    return path
