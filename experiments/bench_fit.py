"""What fitting each method costs from scratch, side by side in one run.

    python experiments/bench_fit.py                          # MNIST, 64 bits, seed 0: ITQ, IMH, SCAE-hash, SCAE-manifold
    python experiments/bench_fit.py --dataset fashion --methods imh scae-manifold

A reported row's `fit_seconds` is the wall clock of its own run, and the stages cached by content
(the UMAP layout that IMH's code lengths and the SCAE-manifold of a seed share, greedy pretraining,
SCAE-manifold's network of a seed) count only in the run that computed them. Here each method runs
its plan cell's command line (`scae-hash baseline` or `scae-hash train`, the same road, test split)
in a scratch folder with empty caches, so its `fit_seconds` is a fit from nothing, and is printed
beside the reported row of the same cell. The mAP of the two should agree (same seed, same code);
the ratios are what to read, these machines being shared and noisy. Writes
results/benchmarks/fit_<dataset>.json (with --out), which make_tables.py turns into
results/tables/fit_cold.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
METHODS = ("itq", "imh", "scae", "scae-manifold")


def command(method: str, dataset: str, bits: int, seed: int, scratch: Path) -> tuple[list[str], str]:
    """The plan cell's command line for ``method`` with scratch folders, and its results file."""
    common = ["--bits", str(bits), "--seed", str(seed), "--split-seed", "0", "--results-dir", str(scratch / "results")]
    if method in ("scae", "scae-manifold"):
        config = f"experiments/configs/{'manifold/' if method == 'scae-manifold' else ''}{dataset}.yaml"
        return ([sys.executable, "-m", "scae_hash", "train", "--config", config, *common,
                 "--run-dir", str(scratch / "runs")], "scae.csv")
    return ([sys.executable, "-m", "scae_hash", "baseline", "--method", method, "--dataset", dataset, *common,
             "--quiet"], "baselines.csv")


def reported(method: str, dataset: str, bits: int, seed: int, results_file: str) -> dict:
    """The latest reported test-split row of the same cell in results/, if any."""
    path = REPO / "results" / results_file
    if not path.is_file():
        return {}
    rows = pd.read_csv(path)
    split = rows["split"].fillna("test") if "split" in rows else "test"
    subset = rows["protocol"] == dataset if "protocol" in rows else True
    rows = rows[(rows["method"] == method) & (rows["dataset"] == dataset) & (rows["bits"] == bits)
                & (rows["seed"] == seed) & (split == "test") & subset]
    return rows.iloc[-1].to_dict() if len(rows) else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion", "cifar10"])
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", help="also write the numbers to this JSON file "
                        "(e.g. results/benchmarks/fit_mnist.json)")
    args = parser.parse_args()

    lines = []
    with tempfile.TemporaryDirectory(prefix="scae-hash-bench-fit-") as folder:
        for method in args.methods:
            scratch = Path(folder) / method
            argv, results_file = command(method, args.dataset, args.bits, args.seed, scratch)
            env = {**os.environ, "SCAE_HASH_UMAP_CACHE": str(scratch / "umap-cache"), "PYTHONUNBUFFERED": "1"}
            print(f"{method}: scae-hash {' '.join(argv[3:])}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            with open(Path(folder) / f"{method}.log", "w") as log:
                code = subprocess.run(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
            if code != 0:
                tail = (Path(folder) / f"{method}.log").read_text(errors="replace").strip().splitlines()[-3:]
                sys.exit(f"bench_fit: {method} failed (exit {code}): {' | '.join(tail)}")
            fresh = pd.read_csv(scratch / "results" / results_file)
            row = fresh[fresh["method"] == method].iloc[-1]
            old = reported(method, args.dataset, args.bits, args.seed, results_file)
            lines.append({"method": method, "fit_seconds_cold": float(row["fit_seconds"]), "map": float(row["map"]),
                          "run_seconds": round(time.perf_counter() - started, 1),
                          "reported_fit_seconds": float(old["fit_seconds"]) if old else None,
                          "reported_map": float(old["map"]) if old else None,
                          "reported_commit": str(old["commit"]) if old else None})

    reference = next((line["fit_seconds_cold"] for line in lines if line["method"] == "scae"), None)
    print(f"\nfitting each method from empty caches: {args.dataset}, {args.bits} bits, seed {args.seed} "
          "(test split of docs/protocol.md)")
    print(f"  {'method':14s} {'fit cold (s)':>12s} {'reported fit (s)':>16s} {'mAP':>7s} {'reported mAP':>12s}"
          f"{'  x SCAE-hash' if reference else ''}")
    for line in lines:
        old_fit = f"{line['reported_fit_seconds']:.0f}" if line["reported_fit_seconds"] is not None else "–"
        old_map = f"{line['reported_map']:.4f}" if line["reported_map"] is not None else "–"
        ratio = f"  {line['fit_seconds_cold'] / reference:11.2f}" if reference else ""
        print(f"  {line['method']:14s} {line['fit_seconds_cold']:12.0f} {old_fit:>16s} {line['map']:7.4f} "
              f"{old_map:>12s}{ratio}")
    if args.out:
        sys.path.insert(0, str(REPO))
        from scae_hash.results import save_benchmark

        save_benchmark(args.out, {"dataset": args.dataset, "bits": args.bits, "seed": args.seed,
                                  "cpu_count": os.cpu_count(), "rows": lines})


if __name__ == "__main__":
    main()
