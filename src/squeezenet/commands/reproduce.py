"""squeezenet reproduce: regenerate the paper's Table 2, design-space sweeps and bypass table on real data."""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_parser", "run", "summarize"]

TARGETS = ("table2", "design-space", "bypass")


def add_parser(subparsers):
    from squeezenet.reproduce.schedules import SCHEDULES, schedules_help

    parser = subparsers.add_parser(
        "reproduce", help="regenerate Table 2, the design-space sweeps or the bypass table", description=__doc__,
        epilog="Finished runs are cached by their settings (--run-cache): a rerun only redoes what changed. "
               "Existing reports in --out and .sqz files in --results are kept unless --force is given.")
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--data", required=True, help="CIFAR-10 train split as an ImageFolder, DIR/<class>/<image>")
    parser.add_argument("--out", default="reports", help="report folder (default reports/)")
    parser.add_argument("--schedule", choices=tuple(SCHEDULES), default="short",
                        help=f"training length (default short). {schedules_help()}")
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
    parser.add_argument("--run-cache", metavar="DIR", help="finished-run cache (default ~/.cache/squeezenet/reproduce)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="decoded-image cache folder, as in train (default ~/.cache/squeezenet/decoded-images)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing report files in --out and .sqz files in --results")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--cached-only", action="store_true",
                        help="train nothing: report the finished runs of the cache and list the missing ones")
    return parser


def run(args) -> dict:
    import torch

    from squeezenet.reproduce.outputs import check_outputs
    from squeezenet.reproduce.report import make_stamp
    from squeezenet.reproduce.runs import RunCache
    from squeezenet.reproduce.schedules import schedule_named
    from squeezenet.reproduce.table2 import ROW_GROUPS, result_file_names
    from squeezenet.reproduce.training import check_data_arguments, load_splits
    from squeezenet.weights import cache_dir

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    schedule = schedule_named(args.schedule)
    # Everything that can be refused is refused here, before hours of loading and training.
    check_data_arguments(args.data, args.val_split)
    imagenet = (args.imagenet_photos, args.imagenet_net)
    if args.target != "table2" and (any(imagenet) or args.imagenet_sqz):
        raise ValueError("--imagenet-photos, --imagenet-net and --imagenet-sqz apply to table2 only")
    if any(imagenet) and not all(imagenet):
        given, needed = ("--imagenet-photos", "--imagenet-net") if args.imagenet_photos else ("--imagenet-net",
                                                                                            "--imagenet-photos")
        raise ValueError(f"{given} needs {needed} too: the ImageNet-track rows score the published model on the photos")
    if args.imagenet_sqz and not all(imagenet):
        raise ValueError("--imagenet-sqz needs --imagenet-photos and --imagenet-net: its row is scored on those photos")
    groups = tuple(group.strip() for group in args.rows.split(",") if group.strip())
    unknown = sorted(set(groups) - set(ROW_GROUPS))
    if args.target == "table2" and (unknown or not groups):
        raise ValueError(f"--rows {args.rows!r}: choose row groups from {', '.join(ROW_GROUPS)}")
    out = Path(args.out)
    run_cache = Path(args.run_cache) if args.run_cache else cache_dir() / "reproduce"
    results = Path(args.results) if args.target == "table2" else None
    check_outputs(args.target, out=out, run_cache=run_cache, results=results,
                  result_files=result_file_names(groups) if results is not None else [],
                  image_cache=Path(args.cache_dir) if args.cache_dir else None, force=args.force)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    show = not args.json
    cache = RunCache(run_cache, compute=not args.cached_only)
    splits = load_splits(args.data, schedule, val_split=args.val_split, show_progress=show, cache_dir=args.cache_dir)
    stamp = make_stamp(_command_line(args))
    log = (lambda text: print(f"[reproduce] {text}", flush=True)) if show else (lambda text: None)
    if args.target == "table2":
        from squeezenet.reproduce.table2 import Table2Context, table2_report

        context = Table2Context(splits, schedule, cache, results_dir=results, show_progress=show, log=log)
        imagenet = (args.imagenet_photos, args.imagenet_net, args.imagenet_sqz) if args.imagenet_net else None
        result = table2_report(context, out=out, stamp=stamp, groups=groups, imagenet=imagenet)
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
    if args.cache_dir:
        words += ["--cache-dir", args.cache_dir]
    if args.run_cache:
        words += ["--run-cache", args.run_cache]
    if args.force:
        words.append("--force")
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
            if row.get("top1_std") is not None:
                top1 += f" ± {100 * row['top1_std']:.1f} ({len(row['seeds'])} seeds)"
        print(f"{label} {size:>12,} B  top-1 {top1}")
    print(f"schedule {result['schedule']}: {result['runs_computed']} run(s) computed, {result['runs_reused']} reused")
    for key in ("markdown", "csv", "plot"):
        if result.get(key):
            print(f"{key}: {result[key]}")
