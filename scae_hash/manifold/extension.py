"""Inductive extension of a graph embedding to new points (Shen et al., "Inductive Hashing on
Manifolds", CVPR 2013): a new point lands at the membership-weighted mean of the embeddings of
its nearest training points. It needs only arrays (no fitted UMAP object), searches with faiss,
and encodes the database by the same rule as the queries."""

from __future__ import annotations

import faiss
import numpy as np

from scae_hash.manifold.embedding import membership_weights

SEARCH_BATCH = 4096


class KnnExtension:
    """Maps vectors to the embedding through their ``k`` nearest anchors (exact L2 search)."""

    def __init__(self, anchors: np.ndarray, anchor_embedding: np.ndarray, k: int) -> None:
        self.anchors = np.ascontiguousarray(anchors, dtype=np.float32)
        self.anchor_embedding = np.asarray(anchor_embedding, dtype=np.float32)
        self.k = int(k)
        self._index: faiss.IndexFlatL2 | None = None

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        if self._index is None:
            self._index = faiss.IndexFlatL2(self.anchors.shape[1])
            self._index.add(self.anchors)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        out = np.empty((len(vectors), self.anchor_embedding.shape[1]), dtype=np.float32)
        for start in range(0, len(vectors), SEARCH_BATCH):
            squared, neighbours = self._index.search(vectors[start:start + SEARCH_BATCH], self.k)
            weights = membership_weights(np.sqrt(np.maximum(squared, 0.0)))
            weights /= weights.sum(axis=1, keepdims=True)
            out[start:start + SEARCH_BATCH] = np.einsum("nk,nkd->nd", weights, self.anchor_embedding[neighbours])
        return out
