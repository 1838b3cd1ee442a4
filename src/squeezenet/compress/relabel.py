"""Rewrite the header of a ``.sqz`` file (class names, input preprocessing), keeping every layer as it is.

The layers are decoded (``squeezenet.compress.sqz.decode_sqz``) and encoded again with the bits and
coders the file declares, so each layer's payload (codebook, bias, codes, relative indices) comes
out byte for byte the same and the model decodes to the same weights; only the JSON header and the
CRC change. Table 2's ``.sqz`` files written before they carried class names get them this way,
without redoing the runs that made them.
"""

from __future__ import annotations

import os
from pathlib import Path

from squeezenet.compress.sqz import MAGIC, decode_sqz, encode_sqz
from squeezenet.preprocess_numpy import PREPROCESSINGS
from squeezenet.safe_io import atomic_write_bytes

__all__ = ["relabel_sqz_bytes", "relabel_sqz", "class_names_from_folder"]


def relabel_sqz_bytes(data: bytes, *, classes: list[str] | None, preprocess: str | None) -> bytes:
    """The bytes of the same .sqz model with ``classes`` / ``preprocess`` in its header (None: keep
    what the file has)."""
    spec, layers, metadata = decode_sqz(data)
    classes = list(metadata["classes"]) if classes is None and "classes" in metadata else classes
    preprocess = metadata.get("preprocess") if preprocess is None else preprocess
    if preprocess is not None and preprocess not in PREPROCESSINGS:
        raise ValueError(f"unknown preprocessing {preprocess!r}; choose from {', '.join(PREPROCESSINGS)}")
    outputs = layers[-1].shape[0]  # the last weight layer gives one score per class
    if classes is not None and len(classes) != outputs:
        raise ValueError(f"{len(classes)} class names given but the model scores {outputs} classes")
    if classes is not None and any(not str(name) for name in classes):
        raise ValueError("class names must not be empty")
    relabelled, _ = encode_sqz(spec, layers, metadata["bits"], metadata["coders"], classes=classes,
                               preprocess=preprocess)
    return relabelled


def relabel_sqz(source: str | os.PathLike, target: str | os.PathLike, *, classes: list[str] | None,
                preprocess: str | None) -> dict:
    """Write ``source``'s model to ``target`` (atomically) with the new header; ``target`` must be
    another file. Returns the sizes before and after and the header now in the file."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise FileNotFoundError(f".sqz file not found: {source}")
    if target.exists() and target.resolve() == source.resolve():
        raise ValueError(f"--out {target} is the input file; write to another name, then move it over the input")
    data = source.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{source} is not a .sqz file (no SQZ magic); relabel rewrites .sqz headers only")
    try:
        relabelled = relabel_sqz_bytes(data, classes=classes, preprocess=preprocess)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None
    atomic_write_bytes(target, relabelled)
    _, _, metadata = decode_sqz(relabelled)
    return {"weights": str(source), "out": str(target), "bytes_before": len(data), "bytes": len(relabelled),
            "classes": metadata.get("classes"), "preprocess": metadata.get("preprocess")}


def class_names_from_folder(folder: str | os.PathLike) -> list[str]:
    """The class names of an ImageFolder, in the order training gives them labels (sorted folder names)."""
    from squeezenet.data import find_images

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"class folder not found: {folder}")
    return list(find_images(folder).class_names)
