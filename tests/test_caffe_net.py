import hashlib

import numpy as np
import pytest
import torch

from squeezenet.compress.caffe_net import NET_SHA256, model_to_net_layers, net_to_model, read_net, write_net
from squeezenet.compress.sparse import SparseLayer
from squeezenet.models import count_nonzero_parameters, squeezenet1_0


def test_published_file_round_trips_byte_for_byte(published_net, tmp_path):
    assert hashlib.sha256(published_net.read_bytes()).hexdigest() == NET_SHA256
    layers = read_net(published_net)
    model = net_to_model(layers)
    assert count_nonzero_parameters(model.features) + count_nonzero_parameters(model.classifier) == 419_897
    rewritten = model_to_net_layers(model, codebooks=[layer.codebook for layer in layers])
    out = tmp_path / "again.net"
    assert write_net(out, rewritten) == 675_763
    assert hashlib.sha256(out.read_bytes()).hexdigest() == NET_SHA256


def test_any_v1_0_can_be_written_and_read_back(tmp_path):
    torch.manual_seed(0)
    model = squeezenet1_0()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(torch.rand_like(p) > 0.7)  # sparse, with zero runs longer than 15
    out = tmp_path / "random.net"
    write_net(out, model_to_net_layers(model))
    layers = read_net(out)
    decoded = net_to_model(layers)
    weights = [(n, p) for n, p in model.named_parameters() if n.endswith("weight")]
    restored_weights = [p for n, p in decoded.named_parameters() if n.endswith("weight")]
    for (name, original), restored, layer in zip(weights, restored_weights, layers):
        assert torch.equal(original == 0, restored == 0), name  # same sparsity pattern
        # Each non-zero weight became its nearest entry of the layer's 255-level codebook.
        nonzero = original[original != 0].double()
        centroids = torch.from_numpy(layer.codebook[1:]).double()
        nearest = (nonzero[:, None] - centroids[None, :]).abs().min(dim=1).values
        torch.testing.assert_close((nonzero - restored[original != 0].double()).abs(), nearest, rtol=0, atol=1e-6)
        assert len(np.unique(layer.codebook)) > 200, name


def test_filler_entries_bridge_long_zero_runs():
    weight = np.zeros((1, 40, 1, 1), dtype=np.float32)
    weight[0, 0], weight[0, 39] = 0.5, -0.25
    layer = SparseLayer.from_dense(weight, np.zeros(1, np.float32), np.array([0.0, 0.5, -0.25], np.float32))
    # 38 zeros between the two weights: two fillers of 15 (+1 each) and a gap of 6.
    assert layer.gaps.tolist() == [0, 15, 15, 6]
    assert layer.codes.tolist() == [1, 0, 0, 2]
    assert np.array_equal(layer.dense_weight(), weight)


def test_truncated_file_is_rejected(published_net, tmp_path):
    data = published_net.read_bytes()
    for size in (0, 50, 1000, len(data) - 1):
        bad = tmp_path / f"cut{size}.net"
        bad.write_bytes(data[:size])
        with pytest.raises(ValueError, match="truncated"):
            read_net(bad)


def test_lying_counts_are_rejected(published_net, tmp_path):
    data = bytearray(published_net.read_bytes())
    data[0:4] = (2**31).to_bytes(4, "little")
    bad = tmp_path / "lying.net"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not a .net file .* declares 2,147,483,648 entries for layer 0, which has "
                                         "14,112 weights"):
        read_net(bad)


def test_a_photo_renamed_net_is_called_not_a_net_file(imagenet_samples, tmp_path):
    renamed = tmp_path / "photo.net"
    renamed.write_bytes((imagenet_samples / "n01440764_tench.JPEG").read_bytes())
    with pytest.raises(ValueError, match=r"photo\.net: not a \.net file of SqueezeNet v1\.0"):
        read_net(renamed)
