"""Benchmark the project's Hamming index (scae_hash.index.HammingIndex) beside raw faiss.

One run prints queries/s and peak memory, for a batch of 1,000 queries and for single queries,
Hamming k-NN at k = 10 and 100 and the radius-2 lookup, against 69,000 and 1,000,000 random
64-bit codes. "faiss" is faiss called directly the way its documentation shows
(`IndexBinaryFlat.search`; `IndexBinaryMultiHash.range_search` with the same tables as the
project's). Both sides take packed queries (the project's index stores and searches packed
codes; packing is the codes' format, not the index's work) and run on one thread
(`faiss.omp_set_num_threads(1)`), so the comparison is one core against one core.

Speed: both sides run in one child process per database size, interleaved, best of at least
REPEATS timings (of as many as fit in SECONDS_PER_CASE for the short cases), timed in CPU seconds of the process (`time.process_time`): on one thread that is the work
done, and other processes on the shared cores do not inflate it as they do wall time. Memory: every (size, case, side) runs in a
child process of its own; "peak" is that process' peak resident memory (VmHWM) while it builds
the index and answers the queries, "added" the same minus what the process held before
(interpreter, numpy, faiss, the codes themselves).

    python experiments/bench_index.py [--sizes 69000 1000000] [--out results/benchmarks/index.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

N_BITS = 64
N_QUERIES = 1000
REPEATS = 9  # timings per case and side, at least
SECONDS_PER_CASE = 1.0  # ... or as many as fit in this many seconds per side
MAX_ROUNDS = 500
RADIUS = 2
CASES = ("batch k=10", "batch k=100", "single k=10", "single k=100", f"batch r={RADIUS}", f"single r={RADIUS}")
TARGET_SPEED, TARGET_MEMORY = 0.9, 2.0


def make_codes(size: int):
    """Packed random database codes, and queries: database items with 0-3 bits flipped (so
    that radius lookups find something)."""
    import numpy as np

    rng = np.random.default_rng(size)
    database = rng.integers(0, 256, (size, N_BITS // 8), dtype=np.uint8)
    queries = np.unpackbits(database[rng.choice(size, N_QUERIES, replace=False)], axis=1)
    for row, flips in enumerate(rng.integers(0, 4, N_QUERIES)):
        queries[row, rng.choice(N_BITS, flips, replace=False)] ^= 1
    return database, np.packbits(queries, axis=1)


def build(side: str, database, case: str):
    """The search callable of one side for `case`, over `database`."""
    import faiss

    from scae_hash.index import HammingIndex, multi_hash_layout

    radius_case = "r=" in case
    if side == "project":
        project = HammingIndex(N_BITS).add_packed(database)
        return project.range_search_packed if radius_case else project.search_packed
    if not radius_case:
        flat = faiss.IndexBinaryFlat(N_BITS)
        flat.add(database)
        return flat.search
    multi = faiss.IndexBinaryMultiHash(N_BITS, *multi_hash_layout(N_BITS, len(database), RADIUS))
    multi.nflip = 0
    multi.add(database)
    return lambda queries, radius: multi.range_search(queries, radius + 1)


def run_case(case: str, call, queries, singles: int) -> None:
    kind, parameter = case.split()
    value = int(parameter.split("=")[1])
    if kind == "batch":
        call(queries, value)
    else:
        for row in range(singles):
            call(queries[row:row + 1], value)


def singles_for(size: int) -> int:
    return N_QUERIES if size < 200_000 else 200


def time_child(size: int) -> dict:
    """queries/s of every case, both sides interleaved, best of REPEATS."""
    import faiss
    import numpy as np

    faiss.omp_set_num_threads(1)
    database, queries = make_codes(size)
    calls = {(side, case): build(side, database, case) for side in ("project", "faiss") for case in CASES}
    for (side, case), call in calls.items():  # warm up (and build the project's hash tables)
        run_case(case.replace("batch", "single"), call, queries, 1)
    # Short cases are timed many times (the best of many short runs is what the code costs;
    # the others met a busy core), long ones at least REPEATS times.
    best = dict.fromkeys(calls, float("inf"))
    for case in CASES:
        start = time.process_time()
        run_case(case, calls["faiss", case], queries, singles_for(size))
        rounds = min(MAX_ROUNDS, max(REPEATS, int(np.ceil(SECONDS_PER_CASE / max(time.process_time() - start, 1e-6)))))
        for repeat in range(rounds):
            for side in ("project", "faiss")[::1 if repeat % 2 else -1]:  # alternate who goes first
                start = time.process_time()
                run_case(case, calls[side, case], queries, singles_for(size))
                best[side, case] = min(best[side, case], time.process_time() - start)
    return {f"{side}|{case}": (N_QUERIES if case.startswith("batch") else singles_for(size)) / seconds
            for (side, case), seconds in best.items()}


def memory_child(size: int, side: str, case: str) -> dict:
    """Peak resident memory of building one side's index and running one case."""
    import faiss

    faiss.omp_set_num_threads(1)
    database, queries = make_codes(size)
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current size
    run_case(case, build(side, database, case), queries, singles_for(size))
    peak = _status_kib("VmHWM")
    return {"peak_mib": peak / 1024, "added_mib": (peak - before) / 1024}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def in_child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"child {args} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[69_000, 1_000_000])
    parser.add_argument("--out", default="results/benchmarks/index.json", help="where the numbers go (JSON)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, size, *rest = args.child
        result = time_child(int(size)) if kind == "time" else memory_child(int(size), rest[0], " ".join(rest[1:]))
        print(json.dumps(result))
        return

    rows = []
    print(f"{N_BITS}-bit codes, {N_QUERIES} queries per batch; single queries one by one; one thread each "
          f"(faiss.omp_set_num_threads(1)); speed: best timing in CPU time")
    header = (f"{'database':>9} {'case':<13} {'project q/s':>12} {'faiss q/s':>11} {'speed':>6} "
              f"{'project MiB':>12} {'faiss MiB':>10} {'memory':>7} {'added MiB (project / faiss)':>28}")
    print(header)
    for size in args.sizes:
        speed = in_child("time", str(size))
        for case in CASES:
            memory = {side: in_child("memory", str(size), side, *case.split()) for side in ("project", "faiss")}
            row = {"database": size, "case": case, "project_qps": speed[f"project|{case}"],
                   "faiss_qps": speed[f"faiss|{case}"],
                   **{f"{side}_{key}": value for side in memory for key, value in memory[side].items()}}
            row["speed_ratio"] = row["project_qps"] / row["faiss_qps"]
            row["memory_ratio"] = row["project_peak_mib"] / row["faiss_peak_mib"]
            rows.append(row)
            print(f"{size:>9,} {case:<13} {row['project_qps']:>12,.0f} {row['faiss_qps']:>11,.0f} "
                  f"{row['speed_ratio']:>5.2f}x {row['project_peak_mib']:>12.1f} {row['faiss_peak_mib']:>10.1f} "
                  f"{row['memory_ratio']:>6.2f}x {row['project_added_mib']:>13.1f} / {row['faiss_added_mib']:<12.1f}",
                  flush=True)
    slowest = min(row["speed_ratio"] for row in rows)
    largest = max(row["memory_ratio"] for row in rows)
    print(f"slowest speed ratio {slowest:.2f}x (target >= {TARGET_SPEED}x), largest memory ratio {largest:.2f}x "
          f"(target <= {TARGET_MEMORY}x): {'met' if slowest >= TARGET_SPEED and largest <= TARGET_MEMORY else 'NOT met'}")
    if args.out:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from scae_hash.results import save_benchmark

        save_benchmark(args.out, {"n_bits": N_BITS, "n_queries": N_QUERIES, "threads": 1, "rows": rows})


if __name__ == "__main__":
    main()
