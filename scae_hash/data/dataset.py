"""The in-memory form every data set takes, and the names a data set goes by.

Every data set becomes a `Dataset`: uint8 images (n, h, w, c) and int64 labels in a fixed pool
order, because docs/protocol.md's splits are indices into that pool. The pool is the training part
followed by the test part:

- MNIST, Fashion-MNIST: the 60,000 train images in file order, then the 10,000 t10k images.
- CIFAR-10: the 50,000 train images, then the 10,000 test images, each part ordered by class id
  and, within a class, by file name (JPEG copy) or by original position (pickled batches, which
  are stably sorted by class to match). The labels array, hence every split, is then the same
  for every CIFAR-10 source; `Dataset.source` records which copy was read.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scae_hash.constants import DATASETS
from scae_hash.errors import DataError

ALIASES = {
    "fashion-mnist": "fashion",
    "fashion_mnist": "fashion",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# The canonical label ids 0-9. This order is also the sorted order, which is how image folders
# number their classes, so a CIFAR-10 folder tree needs no special case.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CLASS_NAMES = {"mnist": MNIST_CLASSES, "fashion": FASHION_CLASSES, "cifar10": CIFAR10_CLASSES}

# What a cut or corrupt data file raises while read; every reader turns these into a DataError.
READ_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile)

Pool = tuple[np.ndarray, np.ndarray]  # (images, labels) of a pool, or of one part of it


@dataclass(frozen=True)
class Dataset:
    """One data set's whole pool, in the fixed order that split indices refer to."""

    name: str
    images: np.ndarray  # uint8 (n, h, w, c), c = 1 or 3
    labels: np.ndarray  # int64 (n,)
    class_names: tuple[str, ...]
    source: str  # where it came from (path or "keras.datasets")

    def __post_init__(self) -> None:
        """Reject malformed arrays here, so that no model or metric has to guess their layout."""
        images, labels = self.images, self.labels
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(
                f"{self.source}: images must be uint8 (n, h, w, 1|3), "
                f"got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.int64 or labels.shape != images.shape[:1]:
            raise DataError(
                f"{self.source}: labels must be int64 ({len(images)},), "
                f"got {labels.dtype} {labels.shape}"
            )
        if labels.size and not 0 <= labels.min() <= labels.max() < len(self.class_names):
            raise DataError(f"{self.source}: labels outside 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return len(self.labels)

    def as_float(self, indices: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """Float32 pixels in [0, 1] of the selected rows only: all of CIFAR-10 would take 737 MB."""
        selected = self.images if indices is None else self.images[np.asarray(indices)]
        pixels = selected.astype(np.float32)
        pixels /= 255
        return pixels


def canonical_name(name: str) -> str:
    """Map a name or alias to one of DATASETS, so that configs and the CLI may use either."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise DataError(
            f"unknown data set {name!r}; valid names: {', '.join(DATASETS)} "
            f"(aliases: {', '.join(ALIASES)})"
        )
    return key


def join_parts(*parts: Pool) -> Pool:
    """Concatenate (images, labels) parts into the pool form: (n, h, w, c) uint8, (n,) int64."""
    images = np.concatenate([np.asarray(images, dtype=np.uint8) for images, _ in parts])
    labels = np.concatenate([np.asarray(labels).reshape(-1) for _, labels in parts])
    return (images[..., np.newaxis] if images.ndim == 3 else images), labels.astype(np.int64)


def class_major_pool(train: Pool, test: Pool) -> Pool:
    """Join train and test, each stably sorted by class: the CIFAR-10 JPEG copy's order.

    With it the labels array, and so every split, is the same whichever CIFAR-10 copy is read.
    """
    images, labels = join_parts(train, test)
    part_ids = np.repeat([0, 1], [len(train[1]), len(test[1])])
    order = np.lexsort((labels, part_ids))  # stable; the last key is the primary one
    return images[order], labels[order]
