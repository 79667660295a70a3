"""Benchmark of the evaluation road against per-query argsort references, in one run.

On random codes with `--classes` classes it times:
  ours        `evaluate_codes` limited to mAP + tie-aware mAP (no @k, P@N or curve: the lean
              path), and the full `evaluate_codes`;
  straight    the straightforward reference: per query, Hamming distances as numpy gives them
              (XOR + popcount summed over words: uint64), stable argsort, cumulative precision;
  uint8       the same loop with our uint8 distance kernel, so its stable argsort is a radix
              sort too: the gap to it is what vectorising and threading alone buy;
  float       the DeepHash-pytorch style common in hashing code (float64 +-1 dot product, stable
              argsort on floats), run on `--float-queries` queries and scaled (flat per query).
Each time is the best of `--repeats` interleaved runs: other processes share these cores (the
load average is printed) and the minimum is the least disturbed measurement. CPU time (all
threads) shows the work apart from the parallelism. The mAPs must
agree. Last, the peak RSS of a full `evaluate_codes` on `--memory-queries` x
`--memory-database` codes, measured as the max RSS of a fresh child process so that every
numpy allocation counts.

    python experiments/bench_eval.py --queries 1000 --database 69000 --bits 64 --seed 0
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from scae_hash.codes import hamming_distances_packed, pack_words
from scae_hash.metrics import evaluate_codes

TARGET_SECONDS, TARGET_SPEEDUP, TARGET_PEAK_GB = 0.5, 5.0, 2.0
LEAN = {"map_at": (), "precision_at": (), "curve_max_n": 0}


def random_codes(n_queries: int, n_database: int, n_bits: int, n_classes: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 2, size=(n_queries, n_bits), dtype=np.uint8),
        rng.integers(0, 2, size=(n_database, n_bits), dtype=np.uint8),
        rng.integers(0, n_classes, size=n_queries),
        rng.integers(0, n_classes, size=n_database),
    )


def cumulative_precision_ap(distances: np.ndarray, database_labels: np.ndarray, label: int) -> float:
    """Textbook AP of one query: stable argsort, then precision at every rank."""
    relevant = database_labels[np.argsort(distances, kind="stable")] == label
    n_relevant = relevant.sum()
    precision = np.cumsum(relevant) / np.arange(1, len(relevant) + 1)
    return float((precision * relevant).sum() / n_relevant) if n_relevant else 0.0


def per_query_map(distance_of: Callable[[int], np.ndarray], query_labels, database_labels) -> float:
    return float(np.mean([
        cumulative_precision_ap(distance_of(i), database_labels, label) for i, label in enumerate(query_labels)
    ]))


def straightforward_map(query_bits, database_bits, query_labels, database_labels) -> float:
    query_words, database_words = pack_words(query_bits), pack_words(database_bits)
    return per_query_map(
        lambda i: np.bitwise_count(database_words ^ query_words[i]).sum(axis=1), query_labels, database_labels
    )


def uint8_map(query_bits, database_bits, query_labels, database_labels) -> float:
    query_words, database_words = pack_words(query_bits), pack_words(database_bits)
    return per_query_map(
        lambda i: hamming_distances_packed(query_words[i : i + 1], database_words)[0],
        query_labels,
        database_labels,
    )


def float_map(query_bits, database_bits, query_labels, database_labels) -> float:
    query_signs, database_signs = 2.0 * query_bits - 1, 2.0 * database_bits - 1
    n_bits = query_bits.shape[1]
    return per_query_map(
        lambda i: 0.5 * (n_bits - database_signs @ query_signs[i]), query_labels, database_labels
    )


def best_times(
    runs: dict[str, Callable[[], float]], repeats: int
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Best wall time, best CPU time (all threads) and the value of each callable, repeats interleaved."""
    wall, cpu, values = {name: float("inf") for name in runs}, {name: float("inf") for name in runs}, {}
    for _ in range(repeats):
        for name, run in runs.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            values[name] = run()
            wall[name] = min(wall[name], time.perf_counter() - start_wall)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    return wall, cpu, values


