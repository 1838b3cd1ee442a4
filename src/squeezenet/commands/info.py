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
    result: dict = {}
    if args.weights is not None:
        from squeezenet.commands._common import load_model_from_args
        from squeezenet.weights import resolve_weights

        model = load_model_from_args(args)
        path = resolve_weights(args.weights)
        result["file"] = str(args.weights)
        result["file_bytes"] = Path(path).stat().st_size
        with open(path, "rb") as handle:
            is_sqz = path.suffix == ".sqz" or handle.read(3) == b"SQZ"
        if is_sqz:
            from squeezenet.compress.sqz import sqz_breakdown

            result["breakdown"] = sqz_breakdown(path)
    else:
        kwargs = {"num_classes": args.num_classes} if args.num_classes else {}
        model = build_model(args.arch, **kwargs)
    params = count_parameters(model)
    result.update(
        {
            "arch": args.arch or _arch_name(model),
            "params": params,
            "nonzero_params": count_nonzero_parameters(model),
            "fp32_bytes": 4 * params,
            "macs": count_macs(model, model.spec.input_size, model.spec.input_channels),
            "input_size": model.spec.input_size,
            "num_classes": model.spec.num_classes,
        }
    )
    return result


def _arch_name(model) -> str:
    """The --arch name whose spec equals the model's, else the family with ``(custom)``."""
    import torch

    from squeezenet.models import ARCHITECTURES, build_model

    # On the meta device the candidates cost no memory and no initialisation (AlexNet is 244 MB).
    with torch.device("meta"):
        for name in ARCHITECTURES:
            if build_model(name, num_classes=model.spec.num_classes).spec == model.spec:
                return name
    return f"{model.spec.family} (custom)"


def summarize(result: dict) -> None:
    for key in ("file", "file_bytes", "arch", "params", "nonzero_params", "fp32_bytes", "macs", "input_size",
                "num_classes"):
        if key in result:
            value = result[key]
            print(f"{key:15} {value:,}" if isinstance(value, int) else f"{key:15} {value}")
    for key, value in result.get("breakdown", {}).items():
        print(f"  {key:13} {value:,}" if isinstance(value, int) else f"  {key:13} {value}")
