"""Every hashing method behind the one `Hasher` interface, by name.

A method's class is imported only when it is used: a run of ITQ does not import the manifold
code, nor a run of SCAE-hash SCAE-manifold's, so the code a result row depends on
(:mod:`scae_hash.code_identity`, which reads :data:`METHODS` from this file) is the code of the
method it ran.
"""

from __future__ import annotations

import importlib

from scae_hash.errors import ConfigError
from scae_hash.hashers.base import Hasher

#: Each method's class, as "module:Class".
METHODS = {
    "lsh": "scae_hash.hashers.shallow:LSH",
    "pcah": "scae_hash.hashers.shallow:PCAH",
    "itq": "scae_hash.hashers.shallow:ITQ",
    "sh": "scae_hash.hashers.shallow:SpectralHashing",
    "imh": "scae_hash.hashers.manifold:ManifoldHasher",
    "scae": "scae_hash.hashers.scae:SCAEHasher",
    "scae-manifold": "scae_hash.hashers.scae_manifold:SCAEManifoldHasher",
}
#: The methods fitted on pixels with a constructor of (n_bits, seed, **hyper-parameters).
BASELINES = ("lsh", "pcah", "itq", "sh", "imh")


def method_class(method: str) -> type[Hasher]:
    """The class of a method by its name (one line for a name that is none)."""
    try:
        module, name = METHODS[method].split(":")
    except KeyError:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}") from None
    return getattr(importlib.import_module(module), name)


def make_baseline(method: str, n_bits: int, seed: int = 0, **hyperparameters) -> Hasher:
    """Build a shallow baseline by its CLI name (`hyperparameters`, e.g. pca_solver, go to
    its constructor)."""
    if method not in BASELINES:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(BASELINES)}")
    try:
        return method_class(method)(n_bits, seed, **hyperparameters)
    except TypeError as error:  # an unknown or misspelt hyper-parameter
        raise ConfigError(f"{method}: {str(error).split('() ', 1)[-1]}") from None


__all__ = ["BASELINES", "METHODS", "Hasher", "make_baseline", "method_class"]
