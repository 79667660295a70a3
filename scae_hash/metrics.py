"""Retrieval metrics of docs/protocol.md: exact, vectorised, in bounded memory.

Relevance is "same class label". The database is ranked per query by ascending distance with
ties broken by database index (a stable sort). Every metric derives from two facts per
query, computed chunk by chunk so that no query x database float64 matrix ever exists:

* the ranks of the relevant items (AP, AP@k, precision@N, the precision curve), and
* for Hamming rankings, how many items and how many relevant items lie within each
  distance (tie-aware AP, radius precision/recall), read off the same sorted chunk.

Speed: Hamming distances are uint8, so the stable argsort is numpy's O(n) radix sort; the
relevance flag rides in the low bit of ``2 * distance + relevant`` so one gather gives both
the ranked relevance and the sorted distances; only the ~10 % relevant ranks are materialised
(``np.flatnonzero``); everything else is a ``searchsorted`` on those ranks. Chunks run on a
thread pool (numpy releases the GIL). On 1,000 x 69,000 x 64 bits (2 cores) about half of the
0.9 core-seconds is the radix argsort itself, the floor of any exact stable ranking in numpy;
experiments/bench_eval.py measures it against per-query references. The rankings are
:mod:`scae_hash.rankings`'; this module reads the metrics off them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from scae_hash.codes import validate_pair
from scae_hash.errors import CodesFileError, ConfigError
from scae_hash.rankings import ChunkResult, Cutoffs, FeatureRanker, HammingRanker, RelevantRanks

DEFAULT_MAP_AT = (1000,)
DEFAULT_PRECISION_AT = (1, 10, 50, 100, 500, 1000)
# Ranked entries (queries x database) per chunk: about 1 MB of uint8 distances, cache-sized.
_CHUNK_ENTRIES = 1 << 20


@dataclass(frozen=True)
class RetrievalMetrics:
    """Mean retrieval scores over the queries; field meanings follow docs/protocol.md.

    Radius arrays are indexed by Hamming radius r = 0..n_bits. For continuous features
    (`evaluate_features`) the Hamming-only fields are NaN or empty and `n_bits` is None.
    """

    map: float
    map_at: dict[int, float]
    map_tie_aware: float
    precision_at: dict[int, float]
    precision_curve: np.ndarray
    radius_precision: np.ndarray
    radius_recall: np.ndarray
    radius_empty_share: np.ndarray
    p_r2: float
    n_queries: int
    n_bits: int | None

    @property
    def r2_empty_share(self) -> float:
        """Share of queries with no database item within Hamming radius 2."""
        if self.n_bits is None:
            return float("nan")
        return float(self.radius_empty_share[min(2, self.n_bits)])

    def summary(self) -> dict[str, float]:
        """Scalar metrics under flat names, ready for a result row."""
        return {
            "map": self.map,
            **{f"map_at_{k}": value for k, value in self.map_at.items()},
            "map_tie_aware": self.map_tie_aware,
            **{f"precision_at_{n}": value for n, value in self.precision_at.items()},
            "p_r2": self.p_r2,
            "r2_empty_share": self.r2_empty_share,
        }


def evaluate_codes(
    query_bits: np.ndarray,
    database_bits: np.ndarray,
    query_labels: np.ndarray,
    database_labels: np.ndarray,
    *,
    map_at: Sequence[int] = DEFAULT_MAP_AT,
    precision_at: Sequence[int] = DEFAULT_PRECISION_AT,
    curve_max_n: int = 1000,
    chunk_size: int | None = None,
    progress: bool = False,
    n_threads: int | None = None,
) -> RetrievalMetrics:
    """Every docs/protocol.md metric of binary codes under Hamming ranking with stable ties.

    `chunk_size` (queries per chunk) and `n_threads` change speed and memory, never results.
    """
    query_bits, database_bits = validate_pair(query_bits, database_bits)
    query_labels, database_labels = _compact_labels(
        query_labels, database_labels, len(query_bits), len(database_bits)
    )
    cutoffs = _make_cutoffs(map_at, precision_at, curve_max_n, len(database_bits))
    ranker = HammingRanker(query_bits, database_bits, query_labels, database_labels, cutoffs)
    results = _map_chunks(ranker, len(query_bits), len(database_bits), chunk_size, n_threads, progress)
    return _assemble(results, cutoffs, n_bits=query_bits.shape[1])


def evaluate_features(
    query_features: np.ndarray,
    database_features: np.ndarray,
    query_labels: np.ndarray,
    database_labels: np.ndarray,
    *,
    metric: str = "cosine",
    map_at: Sequence[int] = DEFAULT_MAP_AT,
    precision_at: Sequence[int] = DEFAULT_PRECISION_AT,
    curve_max_n: int = 1000,
    chunk_size: int | None = None,
    progress: bool = False,
    n_threads: int | None = None,
) -> RetrievalMetrics:
    """The same metrics for continuous features ("deep metric" baseline), ranked in float32.

    `metric` is "cosine" (descending similarity) or "euclidean"; ties (equal computed
    distances) are broken by database index as for codes. Hamming-only fields are NaN/empty.
    """
    if metric not in ("cosine", "euclidean"):
        raise ConfigError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    query_features = _validate_features(query_features, "query features")
    database_features = _validate_features(database_features, "database features")
    if query_features.shape[1] != database_features.shape[1]:
        raise CodesFileError(
            f"query features have {query_features.shape[1]} dimensions, database {database_features.shape[1]}"
        )
    query_labels, database_labels = _compact_labels(
        query_labels, database_labels, len(query_features), len(database_features)
    )
    cutoffs = _make_cutoffs(map_at, precision_at, curve_max_n, len(database_features))
    ranker = FeatureRanker(query_features, database_features, query_labels, database_labels, cutoffs, metric)
    results = _map_chunks(ranker, len(query_features), len(database_features), chunk_size, n_threads, progress)
    return _assemble(results, cutoffs, n_bits=None)


def evaluate_ranking(
    rank_rows: Callable[[slice], np.ndarray],
    query_labels: np.ndarray,
    database_labels: np.ndarray,
    *,
    map_at: Sequence[int] = DEFAULT_MAP_AT,
    precision_at: Sequence[int] = DEFAULT_PRECISION_AT,
    curve_max_n: int = 1000,
    chunk_size: int | None = None,
    progress: bool = False,
    n_threads: int | None = None,
) -> RetrievalMetrics:
    """The same metrics for a ranking the caller builds (e.g. a Hamming shortlist re-ranked by
    features): the scorer stays the one AP implementation whatever produced the order.

    `rank_rows(rows)` returns, for the queries of the slice `rows`, every database index once in
    ranked order, shape (m, n_database); it may run on several threads at once. Hamming-only
    fields are NaN/empty.
    """
    query_labels, database_labels = _compact_labels(
        query_labels, database_labels, len(np.asarray(query_labels)), len(np.asarray(database_labels))
    )
    cutoffs = _make_cutoffs(map_at, precision_at, curve_max_n, len(database_labels))

    def rank_chunk(rows: slice) -> ChunkResult:
        order = np.asarray(rank_rows(rows))
        if order.shape != (rows.stop - rows.start, len(database_labels)):
            raise ConfigError(
                f"a ranking of {rows.stop - rows.start} queries must have shape "
                f"({rows.stop - rows.start}, {len(database_labels)}), got {order.shape}"
            )
        ranks = RelevantRanks.from_ranked_relevance(database_labels[order] == query_labels[rows, None])
        return ChunkResult(
            average_precision=ranks.average_precision(cutoffs.ap_depths),
            hits=ranks.total_hits(cutoffs.hit_depths),
            n_relevant=ranks.n_relevant,
            within_radius=None,
            relevant_within_radius=None,
        )

    results = _map_chunks(rank_chunk, len(query_labels), len(database_labels), chunk_size, n_threads, progress)
    return _assemble(results, cutoffs, n_bits=None)


def _validate_features(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or 0 in features.shape:
        raise CodesFileError(f"{name} must be a non-empty 2-D (n, d) array, got shape {features.shape}")
    if not np.isfinite(features).all():
        raise CodesFileError(f"{name} contain NaN or infinite values")
    return features.astype(np.float32, copy=False)


def _compact_labels(
    query_labels: np.ndarray, database_labels: np.ndarray, n_queries: int, n_database: int
) -> tuple[np.ndarray, np.ndarray]:
    """Labels as small consecutive ints (uint8 for <= 256 classes): the per-chunk compare is cheap."""
    query_labels, database_labels = np.asarray(query_labels), np.asarray(database_labels)
    for labels, expected, name in ((query_labels, n_queries, "query"), (database_labels, n_database, "database")):
        if labels.shape != (expected,):
            raise CodesFileError(f"{name} labels must have shape ({expected},) like the codes, got {labels.shape}")
    if n_queries == 0 or n_database == 0:
        raise CodesFileError(f"need at least one query and one database item, got {n_queries} and {n_database}")
    classes, compact = np.unique(np.concatenate([query_labels, database_labels]), return_inverse=True)
    compact = compact.astype(np.min_scalar_type(len(classes) - 1))
    return compact[:n_queries], compact[n_queries:]


def _make_cutoffs(
    map_at: Iterable[int], precision_at: Iterable[int], curve_max_n: int, n_database: int
) -> Cutoffs:
    map_at, precision_at = tuple(int(k) for k in map_at), tuple(int(n) for n in precision_at)
    if any(k < 1 for k in map_at + precision_at) or curve_max_n < 0:
        raise ConfigError(
            "map_at and precision_at need depths >= 1 and curve_max_n >= 0, "
            f"got {map_at}, {precision_at}, {curve_max_n}"
        )
    return Cutoffs(map_at, precision_at, int(curve_max_n), n_database)


def _default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _map_chunks(
    rank_chunk: Callable[[slice], ChunkResult],
    n_queries: int,
    n_database: int,
    chunk_size: int | None,
    n_threads: int | None,
    progress: bool,
) -> list[ChunkResult]:
    """Run `rank_chunk` over query chunks, in order, on a thread pool: memory is bounded by
    n_threads chunks in flight, and numpy's sort/gather kernels release the GIL."""
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ENTRIES // n_database)
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    chunks = [slice(start, min(start + chunk_size, n_queries)) for start in range(0, n_queries, chunk_size)]
    n_threads = min(n_threads or _default_threads(), len(chunks))
    with ThreadPoolExecutor(n_threads) as pool:
        results = pool.map(rank_chunk, chunks) if n_threads > 1 else map(rank_chunk, chunks)
        if progress:
            results = tqdm(results, total=len(chunks), desc="ranking", unit="chunk")
        return list(results)


