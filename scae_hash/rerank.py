"""The re-ranking step of two-stage retrieval: a Hamming shortlist re-ordered by cosine
similarity of continuous features (of the codes' own model, or of a second model).

One implementation for every caller (`index.two_stage_search`, image search, the comparison's
rankings), so a re-ranked list means the same everywhere. Kept apart from the faiss index: the
comparison's rows depend on this step, not on the index structures.
"""

from __future__ import annotations

import numpy as np

from scae_hash import rankings


def unit_rows(features: np.ndarray) -> np.ndarray:
    """float32 rows of unit length (:func:`scae_hash.rankings.unit_rows`): normalise once and
    re-rank many times."""
    return rankings.unit_rows(np.asarray(features, dtype=np.float32))


def rerank_shortlist(candidates: np.ndarray, query_unit: np.ndarray, candidate_unit: np.ndarray,
                     k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids) of each query's first `k` candidates by cosine, best first.

    `candidates` (nq, s) are ids in shortlist order; `query_unit` (nq, d) and `candidate_unit`
    (nq, s, d) come from `unit_rows`. Equal similarities keep the shortlist order (a Hamming
    shortlist's: ties by database index), the protocol's tie rule.
    """
    similarity = np.einsum("qd,qsd->qs", query_unit, candidate_unit)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(similarity, order, axis=1), np.take_along_axis(candidates, order, axis=1)
