"""Shallow baselines on raw pixels: LSH, PCAH, ITQ and spectral hashing (SH).

Each works on the flattened pixel vector centred with the training mean (docs/protocol.md), and is
reproducible from its seed. The learned state is plain numpy arrays, so restoring a fitted
hasher and encoding with it needs no scikit-learn (whose import alone is slow); only fitting a
PCA-based method imports it.
"""

from __future__ import annotations

import numpy as np

from scae_hash.errors import ConfigError
from scae_hash.hashers.base import Hasher, flatten


def _to_bits(projections: np.ndarray) -> np.ndarray:
    return (projections > 0).astype(np.uint8)


PCA_SOLVERS = ("covariance_eigh", "randomized")


def check_pca_solver(solver: str) -> str:
    """``solver`` if it is one of PCA_SOLVERS; a bad one is a setting, so one ConfigError line."""
    if solver not in PCA_SOLVERS:
        raise ConfigError(f"unknown PCA solver {solver!r}; choose one of {', '.join(PCA_SOLVERS)}")
    return solver


class _PixelHasher(Hasher):
    """Common part of the baselines: centre pixels with the training mean, then project.

    ``pca_solver`` is scikit-learn's: "covariance_eigh" (exact, the protocol's reported
    rows) eigendecomposes the full pixel covariance, which for large images (3,072 pixels of
    CIFAR-10) dominates the fit; "randomized" finds only the top components (index building).
    """

    def __init__(self, n_bits: int, seed: int = 0, *, pca_solver: str = "covariance_eigh") -> None:
        super().__init__(n_bits, seed)
        self.pca_solver = check_pca_solver(pca_solver)

    def _centre_fit(self, x: np.ndarray) -> np.ndarray:
        flat = flatten(x)
        self.mean_ = flat.mean(axis=0)
        return flat - self.mean_

    def _centre(self, x: np.ndarray) -> np.ndarray:
        return flatten(x) - self.mean_

    def _fit_pca(self, centred: np.ndarray) -> np.ndarray:
        """PCA with the configured solver; returns the projected training data."""
        from sklearn.decomposition import PCA

        n_samples, dim = centred.shape
        if self.n_bits > min(dim, n_samples):
            raise ConfigError(
                f"{self.name}: {self.n_bits} bits exceed the feature dimension {dim} "
                f"(or the {n_samples} training items); PCA-based methods need bits <= {min(dim, n_samples)}"
            )
        pca = PCA(n_components=self.n_bits, svd_solver=self.pca_solver, random_state=self.seed)
        projected = pca.fit_transform(centred)
        self.components_ = pca.components_.T.astype(np.float32)  # (dim, n_bits)
        return projected.astype(np.float32)


class LSH(_PixelHasher):
    """Random-projection LSH (Charikar 2002): signs of Gaussian projections."""

    name = "lsh"

    def fit(self, x: np.ndarray) -> "LSH":
        centred = self._centre_fit(x)
        rng = np.random.default_rng(self.seed)
        self.projection_ = rng.standard_normal((centred.shape[1], self.n_bits)).astype(np.float32)
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        return _to_bits(self._centre(x) @ self.projection_)


class PCAH(_PixelHasher):
    """PCA hashing: signs of the top principal components."""

    name = "pcah"

    def fit(self, x: np.ndarray) -> "PCAH":
        self._fit_pca(self._centre_fit(x))
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        return _to_bits(self._centre(x) @ self.components_)


class ITQ(_PixelHasher):
    """Iterative quantization (Gong & Lazebnik, CVPR 2011): PCA, then the rotation that
    minimises the quantization error, found by alternating sign and Procrustes steps."""

    name = "itq"

    def __init__(self, n_bits: int, seed: int = 0, n_iter: int = 50, *, pca_solver: str = "covariance_eigh") -> None:
        super().__init__(n_bits, seed, pca_solver=pca_solver)
        self.n_iter = n_iter

    def fit(self, x: np.ndarray) -> "ITQ":
        v = self._fit_pca(self._centre_fit(x)).astype(np.float64)
        rng = np.random.default_rng(self.seed)
        rotation, _ = np.linalg.qr(rng.standard_normal((self.n_bits, self.n_bits)))
        for _ in range(self.n_iter):
            b = np.where(v @ rotation >= 0, 1.0, -1.0)
            u, _, wt = np.linalg.svd(b.T @ v)
            rotation = (u @ wt).T
        self.rotation_ = rotation.astype(np.float32)
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        return _to_bits((self._centre(x) @ self.components_) @ self.rotation_)

    def linear_map(self) -> tuple[np.ndarray, np.ndarray]:
        """(weights, bias) with bits = (x @ weights + bias > 0): ITQ as one Dense layer."""
        weights = self.components_ @ self.rotation_
        return weights, -self.mean_ @ weights


class SpectralHashing(_PixelHasher):
    """Spectral hashing (Weiss, Torralba & Fergus, NIPS 2008), following the authors' code:
    PCA, then the `n_bits` lowest-frequency sinusoidal eigenfunctions of a uniform box."""

    name = "sh"

    def fit(self, x: np.ndarray) -> "SpectralHashing":
        projected = self._fit_pca(self._centre_fit(x))
        eps = np.finfo(np.float32).eps
        self.min_ = projected.min(axis=0) - eps
        span = projected.max(axis=0) + eps - self.min_
        max_mode = np.ceil((self.n_bits + 1) * span / span.max()).astype(int)
        # Candidate eigenfunctions: mode k >= 1 along one PCA axis (the reference code's set).
        axes = np.repeat(np.arange(self.n_bits), max_mode - 1)
        modes = np.concatenate([np.arange(1, top) for top in max_mode])
        frequencies = modes * np.pi / span[axes]
        lowest = np.argsort(frequencies, kind="stable")[: self.n_bits]  # smallest eigenvalues
        self.axes_ = axes[lowest]
        self.frequencies_ = frequencies[lowest].astype(np.float32)
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        shifted = self._centre(x) @ self.components_ - self.min_
        return _to_bits(np.sin(shifted[:, self.axes_] * self.frequencies_ + np.pi / 2))
