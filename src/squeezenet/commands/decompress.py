"""squeezenet decompress: expand a .sqz (or any model file) into a .pth checkpoint or .safetensors."""

from __future__ import annotations

from pathlib import Path

from squeezenet.commands._common import add_model_arguments, load_model_from_args, refuse_output_over_input

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    parser = subparsers.add_parser("decompress", help="expand a .sqz file into a .pth or .safetensors file",
                                   description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--out", required=True, help="output file: .pth/.pt (checkpoint dict) or .safetensors")
    return parser


def run(args) -> dict:
    from squeezenet.models import count_nonzero_parameters, count_parameters
    from squeezenet.weights import save_checkpoint, save_safetensors

    out = Path(args.out)
    if out.suffix not in (".pth", ".pt", ".safetensors"):
        raise ValueError(f"--out must end in .pth, .pt or .safetensors, got {out.name}")
    refuse_output_over_input(out, args.weights)
    model = load_model_from_args(args)
    if out.suffix == ".safetensors":
        save_safetensors(out, model)
    else:
        save_checkpoint(out, model, source=str(args.weights))
    return {
        "out": str(out),
        "bytes": out.stat().st_size,
        "params": count_parameters(model),
        "nonzero_params": count_nonzero_parameters(model),
    }