def memory_child(args: argparse.Namespace) -> None:
    """Inside the child process: one full evaluation; prints its wall time."""
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--database", type=int, default=69000)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--float-queries", type=int, default=50)
    parser.add_argument("--memory-queries", type=int, default=10000)
    parser.add_argument("--memory-database", type=int, default=60000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


LEAN_PATH, FULL_PATH = "ours: mAP + tie-aware mAP", "ours: full evaluate_codes"
STRAIGHT_PATH = "straight: per query, numpy uint64 distances"
UINT8_PATH = "uint8: per query, uint8 distances (radix sort)"
FLOAT_PATH = "float: per query, float64 dot (DeepHash style)"


def main() -> None:
    args = parse_args()
    if args.memory_child:
        memory_child(args)
        return
    case = random_codes(args.queries, args.database, args.bits, args.classes, args.seed)
    float_case = (case[0][: args.float_queries], case[1], case[2][: args.float_queries], case[3])
    evaluate_codes(*case, **LEAN)  # warm-up: imports, allocator
    wall, cpu, values = best_times(
        {
            LEAN_PATH: lambda: evaluate_codes(*case, **LEAN).map,
            FULL_PATH: lambda: evaluate_codes(*case).map,
            STRAIGHT_PATH: lambda: straightforward_map(*case),
            UINT8_PATH: lambda: uint8_map(*case),
        },
        args.repeats,
    )
    float_wall, float_cpu, float_values = best_times({FLOAT_PATH: lambda: float_map(*float_case)}, 1)
    scale = args.queries / len(float_case[0])
    wall[FLOAT_PATH], cpu[FLOAT_PATH] = float_wall[FLOAT_PATH] * scale, float_cpu[FLOAT_PATH] * scale

    print(f"{args.queries} queries x {args.database} database x {args.bits} bits, {args.classes} classes; "
          f"best of {args.repeats}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'path':50s} {'wall s':>7s} {'CPU s':>7s} {'lean faster':>12s}")
    ours = wall[LEAN_PATH]
    for name, seconds in wall.items():
        scaled = f" (scaled from {len(float_case[0])} queries)" if name == FLOAT_PATH else ""
        print(f"{name:50s} {seconds:7.3f} {cpu[name]:7.3f} {seconds / ours:11.1f}x{scaled}")

    ours_on_float_case = evaluate_codes(*float_case, **LEAN).map
    agree = all(abs(values[name] - values[LEAN_PATH]) < 1e-9 for name in values)
    agree &= abs(ours_on_float_case - float_values[FLOAT_PATH]) < 1e-9
    print(f"mAP: ours {values[LEAN_PATH]:.12f}, references {values[STRAIGHT_PATH]:.12f}, "
          f"{values[UINT8_PATH]:.12f}: agree {verdict(agree)}")
    straight, uint8 = wall[STRAIGHT_PATH] / ours, wall[UINT8_PATH] / ours
    print(f"target <= {TARGET_SECONDS} s: {verdict(ours <= TARGET_SECONDS)} ({ours:.3f} s); "
          f">= {TARGET_SPEEDUP:.0f}x vs straight: {verdict(straight >= TARGET_SPEEDUP)} ({straight:.1f}x), "
          f"vs uint8: {verdict(uint8 >= TARGET_SPEEDUP)} ({uint8:.1f}x)")
    if not args.skip_memory:
        peak_gb, seconds = measure_peak_memory(args)
        print(f"full evaluate_codes, {args.memory_queries} x {args.memory_database} x {args.bits} bits: "
              f"{seconds:.2f} s, peak RSS {peak_gb:.3f} GB; target <= {TARGET_PEAK_GB:.0f} GB: "
              f"{verdict(peak_gb <= TARGET_PEAK_GB)}")


if __name__ == "__main__":
    main()
