"""IDX files, the format of MNIST and Fashion-MNIST: gzip or plain, each header checked against
the file's size, so that a wrong or cut file is an error rather than shifted pixels."""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from scae_hash.data.dataset import READ_ERRORS, Pool, join_parts
from scae_hash.errors import DataError

# IDX header: two zero bytes, a type code, the number of dimensions, then a big-endian uint32
# per dimension.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_file_names(prefix: str) -> tuple[str, str]:
    """The standard (images, labels) file names of one part, e.g. 'train' or 't10k'."""
    return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


IDX_PARTS = ("train", "t10k")  # a data set's parts, in pool order
IDX_FILES = tuple(name for prefix in IDX_PARTS for name in idx_file_names(prefix))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file, gzip or plain (told apart by content), checking header against size.

    The array is a read-only view of the decompressed bytes, which saves a copy of the data.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except READ_ERRORS as error:
        raise DataError(f"{path}: cannot read IDX file ({error})") from error
    return _parse_idx(content, path)


def _parse_idx(content: bytes, path: Path) -> np.ndarray:
    """Check the magic number, dimensions and data size; a mismatch means a wrong or cut file."""
    magic = content[:4]
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES or magic[3] == 0:
        raise DataError(f"{path}: not an IDX file (magic number {magic.hex() or 'missing'})")
    dtype, n_dims = np.dtype(_IDX_DTYPES[magic[2]]), magic[3]
    header_size = 4 + 4 * n_dims
    if len(content) < header_size:
        raise DataError(f"{path}: IDX header cut short")
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", count=n_dims, offset=4))
    expected_size = header_size + dtype.itemsize * int(np.prod(shape))
    if len(content) != expected_size:
        raise DataError(
            f"{path}: IDX header says {shape} ({expected_size} bytes), "
            f"file holds {len(content)} bytes"
        )
    return np.frombuffer(content, dtype, offset=header_size).reshape(shape)


def load_idx_folder(folder: str | os.PathLike, prefixes: Sequence[str] = IDX_PARTS) -> Pool:
    """Images (n, h, w, 1) uint8 and labels int64 of the parts named by `prefixes`, in that order.

    Each file may also be stored uncompressed, without the `.gz` ending.
    """
    parts = [_read_idx_part(Path(folder), prefix) for prefix in prefixes]
    return join_parts(*parts)


def has_idx_files(folder: Path) -> bool:
    """Whether every file of IDX_FILES is in the folder, compressed or not."""
    return all(_idx_file(folder, name) is not None for name in IDX_FILES)


def _read_idx_part(folder: Path, prefix: str) -> Pool:
    """One part's images and labels, checked to match each other."""
    images_name, labels_name = idx_file_names(prefix)
    images = read_idx(_existing_idx_file(folder, images_name))
    labels = read_idx(_existing_idx_file(folder, labels_name))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{folder}: {prefix} images {images.shape} do not match labels {labels.shape}"
        )
    return images, labels


def _existing_idx_file(folder: Path, name: str) -> Path:
    found = _idx_file(folder, name)
    if found is None:
        raise DataError(f"{folder}: missing {name}")
    return found


def _idx_file(folder: Path, name: str) -> Path | None:
    """The gzip file, or else its uncompressed twin, or None."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None
