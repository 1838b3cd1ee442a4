"""Table 2 of the SqueezeNet paper, regenerated on CIFAR-10 with the 32x32 variants.

Rows (the paper's, then ours beyond it):
- AlexNet: the baseline, + SVD (Denton et al. 2014), + network pruning (Han et al. 2015b),
  + Deep Compression (Han et al. 2016: prune, retrain, quantize, retrain centroids, Huffman);
- SqueezeNet: the baseline, + Deep Compression at 8 and 6 bits (Huffman, as in the paper);
  beyond the paper: pruning alone, the rANS coder and 4 bits.

Both baselines train with BatchNorm (``alexnet_cifar_bn``; ``squeezenet1_0_cifar_bn``, v1.0 as in the
paper's table) for the same epochs, or with ``Schedule.squeezenet_epochs`` for the same minutes;
BatchNorm is folded into the convolutions before any compression, so every compressed model is a
plain BN-free network. Sizes are bytes: float32 parameters for the dense and SVD rows,
Han et al.'s sparse float32 + relative-index count for the pruned rows, and the exact size of the
``.sqz`` file for the Deep Compression rows, whose accuracy is measured on the model read back from
that file. Accuracy is on the validation split (last images of every class), never the test split.

Every step is a cached run (``runs.RunCache``): a rerun only redoes the steps whose settings changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch

from squeezenet.compress.layer_settings import values_by_role
from squeezenet.compress.pipeline import CompressionRecipe, encode_model, prune_stage, quantize_stage
from squeezenet.compress.sqz import read_sqz_model
from squeezenet.compress.svd import factorize_model, fp32_bytes
from squeezenet.models import build_model, count_parameters, fold_batch_norm
from squeezenet.reproduce.deep_compression import nonzero_fraction, restore_batch_norm, sparse_fp32_bytes
from squeezenet.reproduce.runs import MissingRun, RunCache
from squeezenet.reproduce.training import (
    SQUEEZENET_RECIPE,
    Solver,
    Splits,
    accuracy,
    calibration_inputs,
    data_settings,
    fit,
)
from squeezenet.safe_io import atomic_write_bytes
from squeezenet.train import training_model_from_spec
from squeezenet.weights import load_model, save_checkpoint

__all__ = ["ROW_GROUPS", "REPORT_FILES", "Table2Context", "Table2Plan", "TABLE2_PLAN", "table2_rows", "table2_report",
           "result_file_names"]

ROW_GROUPS = ("alexnet", "squeezenet")


@dataclass(frozen=True)
class Table2Plan:
    """The compression settings of the rows (the knobs of the paper's Table 2)."""

    # Han et al. 2015b pruned AlexNet to 11% (conv ~35% kept, fc ~9%); first layer kept denser.
    alexnet_sparsity: tuple[float, float, float, float] = (0.3, 0.65, 0.91, 0.75)  # first, conv, fc, last
    alexnet_bits: tuple[int, int, int, int] = (8, 8, 5, 5)  # Deep Compression: conv 8 bits, fc 5 bits
    alexnet_svd_rank: int = 256  # on the two 4096x4096 fc layers: ~5x fewer parameters, as the paper's SVD row
    alexnet_svd_layers: tuple[str, ...] | None = None  # None: every fc layer but the classifier
    # The published SqueezeNet Deep Compression model keeps 33% of the weights.
    squeezenet_sparsity: tuple[float, float, float, float] = (0.3, 0.67, 0.67, 0.5)
    squeezenet_bits: tuple[int, ...] = (8, 6, 4)
    squeezenet_coders: tuple[str, ...] = ("huffman", "ans")

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


TABLE2_PLAN = Table2Plan()
ALEXNET_ARCH = "alexnet_cifar_bn"
# The paper's Table 2 SqueezeNet is v1.0: its pool positions (after conv1, fire4, fire8) on the 32x32 stem.
SQUEEZENET_ARCH = "squeezenet1_0_cifar_bn"


def _baseline(cache: RunCache, name: str, build: Callable[[], torch.nn.Module], splits: Splits, schedule,
              show_progress: bool):
    """Train the BN model, fold BN, save the folded model and its accuracy."""
    torch.manual_seed(0)
    spec = build().spec.to_dict()
    squeezenet = spec.get("family") == "squeezenet"
    epochs = schedule.squeezenet_baseline_epochs if squeezenet else schedule.epochs
    settings = {"step": "baseline", "spec": spec, **data_settings(splits), "epochs": epochs,
                "batch_size": schedule.batch_size, "lr": schedule.lr, "seed": 0}
    if squeezenet:
        settings["recipe"] = SQUEEZENET_RECIPE

    def compute(folder: Path) -> dict:
        torch.manual_seed(0)
        model = training_model_from_spec(spec)
        # AlexNet's class scores are not ReLU'd: its last layer trains at the full learning rate.
        solver = Solver(epochs, schedule.lr, schedule.batch_size, classifier_lr_scale=None if squeezenet else 1.0)
        training = fit(model, splits.train, solver, folder=folder, show_progress=show_progress,
                       resumable=schedule.resumable)
        folded = fold_batch_norm(model.to(memory_format=torch.contiguous_format))
        save_checkpoint(folder / "model.pth", folded)
        return {"training": training, "parameters": count_parameters(folded), "fp32_bytes": fp32_bytes(folded),
                **accuracy(folded, splits.val)}

    return cache.run(name, settings, compute)


def _retrainer(splits: Splits, schedule, folder: Path, epochs: int, lr: float, show_progress: bool):
    def retrain(model) -> None:
        if epochs > 0:
            fit(model, splits.retrain, Solver(epochs, lr, schedule.batch_size), folder=folder,
                show_progress=show_progress, resumable=schedule.resumable)
    return retrain


def _pruned(cache: RunCache, name: str, parent, sparsity_values, splits: Splits, schedule, show_progress: bool):
    """Prune the folded parent with its BatchNorm restored, retrain, fold again (``pipeline.prune_stage``;
    why BatchNorm: ``deep_compression``)."""
    settings = {"step": "prune", "parent": parent.key, "sparsity": list(sparsity_values), **data_settings(splits),
                "epochs": schedule.prune_epochs, "lr": schedule.retrain_lr, "batch_size": schedule.batch_size,
                "retrain_with_batch_norm": True}

    def compute(folder: Path) -> dict:
        folded = load_model(parent.folder / "model.pth")
        model = restore_batch_norm(folded, calibration_inputs(splits.retrain)).train()
        recipe = CompressionRecipe(
            sparsity=values_by_role(model, sparsity_values), batch_norm="prune-with-batch-norm", prune_rounds=1,
            retrain=_retrainer(splits, schedule, folder, schedule.prune_epochs, schedule.retrain_lr, show_progress))
        model, kept = prune_stage(model, recipe)
        save_checkpoint(folder / "model.pth", model)
        return {"kept": kept, "nonzero_fraction": nonzero_fraction(model), "sparse_bytes": sparse_fp32_bytes(model),
                **accuracy(model, splits.val)}

    return cache.run(name, settings, compute)


def _deep_compressed(cache: RunCache, name: str, parent, bits_values, coders, splits: Splits, schedule,
                     show_progress: bool):
    """Quantize the pruned parent, retrain the centroids, write one .sqz per coder, score each file."""
    settings = {"step": "quantize", "parent": parent.key, "bits": list(bits_values), "coders": list(coders),
                **data_settings(splits), "epochs": schedule.quantize_epochs, "lr": schedule.centroid_lr,
                "batch_size": schedule.batch_size}

    def compute(folder: Path) -> dict:
        model = load_model(parent.folder / "model.pth").train()
        bits = values_by_role(model, bits_values)
        # The paper's fixed relative-index widths (15 conv / 31 fc), not the searched ones: the files
        # stay Han et al.'s format, and the cached runs their bytes.
        recipe = CompressionRecipe(
            bits=bits, gap_policy="paper",
            retrain_centroids=_retrainer(splits, schedule, folder, schedule.quantize_epochs, schedule.centroid_lr,
                                         show_progress))
        quantized = quantize_stage(model, recipe)
        model, quantizations = quantized.model, quantized.quantizations
        files = {}
        for coder in coders:
            path = folder / f"{name}-{coder}.sqz"
            encoded = encode_model(model, quantizations, replace(recipe, coder=coder), header=_header(splits))
            atomic_write_bytes(path, encoded.data)
            breakdown = encoded.breakdown
            decoded = read_sqz_model(path)
            files[coder] = {"file": path.name, "bytes": path.stat().st_size, "breakdown": breakdown,
                            **accuracy(decoded, splits.val)}
        return {"bits": bits, "files": files, "nonzero_fraction": nonzero_fraction(model)}

    return cache.run(name, settings, compute)


def _header(splits: Splits) -> dict:
    """What a .sqz of this reproduction records about its inputs: the training folder's class names
    (label order) and the preprocessing the models were trained with."""
    return {"classes": list(splits.train.class_names), "preprocess": splits.train.preset}


def _copy_with_header(source: Path, target: Path, header: dict) -> int:
    """Copy a run's .sqz to ``target``; a file from a run made before .sqz files carried class names
    gets them now (header only, the layers unchanged). Returns the bytes written."""
    from squeezenet.compress.sqz import decode_sqz
    from squeezenet.compress.relabel import relabel_sqz_bytes

    data = source.read_bytes()
    metadata = decode_sqz(data)[2]
    if metadata.get("classes") != header["classes"] or metadata.get("preprocess") != header["preprocess"]:
        data = relabel_sqz_bytes(data, **header)
    atomic_write_bytes(target, data)
    return len(data)


def _svd(cache: RunCache, name: str, parent, rank: int, layers, splits: Splits, schedule, show_progress: bool):
    settings = {"step": "svd", "parent": parent.key, "rank": rank, **data_settings(splits),
                "epochs": schedule.svd_epochs, "lr": schedule.retrain_lr, "batch_size": schedule.batch_size}
    if layers is not None:  # the default (the fc layers) keeps the settings, and so the cache key, it had
        settings["layers"] = list(layers)

    def compute(folder: Path) -> dict:
        model = load_model(parent.folder / "model.pth")
        chosen = list(layers) if layers is not None else [
            n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)][:-1]
        factorized, ranks = factorize_model(model, rank=rank, layers=chosen)
        factorized.train()
        _retrainer(splits, schedule, folder, schedule.svd_epochs, schedule.retrain_lr, show_progress)(factorized)
        return {"ranks": ranks, "fp32_bytes": fp32_bytes(factorized), "parameters": count_parameters(factorized),
                **accuracy(factorized, splits.val)}

    return cache.run(name, settings, compute)


