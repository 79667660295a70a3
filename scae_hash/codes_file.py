"""The codes file of docs/protocol.md: one HDF5 file per run, so that evaluation and figures can be
redone without retraining and any evaluator can check a number."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py
import numpy as np

from scae_hash.atomic import atomic_hdf5
from scae_hash.codes import validate_bits
from scae_hash.errors import CodesFileError

REQUIRED_ATTRS = ("method", "dataset", "protocol", "nbits", "seed", "split_seed", "commit", "created", "command")
PARTS = ("query", "database")


@dataclass
class CodeSet:
    """Codes of one side (queries or database) with the labels and pool positions behind them."""

    bits: np.ndarray  # uint8 {0, 1}, (n, nbits)
    labels: np.ndarray  # int64, (n,)
    index: np.ndarray  # int64, (n,) positions in the data set's pool
    features: np.ndarray | None = None  # float32, (n, d)


@dataclass
class CodesFile:
    query: CodeSet
    database: CodeSet
    attrs: dict = field(default_factory=dict)

    @property
    def n_bits(self) -> int:
        return int(self.query.bits.shape[1])


def save_codes(path: str | os.PathLike, codes: CodesFile) -> None:
    missing = [key for key in REQUIRED_ATTRS if key not in codes.attrs]
    if missing:
        raise CodesFileError(f"codes file attributes missing: {', '.join(missing)}")
    _validate(codes, str(path), allow_overlap=True)
    with atomic_hdf5(path) as f:
        for name in PARTS:
            part: CodeSet = getattr(codes, name)
            group = f.create_group(name)
            group.create_dataset("bits", data=part.bits.astype(np.uint8), compression="gzip")
            group.create_dataset("labels", data=part.labels.astype(np.int64))
            group.create_dataset("index", data=part.index.astype(np.int64))
            if part.features is not None:
                group.create_dataset("features", data=part.features.astype(np.float32))
        for key, value in codes.attrs.items():
            f.attrs[key] = value


def load_codes(path: str | os.PathLike, *, allow_overlap: bool = False) -> CodesFile:
    """Read and check a codes file; any layout problem is one CodesFileError line.

    Queries that are also database items would find themselves at distance 0 and inflate every
    score, so they are refused unless ``allow_overlap`` says that protocol is meant."""
    path = str(path)
    if not os.path.isfile(path):
        raise CodesFileError(f"codes file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            parts = {name: _read_part(f, name, path) for name in PARTS}
            attrs = {key: _plain(value) for key, value in f.attrs.items()}
    except OSError as err:
        raise CodesFileError(f"{path}: not a readable HDF5 file ({err})") from None
    codes = CodesFile(query=parts["query"], database=parts["database"], attrs=attrs)
    _validate(codes, path, allow_overlap=allow_overlap)
    return codes


def _read_part(f: h5py.File, name: str, path: str) -> CodeSet:
    if name not in f:
        raise CodesFileError(f"{path}: group /{name} missing (expected /query and /database)")
    group = f[name]
    for key in ("bits", "labels", "index"):
        if key not in group:
            raise CodesFileError(f"{path}: dataset /{name}/{key} missing")
    features = group["features"][()] if "features" in group else None
    return CodeSet(group["bits"][()], group["labels"][()], group["index"][()], features)


def _validate(codes: CodesFile, path: str, *, allow_overlap: bool) -> None:
    for name in PARTS:
        part: CodeSet = getattr(codes, name)
        where = f"{path}: /{name}"
        if part.bits.dtype != np.uint8:
            raise CodesFileError(f"{where}/bits must be uint8, one bit (0 or 1) per column, got {part.bits.dtype}")
        validate_bits(part.bits, f"{where}/bits")
        n = len(part.bits)
        for key in ("labels", "index"):
            values = getattr(part, key)
            if values.shape != (n,) or not np.issubdtype(values.dtype, np.integer):
                raise CodesFileError(f"{where}/{key} must be integers of shape ({n},), got {values.dtype} {values.shape}")
        if part.features is not None and (part.features.ndim != 2 or len(part.features) != n):
            raise CodesFileError(f"{where}/features must be (n, d) with n = {n}, got {part.features.shape}")
    if codes.query.bits.shape[1] != codes.database.bits.shape[1]:
        raise CodesFileError(
            f"{path}: query and database codes differ in length "
            f"({codes.query.bits.shape[1]} vs {codes.database.bits.shape[1]} bits)"
        )
    shared = np.intersect1d(codes.query.index, codes.database.index)
    if len(shared) and not allow_overlap:
        raise CodesFileError(
            f"{path}: {len(shared)} query images are also in the database (pool index {shared[0]}, ...); "
            "scoring them would count each query as its own match (evaluate --allow-overlap if that is meant)"
        )


def _plain(value):
    """h5py returns numpy scalars and bytes; give callers plain Python values."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