def _assemble(results: list[ChunkResult], cutoffs: Cutoffs, n_bits: int | None) -> RetrievalMetrics:
    """Means over all queries from the chunks' per-query values and sums."""
    average_precision = np.concatenate([result.average_precision for result in results])
    n_queries = len(average_precision)
    hit_depths = cutoffs.hit_depths  # all >= 1
    precision = np.sum([result.hits for result in results], axis=0) / (n_queries * hit_depths)
    n_precision = len(cutoffs.precision_at)
    no_radius = np.empty(0)
    tie_aware, p_r2 = float("nan"), float("nan")
    radius_precision, radius_recall, radius_empty = no_radius, no_radius, no_radius
    if n_bits is not None:
        within = np.concatenate([result.within_radius for result in results])
        relevant_within = np.concatenate([result.relevant_within_radius for result in results])
        n_relevant = np.concatenate([result.n_relevant for result in results])
        tie_aware = float(_tie_aware_average_precision(within, relevant_within, n_relevant).mean())
        radius_precision, radius_recall, radius_empty = _radius_curves(within, relevant_within, n_relevant)
        p_r2 = float(radius_precision[min(2, n_bits)])
    return RetrievalMetrics(
        map=float(average_precision[:, 0].mean()),
        map_at={k: float(value) for k, value in zip(cutoffs.map_at, average_precision[:, 1:].mean(axis=0))},
        map_tie_aware=tie_aware,
        precision_at={n: float(value) for n, value in zip(cutoffs.precision_at, precision[:n_precision])},
        precision_curve=precision[n_precision:],
        radius_precision=radius_precision,
        radius_recall=radius_recall,
        radius_empty_share=radius_empty,
        p_r2=p_r2,
        n_queries=n_queries,
        n_bits=n_bits,
    )


