"""Manifold hashing (IMH, Shen et al., CVPR 2013, with UMAP as the embedding): the strongest
label-free baseline we know of on these data sets.

Fit: pixels centred and projected by PCA, UMAP's layout of the training images on their
neighbourhood graph, and ITQ on random Fourier features of that layout. Encode: a new image
lands at the membership-weighted mean of the layout of its nearest training images (the
inductive extension), then the same binarization. The database is encoded by the same rule
as the queries, and the learned state is arrays only, so an index file holds it without
pickled objects.

Defaults are the settings chosen on the validation split (rows ``imh`` and ``imh-*`` of
results/validation.csv; experiments/configs/imh.yaml names them).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from scae_hash.errors import ConfigError, DataError
from scae_hash.hashers.base import Hasher, flatten
from scae_hash.hashers.shallow import check_pca_solver
from scae_hash.manifold.binarize import FourierITQ
from scae_hash.manifold.embedding import UmapSettings, check_graph_input, fit_layout, fit_umap
from scae_hash.manifold.extension import KnnExtension
from scae_hash.manifold.graph_vectors import fit_pca, project


def default_cache_dir() -> Path:
    """$SCAE_HASH_UMAP_CACHE, else ``umap/`` in the data cache (~/.cache/scae-hash)."""
    if os.environ.get("SCAE_HASH_UMAP_CACHE"):
        return Path(os.environ["SCAE_HASH_UMAP_CACHE"])
    from scae_hash.data import default_cache_dir as data_cache

    return data_cache() / "umap"


#: How new images reach the embedding: through their nearest training images (IMH's inductive
#: extension; arrays only, so an index can hold it), or UMAP's own ``transform`` (for comparison).
EXTENSIONS = ("knn", "umap")


class ManifoldHasher(Hasher):
    """UMAP embedding of PCA-projected pixels, extended to new images by their neighbours."""

    name = "imh"
    STATE = ("mean_", "components_", "anchors_", "anchor_embedding_", "neighbours_")

    def __init__(self, n_bits: int, seed: int = 0, *, pca_dim: int = 50, n_components: int = 16,
                 n_neighbors: int = 15, min_dist: float = 0.0, n_features: int = 1024,
                 extension: str = "knn", pca_solver: str = "covariance_eigh", cache_dir: Path | None = None,
                 progress: bool = False) -> None:
        super().__init__(n_bits, seed)
        self.pca_dim, self.n_components, self.n_neighbors = pca_dim, n_components, n_neighbors
        if extension not in EXTENSIONS:
            raise ConfigError(f"unknown extension {extension!r}; choose one of {', '.join(EXTENSIONS)}")
        self.min_dist, self.n_features, self.pca_solver = min_dist, n_features, check_pca_solver(pca_solver)
        self.extension = extension
        self.cache_dir = default_cache_dir() if cache_dir is None else cache_dir
        self.progress = progress

    def fit(self, x: np.ndarray) -> "ManifoldHasher":
        flat = flatten(x)
        check_graph_input(flat, self.n_neighbors, self.name)
        self.mean_, self.components_ = fit_pca(flat, self.pca_dim, self.seed, self.pca_solver)
        self.anchors_ = project(flat, self.mean_, self.components_)
        settings = UmapSettings(self.n_components, self.n_neighbors, self.min_dist, self.seed)
        if self.extension == "umap":  # UMAP's own transform for new images: a comparison, not savable
            layout, self.umap_model = fit_umap(self.anchors_, settings, self.progress)
        else:
            layout = fit_layout(self.anchors_, settings, cache_dir=self.cache_dir, progress=self.progress)
        self.anchor_embedding_ = layout.embedding
        self.neighbours_ = np.array([self.n_neighbors], dtype=np.int32)
        self.binarizer_ = FourierITQ(self.n_bits, self.seed, self.n_features).fit(self.anchor_embedding_)
        return self

    def features(self, x: np.ndarray) -> np.ndarray:
        """The embedding of each image (continuous; for re-ranking and the features row)."""
        if self.extension == "umap":
            return np.asarray(self.umap_model.transform(project(flatten(x), self.mean_, self.components_)),
                              dtype=np.float32)
        extension = getattr(self, "extension_", None)
        if extension is None:
            extension = self.extension_ = KnnExtension(self.anchors_, self.anchor_embedding_, int(self.neighbours_[0]))
        return extension(project(flatten(x), self.mean_, self.components_))

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.binarizer_.bits(self.features(x))

    def encode_with_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = self.features(x)
        return self.binarizer_.bits(features), features

    def learned_state(self) -> dict[str, np.ndarray]:
        return {**{name: getattr(self, name) for name in self.STATE}, **self.binarizer_.state("binarizer_")}

    def restore_state(self, state: dict[str, np.ndarray]) -> "ManifoldHasher":
        """Restore from arrays, refusing any set whose shapes do not fit together (one line)."""
        try:
            for name in self.STATE:
                setattr(self, name, np.asarray(state[name]))
            self.binarizer_ = FourierITQ(self.n_bits, self.seed).restore(state, "binarizer_")
        except KeyError as missing:
            raise DataError(f"{self.name}: the saved state lacks {missing}") from None
        self._check_state()
        return self

    def _check_state(self) -> None:
        b = self.binarizer_
        n_in = self.mean_.shape[0] if self.mean_.ndim == 1 else -1
        checks = [
            (self.components_.ndim == 2 and self.components_.shape[0] == n_in, "components_ does not fit mean_"),
            (self.anchors_.ndim == 2 and self.anchors_.shape[1:] == self.components_.shape[1:],
             "anchors_ do not fit components_"),
            (self.anchor_embedding_.ndim == 2 and len(self.anchor_embedding_) == len(self.anchors_),
             "anchor_embedding_ does not fit anchors_"),
            (self.neighbours_.shape == (1,) and 1 <= int(self.neighbours_[0]) <= len(self.anchors_),
             "neighbours_ is not a count of anchors"),
            (b.weights_.ndim == 2 and b.weights_.shape[0] == self.anchor_embedding_.shape[1]
             and b.offsets_.shape == b.weights_.shape[1:] and b.mean_.shape == b.offsets_.shape
             and b.components_.shape == (b.offsets_.shape[0], self.n_bits)
             and b.rotation_.shape == (self.n_bits, self.n_bits), "the binarizer's arrays do not fit together"),
        ]
        for ok, problem in checks:
            if not ok:
                raise DataError(f"{self.name}: tampered or damaged state: {problem}")
        arrays = [getattr(self, name) for name in self.STATE] + [getattr(b, name) for name in b.STATE]
        if not all(np.isfinite(array).all() for array in arrays if array.dtype.kind == "f"):
            raise DataError(f"{self.name}: tampered or damaged state: non-finite values")
        self.extension_ = None
