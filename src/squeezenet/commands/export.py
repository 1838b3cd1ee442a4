"""squeezenet export: a model file -> ONNX (fp32 or int8) or a self-contained C99 engine.

``--format onnx`` writes one .onnx file (dynamic batch) and checks it with onnxruntime against
PyTorch; ``onnx-int8`` writes the int8 engine's own quantization (``squeezenet.int8``, calibrated on
photos of ``--calibration-data``, the scales ``--format c --precision int8`` uses) as a QDQ .onnx and
reports its top-1 agreement with fp32 and with the int8 reference on other photos of that folder;
``c`` writes ``model.c`` and ``model.h`` into the ``--out`` folder (see docs/DEPLOY.md) and, with
``--calibration-data``, compiles them with ``gcc -std=c99 -O2 -Wall -Werror`` and compares their
logits with PyTorch's on photos of that folder. Nothing half-written is ever left at ``--out``.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from pathlib import Path

from squeezenet.commands._common import add_model_arguments, refuse_output_over_input

__all__ = ["add_parser", "run", "summarize", "FORMATS"]

FORMATS = ("onnx", "onnx-int8", "c")
_CHECK_IMAGES = 8  # photos (or random inputs) for the fp32 parity check
# Defaults applied in code: the parser's default is None, so that a flag the format ignores is refused.
_DEFAULT_CALIBRATION_IMAGES = 16
_DEFAULT_CHECK_IMAGES = 64
# What export_c writes into the --out folder (for the "not over the input" check).
# Names that say "one model file": --format c writes a folder, and would make a folder of this name.
_MODEL_FILE_SUFFIXES = (".onnx", ".sqz", ".net", ".pth", ".pt", ".safetensors")


def add_parser(subparsers):
    parser = subparsers.add_parser("export", help="export a model to ONNX, int8 ONNX or a C99 source file",
                                   description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    parser.add_argument("--out", required=True, help="output .onnx file, or the output folder for --format c")
    parser.add_argument("--calibration-data", help="photo folder: int8 calibration and the parity checks (C too)")
    parser.add_argument("--calibration-images", type=int, default=None,
                        help=f"photos to calibrate int8 on ({_DEFAULT_CALIBRATION_IMAGES}); onnx-int8 only")
    parser.add_argument("--on-bad-image", choices=("skip", "fail"), default=None,
                        help="unreadable photos in --calibration-data: skip them (the photo counts show it; the "
                             "default), or fail")
    parser.add_argument("--check-images", type=int, default=None,
                        help="photos of --calibration-data on which int8 is compared with fp32, or the C build "
                             f"with PyTorch ({_DEFAULT_CHECK_IMAGES}); onnx-int8 and c only")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                        help="c only: int8 writes the int8 engine (TFLite arithmetic, bit-identical to "
                             "squeezenet.int8's reference), calibrated on --calibration-images photos of "
                             "--calibration-data and checked on --check-images others")
    parser.add_argument("--target", choices=("host", "cortex-m7"), default="host",
                        help="c only: cortex-m7 also cross-compiles a bare-metal firmware with zig (pip install "
                             "'squeezenet[mcu]') into OUT/cortex-m7/ and, with --calibration-data, runs it in the "
                             "unicorn emulator against the host build")
    parser.add_argument("--ram-bytes", type=int, help="int8: the RAM budget of the engine's static plan; cortex-m7: "
                        "the RAM region (default: what the model needs, rounded up to 4 KiB); a model that does not "
                        "fit is refused")
    parser.add_argument("--flash-bytes", type=int, help="cortex-m7: the flash region (default 2 MiB)")
    parser.add_argument("--emulate-images", type=int,
                        help="cortex-m7: photos of --calibration-data run in the emulator (default 1)")
    return parser


def _command_line(args) -> str:
    """The command that reproduces this export (written into the generated file's banner)."""
    parts = ["squeezenet", "export", "--format", args.format, "--weights", args.weights, "--out", args.out]
    if args.arch:
        parts += ["--arch", args.arch]
    if args.precision != "fp32":
        parts += ["--precision", args.precision, "--calibration-data", args.calibration_data,
                  "--calibration-images", str(args.calibration_images)]
    if args.target != "host":
        parts += ["--target", args.target]
    return " ".join(shlex.quote(str(part)) for part in parts)


def _check_inputs(args, model, count: int, exclude=()):
    """Photos of --calibration-data (less ``exclude``), else seeded random inputs (then labels are None)."""
    import numpy as np

    from squeezenet.data import default_preprocess
    from squeezenet.export.photos import photo_batch

    spec = model.spec
    if args.calibration_data:
        return photo_batch(args.calibration_data, default_preprocess(model), spec.input_size, count, exclude=exclude,
                           on_bad_image=args.on_bad_image)
    random = np.random.default_rng(0).standard_normal((count, spec.input_channels, spec.input_size, spec.input_size))
    return random.astype(np.float32), None


def _run_onnx(args) -> dict:
    import numpy as np
    import torch

    from squeezenet.export.onnx import export_onnx, onnx_session, run_onnx
    from squeezenet.safe_io import atomic_write
    from squeezenet.weights import load_model

    if args.format == "onnx-int8" and not args.calibration_data:
        raise ValueError("--format onnx-int8 needs --calibration-data DIR (photos to calibrate on)")
    if Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a folder; give the .onnx file to write")
    model = load_model(args.weights, args.arch, fold_bn=True)
    images, labels = _check_inputs(args, model, _CHECK_IMAGES)
    with torch.no_grad():
        reference = model(torch.from_numpy(images)).numpy()
    result: dict = {"format": args.format, "out": args.out}
    with tempfile.TemporaryDirectory() as scratch:
        fp32_path = Path(scratch) / "model.onnx"
        export_onnx(model, fp32_path)
        fp32 = run_onnx(onnx_session(fp32_path), images)
        result["max_abs_logit_diff_vs_pytorch"] = float(np.abs(fp32 - reference).max())
        result["checked_on"] = f"{len(images)} {'photos' if labels is not None else 'random inputs'}"
        final = fp32_path
        if args.format == "onnx-int8":
            from squeezenet.export.photos import photo_paths

            calibration, _ = _check_inputs(args, model, args.calibration_images)
            # The comparison never sees a calibration photo.
            seen = [path for path, _ in photo_paths(args.calibration_data, args.calibration_images)]
            check, check_labels = _check_inputs(args, model, args.check_images, exclude=seen)
            final = Path(scratch) / "model.int8.onnx"
            int8_reference = _write_onnx_int8(args, model, calibration, final)
            int8 = run_onnx(onnx_session(final), check)
            fp32_check = run_onnx(onnx_session(fp32_path), check)
            result.update(
                calibration_images=len(calibration),
                calibration_images_skipped=len(seen) - len(calibration),
                compared_images=len(check),
                top1_agreement_with_fp32=float((int8.argmax(1) == fp32_check.argmax(1)).mean()),
                top1_agreement_with_int8_reference=float((int8.argmax(1) == int8_reference(check).argmax(1)).mean()),
                top1_fp32=float((fp32_check.argmax(1) == check_labels).mean()),
                top1_int8=float((int8.argmax(1) == check_labels).mean()),
            )
        data = final.read_bytes()
        atomic_write(args.out, lambda temporary: Path(temporary).write_bytes(data))
    result["bytes"] = len(data)
    return result


def _write_onnx_int8(args, model, calibration, path: Path):
    """The QDQ .onnx of the int8 engine's own quantization (the scales `--format c --precision int8`
    calibrates on the same photos), so onnxruntime and the C engine run one int8 model; returns that
    model (``squeezenet.int8.reference.Int8Model``)."""
    from squeezenet.export.compressed import compressed_model
    from squeezenet.export.onnx import model_metadata
    from squeezenet.int8.onnx_qdq import export_onnx_qdq
    from squeezenet.int8.reference import Int8Model

    compressed = compressed_model(args.weights, args.arch)
    int8_model = Int8Model.calibrated(compressed.spec, compressed.layers, calibration)
    export_onnx_qdq(compressed.spec, compressed.layers, int8_model.quantization, path, metadata=model_metadata(model))
    return int8_model


def _check_arguments(args) -> None:
    """Refuse flags this format would silently ignore, and an --out that is the wrong kind or the input;
    then fill in the photo counts' defaults."""
    int8_c = args.format == "c" and args.precision == "int8"
    if args.precision != "fp32" and args.format != "c":
        raise ValueError("--precision applies to --format c (for int8 ONNX use --format onnx-int8)")
    if int8_c and not args.calibration_data:
        raise ValueError("--precision int8 needs --calibration-data DIR (photos to calibrate on)")
    if args.calibration_images is not None and args.format != "onnx-int8" and not int8_c:
        raise ValueError(f"--calibration-images applies to --format onnx-int8 and c --precision int8 only "
                         f"(--format {args.format} is not calibrated)")
    if args.check_images is not None and args.format == "onnx":
        raise ValueError(f"--check-images applies to --format onnx-int8 and c (--format onnx is checked on "
                         f"{_CHECK_IMAGES} inputs)")
    if args.check_images is not None and not args.calibration_data:
        raise ValueError("--check-images needs --calibration-data DIR (the photos to check on)")
    if args.on_bad_image is not None and not args.calibration_data:
        raise ValueError("--on-bad-image applies to the photos of --calibration-data, and none were given")
    args.on_bad_image = args.on_bad_image or "skip"
    _check_target_arguments(args)
    args.calibration_images = _at_least_one("--calibration-images", args.calibration_images, _DEFAULT_CALIBRATION_IMAGES)
    args.check_images = _at_least_one("--check-images", args.check_images, _DEFAULT_CHECK_IMAGES)
    from squeezenet.export.c99.export import C_FILES

    # First: that message says what is at stake, the suffix one only what is expected.
    refuse_output_over_input(args.out, args.weights, files=C_FILES if args.format == "c" else ())
    suffix = Path(args.out).suffix.lower()
    if args.format in ("onnx", "onnx-int8") and suffix != ".onnx":
        raise ValueError(f"--format {args.format} writes an .onnx file; --out {args.out} does not end in .onnx")
    if args.format == "c" and suffix in _MODEL_FILE_SUFFIXES:
        raise ValueError(f"--format c writes a folder ({', '.join(C_FILES)}); --out {args.out} names a "
                         f"{suffix} file")


def _check_target_arguments(args) -> None:
    if args.target != "host" and args.format != "c":
        raise ValueError(f"--target {args.target} builds the C engine: it needs --format c")
    for flag, value in (("--ram-bytes", args.ram_bytes), ("--flash-bytes", args.flash_bytes),
                        ("--emulate-images", args.emulate_images)):
        if value is not None and args.target == "host" and not (flag == "--ram-bytes" and args.precision == "int8"):
            raise ValueError(f"{flag} applies to --target cortex-m7 (and --ram-bytes to --precision int8) only")
        if value is not None and value < (0 if flag == "--emulate-images" else 1):
            raise ValueError(f"{flag} must be at least {0 if flag == '--emulate-images' else 1}, got {value}")
    if args.emulate_images and not args.calibration_data:
        raise ValueError("--emulate-images needs --calibration-data DIR (the photos to run on the chip)")


def _at_least_one(flag: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if value < 1:
        raise ValueError(f"{flag} must be at least 1")
    return value


def run(args) -> dict:
    _check_arguments(args)
    if args.format == "c":
        from squeezenet.export.c99.export import export_c
        from squeezenet.export.compressed import compressed_model

        compressed = compressed_model(args.weights, args.arch)
        existed = Path(args.out).exists()
        if args.precision == "int8":
            result = _export_c_int8(args, compressed)
        else:
            result = export_c(args.weights, args.out, command=_command_line(args), arch=args.arch,
                              compressed=compressed)
            if args.calibration_data:
                result.update(_check_c(args, compressed))
        if args.target == "cortex-m7":
            try:
                result.update(_build_cortex_m7(args, compressed))
            except ValueError:
                if not existed:  # a model that does not fit leaves no half-made export behind
                    shutil.rmtree(args.out, ignore_errors=True)
                raise
        return result
    return _run_onnx(args)


def _export_c_int8(args, compressed) -> dict:
    """Calibrate on --calibration-images photos, write the int8 engine, check it on other photos."""
    from squeezenet.export.c99_int8.check import check_int8_export
    from squeezenet.export.c99_int8.export import export_c_int8
    from squeezenet.export.compressed import reference_model
    from squeezenet.export.photos import photo_batch, photo_paths
    from squeezenet.int8.reference import Int8Model

    size = compressed.spec["input_size"]
    calibration, _ = photo_batch(args.calibration_data, compressed.preprocess, size, args.calibration_images,
                                 on_bad_image=args.on_bad_image)
    int8_model = Int8Model.calibrated(compressed.spec, compressed.layers, calibration)
    result = export_c_int8(args.weights, args.out, calibration_images=calibration, command=_command_line(args),
                           ram_budget=args.ram_bytes, arch=args.arch, compressed=compressed, int8_model=int8_model)
    # The check never sees a calibration photo.
    seen = [path for path, _ in photo_paths(args.calibration_data, args.calibration_images)]
    images, labels = photo_batch(args.calibration_data, compressed.preprocess, size, args.check_images, exclude=seen,
                                 on_bad_image=args.on_bad_image)
    result.update(check_int8_export(args.out, int8_model, reference_model(compressed), images, labels))
    return result


def _build_cortex_m7(args, compressed) -> dict:
    """The firmware, and with --calibration-data its emulated logits against the host build's."""
    from squeezenet.export.mcu.target import build_target
    from squeezenet.export.photos import photo_batch

    images = None
    count = 1 if args.emulate_images is None else args.emulate_images
    if args.calibration_data and count:
        spec = compressed.spec
        images, _ = photo_batch(args.calibration_data, compressed.preprocess, spec["input_size"], count,
                                on_bad_image=args.on_bad_image)
    return build_target(args.out, ram_bytes=args.ram_bytes, flash_bytes=args.flash_bytes or 2 * 1024 * 1024,
                        images=images)


def _check_c(args, compressed) -> dict:
    """Compile the export with the strict flags and compare it with PyTorch (the same weights) on photos."""
    import numpy as np
    import torch

    from squeezenet.export.c99.check import STRICT_FLAGS, compile_check_binary, run_check_binary
    from squeezenet.export.compressed import reference_model
    from squeezenet.export.photos import photo_batch, photo_paths

    model = reference_model(compressed)
    images, labels = photo_batch(args.calibration_data, compressed.preprocess, model.spec.input_size, args.check_images,
                                 on_bad_image=args.on_bad_image)
    with tempfile.TemporaryDirectory() as scratch:
        binary = Path(scratch) / "check"
        compile_check_binary(args.out, binary)
        logits = run_check_binary(binary, images, model.spec.num_classes)
    with torch.no_grad():
        reference = model(torch.from_numpy(images)).numpy()
    result = {
        "c_checked_with": f"gcc {' '.join(STRICT_FLAGS)}",
        "c_checked_on": f"{len(images)} photos",
        "c_photos_skipped": len(photo_paths(args.calibration_data, args.check_images)) - len(images),
        "c_max_abs_logit_diff_vs_pytorch": float(np.abs(logits - reference).max()),
        "c_top1_agreement_with_pytorch": float((logits.argmax(1) == reference.argmax(1)).mean()),
        "c_top1": float((logits.argmax(1) == labels).mean()),
    }
    if compressed.quantized_here:
        # The 8-bit codebooks made at export are a change of weights: measure it against the dense model.
        from squeezenet.weights import load_model

        with torch.no_grad():
            dense = load_model(args.weights, args.arch, fold_bn=True)(torch.from_numpy(images)).numpy()
        result["c_top1_agreement_with_dense_model"] = float((logits.argmax(1) == dense.argmax(1)).mean())
        result["dense_top1"] = float((dense.argmax(1) == labels).mean())
    return result


def summarize(result: dict) -> None:
    """One fact a line: ``max abs logit diff vs pytorch: 1.2e-05``, lists joined by commas, yes/no."""
    for key, value in result.items():
        print(f"{key.replace('_', ' ')}: {_readable(value)}")


def _readable(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_readable(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key} {_readable(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
