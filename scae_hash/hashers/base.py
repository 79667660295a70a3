"""The one interface shared by the SCAE and every baseline (scikit-learn style)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from scae_hash.constants import MAX_BITS, MIN_BITS
from scae_hash.errors import ConfigError


def flatten(x: np.ndarray) -> np.ndarray:
    """Images (n, height, width, channels) as float32 pixel vectors (n, pixels), the input
    of every method that works on raw pixels."""
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1)


class Hasher(ABC):
    """Learns a map from images to `n_bits` binary codes.

    Images are float32 arrays of shape (n, height, width, channels) scaled to [0, 1]; every
    hasher takes the same input so that one evaluation road serves all methods.
    Hyper-parameters live in ``__init__``; learned state in trailing-underscore attributes.
    """

    name: str = "hasher"
    # Only a hasher that declares itself supervised is given the training labels (by the
    # evaluation road, as ``fit(x, labels=...)``); its rows are marked so, never mixed up
    # with the unsupervised methods this project is about.
    supervised: bool = False

    def __init__(self, n_bits: int, seed: int = 0) -> None:
        if not MIN_BITS <= int(n_bits) <= MAX_BITS:
            raise ConfigError(f"bits must be in {MIN_BITS}..{MAX_BITS}, got {n_bits}")
        self.n_bits = int(n_bits)
        self.seed = int(seed)

    @abstractmethod
    def fit(self, x: np.ndarray) -> "Hasher":
        """Learn the hash function from unlabelled training images."""

    @abstractmethod
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Return codes as uint8 {0, 1} of shape (n, n_bits)."""

    def encode_with_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Codes and features together; a model that computes both in one pass overrides this."""
        return self.encode(x), self.features(x)

    def learned_state(self) -> dict[str, np.ndarray]:
        """The learned arrays (trailing-underscore attributes), for saving without pickle."""
        return {key: value for key, value in vars(self).items() if key.endswith("_") and isinstance(value, np.ndarray)}

    def restore_state(self, state: dict[str, np.ndarray]) -> "Hasher":
        for key, value in state.items():
            setattr(self, key, value)
        return self

    def features(self, x: np.ndarray) -> np.ndarray | None:
        """Continuous features behind the codes (for re-ranking), or None if the method has none."""
        return None
