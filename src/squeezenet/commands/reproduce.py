"""squeezenet reproduce: regenerate the paper's Table 2, design-space sweeps and bypass table on real data."""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_parser", "run", "summarize"]

TARGETS = ("table2", "design-space", "bypass")


def add_parser(subparsers):
    from squeezenet.reproduce.schedules import SCHEDULES

    parser = subparsers.add_parser(
        "reproduce", help="regenerate Table 2, the design-space sweeps or the bypass table", description=__doc__,
        epilog="Finished runs are cached by their settings (--cache-dir): a rerun only redoes what changed.")
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--data", required=True, help="CIFAR-10 train split as an ImageFolder, DIR/<class>/<image>")
    parser.add_argument("--out", default="reports", help="report folder (default reports/)")
    parser.add_argument("--schedule", choices=tuple(SCHEDULES), default="short",
                        help="training length: tiny (wiring check), short (default, under an hour on 2 shared cores), full")
    parser.add_argument("--val-split", type=int, default=500,
                        help="validation images: the last K of every class (default 500); the test split is never read")
    parser.add_argument("--rows", default="alexnet,squeezenet",
                        help="table2 row groups to run: alexnet, squeezenet (comma-separated; default both)")
    parser.add_argument("--results", default="results/cifar10",
                        help="where table2 copies the compressed SqueezeNet .sqz files (default results/cifar10)")
    parser.add_argument("--imagenet-photos", help="table2: ImageNet sample photos for the ImageNet-track rows")
    parser.add_argument("--imagenet-net", help="table2: the published Deep Compression SqueezeNet (.net)")
    parser.add_argument("--imagenet-sqz", action="append", default=[],
                        help="table2: our ImageNet re-compression(s) (.sqz), repeatable")
    parser.add_argument("--cache-dir", help="finished-run cache (default ~/.cache/squeezenet/reproduce)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--cached-only", action="store_true",
                        help="train nothing: report the finished runs of the cache and list the missing ones")
    return parser


def run(args) -> dict:
    import torch

    from squeezenet.reproduce.report import make_stamp
    from squeezenet.reproduce.runs import RunCache
    from squeezenet.reproduce.schedules import schedule_named
    from squeezenet.reproduce.training import load_splits
    from squeezenet.weights import cache_dir

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    schedule = schedule_named(args.schedule)
    show = not args.json
    cache = RunCache(Path(args.cache_dir) if args.cache_dir else cache_dir() / "reproduce", compute=not args.cached_only)
    splits = load_splits(args.data, schedule, val_split=args.val_split, show_progress=show)
    out = Path(args.out)
    stamp = make_stamp(_command_line(args))
    log = (lambda text: print(f"[reproduce] {text}", flush=True)) if show else (lambda text: None)
    if args.target == "table2":
        from squeezenet.reproduce.table2 import table2_report

        groups = tuple(group.strip() for group in args.rows.split(",") if group.strip())
        result = table2_report(splits, schedule, cache, out=out, stamp=stamp, groups=groups,
                               results_dir=Path(args.results), imagenet_photos=args.imagenet_photos,
                               imagenet_net=args.imagenet_net, imagenet_sqz=args.imagenet_sqz,
                               show_progress=show, log=log)
    elif args.target == "design-space":
        from squeezenet.reproduce.design_space import design_space_report

        result = design_space_report(splits, schedule, cache, out=out, stamp=stamp, show_progress=show, log=log)
    else:
        from squeezenet.reproduce.bypass import bypass_report

        result = bypass_report(splits, schedule, cache, out=out, stamp=stamp, show_progress=show, log=log)
    result.update(schedule=schedule.name, runs_computed=len(cache.computed), runs_reused=len(cache.reused))
    return result


def _command_line(args) -> list[str]:
    """The command as a user would type it, rebuilt from the parsed options (also when called from Python)."""
    words = ["squeezenet", "reproduce", args.target, "--data", args.data, "--out", args.out, "--schedule",
             args.schedule, "--val-split", str(args.val_split)]
    if args.target == "table2":
        words += ["--rows", args.rows, "--results", args.results]
        if args.imagenet_photos:
            words += ["--imagenet-photos", args.imagenet_photos]
        if args.imagenet_net:
            words += ["--imagenet-net", args.imagenet_net]
        for path in args.imagenet_sqz:
            words += ["--imagenet-sqz", path]
    if args.threads is not None:
        words += ["--threads", str(args.threads)]
    if args.cached_only:
        words.append("--cached-only")
    return words


def summarize(result: dict) -> None:
    for row in result.get("rows", []):
        top1 = f"{100 * row['top1']:.1f}%"
        if "approach" in row:  # a Table 2 row
            label = f"{row['track'][:10]:10} {row['architecture'][:16]:16} {row['approach'][:44]:44}"
            size = row["compressed_bytes"]
        else:  # a design-space or bypass variant
            label = f"SR {row['squeeze_ratio']:<6} pct3x3 {row['pct3x3']:<6} bypass {row['bypass']:8}"
            size = row["fp32_bytes"]
        print(f"{label} {size:>12,} B  top-1 {top1}")
    print(f"schedule {result['schedule']}: {result['runs_computed']} run(s) computed, {result['runs_reused']} reused")
    for key in ("markdown", "csv", "plot"):
        if result.get(key):
            print(f"{key}: {result[key]}")
