"""Score a codes file with a deliberately naive evaluator that shares no code with scae_hash.

A reviewer's check that the reported mAP is what the codes give: per query, Hamming distances,
a stable argsort (ties by database index), and textbook AP. Slow (about a minute for 1,000 x
69,000) but obviously right.

    python experiments/independent_eval.py results/codes/itq-mnist-64b.h5
"""

import argparse
import json

import h5py
import numpy as np


def average_precision(relevant_in_rank_order: np.ndarray, k: int | None = None) -> float:
    rel = relevant_in_rank_order[:k] if k else relevant_in_rank_order
    hits = np.cumsum(rel)
    if hits[-1] == 0:
        return 0.0
    precision_at_hits = hits[rel] / (np.flatnonzero(rel) + 1)
    return float(precision_at_hits.sum() / hits[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("codes_file")
    args = parser.parse_args()
    with h5py.File(args.codes_file, "r") as f:
        query_bits, database_bits = f["query/bits"][()].astype(np.int32), f["database/bits"][()].astype(np.int32)
        query_labels, database_labels = f["query/labels"][()], f["database/labels"][()]
    aps, aps_at_1000, precisions_at_1000 = [], [], []
    for bits, label in zip(query_bits, query_labels):
        distances = np.abs(database_bits - bits).sum(axis=1)
        order = np.argsort(distances, kind="stable")
        relevant = database_labels[order] == label
        aps.append(average_precision(relevant))
        aps_at_1000.append(average_precision(relevant, 1000))
        precisions_at_1000.append(relevant[:1000].mean())
    print(json.dumps({"map": np.mean(aps), "map_at_1000": np.mean(aps_at_1000),
                      "precision_at_1000": np.mean(precisions_at_1000)}))


if __name__ == "__main__":
    main()
