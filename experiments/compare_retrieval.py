"""Deep hashing vs deep metric learning on one data set (issue 11, item 5): Hamming ranking on
SCAE-hash codes, cosine ranking on its features, two-stage retrieval (Hamming shortlist of 100 /
1,000 re-ranked by features) with the same model and with a second SCAE model (dual model), a
SUPERVISED Siamese network as the reference ceiling, and ITQ on pixels.

    flock /tmp/scae-train.lock python experiments/compare_retrieval.py --dataset mnist --bits 64 --seed 0

Resumable: trained SCAE models are reused from runs/<config>-seed<N>/ (the folder of
`scae-hash train`), each model's codes and features are kept under runs/comparison/, and each
row of results/comparison.csv is appended once, as soon as it is scored; a rerun only does what
is missing (--force rescores and retimes every row; the newest row of a method is the one shown).
Its table (results/tables/comparison_<dataset>.md/.tex) and figure
(thesis_figures/comparison_<dataset>.png/.pdf) are drawn from the saved rows by
experiments/make_tables.py and experiments/make_figures.py, so the rows depend on no drawing code.
The rankings and costs are defined in scae_hash/comparison/ (ranking.py, costs.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="mnist, fashion or cifar10 (its experiments/configs/<name>.yaml)")
    parser.add_argument("--bits", type=int, default=64, help="code length (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="training seed; the dual model uses seed + 1")
    parser.add_argument("--split-seed", type=int, default=0, help="protocol split seed (default: %(default)s)")
    parser.add_argument("--data-dir", help="data folder (default: $SCAE_HASH_DATA, then the usual places)")
    parser.add_argument("--run-dir", default="runs", help="trained models and cached encodings (default: %(default)s)")
    parser.add_argument("--results-dir", default="results", help="where the rows go (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="threads for every timed query (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=9,
                        help="interleaved timing rounds, best kept (default: %(default)s)")
    parser.add_argument("--timing-queries", type=int, default=200, help="queries per timing (default: %(default)s)")
    parser.add_argument("--siamese-epochs", type=int, default=3, help="supervised Siamese epochs (default: %(default)s)")
    parser.add_argument("--only", nargs="+", default=(), metavar="ROW", help="run only these rows (method names)")
    parser.add_argument("--force", action="store_true",
                        help="recompute saved rows (encodings stay cached: delete runs/comparison/ to redo them)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    for name in ("bits", "threads", "repeats", "timing_queries", "siamese_epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    from scae_hash.comparison import ComparisonSetup, run_comparison
    from scae_hash.errors import ScaeHashError

    setup = ComparisonSetup(
        dataset=args.dataset, bits=args.bits, seed=args.seed, split_seed=args.split_seed, data_dir=args.data_dir,
        run_root=Path(args.run_dir), results_dir=Path(args.results_dir),
        threads=args.threads, repeats=args.repeats, timing_queries=args.timing_queries, siamese_epochs=args.siamese_epochs, only=tuple(args.only),
        force=args.force,
        progress=not args.quiet,
    )
    try:
        rows = run_comparison(setup, log=lambda message: print(message, file=sys.stderr, flush=True))
    except ScaeHashError as error:
        print(f"compare_retrieval: error: {error}", file=sys.stderr)
        return 1
    print(f"{len(rows)} new comparison rows in {setup.results_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
