"""squeezenet info: parameters, non-zero parameters, fp32 bytes, MACs and file bytes of a model."""

from __future__ import annotations

from pathlib import Path

from squeezenet.commands._common import add_model_arguments

__all__ = ["add_parser", "run", "summarize"]


def add_parser(subparsers):
    parser = subparsers.add_parser("info", help="size and cost of an architecture or a model file",
                                   description=__doc__)
    add_model_arguments(parser, weights_required=False)
    parser.add_argument("--num-classes", type=int, help="with --arch: number of output classes")
    return parser


def run(args) -> dict:
    from squeezenet.models import build_model, count_macs, count_nonzero_parameters, count_parameters

    if args.weights is None and args.arch is None:
        raise ValueError("give --arch or --weights")
    if args.num_classes is not None and args.weights is not None:
        raise ValueError("--num-classes goes only with --arch; a model file has its own number of classes")
    if args.num_classes is not None and args.num_classes < 1:
        raise ValueError(f"--num-classes must be at least 1, got {args.num_classes}")
    result: dict = {}
    if args.weights is not None:
        from squeezenet.commands._common import load_model_from_args
        from squeezenet.weights import resolve_weights

        model = load_model_from_args(args)
        if args.arch is not None and not _spec_is_arch(model.spec, args.arch):
            raise ValueError(f"{args.weights} holds a {_arch_name(model)} model, not --arch {args.arch}; "
                             "drop --arch or give the file's own")
        path = resolve_weights(args.weights)
        result["file"] = str(args.weights)
        result["file_bytes"] = Path(path).stat().st_size
        with open(path, "rb") as handle:
            is_sqz = path.suffix == ".sqz" or handle.read(3) == b"SQZ"
        if is_sqz:
            from squeezenet.compress.sqz import sqz_breakdown

            result["breakdown"] = sqz_breakdown(path)
    else:
        kwargs = {"num_classes": args.num_classes} if args.num_classes is not None else {}
        model = build_model(args.arch, **kwargs)
    params = count_parameters(model)
    result.update(
        {
            # What was loaded, not what was asked for: a file's own spec decides.
            "arch": _arch_name(model) if args.weights is not None else args.arch,
            "params": params,
            # A freshly built --arch has random weights: their non-zero count says nothing.
            "nonzero_params": count_nonzero_parameters(model) if args.weights is not None else None,
            "fp32_bytes": 4 * params,
            "macs": count_macs(model, model.spec.input_size, model.spec.input_channels),
            "input_size": model.spec.input_size,
            "num_classes": model.spec.num_classes,
        }
    )
    return result


def _comparable(spec) -> dict:
    """A spec without its dropout: a training choice (train --dropout) that leaves the architecture as it is."""
    return {key: value for key, value in spec.to_dict().items() if key != "dropout"}


def _spec_is_arch(spec, arch: str) -> bool:
    """Whether ``spec`` is ``arch`` (for its number of classes), or the BatchNorm-folded form of it (a .sqz file)."""
    import torch

    from squeezenet.models import build_model

    with torch.device("meta"):
        wanted = _comparable(build_model(arch, num_classes=spec.num_classes).spec)
    have = _comparable(spec)
    if wanted.get("batch_norm") and not have.get("batch_norm"):
        wanted["batch_norm"] = False
    return wanted == have


def _arch_name(model) -> str:
    """The --arch name whose spec equals the model's (dropout aside), else the family with ``(custom)``."""
    import torch

    from squeezenet.models import ARCHITECTURES, build_model

    # On the meta device the candidates cost no memory and no initialisation (AlexNet is 244 MB).
    with torch.device("meta"):
        for name in ARCHITECTURES:
            if _comparable(build_model(name, num_classes=model.spec.num_classes).spec) == _comparable(model.spec):
                return name
    return f"{model.spec.family} (custom)"


def summarize(result: dict) -> None:
    for key in ("file", "file_bytes", "arch", "params", "nonzero_params", "fp32_bytes", "macs", "input_size",
                "num_classes"):
        if key in result:
            value = result[key]
            if key == "nonzero_params" and value is None:
                value = "n/a (--arch alone has no trained weights; give --weights FILE)"
            print(f"{key:15} {value:,}" if isinstance(value, int) else f"{key:15} {value}")
    for key, value in result.get("breakdown", {}).items():
        print(f"  {key:13} {value:,}" if isinstance(value, int) else f"  {key:13} {value}")
