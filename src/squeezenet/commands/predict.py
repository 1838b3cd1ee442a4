"""squeezenet predict: the five most likely classes for each image."""

from __future__ import annotations

from squeezenet.commands._common import add_model_arguments, add_photo_arguments, load_model_from_args

__all__ = ["add_parser", "run", "summarize"]


def add_parser(subparsers):
    parser = subparsers.add_parser("predict", help="top-5 classes for images", description=__doc__)
    parser.add_argument("images", nargs="+", help="image files")
    add_model_arguments(parser)
    add_photo_arguments(parser, preprocess_help="input preset (default: the model's own)",
                        on_bad_image_help="an unreadable image: list it with its error and predict the others, or stop")
    parser.add_argument("--top", type=int, default=5, help="how many classes per image")
    return parser


def run(args) -> dict:
    from squeezenet.data import default_preprocess
    from squeezenet.evaluate import predict
    from squeezenet.weights import class_names

    if args.top < 1:
        raise ValueError("--top must be at least 1")
    model = load_model_from_args(args)
    preset = args.preprocess or default_preprocess(model)
    predictions = predict(model, args.images, preset, class_names(model), k=args.top, on_bad_image=args.on_bad_image)
    return {
        "preprocess": preset,
        "predictions": [_entry(prediction) for prediction in predictions],
        "skipped": sum(prediction.error is not None for prediction in predictions),
    }


def _entry(prediction) -> dict:
    entry = {"image": prediction.image,
             "top": [{"index": i, "name": n, "probability": round(q, 6)} for i, n, q in prediction.classes]}
    if prediction.error is not None:
        entry["error"] = prediction.error
    return entry


def summarize(result: dict) -> None:
    for prediction in result["predictions"]:
        print(prediction["image"])
        if "error" in prediction:
            print(f"  skipped: {prediction['error']}")
        for entry in prediction["top"]:
            print(f"  {100 * entry['probability']:6.2f}%  {entry['name']} ({entry['index']})")
