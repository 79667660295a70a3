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
experiments/bench_eval.py measures it against per-query references.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from scae_hash.codes import distance_dtype, hamming_distances_packed, pack_words, validate_pair
from scae_hash.errors import CodesFileError, ConfigError

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


@dataclass(frozen=True)
class _Cutoffs:
    """The requested depths, clipped to the database: a depth beyond it means the whole ranking."""

    map_at: tuple[int, ...]
    precision_at: tuple[int, ...]
    curve_max_n: int
    n_database: int

    @property
    def ap_depths(self) -> np.ndarray:
        """Depths of the AP columns: the whole ranking first, then each requested k."""
        return np.minimum(np.array((self.n_database, *self.map_at), dtype=np.int64), self.n_database)

    @property
    def hit_depths(self) -> np.ndarray:
        """Depths whose relevant-item counts give precision@N, then the precision curve."""
        depths = np.concatenate([np.array(self.precision_at, dtype=np.int64), np.arange(1, self.curve_max_n + 1)])
        return np.minimum(depths, self.n_database)


@dataclass(frozen=True)
class _ChunkResult:
    """What one chunk of queries contributes: per-query values, or sums where the mean is all we need."""

    average_precision: np.ndarray  # (m, 1 + len(map_at)): whole ranking, then AP@k
    hits: np.ndarray  # (len(hit_depths),): relevant items within each depth, summed over the chunk
    n_relevant: np.ndarray  # (m,)
    within_radius: np.ndarray | None  # (m, n_bits + 1): items with distance <= r
    relevant_within_radius: np.ndarray | None  # (m, n_bits + 1): relevant items with distance <= r


@dataclass(frozen=True)
class _RelevantRanks:
    """Where the relevant items sit in the rankings of a chunk of m queries.

    `flat_ranks` are the 0-based positions of relevant items in the flattened (m, n) ranking,
    ascending, so row i owns flat_ranks[bounds[i]:bounds[i + 1]] and one global searchsorted
    answers "how many relevant items within depth D" for every query at once. `ranks` are
    the same positions as 1-based ranks within each query's own ranking.
    """

    flat_ranks: np.ndarray
    bounds: np.ndarray
    ranks: np.ndarray
    n_database: int

    @classmethod
    def from_ranked_relevance(cls, ranked_relevance: np.ndarray) -> _RelevantRanks:
        n_rows, n_database = ranked_relevance.shape
        row_starts = np.arange(n_rows + 1) * n_database
        flat_ranks = np.flatnonzero(ranked_relevance)
        bounds = np.searchsorted(flat_ranks, row_starts)
        ranks = flat_ranks - np.repeat(row_starts[:-1] - 1, np.diff(bounds))
        return cls(flat_ranks, bounds, ranks, n_database)

    @property
    def n_relevant(self) -> np.ndarray:
        return np.diff(self.bounds)

    def count_within(self, depths: np.ndarray) -> np.ndarray:
        """Relevant items among the first `depths` ranks; `depths` broadcasts against (m, k)."""
        row_starts = np.arange(len(self.bounds) - 1)[:, None] * self.n_database
        return np.searchsorted(self.flat_ranks, row_starts + depths) - self.bounds[:-1, None]

    def total_hits(self, depths: np.ndarray) -> np.ndarray:
        """Relevant items within each depth, summed over the chunk's queries (exact integers)."""
        max_depth = int(depths.max(initial=0))
        per_rank = np.bincount(self.ranks[self.ranks <= max_depth], minlength=max_depth + 1)
        return np.cumsum(per_rank)[depths]

    def average_precision(self, depths: np.ndarray) -> np.ndarray:
        """(m, len(depths)) AP@depth = (1/R_k) sum_{relevant i <= k} P@i; 0 when R_k = 0.

        The one AP implementation: P@i at the j-th relevant item is j / rank_j, and each
        segment is summed on its own so results do not depend on how queries are chunked.
        """
        starts = self.bounds[:-1]
        hit_numbers = np.arange(1, len(self.ranks) + 1) - np.repeat(starts, self.n_relevant)
        precision_at_hits = hit_numbers / self.ranks
        counts = self.count_within(depths[None, :])
        sums = _segment_sums(precision_at_hits, starts[:, None], starts[:, None] + counts)
        return np.divide(sums, counts, out=np.zeros(sums.shape), where=counts > 0)


