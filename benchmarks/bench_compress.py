"""Speed and size of Deep Compression on the published SqueezeNet: compress, encode, decode.

Usage: .venv/bin/python benchmarks/bench_compress.py [--runs 5] [--threads 2]

For each coder it re-encodes the published model at 8 bits (its own codebooks come back exactly),
times ``compress_model`` (k-means, sparse form, gap-width search, entropy coding) and
``read_sqz_model`` (file -> runnable model), and reports the bytes per component. A second table
shows how the largest gap (relative index) changes the coded size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_section  # noqa: E402

from squeezenet.compress.entropy import CODERS  # noqa: E402
from squeezenet.compress.pipeline import CompressionRecipe, compress_model  # noqa: E402
from squeezenet.compress.sqz import read_sqz_model  # noqa: E402
from squeezenet.weights import load_model  # noqa: E402

NET = Path(__file__).resolve().parents[2] / "shared" / "data" / "deep-compression-squeezenet" / "compressed_SqueezeNet.net"
PUBLISHED_BYTES = 675_763


def median_seconds(function, runs: int) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds of this process (the machine is shared, so the
    CPU time is the steadier figure)."""
    wall, cpu = [], []
    for _ in range(runs):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def entropy_bytes(values) -> float:
    """Empirical order-0 entropy of one stream, in bytes: the floor for a coder with a free table."""
    counts = np.bincount(np.asarray(values, dtype=np.int64))
    probability = counts[counts > 0] / len(values)
    return float(-(probability * np.log2(probability)).sum() * len(values) / 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(NET)
    reference = model.state_dict()
    rows, gap_rows = [], []
    with tempfile.TemporaryDirectory() as folder:
        for coder in CODERS:
            out = Path(folder) / f"{coder}.sqz"
            settings = CompressionRecipe(bits=8, coder=coder)
            compress_seconds = median_seconds(lambda: compress_model(model, settings, out), max(1, args.runs // 2))
            result = compress_model(model, settings, out)
            read_sqz_model(out)  # first call pays one-time imports
            decode_seconds = median_seconds(lambda: read_sqz_model(out), args.runs)
            decoded = read_sqz_model(out)
            exact = all(torch.equal(decoded.state_dict()[key], value) for key, value in reference.items())
            rows.append((coder, result.breakdown, compress_seconds, decode_seconds, exact))
            print(coder, result.breakdown, f"compress {compress_seconds} s, decode {decode_seconds} s", flush=True)
            if coder == "fixed":
                continue
            for max_gap in (15, 63, 255, 4095):
                fixed_gap = compress_model(model, CompressionRecipe(bits=8, coder=coder, gap_candidates=(max_gap,)))
                gap_rows.append((coder, str(max_gap), fixed_gap.breakdown["indices"], fixed_gap.breakdown["total"]))
            gap_rows.append((coder, "best per layer", result.breakdown["indices"], result.breakdown["total"]))
            if coder == "ans":
                floor = (sum(entropy_bytes(layer.codes) for layer in result.layers),
                         sum(entropy_bytes(layer.gaps) for layer in result.layers))
    lines = [
        f"The published model ({PUBLISHED_BYTES:,} bytes: 8-bit codes and 4-bit gaps, uncoded) re-encoded at 8 bits "
        "with its own codebooks; every decoded weight equals the published one. Times are medians of "
        f"{args.runs} runs (compress: {max(1, args.runs // 2)}), {args.threads} threads, on a machine shared with other "
        "jobs: wall-clock seconds, and in brackets the CPU seconds of the process (the steadier figure). "
        f"Load average when the run ended: {os.getloadavg()[0]:.1f}.",
        "",
        "| coder | header | spec | codebooks | biases | codes | indices | total bytes | vs .net | compress s | decode s | exact |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for coder, b, compress_seconds, decode_seconds, exact in rows:
        lines.append(
            f"| {coder} | {b['header']:,} | {b['spec']:,} | {b['codebooks']:,} | {b['biases']:,} | {b['codes']:,} | "
            f"{b['indices']:,} | {b['total']:,} | {b['total'] / PUBLISHED_BYTES:.3f} | {compress_seconds[0]:.2f} "
            f"({compress_seconds[1]:.2f}) | {decode_seconds[0]:.3f} ({decode_seconds[1]:.3f}) | {'yes' if exact else 'NO'} |"
        )
    lines += ["", f"Per-layer empirical entropy of the same streams (no table cost): codes {floor[0]:,.0f} bytes, "
              f"indices {floor[1]:,.0f} bytes; the difference to the ans row is mostly the stored tables.",
              "", "Largest gap (relative index) before a filler entry, 8 bits:", "",
              "| coder | max gap | indices bytes | total bytes |", "|---|---|---|---|"]
    lines += [f"| {coder} | {gap} | {indices:,} | {total:,} |" for coder, gap, indices, total in gap_rows]
    write_section("compress", "Deep Compression: sizes and speed on the published SqueezeNet",
                  f".venv/bin/python benchmarks/bench_compress.py --runs {args.runs} --threads {args.threads}",
                  "\n".join(lines))


if __name__ == "__main__":
    main()
