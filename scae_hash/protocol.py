"""The splits of docs/protocol.md, as pure functions of (labels, seed) so that anyone can redo them.

The query draw, exactly: `rng = np.random.default_rng(seed)`; for each class id in ascending
order, `rng.choice(<candidate pool indices of that class, ascending>, per_class, replace=False)`.
Changing this changes every reported split, so the tests pin it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scae_hash.errors import ConfigError, DataError

QUERIES_PER_CLASS = 100


@dataclass(frozen=True)
class Split:
    """Pool indices (int64, ascending) of the query, database and training sets."""

    query: np.ndarray
    database: np.ndarray
    train: np.ndarray


def protocol_split(labels: np.ndarray, seed: int = 0, per_class: int = QUERIES_PER_CLASS) -> Split:
    """`per_class` queries per class drawn from the whole pool; the rest is database and train."""
    labels = _as_labels(labels)
    pool = np.arange(len(labels))
    query = _draw_per_class(labels, pool, per_class, seed)
    rest = np.setdiff1d(pool, query)
    return Split(query=query, database=rest, train=rest)


def validation_split(
    labels: np.ndarray, split: Split, seed: int, per_class: int = QUERIES_PER_CLASS
) -> Split:
    """Queries drawn from `split.train` with seed + 1, against the rest of it: for tuning.

    `seed` is the split seed of `split`. Tuning on these keeps the real queries unseen; the rest
    of the training set is both the database and the training set here.
    """
    labels = _as_labels(labels)
    query = _draw_per_class(labels, split.train, per_class, seed + 1)
    rest = np.setdiff1d(split.train, query)
    return Split(query=query, database=rest, train=rest)


def split_for(which: str, labels: np.ndarray, split_seed: int) -> Split:
    """The protocol split (``test``) or its validation split (``validation``)."""
    split = protocol_split(labels, seed=split_seed)
    return validation_split(labels, split, seed=split_seed) if which == "validation" else split


def subset_indices(indices: np.ndarray | Sequence[int], n: int, seed: int) -> np.ndarray:
    """A seeded random subset of `n` of `indices` (ascending), for quick `--subset N` runs."""
    indices = np.asarray(indices, dtype=np.int64)
    if not 0 < n <= len(indices):
        raise ConfigError(
            f"subset size must be in 1..{len(indices)} (the training set size), got {n}"
        )
    return np.sort(np.random.default_rng(seed).choice(indices, n, replace=False))


def _as_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"labels must be a non-empty 1-D integer array, got {labels.dtype} {labels.shape}"
        )
    return labels


def _draw_per_class(
    labels: np.ndarray, candidates: np.ndarray, per_class: int, seed: int
) -> np.ndarray:
    """`per_class` candidates of every class present, drawn as the module says; ascending."""
    rng = np.random.default_rng(seed)
    candidate_labels = labels[candidates]
    drawn = []
    for class_id in np.unique(candidate_labels):
        members = candidates[candidate_labels == class_id]
        if len(members) < per_class:
            raise DataError(
                f"class {class_id} has {len(members)} items, "
                f"fewer than the {per_class} queries per class to draw"
            )
        drawn.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(drawn)).astype(np.int64)