def _segment_sums(values: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Sum values[start:stop] for each (start, stop) pair, 0 for empty segments."""
    starts, stops = np.broadcast_arrays(starts, stops)
    padded = np.append(values, 0.0)
    edges = np.stack([starts, stops], axis=-1).ravel()
    sums = np.add.reduceat(padded, edges)[::2].reshape(starts.shape)
    return np.where(stops > starts, sums, 0.0)


def _take_rows(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """values[i, order[i]] for each row: per-row np.take avoids take_along_axis's index arrays."""
    out = np.empty(order.shape, dtype=values.dtype)
    for row in range(len(order)):
        np.take(values[row], order[row], out=out[row])
    return out


class _HammingRanker:
    """Ranks chunks of queries against one packed database by Hamming distance."""

    def __init__(
        self,
        query_bits: np.ndarray,
        database_bits: np.ndarray,
        query_labels: np.ndarray,
        database_labels: np.ndarray,
        cutoffs: _Cutoffs,
    ) -> None:
        self.n_bits = query_bits.shape[1]
        self.query_words, self.database_words = pack_words(query_bits), pack_words(database_bits)
        self.query_labels, self.database_labels = query_labels, database_labels
        self.cutoffs = cutoffs
        self.distance_dtype = distance_dtype(self.n_bits)
        # 2 * distance + relevant must fit: uint8 up to 127 bits.
        self.keyed_dtype = distance_dtype(2 * self.n_bits + 1)
        # Distances r = 0..n_bits-1 as keyed thresholds: keyed < 2(r+1) <=> distance <= r.
        self.radius_keys = (2 * np.arange(1, self.n_bits + 1)).astype(self.keyed_dtype)

    def __call__(self, rows: slice) -> _ChunkResult:
        n_database = len(self.database_labels)
        distances = np.empty((rows.stop - rows.start, n_database), dtype=self.distance_dtype)
        hamming_distances_packed(self.query_words[rows], self.database_words, out=distances)
        keyed = np.add(distances, distances, dtype=self.keyed_dtype)  # 5x faster than a shift
        keyed += self.database_labels == self.query_labels[rows, None]
        ranked = _take_rows(keyed, np.argsort(distances, axis=1, kind="stable"))
        within_radius = self._within_radius(ranked)
        ranks = _RelevantRanks.from_ranked_relevance(_low_bits(ranked))
        return _ChunkResult(
            average_precision=ranks.average_precision(self.cutoffs.ap_depths),
            hits=ranks.total_hits(self.cutoffs.hit_depths),
            n_relevant=ranks.n_relevant,
            within_radius=within_radius,
            relevant_within_radius=ranks.count_within(within_radius),
        )

    def _within_radius(self, ranked: np.ndarray) -> np.ndarray:
        """(m, n_bits + 1) items with distance <= r: binary search in each ranked row."""
        within_radius = np.empty((len(ranked), self.n_bits + 1), dtype=np.int64)
        within_radius[:, -1] = ranked.shape[1]
        for row, keys in enumerate(ranked):
            within_radius[row, :-1] = np.searchsorted(keys, self.radius_keys)
        return within_radius


def _low_bits(keyed: np.ndarray) -> np.ndarray:
    """The relevance flags (low bits) as bool, overwriting `keyed`; a free view for uint8 keys."""
    low = np.bitwise_and(keyed, 1, out=keyed)
    return low.view(np.bool_) if low.itemsize == 1 else low.astype(np.bool_)


class _FeatureRanker:
    """Ranks chunks of queries against a database of continuous features (float32)."""

    def __init__(
        self,
        query_features: np.ndarray,
        database_features: np.ndarray,
        query_labels: np.ndarray,
        database_labels: np.ndarray,
        cutoffs: _Cutoffs,
        metric: str,
    ) -> None:
        if metric == "cosine":
            query_features, database_features = unit_rows(query_features), unit_rows(database_features)
        self.metric = metric
        self.query_features, self.database_features = query_features, database_features
        self.database_sq_norms = np.einsum("ij,ij->i", database_features, database_features)
        self.query_labels, self.database_labels = query_labels, database_labels
        self.cutoffs = cutoffs

    def distances(self, rows: slice) -> np.ndarray:
        """Ascending-is-better distances: -cosine similarity, or squared Euclidean distance."""
        queries = self.query_features[rows]
        products = queries @ self.database_features.T
        if self.metric == "cosine":
            return np.negative(products, out=products)
        products *= -2
        products += self.database_sq_norms
        products += np.einsum("ij,ij->i", queries, queries)[:, None]
        return products

    def __call__(self, rows: slice) -> _ChunkResult:
        order = np.argsort(self.distances(rows), axis=1, kind="stable")
        ranks = _RelevantRanks.from_ranked_relevance(self.database_labels[order] == self.query_labels[rows, None])
        return _ChunkResult(
            average_precision=ranks.average_precision(self.cutoffs.ap_depths),
            hits=ranks.total_hits(self.cutoffs.hit_depths),
            n_relevant=ranks.n_relevant,
            within_radius=None,
            relevant_within_radius=None,
        )


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows (last axis) scaled to unit length, zero rows staying zero, in their own dtype: a dot
    product of two is their cosine."""
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return features / np.where(norms > 0, norms, 1).astype(features.dtype)


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
    ranker = _HammingRanker(query_bits, database_bits, query_labels, database_labels, cutoffs)
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
    ranker = _FeatureRanker(query_features, database_features, query_labels, database_labels, cutoffs, metric)
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

    def rank_chunk(rows: slice) -> _ChunkResult:
        order = np.asarray(rank_rows(rows))
        if order.shape != (rows.stop - rows.start, len(database_labels)):
            raise ConfigError(
                f"a ranking of {rows.stop - rows.start} queries must have shape "
                f"({rows.stop - rows.start}, {len(database_labels)}), got {order.shape}"
            )
        ranks = _RelevantRanks.from_ranked_relevance(database_labels[order] == query_labels[rows, None])
        return _ChunkResult(
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
) -> _Cutoffs:
    map_at, precision_at = tuple(int(k) for k in map_at), tuple(int(n) for n in precision_at)
    if any(k < 1 for k in map_at + precision_at) or curve_max_n < 0:
        raise ConfigError(
            "map_at and precision_at need depths >= 1 and curve_max_n >= 0, "
            f"got {map_at}, {precision_at}, {curve_max_n}"
        )
    return _Cutoffs(map_at, precision_at, int(curve_max_n), n_database)


def _default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _map_chunks(
    rank_chunk: Callable[[slice], _ChunkResult],
    n_queries: int,
    n_database: int,
    chunk_size: int | None,
    n_threads: int | None,
    progress: bool,
) -> list[_ChunkResult]:
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


def _assemble(results: list[_ChunkResult], cutoffs: _Cutoffs, n_bits: int | None) -> RetrievalMetrics:
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
