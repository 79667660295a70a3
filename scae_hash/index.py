"""Retrieval over binary codes: Hamming ranking, hash-bucket lookup within a radius, and
two-stage retrieval (Hamming shortlist, then re-rank with continuous features).

The API follows faiss (`add`, `search(queries, k) -> (distances, ids)`), with the protocol's
tie rule (equal distances in database order), so an index returns what the metrics score.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np

from scae_hash.codes import iter_hamming_distances, pack_bits, unpack_bits, validate_bits
from scae_hash.errors import ConfigError


class HammingIndex:
    """Exact Hamming ranking over codes stored packed (n_bits / 8 bytes per item)."""

    def __init__(self, n_bits: int) -> None:
        self.n_bits = int(n_bits)
        self.packed_ = np.empty((0, -(-self.n_bits // 8)), dtype=np.uint8)

    @property
    def ntotal(self) -> int:
        return len(self.packed_)

    def add(self, bits: np.ndarray) -> "HammingIndex":
        bits = validate_bits(bits, "database codes")
        if bits.shape[1] != self.n_bits:
            raise ConfigError(f"index holds {self.n_bits}-bit codes, got {bits.shape[1]} bits")
        self.packed_ = np.concatenate([self.packed_, pack_bits(bits)])
        return self

    def codes(self) -> np.ndarray:
        return unpack_bits(self.packed_, self.n_bits)

    def search(self, query_bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest items per query: (distances, ids), each (nq, min(k, ntotal))."""
        k = min(int(k), self.ntotal)
        all_distances, all_ids = [], []
        for _, distances in iter_hamming_distances(query_bits, self.codes()):
            order = np.argsort(distances, axis=1, kind="stable")[:, :k]
            all_ids.append(order)
            all_distances.append(np.take_along_axis(distances, order, axis=1))
        return np.concatenate(all_distances), np.concatenate(all_ids)


class HashBuckets:
    """Hash-table lookup: items stored by their exact code; a query probes every code within
    the radius (sum of C(n_bits, r) buckets), the classic sub-linear retrieval of short codes."""

    def __init__(self, n_bits: int) -> None:
        self.n_bits = int(n_bits)
        self.buckets_: dict[bytes, list[int]] = defaultdict(list)
        self.ntotal = 0

    def add(self, bits: np.ndarray) -> "HashBuckets":
        for offset, key in enumerate(pack_bits(bits)):
            self.buckets_[key.tobytes()].append(self.ntotal + offset)
        self.ntotal += len(bits)
        return self

    def lookup(self, query_bits: np.ndarray, radius: int = 2) -> np.ndarray:
        """Ids of all items within Hamming `radius` of one query code, in database order."""
        code = validate_bits(np.asarray(query_bits).reshape(1, -1), "query code")[0]
        flips = [(), *(combo for r in range(1, radius + 1) for combo in combinations(range(self.n_bits), r))]
        probes = np.repeat(code[None, :], len(flips), axis=0)
        for row, positions in enumerate(flips):
            probes[row, list(positions)] ^= 1
        found = [self.buckets_.get(key.tobytes(), []) for key in pack_bits(probes)]
        return np.sort(np.fromiter((i for ids in found for i in ids), dtype=np.int64))


def rerank(candidates: np.ndarray, query_features: np.ndarray, database_features: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """Re-order each query's candidate ids by cosine similarity of continuous features."""
    queries = _unit(query_features)
    candidate_features = _unit(database_features[candidates])  # (nq, shortlist, d)
    similarity = np.einsum("qd,qsd->qs", queries, candidate_features)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(similarity, order, axis=1), np.take_along_axis(candidates, order, axis=1)


def two_stage_search(index: HammingIndex, query_bits: np.ndarray, query_features: np.ndarray,
                     database_features: np.ndarray, k: int, shortlist: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Hamming shortlist (cheap, over packed codes), then exact re-ranking of the shortlist only."""
    if shortlist < k:
        raise ConfigError(f"the shortlist ({shortlist}) must be at least k ({k})")
    _, candidates = index.search(query_bits, shortlist)
    return rerank(candidates, query_features, database_features, k)


def _unit(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-12)