def _row(architecture, approach, data_type, sizes: tuple[int, int], alexnet_bytes, result, *, file=None,
         note="") -> dict:
    original, compressed = sizes
    return {"track": "CIFAR-10", "architecture": architecture, "approach": approach, "data_type": data_type,
            "original_bytes": original, "compressed_bytes": compressed,
            "reduction_vs_alexnet": alexnet_bytes / compressed if alexnet_bytes else None,
            "top1": result["top1"], "top5": result["top5"], "file": file, "note": note}


@dataclass
class Table2Context:
    """What every step of a Table 2 run shares: the data, the schedule, the run cache, the plan, where
    the .sqz files go, and the names of the steps a cache that must not compute could not supply."""

    splits: Splits
    schedule: object
    cache: RunCache
    plan: Table2Plan | None = None  # None: TABLE2_PLAN
    results_dir: Path | None = None
    show_progress: bool = False
    log: Callable[[str], None] = lambda text: None
    missing: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.plan = self.plan if self.plan is not None else TABLE2_PLAN

    def attempt(self, message: str, step: Callable[[], object]):
        """Run (or read back) one step; None when the cache may not compute it (its name is noted)."""
        self.log(message)
        try:
            return step()
        except MissingRun as error:
            self.missing.append(str(error))
            return None


