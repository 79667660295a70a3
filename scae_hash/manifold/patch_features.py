"""Single-layer patch features (Coates, Lee and Ng, AISTATS 2011) for the neighbourhood graph
of colour images: k-means centroids of contrast-normalised, ZCA-whitened patches; an image is
the triangle activation of its patches (every ``stride``-th position) against the
centroids, sum-pooled over its four quadrants. No labels and no training beyond k-means, and far better neighbours than pixels."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


class PatchKMeans:
    def __init__(self, n_centroids: int = 400, patch: int = 8, stride: int = 2, n_patches: int = 100_000,
                 seed: int = 0, batch: int = 256) -> None:
        self.n_centroids, self.patch, self.stride, self.n_patches = n_centroids, patch, stride, n_patches
        self.seed, self.batch = seed, batch

    def _normalise(self, patches: np.ndarray) -> np.ndarray:
        patches = patches - patches.mean(axis=1, keepdims=True)
        return patches / np.sqrt(patches.var(axis=1, keepdims=True) + 10.0 / 255.0 ** 2)  # Coates: var + 10 on 0..255

    def fit(self, images: np.ndarray) -> "PatchKMeans":
        from sklearn.cluster import MiniBatchKMeans

        rng = np.random.default_rng(self.seed)
        n, height, width, _ = images.shape
        which = rng.integers(0, n, self.n_patches)
        rows = rng.integers(0, height - self.patch + 1, self.n_patches)
        cols = rng.integers(0, width - self.patch + 1, self.n_patches)
        offsets = np.arange(self.patch)
        patches = images[which[:, None, None], rows[:, None, None] + offsets[None, :, None],
                         cols[:, None, None] + offsets[None, None, :]].reshape(self.n_patches, -1)
        patches = self._normalise(patches.astype(np.float64))
        self.mean_ = patches.mean(axis=0)
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches - self.mean_, rowvar=False))
        self.whiten_ = (eigenvectors @ np.diag(1.0 / np.sqrt(eigenvalues + 0.1)) @ eigenvectors.T)
        whitened = (patches - self.mean_) @ self.whiten_
        kmeans = MiniBatchKMeans(self.n_centroids, random_state=self.seed, n_init=3, batch_size=4096).fit(whitened)
        self.centroids_ = kmeans.cluster_centers_.astype(np.float32)
        self.whiten_ = self.whiten_.astype(np.float32)
        self.mean_ = self.mean_.astype(np.float32)
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        """(n, 4 * n_centroids) features."""
        out = np.empty((len(images), 4 * self.n_centroids), dtype=np.float32)
        squared_centroids = (self.centroids_ ** 2).sum(axis=1)
        for start in range(0, len(images), self.batch):
            chunk = np.asarray(images[start:start + self.batch], dtype=np.float32)
            windows = sliding_window_view(chunk, (self.patch, self.patch), axis=(1, 2))  # n, r, c, ch, p, p
            windows = windows[:, ::self.stride, ::self.stride]  # every other patch: a quarter of the cost
            n, r, c = windows.shape[:3]
            patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * r * c, -1)
            whitened = (self._normalise(patches) - self.mean_) @ self.whiten_
            squared = (whitened ** 2).sum(axis=1, keepdims=True) + squared_centroids - 2 * whitened @ self.centroids_.T
            distances = np.sqrt(np.maximum(squared, 0.0))
            active = np.maximum(distances.mean(axis=1, keepdims=True) - distances, 0.0).reshape(n, r, c, -1)
            half_r, half_c = r // 2, c // 2
            quadrants = [active[:, :half_r, :half_c], active[:, :half_r, half_c:],
                         active[:, half_r:, :half_c], active[:, half_r:, half_c:]]
            out[start:start + n] = np.concatenate([q.sum(axis=(1, 2)) for q in quadrants], axis=1)
        return out
