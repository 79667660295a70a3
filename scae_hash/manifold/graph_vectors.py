"""The vectors the neighbourhood graph is built on: PCA of the pixels, or, for colour images
whose pixel neighbours rarely share content, PCA of single-layer patch k-means features with
rows L2-normalised (`scae_hash.manifold.patch_features`)."""

from __future__ import annotations

import numpy as np


def fit_pca(flat: np.ndarray, dim: int, seed: int, solver: str = "covariance_eigh") -> tuple[np.ndarray, np.ndarray]:
    """(mean, components (features, dim)) of the rows of ``flat``."""
    from sklearn.decomposition import PCA

    mean = flat.mean(axis=0)
    pca = PCA(min(dim, *flat.shape), svd_solver=solver, random_state=seed).fit(flat - mean)
    return mean, pca.components_.T.astype(np.float32)


def project(flat: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((flat - mean) @ components, dtype=np.float32)


def graph_vectors(images: np.ndarray, source: str, pca_dim: int, seed: int) -> np.ndarray:
    if source == "kmeans":
        from scae_hash.manifold.patch_features import PatchKMeans

        flat = PatchKMeans(seed=seed).fit(images).transform(images)
    else:
        flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    projected = project(flat, *fit_pca(flat, pca_dim, seed))
    if source == "kmeans":
        projected /= np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-12)
    return projected