def table2_rows(context: Table2Context, groups=ROW_GROUPS) -> list[dict]:
    """Run (or read back) every step of the chosen row groups and return the CIFAR-10 rows.

    With a cache that must not compute (``RunCache(compute=False)``), rows whose runs are not
    finished are left out and their step names appended to ``context.missing``.
    """
    unknown = sorted(set(groups) - set(ROW_GROUPS))
    if unknown:
        raise ValueError(f"unknown Table 2 row group(s) {', '.join(unknown)}; choose from {', '.join(ROW_GROUPS)}")
    # Reduction vs AlexNet needs AlexNet's fp32 size only, which the architecture fixes: counted on
    # the meta device, without allocating its 144 MB of weights (twice, with the folded copy).
    with torch.device("meta"):
        alexnet_bytes = 4 * count_parameters(fold_batch_norm(build_model(ALEXNET_ARCH)))
    rows = _alexnet_rows(context, alexnet_bytes) if "alexnet" in groups else []
    if "squeezenet" in groups:
        rows += _squeezenet_rows(context, alexnet_bytes)
    return rows


def _alexnet_rows(context: Table2Context, alexnet_bytes: int) -> list[dict]:
    splits, schedule, cache, plan, show = context.splits, context.schedule, context.cache, context.plan, \
        context.show_progress
    # Computed in order of importance (the SVD row last: its full SVDs are slow), listed as the paper.
    base = context.attempt("AlexNet baseline", lambda: _baseline(cache, "alexnet", lambda: build_model(ALEXNET_ARCH),
                                                                 splits, schedule, show))
    if base is None:
        return []
    pruned = context.attempt("AlexNet + pruning", lambda: _pruned(cache, "alexnet-pruned", base, plan.alexnet_sparsity,
                                                                  splits, schedule, show))
    compressed = None
    if pruned is not None:
        compressed = context.attempt("AlexNet + Deep Compression", lambda: _deep_compressed(
            cache, "alexnet-dc", pruned, plan.alexnet_bits, ("huffman",), splits, schedule, show))
    svd = context.attempt("AlexNet + SVD", lambda: _svd(cache, "alexnet-svd", base, plan.alexnet_svd_rank,
                                                        plan.alexnet_svd_layers, splits, schedule, show))
    original = base.result["fp32_bytes"]
    rows = [_row("AlexNet", "None (baseline)", "32 bit", (original, original), alexnet_bytes, base.result)]
    if svd is not None:
        where = "fc" if plan.alexnet_svd_layers is None else ", ".join(plan.alexnet_svd_layers)
        tuned = "" if schedule.svd_epochs else ", no fine-tuning"
        rows.append(_row("AlexNet", f"SVD (rank {plan.alexnet_svd_rank} {where}{tuned})", "32 bit",
                         (original, svd.result["fp32_bytes"]), alexnet_bytes, svd.result))
    if pruned is not None:
        rows.append(_row("AlexNet", "Network Pruning", "32 bit", (original, pruned.result["sparse_bytes"]),
                         alexnet_bytes, pruned.result,
                         note=f"{100 * pruned.result['nonzero_fraction']:.1f}% weights kept"))
    if compressed is not None:
        entry = compressed.result["files"]["huffman"]
        rows.append(_row("AlexNet", "Deep Compression (Huffman)", "5-8 bit", (original, entry["bytes"]),
                         alexnet_bytes, entry, note="conv 8 bit, fc 5 bit"))
    return rows


