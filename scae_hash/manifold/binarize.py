"""Codes from a low-dimensional embedding: ITQ on random Fourier features (RFF) of it.

An embedding of 10-16 dimensions has too few directions for 64 good bits; random Fourier
features of a Gaussian kernel (Rahimi and Recht, 2007) spread it over many, and ITQ (PCA to
the code length, then the rotation that minimises quantization error) turns those into
balanced bits whose Hamming distance follows the kernel's similarity.
"""

from __future__ import annotations

import numpy as np

BANDWIDTH_SAMPLE = 2000


def median_distance(embedding: np.ndarray, seed: int) -> float:
    """Median pairwise Euclidean distance over a random sample of rows."""
    rng = np.random.default_rng(seed)
    sample = embedding[rng.choice(len(embedding), min(BANDWIDTH_SAMPLE, len(embedding)), replace=False)]
    squared = (sample ** 2).sum(1)[:, None] + (sample ** 2).sum(1)[None, :] - 2 * sample @ sample.T
    distances = np.sqrt(np.maximum(squared[np.triu_indices(len(sample), 1)], 0.0))
    return float(np.median(distances)) if len(distances) else 1.0


class FourierITQ:
    """``fit(embedding)`` draws the features and fits ITQ; ``bits(embedding)`` encodes.
    State: ``weights_`` (d, n_features), ``offsets_`` (n_features,), and ITQ's ``mean_``,
    ``components_``, ``rotation_``."""

    def __init__(self, n_bits: int, seed: int = 0, n_features: int = 1024, bandwidth_scale: float = 0.5) -> None:
        self.n_bits, self.seed, self.n_features, self.bandwidth_scale = n_bits, seed, n_features, bandwidth_scale

    def fit(self, embedding: np.ndarray) -> "FourierITQ":
        embedding = np.asarray(embedding, dtype=np.float32)
        bandwidth = max(self.bandwidth_scale * median_distance(embedding, self.seed), 1e-6)
        rng = np.random.default_rng(self.seed)
        self.weights_ = (rng.standard_normal((embedding.shape[1], self.n_features)) / bandwidth).astype(np.float32)
        self.offsets_ = rng.uniform(0, 2 * np.pi, self.n_features).astype(np.float32)
        from scae_hash.hashers.shallow import ITQ  # here: scae_hash.hashers imports this package

        itq = ITQ(self.n_bits, self.seed).fit(self.features(embedding))
        self.mean_, self.components_, self.rotation_ = itq.mean_, itq.components_, itq.rotation_
        return self

    def features(self, embedding: np.ndarray) -> np.ndarray:
        return np.cos(np.asarray(embedding, dtype=np.float32) @ self.weights_ + self.offsets_)

    def bits(self, embedding: np.ndarray) -> np.ndarray:
        projected = ((self.features(embedding) - self.mean_) @ self.components_) @ self.rotation_
        return (projected > 0).astype(np.uint8)

    STATE = ("weights_", "offsets_", "mean_", "components_", "rotation_")

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{name}": getattr(self, name) for name in self.STATE}

    def restore(self, state: dict[str, np.ndarray], prefix: str) -> "FourierITQ":
        for name in self.STATE:
            setattr(self, name, np.asarray(state[f"{prefix}{name}"], dtype=np.float32))
        return self
