"""Write the fuzzing seeds: the published .net, and small .sqz files (a tiny SqueezeNet, quick to parse).

Each seed starts with the byte that picks the parser in fuzz_readers.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from squeezenet.compress.quantize import quantize_model, to_sparse_layer
from squeezenet.compress.sqz import encode_sqz
from squeezenet.models import squeezenet_cifar, weight_layers

net_path, corpus = Path(sys.argv[1]), Path(sys.argv[2])
corpus.mkdir(parents=True, exist_ok=True)
(corpus / "published.net").write_bytes(b"\x00" + net_path.read_bytes())

torch.manual_seed(0)
tiny = squeezenet_cifar(base_e=8, incr_e=8, num_classes=4)
with torch.no_grad():
    for _, module in weight_layers(tiny):
        module.weight.mul_(torch.rand_like(module.weight) > 0.6)  # sparse, as after pruning
quantizations = quantize_model(tiny, 4)
layers = [to_sparse_layer(quantizations[name], module.bias.detach().numpy().astype(np.float32), 15)
          for name, module in weight_layers(tiny)]
for coder in ("fixed", "huffman", "ans"):
    blob, _ = encode_sqz(tiny.spec.to_dict(), layers, 4, coder)
    (corpus / f"tiny-{coder}.sqz").write_bytes(b"\x01" + blob)
    (corpus / f"tiny-{coder}-resealed.sqz").write_bytes(b"\x03" + blob)
    (corpus / f"tiny-{coder}-runtime.sqz").write_bytes(b"\x07" + blob)
