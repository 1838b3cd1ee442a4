"""squeezenet relabel: give a .sqz model class names and input preprocessing, losslessly.

Only the file's header changes: every layer is re-encoded with the bits and coders it had, so the
weights and the layer bytes stay identical. To relabel a file in place, write to a temporary name
and move it over the original.
"""

from __future__ import annotations

__all__ = ["add_parser", "run", "summarize"]


def add_parser(subparsers):
    from squeezenet.data import PREPROCESSINGS

    parser = subparsers.add_parser("relabel", help="set the class names / preprocessing in a .sqz header (lossless)",
                                   description=__doc__)
    parser.add_argument("--weights", required=True, help="the .sqz file to read")
    parser.add_argument("--out", required=True, help="the .sqz file to write (not the input)")
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes-from", metavar="DIR",
                       help="an ImageFolder (DIR/<class>/...): its sorted class folder names, the order training labels them")
    names.add_argument("--classes", help="class names in label order, comma-separated: a,b,c")
    parser.add_argument("--preprocess", choices=PREPROCESSINGS,
                        help="input preprocessing to record (default: keep the file's)")
    return parser


def run(args) -> dict:
    from squeezenet.compress.relabel import class_names_from_folder, relabel_sqz

    if args.classes_from is not None:
        classes = class_names_from_folder(args.classes_from)
    else:
        classes = [name.strip() for name in args.classes.split(",")]
    return relabel_sqz(args.weights, args.out, classes=classes, preprocess=args.preprocess)


def summarize(result: dict) -> None:
    print(f"wrote {result['out']}: {result['bytes']:,} bytes (was {result['bytes_before']:,}), "
          f"{len(result['classes'])} classes ({', '.join(result['classes'][:4])}{', ...' if len(result['classes']) > 4 else ''}), "
          f"preprocess {result['preprocess'] or 'not recorded'}")
