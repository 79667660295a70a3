"""Train every ablation config (and the data set's own config, as the reference) under one
protocol, appending rows to results/scae.csv; then `make_tables.py` writes the ablation table.

    python experiments/run_ablations.py --dataset mnist --bits 32 --subset 20000
    python experiments/run_ablations.py --dataset mnist --bits 64            # full training set

Each config runs in its own process (a fresh Keras state; one failure does not stop the rest).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CONFIGS = Path(__file__).parent / "configs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist", help="its config and ablations/<dataset>_*.yaml")
    parser.add_argument("--bits", type=int, nargs="+", default=[32])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=int, default=None, help="train on N images only (cheaper table)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="run only these variants")
    parser.add_argument("passthrough", nargs=argparse.REMAINDER, help="after '--': more `scae-hash train` options")
    args = parser.parse_args()

    configs = [CONFIGS / f"{args.dataset}.yaml", *sorted((CONFIGS / "ablations").glob(f"{args.dataset}_*.yaml"))]
    if args.only:
        configs = [c for c in configs if c.stem in args.only]
    if not configs or not configs[0].is_file():
        parser.error(f"no configs for data set {args.dataset!r} under {CONFIGS}")
    failed = []
    for number, config in enumerate(configs, 1):
        command = [sys.executable, "-m", "scae_hash", "train", "--config", str(config), "--seed", str(args.seed),
                   "--bits", *map(str, args.bits), "--quiet",
                   *(["--subset", str(args.subset)] if args.subset else []),
                   *[a for a in args.passthrough if a != "--"]]
        print(f"[{number}/{len(configs)}] {config.stem}", flush=True)
        if subprocess.run(command).returncode != 0:
            failed.append(config.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
