"""Retrieval over binary codes on faiss: exact Hamming k-NN, lookup within a Hamming radius,
and two-stage retrieval (Hamming shortlist, then re-rank with continuous features: the re-ranking
itself is `scae_hash.rerank`, shared with image search and the comparison).

The API follows faiss (`add`, `search(queries, k) -> (distances, ids)`), with the protocol's
tie rule (equal distances in database order), so an index returns what the metrics score.

Codes live packed in a `faiss.IndexBinaryFlat`, `np.packbits` layout (n_bits / 8 bytes per
item, zero-padded to whole bytes). faiss reads its own codes least significant bit first;
Hamming distance only XORs and counts matching bytes, so the bit order inside a byte changes
nothing, and the padding bits are zero on both sides.

Why the tie rule holds without re-sorting: `IndexBinaryFlat.search` scans the database in
id order and replaces its heap's top only with a strictly smaller distance; its heap orders
equal distances by id, so it keeps the k smallest (distance, id) pairs and returns them in
that order (tests check it against brute force with many ties, across faiss' scan blocks).

Radius lookup is multi-index hashing (`faiss.IndexBinaryMultiHash`): the code is cut into
radius + 1 disjoint substrings, and an item within the radius matches the query exactly on
at least one of them (pigeonhole), so probing each substring's bucket is exact. The tables
are built once per index and radius, on first use.
"""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np

from scae_hash.codes import pack_bits, unpack_bits, validate_bits
from scae_hash.errors import ConfigError
from scae_hash.rerank import rerank_shortlist, unit_rows

# Items per bucket that multi-index hashing aims at: fewer means more, emptier buckets.
_ITEMS_PER_BUCKET = 16
# Multi-index hashing pays only when a substring splits the database into enough buckets;
# with shorter substrings the exact scan of faiss' range search is faster.
_MIN_SUBSTRING_BITS = 8
# Below this many queries a search runs on one thread (see _few_threaded).
_PARALLEL_MIN_QUERIES = 16


def _few_threaded(n_queries: int, function, *args):
    """`function(*args)` on one thread for a few queries: faiss parallelises over queries,
    and starting a thread team costs far more than one query (tens of ms when the cores are
    busy). OpenMP's setting is process-wide, so concurrent callers can leave each other's
    setting behind; that only changes speed."""
    threads = faiss.omp_get_max_threads()
    if threads == 1 or n_queries >= _PARALLEL_MIN_QUERIES:
        return function(*args)
    faiss.omp_set_num_threads(1)
    try:
        return function(*args)
    finally:
        faiss.omp_set_num_threads(threads)


