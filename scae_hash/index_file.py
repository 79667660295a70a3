"""Read an index file's fields, checking each one the loader uses, so that a damaged or altered
file is refused in one line naming it instead of failing later in a query (or serving a file
it names).

What is checked: every attribute (format_version, method, n_bits, seed, image_shape,
model_path, rerank_model_path, rerank_model_sha256, folders) has its type and range; the codes
are uint8 of the layout n_bits asks for; there are as many paths as codes; feature sets have a
row per code; a baseline's learned arrays are finite and encode a blank image into n_bits
bits (a state that belongs to another method, or lacks an array, fails there). The checks read
metadata and the hasher's arrays, never a feature set, so they cost nothing per image.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from scae_hash.constants import MAX_BITS, MIN_BITS
from scae_hash.errors import DataError, ScaeHashError
from scae_hash.hashers import BASELINES, Hasher, make_baseline
from scae_hash.images import display_path
from scae_hash.index import HammingIndex
from scae_hash.path_table import PathTable

FORMAT_VERSION = 2
MAX_IMAGE_SIDE = 4096  # as `index --size` allows (checks.MAX_IMAGE_SIDE)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CODE_ROWS = 1 << 16  # codes go into the index this many rows at a time: no whole second copy
_LEARNED_NAME = re.compile(r"[a-z][a-z0-9_]*[a-z0-9]_")  # Hasher.learned_state's attributes: mean_, rotation_


@dataclass
class IndexFields:
    """What an index file holds, checked (features stay on disk)."""

    method: str
    n_bits: int
    seed: int
    image_shape: tuple[int, int, int]
    codes: HammingIndex
    paths: PathTable
    hasher: Hasher | None  # a baseline's, restored; None for an SCAE model (loaded on first use)
    model_path: str | None
    rerank_model_path: str | None
    rerank_model_sha256: str | None
    folders: list[str] | None  # the indexed folders (files written before they were recorded: None)


def read_index_file(path: Path) -> IndexFields:
    """The checked fields of an index file (see the module docstring)."""
    try:
        with h5py.File(path, "r") as f:
            return _read(f, path)
    except ScaeHashError as error:
        raise DataError(f"{display_path(path)}: {error}; the file was damaged or altered") from None
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise DataError(f"{display_path(path)}: not an index written by `scae-hash index` ({error})") from None


def _read(f: h5py.File, path: Path) -> IndexFields:
    attrs = f.attrs
    _integer(attrs, "format_version", 1, FORMAT_VERSION, default=1)  # 1 differs only in how paths are stored
    method = _text(attrs, "method")
    n_bits = _integer(attrs, "n_bits", MIN_BITS, MAX_BITS)
    seed = _integer(attrs, "seed", 0, 2**32 - 1)
    shape = attrs["image_shape"]
    if (not isinstance(shape, np.ndarray) or shape.shape != (3,) or not np.issubdtype(shape.dtype, np.integer)
            or not (1 <= shape[:2]).all() or not (shape[:2] <= MAX_IMAGE_SIDE).all() or shape[2] not in (1, 3)):
        raise DataError(f"attribute 'image_shape' is {_show(shape)}, expected (height, width, 1 or 3) with sides "
                        f"in 1..{MAX_IMAGE_SIDE}")
    image_shape = tuple(int(side) for side in shape)
    model_path = _text(attrs, "model_path", optional=True)
    rerank_model_path = _text(attrs, "rerank_model_path", optional=True)
    rerank_sha = _text(attrs, "rerank_model_sha256", optional=True)
    if (rerank_model_path is None) != (rerank_sha is None) or rerank_sha is not None and not _SHA256.fullmatch(rerank_sha):
        raise DataError("attributes 'rerank_model_path' and 'rerank_model_sha256' must come together, the latter "
                        "a SHA-256 in hex")
    folders = None
    if "folders" in attrs:
        folders = [_text_value(value, "folders") for value in np.atleast_1d(attrs["folders"])]
        if not folders or not all(os.path.isabs(folder) for folder in folders):
            raise DataError(f"attribute 'folders' is {_show(attrs['folders'])}, expected absolute folder paths")

    code_size = -(-n_bits // 8)
    codes = _dataset(f, "packed_bits")
    if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != code_size:
        raise DataError(f"dataset 'packed_bits' is {codes.dtype} {codes.shape}, expected (n, {code_size}) uint8 "
                        f"for {n_bits}-bit codes")
    n = codes.shape[0]
    paths = _paths(_dataset(f, "paths"))
    if len(paths) != n:
        raise DataError(f"{n} codes but {len(paths)} paths")
    for name in ("features", "rerank_features"):
        if name in f:
            stored = _dataset(f, name)
            if stored.ndim != 2 or stored.shape[0] != n or not np.issubdtype(stored.dtype, np.floating):
                raise DataError(f"dataset {name!r} is {stored.dtype} {stored.shape}, expected ({n}, d) floats")
    if "rerank_features" in f and rerank_sha is None:
        raise DataError("dataset 'rerank_features' without the 'rerank_model_sha256' attribute of its model")

    hasher = None
    if model_path is None:
        if method not in BASELINES:
            raise DataError(f"attribute 'method' is {method!r}, expected one of {', '.join(BASELINES)} "
                            "(or a 'model_path')")
        hasher = _baseline(f, method, n_bits, seed, image_shape)
    index = HammingIndex(n_bits)
    for start in range(0, n, _CODE_ROWS):
        index.add_packed(codes[start:start + _CODE_ROWS])
    return IndexFields(method, n_bits, seed, image_shape, index, paths, hasher, model_path, rerank_model_path,
                       rerank_sha, folders)


def _baseline(f: h5py.File, method: str, n_bits: int, seed: int, image_shape: tuple[int, int, int]) -> Hasher:
    """The baseline restored from 'hasher_state', checked by encoding a blank image."""
    if not isinstance(f.get("hasher_state"), h5py.Group):
        raise DataError("group 'hasher_state' (a baseline's learned arrays) is missing")
    state = {}
    for key, stored in f["hasher_state"].items():
        if not _LEARNED_NAME.fullmatch(key):
            raise DataError(f"'hasher_state/{key}' is not the name of a learned array (like 'mean_')")
        if not isinstance(stored, h5py.Dataset) or not np.issubdtype(stored.dtype, np.number):
            raise DataError(f"'hasher_state/{key}' is not a numeric array")
        state[key] = stored[()]
        if not np.all(np.isfinite(state[key])):
            raise DataError(f"'hasher_state/{key}' holds values that are not finite")
    try:
        hasher = make_baseline(method, n_bits, seed).restore_state(state)
        bits = np.asarray(hasher.encode(np.zeros((1, *image_shape), np.float32)))
    except (AttributeError, KeyError, ValueError, TypeError, IndexError) as error:
        raise DataError(f"'hasher_state' is not the learned state of a {n_bits}-bit {method} hasher for "
                        f"{'x'.join(map(str, image_shape))} images ({type(error).__name__}: {error})") from None
    if bits.shape != (1, n_bits):
        raise DataError(f"'hasher_state' encodes {bits.shape[-1]}-bit codes, but 'n_bits' is {n_bits}")
    return hasher


def _paths(stored: h5py.Dataset) -> PathTable:
    if stored.dtype == np.uint8 and stored.ndim == 1:
        return PathTable(stored[()])
    if stored.ndim == 1 and stored.dtype.kind in "OSU":  # format 1: one string per path
        return PathTable.from_paths(os.fsdecode(path) if isinstance(path, bytes) else str(path)
                                    for path in stored[()])
    raise DataError(f"dataset 'paths' is {stored.dtype} {stored.shape}, expected NUL-joined path bytes (uint8)")


def _dataset(f: h5py.File, name: str) -> h5py.Dataset:
    stored = f.get(name)
    if not isinstance(stored, h5py.Dataset):
        raise DataError(f"dataset {name!r} is missing")
    return stored


def _integer(attrs, name: str, low: int, high: int, default: int | None = None) -> int:
    if name not in attrs and default is not None:
        return default
    value = attrs[name]
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not low <= value <= high:
        raise DataError(f"attribute {name!r} is {_show(value)}, expected an integer in {low}..{high}")
    return int(value)


def _text(attrs, name: str, optional: bool = False) -> str | None:
    if name not in attrs:
        if optional:
            return None
        raise DataError(f"attribute {name!r} is missing")
    return _text_value(attrs[name], name)


def _text_value(value, name: str) -> str:
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if not isinstance(value, str) or not value:
        raise DataError(f"attribute {name!r} is {_show(value)}, expected a non-empty string")
    return value


def _show(value) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 60 else text[:57] + "..."
