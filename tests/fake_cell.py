"""A stand-in for a plan cell in tests/test_reproduce.py: waits, then appends its one result row
the way every cell does (scae_hash.results.append_rows), so the runner's real mechanism is tested
without training anything."""

import argparse
import time

from scae_hash.results import append_rows, provenance

parser = argparse.ArgumentParser()
for name in ("--results-dir", "--method", "--dataset"):
    parser.add_argument(name, required=True)
for name in ("--bits", "--seed", "--split-seed"):
    parser.add_argument(name, type=int, required=True)
parser.add_argument("--map", type=float, required=True)
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()
time.sleep(args.sleep)
append_rows([{"method": args.method, "variant": "", "dataset": args.dataset, "protocol": args.dataset,
              "bits": args.bits, "seed": args.seed, "split_seed": args.split_seed, "map": args.map,
              "fit_seconds": args.sleep, **provenance()}], f"{args.results_dir}/fake.csv")
