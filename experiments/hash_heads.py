"""The hash-head options of one trained representation, side by side on the evaluation road:
the jointly trained head, a head trained from scratch on the frozen features, the ITQ head,
and the ITQ head fine-tuned with the hash losses (``finetune.hash_head`` and ``head.epochs``).

    python experiments/hash_heads.py --config experiments/configs/mnist.yaml --bits 64 --split validation

The representation is trained once (the head choice does not change it), then each variant
loads a copy of that model, sets its head and goes through ``run_hasher`` like any run; rows
go to results/validation.csv (or results/scae.csv with ``--split test``) as variants
``<config>-head-<kind>``, with the representation's training seconds beside the head's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from scae_hash.config import load_config
from scae_hash.evaluation import run_hasher
from scae_hash.experiment import RunSettings, protocol_data, run_name, subset_suffix
from scae_hash.hashers.base import Hasher
from scae_hash.hashers.scae import SCAEHasher
from scae_hash.interrupt import StopOnInterrupt, exit_without_finalizing, interrupt_at_batch_end
from scae_hash.results import append_rows

KINDS = ("joint", "trained", "itq", "itq_finetuned")


class HeadVariant(Hasher):
    """A copy of a fitted SCAE model whose ``fit`` only sets the hash head."""

    name = "scae"

    def __init__(self, model_path: Path, config, n_bits: int, seed: int) -> None:
        super().__init__(n_bits, seed)
        self.model_path, self.config = model_path, config

    def fit(self, x: np.ndarray) -> "HeadVariant":
        self.hasher_ = SCAEHasher.load(self.model_path)
        self.hasher_.config = self.config
        self.hasher_.refit_head(x)
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.hasher_.encode(x)

    def encode_with_features(self, x: np.ndarray):
        return self.hasher_.encode_with_features(x)


def head_config(config, kind: str):
    """The config of one variant (``joint`` is ``trained`` without the head stage)."""
    finetune = dataclasses.replace(config.finetune, hash_head="trained" if kind == "joint" else kind)
    head = dataclasses.replace(config.head, epochs=0 if kind in ("joint", "itq") else config.head.epochs or 20)
    return dataclasses.replace(config, finetune=finetune, head=head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE")
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the protocol's split (default: 0)")
    parser.add_argument("--split", choices=("test", "validation"), default="validation")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--subset", type=int, help="train on N images only (smoke runs)")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--run-dir", default="runs/hash-heads", help="where the trained representation is kept")
    parser.add_argument("--base-model", type=Path,
                        help="a model from an earlier run of the same representation config: only the heads are fitted")
    args = parser.parse_args()

    settings = RunSettings(seed=args.seed, split_seed=args.split_seed, split=args.split, results_dir=args.results_dir)
    config = load_config(args.config, args.set)
    data = protocol_data(config.dataset, settings, args.subset)
    stem = run_name(args.config, "scae", args.set)
    representation_seconds = None
    model_path = args.base_model
    if model_path is None:
        run_dir = Path(args.run_dir) / f"{stem}-{args.split}{subset_suffix(args.subset)}-seed{args.seed}"
        base = SCAEHasher(args.bits, args.seed, config=head_config(config, "joint"), run_dir=run_dir)
        started = time.perf_counter()
        with interrupt_at_batch_end():  # Ctrl-C stops at a batch end
            base.fit(data.dataset.as_float(data.split.train), callbacks=[StopOnInterrupt()])
        representation_seconds = round(time.perf_counter() - started, 1)
        model_path = base.model_path
    rows = []
    for kind in args.kinds:
        variant_config = head_config(config, kind)
        variant = HeadVariant(model_path, variant_config, args.bits, args.seed)
        outcome = run_hasher(variant, data.dataset, data.split, method="scae", protocol=data.protocol,
                             split_seed=settings.split_seed, config=variant_config.to_dict())
        row = {**outcome.row, "variant": f"{stem}-head-{kind}", "split": args.split,
               "representation_seconds": representation_seconds, "head_epochs": variant_config.head.epochs,
               "base_model": str(model_path)}
        rows.append(row)
        print(f"{kind:14s} mAP {row['map']:.4f}  head fit {row['fit_seconds']:.1f} s", flush=True)
    append_rows(rows, settings.results_file("scae.csv"))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("hash_heads: interrupted before its rows were written; run the command again", file=sys.stderr)
        exit_without_finalizing(130)