def _tie_aware_average_precision(
    within_radius: np.ndarray, relevant_within_radius: np.ndarray, n_relevant: np.ndarray
) -> np.ndarray:
    """Expected AP per query when items at equal distance come in random order.

    He et al. (CVPR 2018): a bucket of n items, r relevant, after N items and R relevant adds
    (r/n) sum_{j=1..n} (R + 1 + (j-1)(r-1)/(n-1)) / (N + j)
      = (r/n) [(R + 1 - s(N + 1)) (H(N + n) - H(N)) + s n],  s = (r-1)/(n-1),
    with H the harmonic numbers: exact, no sampling.
    """
    bucket_size = np.diff(within_radius, axis=1, prepend=0)
    bucket_relevant = np.diff(relevant_within_radius, axis=1, prepend=0)
    before, relevant_before = within_radius - bucket_size, relevant_within_radius - bucket_relevant
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, within_radius[0, -1] + 1))])
    slope = np.divide(bucket_relevant - 1, bucket_size - 1, out=np.zeros(bucket_size.shape), where=bucket_size > 1)
    bucket_sum = (relevant_before + 1 - slope * (before + 1)) * (
        harmonic[before + bucket_size] - harmonic[before]
    ) + slope * bucket_size
    contribution = np.divide(
        bucket_relevant * bucket_sum, bucket_size, out=np.zeros(bucket_size.shape), where=bucket_relevant > 0
    )
    return np.divide(contribution.sum(axis=1), n_relevant, out=np.zeros(len(n_relevant)), where=n_relevant > 0)


def _radius_curves(
    within_radius: np.ndarray, relevant_within_radius: np.ndarray, n_relevant: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean precision and recall of the items within each radius, and the share of empty retrievals.

    A query that retrieves nothing counts as precision 0; one with no relevant item in the
    database counts as recall 0.
    """
    precision = np.divide(
        relevant_within_radius, within_radius, out=np.zeros(within_radius.shape), where=within_radius > 0
    )
    recall = np.divide(
        relevant_within_radius,
        n_relevant[:, None],
        out=np.zeros(within_radius.shape),
        where=n_relevant[:, None] > 0,
    )
    return precision.mean(axis=0), recall.mean(axis=0), (within_radius == 0).mean(axis=0)
