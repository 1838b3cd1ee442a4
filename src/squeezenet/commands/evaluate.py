"""squeezenet evaluate: top-1 / top-5 accuracy of a model on a folder of labelled photos."""

from __future__ import annotations

from squeezenet.commands._common import add_model_arguments, add_photo_arguments, checked_arch

__all__ = ["add_parser", "run", "summarize"]


def add_parser(subparsers):
    parser = subparsers.add_parser("evaluate", help="top-1/top-5 accuracy on labelled photos",
                                   description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--data", required=True, help="ImageFolder tree or flat folder of <wnid>_<name>.JPEG photos")
    add_photo_arguments(
        parser, preprocess_help="input preset (default: the model's own: caffe for .net, cifar for 32x32 models)",
        on_bad_image_help="skip unreadable images and count them, or stop at the first")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--flip", action="store_true",
                        help="test-time augmentation: score each image together with its mirror image")
    parser.add_argument("--shift", type=int, default=0, metavar="PIXELS",
                        help="test-time augmentation: also score copies shifted this many pixels up-left and "
                             "down-right (weights 1/4 each, the image 1/2)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N images (sorted by name)")
    return parser


def run(args) -> dict:
    from squeezenet.data import LabelledImages, default_preprocess, find_images
    from squeezenet.deployed import load_model_or_artifact
    from squeezenet.evaluate import evaluate

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    if args.shift < 0:
        raise ValueError("--shift must be at least 0 pixels")
    model = load_model_or_artifact(args.weights, checked_arch(args))
    images = find_images(args.data)
    if args.limit is not None:
        if args.limit < 1:
            raise ValueError("--limit must be at least 1")
        images = LabelledImages(images.paths[: args.limit], images.labels[: args.limit], images.class_names)
    preset = args.preprocess or default_preprocess(model)
    result = evaluate(model, images, preset, batch_size=args.batch_size, on_bad_image=args.on_bad_image,
                      show_progress=not args.json, flip=args.flip, shift=args.shift)
    return {**result, "preprocess": preset, "flip": args.flip, "shift": args.shift, "weights": str(args.weights)}


def summarize(result: dict) -> None:
    print(f"{result['images']} images ({result['skipped']} skipped), preprocessing {result['preprocess']}"
          + (", with mirror images" if result["flip"] else "")
          + (f", with copies shifted {result['shift']} pixels" if result["shift"] else ""))
    print(f"top-1 {100 * result['top1']:.2f}%   top-5 {100 * result['top5']:.2f}%   in {result['seconds']:.1f} s")
