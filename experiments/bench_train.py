"""Where SCAE training time goes: pretraining vs fine-tuning wall time and images/s.

    python experiments/bench_train.py                       # full MNIST database, 64 bits
    python experiments/bench_train.py --subset 5000 --bits 32
    python experiments/bench_train.py --validate            # also score the VALIDATION split

Training uses the docs/protocol.md training set (the database of the seed-0 split); with
``--validate`` it trains on the validation split's training set instead and reports mAP of the
validation queries against the rest, never touching the real queries. Pretraining is always
measured from scratch (a fresh temporary run folder, so no cached blocks).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from scae_hash.config import load_config
from scae_hash.experiment import RunSettings, protocol_data
from scae_hash.hashers.scae import SCAEHasher
from scae_hash.hashers.shallow import ITQ
from scae_hash.metrics import evaluate_codes, evaluate_features
from scae_hash.validation import ValidationCurve

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "mnist.yaml"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the protocol's split (default: 0)")
    parser.add_argument("--subset", type=int, default=None, help="train on N images only")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set finetune.epochs=3 (repeatable)")
    parser.add_argument("--validate", action="store_true", help="report validation-split mAP")
    parser.add_argument("--validate-each-epoch", action="store_true",
                        help="score the validation split after every fine-tuning epoch (never the test queries)")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    config = load_config(args.config, args.overrides)
    settings = RunSettings(seed=args.seed, split_seed=args.split_seed, split="validation" if args.validate else "test",
                           save=False, progress=not args.quiet)
    data = protocol_data(config.dataset, settings, args.subset)
    dataset, split = data.dataset, data.split
    images = dataset.as_float(split.train)

    callbacks = []
    if args.validate_each_epoch:
        callbacks.append(ValidationCurve(dataset, args.bits, args.seed, args.split_seed, progress=not args.quiet))
    with tempfile.TemporaryDirectory() as run_dir:
        hasher = SCAEHasher(args.bits, args.seed, config=config, run_dir=Path(run_dir), progress=not args.quiet)
        started = time.perf_counter()
        hasher.fit(images, callbacks=callbacks)
        total = time.perf_counter() - started

    pretrain_s = sum(s for stage, s in hasher.timings_.items() if stage.startswith("pretrain"))
    finetune_s = hasher.timings_["finetune"]
    n = len(images)
    report = {
        "dataset": config.dataset,
        "bits": args.bits,
        "train_images": n,
        "total_s": round(total, 1),
        "pretrain_s": round(pretrain_s, 1),
        "finetune_s": round(finetune_s, 1),  # includes the validation curve when switched on
        "head_s": round(hasher.timings_.get("head", 0.0), 1),
        "pretrain_images_per_s": round(n * config.pretrain.epochs_per_block * len(config.model.block_channels) / pretrain_s)
        if pretrain_s
        else None,
        "finetune_images_per_s": round(n * config.finetune.epochs / finetune_s) if finetune_s else None,
        "stages_s": {stage: round(s, 1) for stage, s in hasher.timings_.items()},
    }
    started = time.perf_counter()
    database_bits, database_features = hasher.encode_with_features(dataset.as_float(split.database))
    report["encode_ms_per_image"] = round(1000 * (time.perf_counter() - started) / len(split.database), 3)
    fire = database_bits.mean(axis=0)
    report["bit_firing_rate_min_max"] = [round(float(fire.min()), 3), round(float(fire.max()), 3)]
    if callbacks:
        report["validation_curve"] = callbacks[0].curve
    if args.validate:
        query_labels, database_labels = dataset.labels[split.query], dataset.labels[split.database]
        query_bits, query_features = hasher.encode_with_features(dataset.as_float(split.query))
        metrics = evaluate_codes(query_bits, database_bits, query_labels, database_labels)
        report["validation_map"] = round(float(metrics.map), 4)
        # Diagnostic: the ceiling the continuous features set (cosine ranking, no hashing).
        feature_metrics = evaluate_features(query_features, database_features, query_labels, database_labels)
        report["validation_map_features"] = round(float(feature_metrics.map), 4)
        # Diagnostic: how much a post-hoc ITQ on the learned features would change the codes.
        itq = ITQ(args.bits, args.seed).fit(hasher.features(images))
        itq_metrics = evaluate_codes(itq.encode(query_features), itq.encode(database_features), query_labels, database_labels)
        report["validation_map_itq_on_features"] = round(float(itq_metrics.map), 4)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
