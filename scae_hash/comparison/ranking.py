"""The comparison's rows (entries) and how each ranks the database and is scored.

Rankings (each a row of results/comparison.csv):

* ``hamming``: the whole database by Hamming distance of the codes (ties by database index).
* ``cosine``: the whole database by cosine similarity of the continuous features.
* ``two-stage``: the first S items of the Hamming ranking (ties by database index, so the cut
  is the protocol's) re-ranked by cosine similarity of features (`scae_hash.rerank`, as the
  index re-ranks; equal similarities keep their Hamming order), **followed by the rest of the
  database in Hamming order**. mAP is scored on that full ranking; mAP@1000 and P@10 see only
  its head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scae_hash.codes import distance_dtype, hamming_distances_packed, pack_words
from scae_hash.codes_file import CodesFile
from scae_hash.errors import ConfigError
from scae_hash.metrics import RetrievalMetrics, evaluate_codes, evaluate_features, evaluate_ranking
from scae_hash.rerank import rerank_shortlist, unit_rows


@dataclass(frozen=True)
class Entry:
    """One row of the comparison: which model's codes and which model's features rank how."""

    method: str
    codes: str | None = None  # model key whose codes rank (Hamming)
    features: str | None = None  # model key whose features rank or re-rank (cosine)
    shortlist: int | None = None  # two-stage: size of the Hamming shortlist

    @property
    def ranking(self) -> str:
        if self.codes and self.features:
            return "two-stage"
        return "hamming" if self.codes else "cosine"

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(key for key in (self.codes, self.features) if key))


# Model keys: "scae" (training seed), "scae-dual" (seed + 1), "siamese-supervised", "itq", "imh".
SUPERVISED_MODELS = frozenset({"siamese-supervised"})
ENTRIES: tuple[Entry, ...] = (
    Entry("scae", codes="scae"),
    Entry("scae-features", features="scae"),
    Entry("scae-two-stage-100", codes="scae", features="scae", shortlist=100),
    Entry("scae-two-stage-1000", codes="scae", features="scae", shortlist=1000),
    Entry("scae-dual-two-stage-100", codes="scae", features="scae-dual", shortlist=100),
    Entry("scae-dual-two-stage-1000", codes="scae", features="scae-dual", shortlist=1000),
    Entry("itq", codes="itq"),
    Entry("imh", codes="imh"),
    Entry("siamese-supervised", codes="siamese-supervised"),
    Entry("siamese-supervised-features", features="siamese-supervised"),
    Entry("scae+siamese-supervised-two-stage-1000", codes="scae", features="siamese-supervised", shortlist=1000),
)
ENTRY_LABELS = {
    "scae": "SCAE-hash codes",
    "scae-features": "SCAE features",
    "scae-two-stage-100": "SCAE two-stage, shortlist 100",
    "scae-two-stage-1000": "SCAE two-stage, shortlist 1,000",
    "scae-dual-two-stage-100": "Dual model (SCAE seed+1 features), shortlist 100",
    "scae-dual-two-stage-1000": "Dual model (SCAE seed+1 features), shortlist 1,000",
    "itq": "ITQ on pixels",
    "imh": "IMH (UMAP layout of the pixels)",
    "siamese-supervised": "Siamese codes (ITQ) [supervised]",
    "siamese-supervised-features": "Siamese features [supervised]",
    "scae+siamese-supervised-two-stage-1000": "SCAE shortlist 1,000 + Siamese re-rank [supervised]",
}


def supervision(entry: Entry) -> str:
    """A row is supervised as soon as any model behind it saw labels in training."""
    return "supervised" if SUPERVISED_MODELS.intersection(entry.models) else "unsupervised"


def two_stage_ranking(
    query_bits: np.ndarray,
    database_bits: np.ndarray,
    query_features: np.ndarray,
    database_features: np.ndarray,
    shortlist: int,
) -> Callable[[slice], np.ndarray]:
    """`rank_rows` for :func:`scae_hash.metrics.evaluate_ranking`: the full two-stage ranking
    (the module docstring defines it) of the queries in a slice."""
    if shortlist < 1:
        raise ConfigError(f"the shortlist must hold at least one item, got {shortlist}")
    query_words, database_words = pack_words(query_bits), pack_words(database_bits)
    dtype = distance_dtype(query_bits.shape[1])
    query_unit, database_unit = unit_rows(query_features), unit_rows(database_features)

    def rank_rows(rows: slice) -> np.ndarray:
        distances = np.empty((rows.stop - rows.start, len(database_words)), dtype=dtype)
        hamming_distances_packed(query_words[rows], database_words, out=distances)
        order = np.argsort(distances, axis=1, kind="stable")
        head = order[:, :shortlist]
        _, head = rerank_shortlist(head, query_unit[rows], database_unit[head], shortlist)
        return np.concatenate([head, order[:, shortlist:]], axis=1)

    return rank_rows


def score_entry(entry: Entry, models: dict[str, CodesFile], *, progress: bool = False) -> RetrievalMetrics:
    """The protocol's metrics of one entry's ranking (labels only judge relevance)."""
    first = models[entry.models[0]]
    labels = (first.query.labels, first.database.labels)
    if entry.ranking == "hamming":
        codes = models[entry.codes]
        return evaluate_codes(codes.query.bits, codes.database.bits, *labels, progress=progress)
    features = models[entry.features]
    if entry.ranking == "cosine":
        return evaluate_features(features.query.features, features.database.features, *labels, progress=progress)
    codes = models[entry.codes]
    rank_rows = two_stage_ranking(codes.query.bits, codes.database.bits, features.query.features,
                                  features.database.features, entry.shortlist)
    return evaluate_ranking(rank_rows, *labels, progress=progress)
