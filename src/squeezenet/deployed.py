"""Deployment artifacts as models: an ONNX file (run by onnxruntime) or an exported C folder (built
for this host and run), so that ``squeezenet evaluate`` measures what will actually ship.

Both take the same preprocessed float32 batch [N, C, H, W] as the PyTorch model and return its
logits; ``spec`` carries what evaluation needs (classes, input size) and ``preprocess`` the
input preset, read from the artifact itself: the ONNX file's metadata (written by
``export.onnx.export_onnx``) or the preset that ``model.h`` names.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["DeployedModel", "DeployedSpec", "is_deployed_artifact", "load_deployed", "load_model_or_artifact"]

_C_FILES = ("model.c", "model.h")


@dataclass(frozen=True)
class DeployedSpec:
    """The few facts of an artifact's network that evaluation and prediction use."""

    num_classes: int
    input_size: int
    input_channels: int
    family: str = "deployed"


class DeployedModel(nn.Module):
    """An nn.Module facade: ``forward`` hands the batch to the artifact and returns its logits."""

    def __init__(self, run, spec: DeployedSpec, *, preprocess: str | None, class_names: list[str] | None,
                 description: str, keep_alive=None) -> None:
        super().__init__()
        self._run = run
        self.spec = spec
        self.preprocess = preprocess
        self.description = description
        if class_names is not None:
            self.class_names = class_names
        self._keep_alive = keep_alive  # e.g. the temporary folder holding a compiled binary

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(images.detach().to(torch.float32).contiguous().numpy())
        return torch.from_numpy(np.asarray(self._run(batch), dtype=np.float32))


def is_deployed_artifact(path: str | os.PathLike) -> bool:
    """True for an ``.onnx`` file or a folder holding an exported ``model.c`` and ``model.h``."""
    path = Path(path)
    if path.is_dir():
        return all((path / name).is_file() for name in _C_FILES)
    return path.suffix.lower() == ".onnx"


def load_deployed(path: str | os.PathLike) -> DeployedModel:
    """The artifact at ``path`` as a model (see ``is_deployed_artifact``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    if path.is_dir():
        missing = [name for name in _C_FILES if not (path / name).is_file()]
        if missing:
            raise ValueError(f"{path} is a folder without {' and '.join(missing)}: not an exported C engine")
        return _c_folder_model(path)
    if path.suffix.lower() == ".onnx":
        return _onnx_model(path)
    raise ValueError(f"{path}: not an ONNX file or an exported C folder")


def load_model_or_artifact(weights: str | os.PathLike, arch: str | None = None) -> nn.Module:
    """A model file through ``weights.load_model``, or a deployment artifact run as it will ship."""
    if is_deployed_artifact(weights):
        if arch is not None:
            raise ValueError(f"--arch applies to model files; {weights} describes its own network")
        return load_deployed(weights)
    from squeezenet.weights import load_model

    return load_model(weights, arch)


def _onnx_model(path: Path) -> DeployedModel:
    import json

    from squeezenet.export.onnx import onnx_session, run_onnx

    session = onnx_session(path)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ValueError(f"{path}: expected one image input, found {len(inputs)} inputs")
    shape = inputs[0].shape
    classes = outputs[0].shape[-1] if outputs[0].shape else None
    if len(shape) != 4 or not all(isinstance(size, int) for size in shape[1:]) or not isinstance(classes, int):
        raise ValueError(f"{path}: input {shape} / output {outputs[0].shape} is not an image classifier "
                         "[batch, channels, height, width] -> [batch, classes]")
    if shape[2] != shape[3]:
        raise ValueError(f"{path}: input {shape[2]}x{shape[3]} is not square")
    metadata = session.get_modelmeta().custom_metadata_map
    try:
        class_names = json.loads(metadata["classes"]) if "classes" in metadata else None
    except json.JSONDecodeError:
        raise ValueError(f"{path}: its 'classes' metadata is not JSON") from None
    spec = DeployedSpec(num_classes=classes, input_size=shape[2], input_channels=shape[1])
    return DeployedModel(lambda batch: run_onnx(session, batch), spec, preprocess=metadata.get("preprocess"),
                         class_names=class_names, description=f"ONNX file {path.name} (onnxruntime)")


def _define(header: str, name: str, path: Path) -> int:
    match = re.search(rf"#define {name} (\d+)", header)
    if match is None:
        raise ValueError(f"{path / 'model.h'}: no {name}; export the folder again")
    return int(match.group(1))


def _c_folder_model(folder: Path) -> DeployedModel:
    from squeezenet.export.c99.check import compile_check_binary, run_check_binary

    header = (folder / "model.h").read_text(errors="replace")
    height = _define(header, "SQUEEZENET_INPUT_HEIGHT", folder)
    if _define(header, "SQUEEZENET_INPUT_WIDTH", folder) != height:
        raise ValueError(f"{folder / 'model.h'}: the input is not square")
    spec = DeployedSpec(num_classes=_define(header, "SQUEEZENET_NUM_CLASSES", folder), input_size=height,
                        input_channels=_define(header, "SQUEEZENET_INPUT_CHANNELS", folder))
    # model.h names the preset its input needs ("already preprocessed (the 'cifar' preset)").
    preset = re.search(r"the '([a-z]+)' preset", header)
    scratch = tempfile.TemporaryDirectory(prefix="squeezenet-c-")
    binary = Path(scratch.name) / "predict"
    compile_check_binary(folder, binary)
    return DeployedModel(lambda batch: run_check_binary(binary, batch, spec.num_classes), spec,
                         preprocess=preset.group(1) if preset else None, class_names=None,
                         description=f"C engine in {folder} (built with the host compiler)", keep_alive=scratch)