def _squeezenet_rows(context: Table2Context, alexnet_bytes: int) -> list[dict]:
    schedule, cache, plan, show = context.schedule, context.cache, context.plan, context.show_progress
    base = context.attempt("SqueezeNet baseline", lambda: _baseline(
        cache, "squeezenet", lambda: build_model(SQUEEZENET_ARCH), context.splits, schedule, show))
    if base is None:
        return []
    original = base.result["fp32_bytes"]
    rows = [_row("SqueezeNet", "None", "32 bit", (original, original), alexnet_bytes, base.result)]
    # SqueezeNet retrains on all its training images: per image it costs under half of AlexNet's
    # retraining, which the schedule's compute budget limits to ``retrain_per_class`` per class.
    splits = replace(context.splits, retrain=context.splits.train)
    pruned = context.attempt("SqueezeNet + pruning", lambda: _pruned(cache, "squeezenet-pruned", base,
                                                                     plan.squeezenet_sparsity, splits, schedule, show))
    if pruned is None:
        return rows
    rows.append(_row("SqueezeNet", "Network Pruning (beyond paper)", "32 bit", (original, pruned.result["sparse_bytes"]),
                     alexnet_bytes, pruned.result, note=f"{100 * pruned.result['nonzero_fraction']:.1f}% weights kept"))
    for bits in plan.squeezenet_bits:
        compressed = context.attempt(f"SqueezeNet + Deep Compression {bits}-bit", lambda: _deep_compressed(
            cache, f"squeezenet-dc{bits}", pruned, (bits,) * 4, plan.squeezenet_coders, splits, schedule, show))
        if compressed is not None:
            rows += [_compressed_row(context, compressed, bits, coder, original, alexnet_bytes)
                     for coder in plan.squeezenet_coders]
    return rows


def _compressed_row(context: Table2Context, compressed, bits: int, coder: str, original: int,
                    alexnet_bytes: int) -> dict:
    """One SqueezeNet Deep Compression row; its .sqz is copied under ``results_dir`` with the header."""
    entry = compressed.result["files"][coder]
    beyond = coder != "huffman" or bits not in (8, 6)
    label = f"Deep Compression ({'Huffman' if coder == 'huffman' else 'rANS'})"
    file = None
    if context.results_dir is not None:
        context.results_dir.mkdir(parents=True, exist_ok=True)
        target = context.results_dir / result_file_name(bits, coder)
        size = _copy_with_header(compressed.folder / entry["file"], target, _header(context.splits))
        entry = {**entry, "bytes": size}  # the file as written, header included
        file = str(target)
    return _row("SqueezeNet", label + (" (beyond paper)" if beyond else ""), f"{bits} bit",
                (original, entry["bytes"]), alexnet_bytes, entry, file=file,
                note=f"{100 * compressed.result['nonzero_fraction']:.1f}% weights kept")


