"""The data's neighbourhood graph and its low-dimensional layout, by umap-learn.

Fitting UMAP costs minutes on the CPU and its result depends only on the input vectors and
the settings, so it is cached on disk by content (one fit serves every code length, and the
baseline and the SCAE trained on the same graph share it). The fuzzy graph is kept beside
the layout: the SCAE's graph loss samples its edges.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from scae_hash.atomic import atomic_path
from scae_hash.errors import DataError

CACHE_VERSION = 1


@dataclass(frozen=True)
class UmapSettings:
    """What the layout depends on besides the data (umap-learn's names)."""

    n_components: int = 16
    n_neighbors: int = 15
    min_dist: float = 0.0
    seed: int = 0


@dataclass
class Layout:
    """UMAP's result: the embedding of every input row and the fuzzy graph (COO, symmetric)."""

    embedding: np.ndarray  # (n, n_components) float32
    heads: np.ndarray      # (n_edges,) int32
    tails: np.ndarray      # (n_edges,) int32
    weights: np.ndarray    # (n_edges,) float32 membership strengths in (0, 1]
    a: float               # the curve 1 / (1 + a d^(2b)) UMAP fitted to min_dist
    b: float


def check_graph_input(vectors: np.ndarray, n_neighbors: int, what: str) -> None:
    """One clear line for inputs no neighbourhood graph can be built from."""
    if len(vectors) <= n_neighbors:
        raise DataError(f"{what}: a {n_neighbors}-neighbour graph needs more than {n_neighbors} training images, "
                        f"got {len(vectors)}")
    if not np.isfinite(vectors).all():
        raise DataError(f"{what}: the training images hold NaN or infinite values")
    if float(np.ptp(vectors, axis=0).max(initial=0.0)) == 0.0:
        raise DataError(f"{what}: all training images are identical; a neighbourhood graph needs distinct images")


def fit_layout(vectors: np.ndarray, settings: UmapSettings, *, cache_dir: Path | None = None,
               progress: bool = False) -> Layout:
    """UMAP of ``vectors`` (rows), from the cache when the same rows and settings were fitted."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"umap-{_cache_key(vectors, settings)}.npz"
        if cache_file.is_file():
            try:
                with np.load(cache_file) as saved:
                    return Layout(saved["embedding"], saved["heads"], saved["tails"], saved["weights"],
                                  float(saved["a"]), float(saved["b"]))
            except (OSError, KeyError, ValueError):
                pass  # a damaged cache entry is refitted and replaced
    layout, _ = fit_umap(vectors, settings, progress)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_file) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, embedding=layout.embedding, heads=layout.heads, tails=layout.tails,
                         weights=layout.weights, a=layout.a, b=layout.b)
    return layout


def fit_umap(vectors: np.ndarray, settings: UmapSettings, progress: bool = False):
    """(Layout, the fitted ``umap.UMAP``): uncached, for a caller that needs UMAP's own ``transform``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap-learn warns that a seed disables its threads: wanted here
        import umap

        reducer = umap.UMAP(n_components=settings.n_components, n_neighbors=settings.n_neighbors,
                            min_dist=settings.min_dist, random_state=settings.seed, verbose=progress)
        embedding = reducer.fit_transform(vectors)
    graph = reducer.graph_.tocoo()
    layout = Layout(np.asarray(embedding, dtype=np.float32), graph.row.astype(np.int32), graph.col.astype(np.int32),
                    graph.data.astype(np.float32), float(reducer._a), float(reducer._b))
    return layout, reducer


def _cache_key(vectors: np.ndarray, settings: UmapSettings) -> str:
    import umap

    described = {"settings": asdict(settings), "shape": list(vectors.shape), "umap": umap.__version__,
                 "data": hashlib.blake2b(vectors.data).hexdigest(), "version": CACHE_VERSION}
    return hashlib.blake2b(json.dumps(described, sort_keys=True).encode(), digest_size=10).hexdigest()


def membership_weights(distances: np.ndarray, n_iter: int = 64) -> np.ndarray:
    """UMAP's smooth k-NN memberships for rows of sorted neighbour distances (n, k):
    exp(-(d - rho) / sigma), rho the nearest distance and sigma set per row so that the
    memberships sum to log2(k), as umap-learn's ``smooth_knn_dist`` does (vectorised here,
    so that encoding needs no numba)."""
    distances = np.asarray(distances, dtype=np.float64)
    excess = np.maximum(distances - distances[:, :1], 0.0)
    target = np.log2(distances.shape[1])
    low, high = np.zeros(len(distances)), np.full(len(distances), np.inf)
    sigma = np.ones(len(distances))
    for _ in range(n_iter):
        total = np.exp(-excess / sigma[:, None]).sum(axis=1)
        too_big = total > target
        high = np.where(too_big, sigma, high)
        low = np.where(too_big, low, sigma)
        sigma = np.where(np.isinf(high), sigma * 2, (low + high) / 2)
    return np.exp(-excess / np.maximum(sigma, 1e-12)[:, None])
