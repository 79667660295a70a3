"""UMAP's objective on a network's output (parametric UMAP, Sainburg, McInnes and Gentner, 2021).

For an edge (i, j) of the fuzzy graph, the embedding's similarity q = 1 / (1 + a d^(2b)) is
pulled towards 1 (-log q); for random pairs, the negative samples, it is pushed towards 0
(-log(1 - q)). Edges are sampled in proportion to their membership strength, so the loss is a
plain mean over a batch of them.
"""

from __future__ import annotations

from keras import ops

EPSILON = 1e-4


def edge_similarity(first, second, a: float, b: float):
    """UMAP's low-dimensional similarity of paired rows."""
    squared = ops.sum(ops.square(first - second), axis=-1)
    return 1.0 / (1.0 + a * ops.power(squared + 1e-12, b))


def umap_cross_entropy(heads, tails, a: float, b: float, negatives: int = 5):
    """Mean cross-entropy of a batch of graph edges (row i of ``heads`` and ``tails``) and of
    ``negatives`` random pairs per edge (each head with the tails rolled by 1..negatives rows)."""
    attraction = -ops.log(ops.clip(edge_similarity(heads, tails, a, b), EPSILON, 1.0))
    repulsion = 0.0
    for shift in range(1, negatives + 1):
        q = edge_similarity(heads, ops.roll(tails, shift, axis=0), a, b)
        repulsion = repulsion + -ops.log(ops.clip(1.0 - q, EPSILON, 1.0))
    return ops.mean(attraction) + ops.mean(repulsion)
