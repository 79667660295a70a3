"""The rankings behind the retrieval metrics (:mod:`scae_hash.metrics`), one chunk of queries at
a time: each query's database ordered by Hamming distance or by feature distance, ties by
database index, and where its relevant items fall in that order. Kept apart from the metrics
that are read off them, so each file holds one job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scae_hash.codes import distance_dtype, hamming_distances_packed, pack_words


@dataclass(frozen=True)
class Cutoffs:
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
class ChunkResult:
    """What one chunk of queries contributes: per-query values, or sums where the mean is all we need."""

    average_precision: np.ndarray  # (m, 1 + len(map_at)): whole ranking, then AP@k
    hits: np.ndarray  # (len(hit_depths),): relevant items within each depth, summed over the chunk
    n_relevant: np.ndarray  # (m,)
    within_radius: np.ndarray | None  # (m, n_bits + 1): items with distance <= r
    relevant_within_radius: np.ndarray | None  # (m, n_bits + 1): relevant items with distance <= r


@dataclass(frozen=True)
class RelevantRanks:
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
    def from_ranked_relevance(cls, ranked_relevance: np.ndarray) -> RelevantRanks:
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


class HammingRanker:
    """Ranks chunks of queries against one packed database by Hamming distance."""

    def __init__(
        self,
        query_bits: np.ndarray,
        database_bits: np.ndarray,
        query_labels: np.ndarray,
        database_labels: np.ndarray,
        cutoffs: Cutoffs,
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

    def __call__(self, rows: slice) -> ChunkResult:
        n_database = len(self.database_labels)
        distances = np.empty((rows.stop - rows.start, n_database), dtype=self.distance_dtype)
        hamming_distances_packed(self.query_words[rows], self.database_words, out=distances)
        keyed = np.add(distances, distances, dtype=self.keyed_dtype)  # 5x faster than a shift
        keyed += self.database_labels == self.query_labels[rows, None]
        ranked = _take_rows(keyed, np.argsort(distances, axis=1, kind="stable"))
        within_radius = self._within_radius(ranked)
        ranks = RelevantRanks.from_ranked_relevance(_low_bits(ranked))
        return ChunkResult(
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


class FeatureRanker:
    """Ranks chunks of queries against a database of continuous features (float32)."""

    def __init__(
        self,
        query_features: np.ndarray,
        database_features: np.ndarray,
        query_labels: np.ndarray,
        database_labels: np.ndarray,
        cutoffs: Cutoffs,
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

    def __call__(self, rows: slice) -> ChunkResult:
        order = np.argsort(self.distances(rows), axis=1, kind="stable")
        ranks = RelevantRanks.from_ranked_relevance(self.database_labels[order] == self.query_labels[rows, None])
        return ChunkResult(
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
