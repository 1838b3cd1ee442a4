"""Load any model file into a runnable model, and save checkpoints.

Formats, chosen by content and suffix:
- ``.net``: the published Deep Compression SqueezeNet (Caffe flavour of v1.0);
- ``.sqz``: our compressed format (architecture spec included);
- ``.safetensors``: tensors, with the architecture spec in the metadata (key ``spec``) or ``--arch``;
- ``.pth``/``.pt``: a torchvision-style state dict, or our checkpoint dict ``{"model", "spec", ...}``,
  always read with ``torch.load(weights_only=True)``: never unpickled.
A path may also be an https URL: it is downloaded into a cache and checked against a sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from squeezenet.models import ARCHITECTURES, build_model, fold_batch_norm, model_from_spec
from squeezenet.safe_io import atomic_write

__all__ = ["load_model", "save_checkpoint", "save_safetensors", "resolve_weights", "cache_dir", "download", "class_names"]


def cache_dir() -> Path:
    return Path(os.environ.get("SQUEEZENET_CACHE", Path.home() / ".cache" / "squeezenet"))


def _refuse_plain_http(url: str) -> None:
    # Over http anyone on the path can swap the weights; a file name's hash does not cover every URL.
    if url.lower().startswith("http://"):
        raise ValueError(f"refusing {url}: weights are downloaded over https only (use an https:// URL)")


def download(url: str, sha256: str | None = None, *, filename: str | None = None) -> Path:
    """Fetch ``url`` (https only) into the cache (once), verifying its sha256 before the file is used."""
    _refuse_plain_http(url)
    target = cache_dir() / (filename or url.rstrip("/").split("/")[-1])
    if target.exists() and (sha256 is None or _sha256(target) == sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OSError(f"cannot download {url} (no network?): {reason}") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise ValueError(f"download of {url} has sha256 {digest}, expected {sha256}; not used")

    def write(temporary: str) -> None:
        Path(temporary).write_bytes(data)

    atomic_write(target, write)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_weights(weights: str, sha256: str | None = None) -> Path:
    """A local path as is (must exist); an https URL through the download cache (``http://`` is refused).

    As torch.hub does, a URL whose file name ends in ``-<hex digits>`` (``squeezenet1_0-b66bff10.pth``)
    must have a sha256 starting with those digits.
    """
    _refuse_plain_http(weights)
    if weights.lower().startswith("https://"):
        name = weights.rstrip("/").split("/")[-1]
        match = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$", name)
        path = download(weights, sha256)
        if sha256 is None and match and not _sha256(path).startswith(match.group(1)):
            path.unlink()
            raise ValueError(f"download of {weights} does not match the hash in its name; not used")
        return path
    path = Path(weights)
    if not path.exists():
        raise FileNotFoundError(f"weights file not found: {weights}")
    if path.is_dir():
        raise ValueError(f"weights path is a folder, not a file: {weights}")
    return path


def _state_dict_from_file(path: Path) -> tuple[dict, dict | None, dict]:
    """(state_dict, spec or None, extras) from a .pth/.pt/.safetensors file.

    Extras are the checkpoint's ``classes`` (names) and ``preprocess`` (preset name), when present.
    """
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            state = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{path}: not a readable safetensors file ({error})") from None
        try:
            spec = json.loads(metadata["spec"]) if "spec" in metadata else None
            extras = {k: json.loads(metadata[k]) for k in ("classes", "preprocess") if k in metadata}
        except json.JSONDecodeError:
            raise ValueError(f"{path}: corrupt metadata in safetensors file") from None
        return state, spec, extras
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of a file it may then refuse: the error is the one line we print.
            warnings.simplefilter("ignore", UserWarning)
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file; all mean "not a checkpoint"
        if "Weights only load failed" in str(error) and zipfile.is_zipfile(path):
            raise ValueError(f"{path}: refused: it holds pickled objects other than tensors, "
                             "and weights are never unpickled") from None
        raise ValueError(f"{path}: not a PyTorch weights file (no state dict could be read)") from None
    if isinstance(loaded, dict) and "model" in loaded and isinstance(loaded["model"], dict):
        extras = {k: loaded[k] for k in ("classes", "preprocess") if k in loaded}
        return loaded["model"], loaded.get("spec"), extras
    if isinstance(loaded, dict) and loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        return loaded, None, {}
    raise ValueError(f"{path}: holds no state dict")


def _num_classes(state: dict) -> int:
    """The output channels of a bare state dict's last weight (1000 when it has none)."""
    weights = [v for k, v in state.items() if k.endswith("weight")]
    return weights[-1].shape[0] if weights else 1000


def _infer_arch(state: dict) -> str:
    """The first architecture whose parameter names and shapes match the state dict."""
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    num_classes = _num_classes(state)
    # Candidates on the meta device: shapes only, no memory and no initialisation.
    with torch.device("meta"):
        for arch in ARCHITECTURES:
            candidate = build_model(arch, num_classes=num_classes).state_dict()
            if {k: tuple(v.shape) for k, v in candidate.items()} == shapes:
                return arch
    raise ValueError("weights match no known architecture; pass --arch")


def load_model(weights: str | os.PathLike, arch: str | None = None, *, fold_bn: bool = False) -> nn.Module:
    """A model in eval mode with the given weights. ``arch`` is needed only for a bare state dict
    that matches several architectures; it must agree with a file that carries its own spec."""
    path = resolve_weights(str(weights))
    with open(path, "rb") as handle:
        head = handle.read(8)
    if path.suffix == ".sqz" or head.startswith(b"SQZ"):
        from squeezenet.compress.sqz import read_sqz_model

        model = read_sqz_model(path)
    elif path.suffix == ".net":
        from squeezenet.compress.caffe_net import net_to_model, read_net

        model = net_to_model(read_net(path))
    else:
        state, spec, extras = _state_dict_from_file(path)
        if spec is not None:
            model = model_from_spec(spec)
        else:
            model = build_model(arch or _infer_arch(state), num_classes=_num_classes(state))
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as error:
            first = str(error).split("\n\t")[1] if "\n\t" in str(error) else str(error)
            raise ValueError(f"weights in {path} do not fit the architecture: {' '.join(first.split())[:300]}") from None
        if "classes" in extras:
            model.class_names = list(extras["classes"])
        if "preprocess" in extras:
            model.preprocess = extras["preprocess"]
    if arch is not None and arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    if arch is not None:
        _check_arch_agrees(model, arch, path)
    model.eval()
    return fold_batch_norm(model) if fold_bn else model


def _check_arch_agrees(model: nn.Module, arch: str, path: Path) -> None:
    with torch.device("meta"):  # only names and shapes are compared
        reference = build_model(arch, num_classes=model.spec.num_classes)
        # A compressed file holds the BatchNorm-folded form of a BatchNorm architecture.
        folded = model_from_spec(replace(reference.spec, batch_norm=False).to_dict())
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items() if "running" not in k and "batches" not in k}
    have = {k: tuple(v.shape) for k, v in model.state_dict().items() if "running" not in k and "batches" not in k}
    if want != have and folded.state_dict().keys() != model.state_dict().keys():
        raise ValueError(f"weights in {path} do not fit --arch {arch}")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra) -> None:
    """Atomically save ``{"model": state_dict, "spec": spec, **extra}``: a plain dict, weights_only-safe."""
    payload = {"model": model.state_dict(), "spec": model.spec.to_dict()}
    for key, attribute in (("classes", "class_names"), ("preprocess", "preprocess")):
        if getattr(model, attribute, None) is not None:
            payload[key] = getattr(model, attribute)
    payload.update(extra)
    atomic_write(path, lambda temporary: torch.save(payload, temporary))


def save_safetensors(path: str | os.PathLike, model: nn.Module) -> None:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    metadata = {"spec": json.dumps(model.spec.to_dict())}
    for key in ("class_names", "preprocess"):
        if getattr(model, key, None) is not None:
            metadata["classes" if key == "class_names" else key] = json.dumps(getattr(model, key))
    atomic_write(path, lambda temporary: save_file(state, temporary, metadata=metadata))


def class_names(model: nn.Module) -> list[str]:
    """Names for the model's output indices: the checkpoint's, ImageNet's, or ``class N``."""
    names = getattr(model, "class_names", None)
    num_classes = model.spec.num_classes
    if names is not None and len(names) == num_classes:
        return list(names)
    if num_classes == 1000:
        from squeezenet.data import imagenet_classes

        return [c.name for c in imagenet_classes()]
    return [f"class {i}" for i in range(num_classes)]