class HammingIndex:
    """Exact Hamming ranking over packed codes (n_bits / 8 bytes per item), on faiss."""

    def __init__(self, n_bits: int) -> None:
        self.n_bits = int(n_bits)
        self.code_size = -(-self.n_bits // 8)
        self.flat_ = faiss.IndexBinaryFlat(8 * self.code_size)
        self.flat_.use_heap = True  # (the default) the heap search that keeps the tie rule
        self.tables_: dict[int, faiss.IndexBinaryMultiHash] = {}

    @property
    def ntotal(self) -> int:
        return self.flat_.ntotal

    def add(self, bits: np.ndarray) -> "HammingIndex":
        """Add (n, n_bits) {0, 1} codes."""
        bits = validate_bits(bits, "database codes")
        if bits.shape[1] != self.n_bits:
            raise ConfigError(f"index holds {self.n_bits}-bit codes, got {bits.shape[1]} bits")
        return self.add_packed(pack_bits(bits))

    def add_packed(self, packed: np.ndarray) -> "HammingIndex":
        """Add codes already packed by `pack_bits` (as an index file stores them)."""
        self.flat_.add(self._check_packed(packed, "database codes"))
        self.tables_.clear()  # rebuilt on the next radius lookup, sized for the new total
        return self

    def packed(self) -> np.ndarray:
        """The stored codes, packed: (ntotal, code_size) uint8 (a copy)."""
        return faiss.vector_to_array(self.flat_.xb).reshape(self.ntotal, self.code_size)

    def codes(self) -> np.ndarray:
        return unpack_bits(self.packed(), self.n_bits)

    def search(self, query_bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest items per query: (distances, ids), each (nq, min(k, ntotal)), ordered
        by distance, equal distances in database order."""
        return self.search_packed(self._pack_queries(query_bits), k)

    def search_packed(self, packed_queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` for queries packed by `pack_bits`."""
        k = min(int(k), self.ntotal)
        if k <= 0:
            empty = np.empty((len(packed_queries), 0))
            return empty.astype(np.int32), empty.astype(np.int64)
        return _few_threaded(len(packed_queries), self.flat_.search, self._check_packed(packed_queries, "query codes"), k)

    def range_search(self, query_bits: np.ndarray, radius: int) -> "RangeResult":
        """Per query, (distances, ids) of every item within Hamming `radius`, ordered by
        distance, equal distances in database order."""
        return self.range_search_packed(self._pack_queries(query_bits), radius)

    def range_search_packed(self, packed_queries: np.ndarray, radius: int) -> "RangeResult":
        """`range_search` for queries packed by `pack_bits`."""
        if radius < 0:
            raise ConfigError(f"the radius must be at least 0, got {radius}")
        packed_queries = self._check_packed(packed_queries, "query codes")
        n_queries = len(packed_queries)
        # faiss' own range_search, without its copies: keeps distances strictly below radius + 1
        result = faiss.RangeSearchResult(n_queries)
        tables = self.tables_.get(radius)
        _few_threaded(n_queries, (self._radius_index(radius) if tables is None else tables).range_search_c,
                      n_queries, faiss.swig_ptr(packed_queries), radius + 1, result)
        limits = faiss.rev_swig_ptr(result.lims, n_queries + 1).astype(np.int64)
        found = int(limits[-1])
        distances = faiss.rev_swig_ptr(result.distances, found)  # float, in `result`'s memory
        ids = faiss.rev_swig_ptr(result.labels, found).copy()
        counts = np.diff(limits) if n_queries > 1 and found > 1 else None
        if found > 1 and (counts is None or counts.max() > 1):
            # faiss returns each query's items in hash-table order: sort them by one key
            span = self.ntotal
            key = distances.astype(np.int64) * span + ids
            if counts is not None:
                key += np.repeat(np.arange(n_queries) * ((self.flat_.d + 1) * span), counts)
            key.sort()
            ids = key % span
            distances = key // span % (self.flat_.d + 1)
        return RangeResult(limits, distances.astype(np.int32), ids)

    def _radius_index(self, radius: int) -> faiss.IndexBinary:
        """The multi-index hashing tables for `radius`, built on first use; or the flat index
        when substrings would be too short to split the database."""
        if radius in self.tables_:
            return self.tables_[radius]
        layout = multi_hash_layout(self.flat_.d, self.ntotal, radius)
        if layout is None:
            return self.flat_
        tables = faiss.IndexBinaryMultiHash(self.flat_.d, *layout)
        tables.nflip = 0
        if self.ntotal:
            tables.add(self.packed())
        self.tables_[radius] = tables
        return tables

    def _pack_queries(self, query_bits: np.ndarray) -> np.ndarray:
        query_bits = validate_bits(query_bits, "query codes")
        if query_bits.shape[1] != self.n_bits:
            raise ConfigError(f"index holds {self.n_bits}-bit codes, got {query_bits.shape[1]}-bit queries")
        return np.packbits(query_bits, axis=1)

    def _check_packed(self, packed: np.ndarray, name: str) -> np.ndarray:
        if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != self.code_size:
            raise ConfigError(f"packed {name} must be (n, {self.code_size}) uint8, got {packed.dtype} {packed.shape}")
        return packed if packed.flags.c_contiguous else np.ascontiguousarray(packed)


class RangeResult(Sequence):
    """The items within a radius of each query: result[q] is (distances, ids) of query q.
    Held as faiss gives it (all queries' items in two arrays and where each query's start),
    so a batch of queries costs no Python per query until it is read."""

    def __init__(self, limits: np.ndarray, distances: np.ndarray, ids: np.ndarray) -> None:
        self.limits, self.distances, self.ids = limits, distances, ids

    def __len__(self) -> int:
        return len(self.limits) - 1

    def __getitem__(self, query: int) -> tuple[np.ndarray, np.ndarray]:
        if not -len(self) <= query < len(self):
            raise IndexError(query)
        start, stop = self.limits[query % len(self)], self.limits[query % len(self) + 1]
        return self.distances[start:stop], self.ids[start:stop]


def multi_hash_layout(n_bits: int, ntotal: int, radius: int) -> tuple[int, int] | None:
    """(tables, bits per substring) of exact multi-index hashing within `radius`: radius + 1
    substrings, each long enough for about _ITEMS_PER_BUCKET items per bucket; None when the
    code is too short for substrings that split the database."""
    n_tables = radius + 1
    wanted_bits = max(1, int(np.ceil(np.log2(max(ntotal, 2) / _ITEMS_PER_BUCKET))))
    substring_bits = min(n_bits // n_tables, wanted_bits, 63)
    if substring_bits < min(wanted_bits, _MIN_SUBSTRING_BITS):
        return None
    return n_tables, substring_bits


def two_stage_search(index: HammingIndex, query_bits: np.ndarray, query_features: np.ndarray,
                     database_features: np.ndarray, k: int, shortlist: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Hamming shortlist (cheap, over packed codes), then exact re-ranking of the shortlist only:
    (similarities, ids), each (nq, k)."""
    if shortlist < k:
        raise ConfigError(f"the shortlist ({shortlist}) must be at least k ({k})")
    _, candidates = index.search(query_bits, shortlist)
    return rerank_shortlist(candidates, unit_rows(query_features), unit_rows(database_features[candidates]), k)
