"""Benchmark of the evaluation road against per-query argsort references (one run, one table).

Times, on random codes with `--classes` classes:
  (a) `evaluate_codes` restricted to mAP + tie-aware mAP (no @k, P@N or curve), and in full;
  (b) a straightforward per-query reference: Hamming distances of one query (uint8,
      the same XOR + popcount kernel), stable argsort, cumulative precision -> AP;
  (c) the DeepHash-pytorch style reference common in hashing code: distances from a float64
      +-1 dot product, stable argsort on those floats. It is slow, so it runs on
      `--float-reference-queries` queries and is scaled to all of them (per-query cost is flat).
Each timing is the best of `--repeats` interleaved runs: other processes share these cores,
and the minimum is the least disturbed measurement. Then the peak memory (max RSS of a child
process, so numpy's allocations are all counted) of a full `evaluate_codes` on
`--memory-queries` x `--memory-database` codes.

    python experiments/bench_eval.py --queries 1000 --database 69000 --bits 64 --seed 0
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from scae_hash.codes import hamming_distances_packed, pack_words
from scae_hash.metrics import evaluate_codes

TARGET_SECONDS, TARGET_SPEEDUP, TARGET_PEAK_GB = 0.5, 5.0, 2.0


def random_codes(n_queries: int, n_database: int, n_bits: int, n_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 2, size=(n_queries, n_bits), dtype=np.uint8),
        rng.integers(0, 2, size=(n_database, n_bits), dtype=np.uint8),
        rng.integers(0, n_classes, size=n_queries),
        rng.integers(0, n_classes, size=n_database),
    )


def cumulative_precision_ap(distances: np.ndarray, database_labels: np.ndarray, label) -> float:
    """Textbook AP of one query: stable argsort, then precision at every rank."""
    relevant = database_labels[np.argsort(distances, kind="stable")] == label
    n_relevant = relevant.sum()
    precision = np.cumsum(relevant) / np.arange(1, len(relevant) + 1)
    return float((precision * relevant).sum() / n_relevant) if n_relevant else 0.0


def reference_map_uint8(query_bits, database_bits, query_labels, database_labels) -> float:
    query_words, database_words = pack_words(query_bits), pack_words(database_bits)
    return float(np.mean([
        cumulative_precision_ap(hamming_distances_packed(query_words[i : i + 1], database_words)[0], database_labels, label)
        for i, label in enumerate(query_labels)
    ]))


def reference_map_float(query_bits, database_bits, query_labels, database_labels) -> float:
    query_signs, database_signs = 2.0 * query_bits - 1, 2.0 * database_bits - 1
    n_bits = query_bits.shape[1]
    return float(np.mean([
        cumulative_precision_ap(0.5 * (n_bits - database_signs @ query_signs[i]), database_labels, label)
        for i, label in enumerate(query_labels)
    ]))


def best_times(runs: dict[str, Callable[[], float]], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Best wall time and last value of each callable, interleaving the repeats."""
    times, values = {name: float("inf") for name in runs}, {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            values[name] = run()
            times[name] = min(times[name], time.perf_counter() - start)
    return times, values


def memory_child(args: argparse.Namespace) -> None:
    """Runs inside the child process: one full evaluation, then report its own peak RSS."""
    case = random_codes(args.memory_queries, args.memory_database, args.bits, args.classes, args.seed)
    start = time.perf_counter()
    evaluate_codes(*case)
    print(f"{time.perf_counter() - start:.3f}")


def measure_peak_memory(args: argparse.Namespace) -> tuple[float, float]:
    """Peak RSS (GB) and wall time of a full evaluation in a fresh child process."""
    command = [sys.executable, __file__, "--memory-child", "--bits", str(args.bits), "--seed", str(args.seed),
               "--classes", str(args.classes), "--memory-queries", str(args.memory_queries),
               "--memory-database", str(args.memory_database)]
    child = subprocess.run(command, check=True, capture_output=True, text=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    return peak_kb / 2**20, float(child.stdout.strip())


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--database", type=int, default=69000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--float-reference-queries", type=int, default=50)
    parser.add_argument("--memory-queries", type=int, default=10000)
    parser.add_argument("--memory-database", type=int, default=60000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args)
        return

    case = random_codes(args.queries, args.database, args.bits, args.classes, args.seed)
    float_case = (case[0][: args.float_reference_queries], case[1], case[2][: args.float_reference_queries], case[3])
    evaluate_codes(*case[:2], case[2], case[3], map_at=(), precision_at=(), curve_max_n=0)  # warm-up
    times, values = best_times(
        {
            "ours: mAP + tie-aware mAP": lambda: evaluate_codes(*case, map_at=(), precision_at=(), curve_max_n=0).map,
            "ours: full evaluate_codes": lambda: evaluate_codes(*case).map,
            "reference: per query, uint8 distances": lambda: reference_map_uint8(*case),
        },
        args.repeats,
    )
    float_times, float_values = best_times({"float": lambda: reference_map_float(*float_case)}, 1)
    float_seconds = float_times["float"] * args.queries / len(float_case[0])
    ours = times["ours: mAP + tie-aware mAP"]
    reference = times["reference: per query, uint8 distances"]

    print(f"{args.queries} queries x {args.database} database x {args.bits} bits, {args.classes} classes, "
          f"best of {args.repeats} (float reference: {len(float_case[0])} queries, scaled)")
    print(f"{'path':52s} {'seconds':>8s} {'speed-up':>9s}")
    for name, seconds in times.items():
        print(f"{name:52s} {seconds:8.3f} {reference / seconds:8.1f}x")
    print(f"{'reference: per query, float64 +-1 dot (DeepHash style)':52s} {float_seconds:8.3f} "
          f"{reference / float_seconds:8.1f}x")
    agree = abs(values["ours: mAP + tie-aware mAP"] - values["reference: per query, uint8 distances"]) < 1e-9
    ours_on_float_case = evaluate_codes(*float_case, map_at=(), precision_at=(), curve_max_n=0).map
    agree &= abs(ours_on_float_case - float_values["float"]) < 1e-9
    print(f"mAP ours {values['ours: mAP + tie-aware mAP']:.12f}, reference "
          f"{values['reference: per query, uint8 distances']:.12f}: agree {verdict(agree)}")
    print(f"target <= {TARGET_SECONDS} s: {verdict(ours <= TARGET_SECONDS)} ({ours:.3f} s); "
          f">= {TARGET_SPEEDUP:.0f}x vs uint8 reference: {verdict(reference / ours >= TARGET_SPEEDUP)} "
          f"({reference / ours:.1f}x); vs float reference: {verdict(float_seconds / ours >= TARGET_SPEEDUP)} "
          f"({float_seconds / ours:.1f}x)")
    if not args.skip_memory:
        peak_gb, seconds = measure_peak_memory(args)
        print(f"full evaluate_codes, {args.memory_queries} x {args.memory_database} x {args.bits} bits: "
              f"{seconds:.2f} s, peak RSS {peak_gb:.3f} GB; target <= {TARGET_PEAK_GB} GB: "
              f"{verdict(peak_gb <= TARGET_PEAK_GB)}")


if __name__ == "__main__":
    main()
