"""Every hashing method behind the one `Hasher` interface."""

from __future__ import annotations

from scae_hash.errors import ConfigError
from scae_hash.hashers.base import Hasher
from scae_hash.hashers.manifold import ManifoldHasher
from scae_hash.hashers.shallow import ITQ, LSH, PCAH, SpectralHashing

BASELINES: dict[str, type[Hasher]] = {cls.name: cls for cls in (LSH, PCAH, ITQ, SpectralHashing, ManifoldHasher)}


def make_baseline(method: str, n_bits: int, seed: int = 0, **hyperparameters) -> Hasher:
    """Build a shallow baseline by its CLI name (`hyperparameters`, e.g. pca_solver, go to
    its constructor)."""
    try:
        cls = BASELINES[method]
    except KeyError:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(BASELINES)}") from None
    try:
        return cls(n_bits, seed, **hyperparameters)
    except TypeError as error:  # an unknown or misspelt hyper-parameter
        raise ConfigError(f"{method}: {str(error).split('() ', 1)[-1]}") from None


__all__ = ["BASELINES", "Hasher", "ITQ", "LSH", "ManifoldHasher", "PCAH", "SpectralHashing", "make_baseline"]
