"""What each ranking of the comparison costs: query time and memory per database item.

Query time is the measured wall time of answering one query at a time against the full database
(the top ``TIMING_K`` items, faiss flat indexes, the same thread count for every row, best of
several repeats). Two-stage time is the shortlist scan plus the re-ranking of the shortlist,
timed apart. Extrapolation to larger databases is linear in the scanned part (the re-ranking of
a fixed shortlist does not grow) and linear in memory; it is a model, not a measurement. Bytes
per item: 64-bit codes are 8 bytes; float32 features 4 per dimension; a two-stage index stores
both.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from scae_hash.codes_file import CodesFile
from scae_hash.comparison.ranking import Entry
from scae_hash.rerank import rerank_shortlist, unit_rows

TIMING_K = 100  # items returned per timed query
EXTRAPOLATE_TO = {"1m": 1_000_000, "100m": 100_000_000}


@dataclass(frozen=True)
class QueryCost:
    """Per-query milliseconds: the scan that grows with the database, and the re-ranking of a
    fixed shortlist that does not."""

    scan_ms: float
    rerank_ms: float
    n_database: int

    @property
    def total_ms(self) -> float:
        return self.scan_ms + self.rerank_ms

    def extrapolated_ms(self, n_items: int) -> float:
        """Linear extrapolation of the scan to `n_items`, plus the constant re-ranking."""
        return self.scan_ms * n_items / self.n_database + self.rerank_ms


def bytes_per_item(entry: Entry, models: dict[str, CodesFile]) -> int:
    """What the index stores per database item: packed codes, float32 features, or both."""
    total = 0
    if entry.codes:
        total += -(-models[entry.codes].n_bits // 8)
    if entry.features:
        total += 4 * models[entry.features].database.features.shape[1]
    return total


def mean_ms_per_query(answer: Callable[[int], object], n_queries: int) -> float:
    """Mean wall time of answering queries 0..n_queries-1 one at a time."""
    start = time.perf_counter()
    for query in range(n_queries):
        answer(query)
    return 1e3 * (time.perf_counter() - start) / n_queries


Stages = tuple[Callable[[int], object], Callable[[int], object] | None, int, int]


def query_stages(entry: Entry, models: dict[str, CodesFile], *, n_queries: int, k: int = TIMING_K) -> Stages:
    """The entry's search as a service would run it, one query at a time: (scan, re-rank or None,
    queries available, database size). The scan is a faiss flat index (binary Hamming for codes,
    inner product on unit features) returning `k` items, or the shortlist of a two-stage entry;
    the re-rank is the index's own (`scae_hash.rerank`) on features normalised beforehand."""
    import faiss

    if not entry.codes:
        features = models[entry.features]
        database_unit = unit_rows(features.database.features)
        flat = faiss.IndexFlatIP(database_unit.shape[1])
        flat.add(database_unit)
        unit_queries = unit_rows(features.query.features[:n_queries])
        return (lambda i: flat.search(unit_queries[i:i + 1], k)), None, len(unit_queries), len(database_unit)
    codes = models[entry.codes]
    index = faiss.IndexBinaryFlat(codes.n_bits)
    index.add(np.packbits(codes.database.bits, axis=1))
    queries = np.packbits(codes.query.bits[:n_queries], axis=1)
    depth = entry.shortlist or k

    def scan(i: int) -> object:
        return index.search(queries[i:i + 1], depth)

    if not entry.features:
        return scan, None, len(queries), len(codes.database.bits)
    _, candidates = index.search(queries, depth)
    features = models[entry.features]
    query_unit = unit_rows(features.query.features[:n_queries])
    database_unit = unit_rows(features.database.features)

    def rerank_one(i: int) -> np.ndarray:
        shortlist = candidates[i:i + 1]
        return rerank_shortlist(shortlist, query_unit[i:i + 1], database_unit[shortlist], k)[1]

    return scan, rerank_one, len(queries), len(codes.database.bits)


def measure_query_costs(entries: Sequence[Entry], models: dict[str, CodesFile], *, threads: int = 1,
                        repeats: int = 9, n_queries: int = 200, k: int = TIMING_K) -> dict[str, QueryCost]:
    """Per-query cost of every entry, with `threads` threads everywhere, timed in interleaved
    rounds (each round times every entry once, the best round counts): a busy moment of the
    shared machine then slows every row alike instead of one row only."""
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(threads)
    stages = {entry.method: query_stages(entry, models, n_queries=n_queries, k=k) for entry in entries}
    best = {method: [math.inf, math.inf if rerank_one else 0.0] for method, (_, rerank_one, _, _) in stages.items()}
    with threadpool_limits(threads):
        for _ in range(repeats):
            for method, (scan, rerank_one, n_available, _) in stages.items():
                best[method][0] = min(best[method][0], mean_ms_per_query(scan, n_available))
                if rerank_one is not None:
                    best[method][1] = min(best[method][1], mean_ms_per_query(rerank_one, n_available))
    return {method: QueryCost(scan_ms=best[method][0], rerank_ms=best[method][1], n_database=stages[method][3])
            for method in stages}