def result_file_name(bits: int, coder: str) -> str:
    """The name under ``--results`` of the compressed SqueezeNet at ``bits`` with ``coder``."""
    return f"squeezenet_cifar_dc{bits}bit_{coder}.sqz"


def result_file_names(groups=ROW_GROUPS, plan: Table2Plan | None = None) -> list[str]:
    """Every file ``table2_rows`` writes under ``--results`` for these row groups."""
    plan = plan if plan is not None else TABLE2_PLAN
    if "squeezenet" not in groups:
        return []
    return [result_file_name(bits, coder) for bits in plan.squeezenet_bits for coder in plan.squeezenet_coders]


REPORT_FILES = ("table2.md", "table2.csv")

TABLE2_COLUMNS = ["track", "architecture", "approach", "data_type", "original_bytes", "compressed_bytes",
                  "reduction_vs_alexnet", "top1", "top5", "file", "note"]


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def write_table2_report(rows: list[dict], out: Path, stamp, notes: list[str]) -> dict:
    """``table2.md`` (a compact table and a notes paragraph) and ``table2.csv`` (every number)."""
    from squeezenet.reproduce.report import markdown_table, write_csv, write_markdown

    out.mkdir(parents=True, exist_ok=True)
    header = ["Track", "Architecture", "Compression approach", "Data type", "Original → compressed (bytes)",
              "Reduction vs AlexNet", "Top-1", "Top-5"]
    body = []
    for row in rows:
        reduction = row.get("reduction_vs_alexnet")
        body.append([row["track"], row["architecture"], row["approach"], row["data_type"],
                     f"{row['original_bytes']:,} → {row['compressed_bytes']:,}",
                     "n/a" if reduction is None else f"{reduction:.1f}x", _percent(row["top1"]),
                     _percent(row["top5"])])
    write_markdown(out / "table2.md", "Table 2, reproduced", stamp, [markdown_table(header, body), " ".join(notes)])
    write_csv(out / "table2.csv", rows, TABLE2_COLUMNS)
    return {"markdown": str(out / "table2.md"), "csv": str(out / "table2.csv")}


def table2_report(context: Table2Context, *, out: Path, stamp, groups=ROW_GROUPS,
                  imagenet: tuple | None = None) -> dict:
    """Run the rows, add the ImageNet-track rows when ``imagenet`` = (photos, published .net, our
    .sqz files) is given, and write ``table2.md`` / ``table2.csv`` into ``out``."""
    rows = table2_rows(context, groups)
    if imagenet is not None:
        from squeezenet.reproduce.imagenet_track import imagenet_rows

        photos, net, sqz_files = imagenet
        cache = context.cache
        rows += context.attempt("ImageNet track", lambda: imagenet_rows(cache, photos, net, list(sqz_files),
                                                                         cache.root / "imagenet")) or []
    splits, schedule, missing = context.splits, context.schedule, context.missing
    notes = [
        f"CIFAR-10 rows: 32x32 variants ({ALEXNET_ARCH}; {SQUEEZENET_ARCH}, v1.0's pool positions as in the",
        f"paper's table) trained with BatchNorm ({schedule.describe()}; SqueezeNet retrains on all",
        "its training images, AlexNet on the retraining subset), BatchNorm folded before compression (pruning retrains with",
        "BatchNorm restored, then folds again); accuracy on the validation split (the last", f"{splits.val_split} images per class of the",
        f"training folder, {len(splits.val)} images; the test split is not used). Sizes: float32 parameters",
        "(baselines, SVD), non-zero float32 values + 4/5-bit relative indices (pruning), exact .sqz file bytes",
        "(Deep Compression; accuracy measured on the model decoded from the file). Reduction vs AlexNet: against",
        "the fp32 AlexNet of the same track. ImageNet rows: scored on the evaluation half of the sample photos",
        "(Caffe preprocessing), not on ImageNet val.",
    ]
    if missing:
        notes.append(f"Not in this report (runs not finished when it was written, --cached-only): {', '.join(missing)}.")
    files = write_table2_report(rows, out, stamp, notes)
    return {"rows": rows, "missing": missing, **files}
