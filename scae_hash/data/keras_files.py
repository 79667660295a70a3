"""The files `keras.datasets` leaves in its cache (mnist.npz, cifar-10-batches-py/), read without
importing Keras, which is slow to import, and without letting a pickle run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from scae_hash.data.dataset import READ_ERRORS, Pool, class_major_pool, join_parts
from scae_hash.errors import DataError

CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"


def load_keras_npz(path: str | os.PathLike) -> Pool:
    """Images (n, h, w, 1) and int64 labels from a Keras `mnist.npz`: train, then test."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            train = (stored["x_train"], stored["y_train"])
            test = (stored["x_test"], stored["y_test"])
    except (*READ_ERRORS, KeyError, ValueError) as error:
        raise DataError(f"{path}: not a Keras mnist.npz ({error})") from error
    return join_parts(train, test)


def load_cifar_batches(folder: str | os.PathLike) -> Pool:
    """Images (n, 32, 32, 3) and labels from the pickled CIFAR-10 batches, in the JPEG copy's order.

    That is data_batch_1..5 then test_batch, each part stably sorted by class.
    """
    folder = Path(folder)
    train = join_parts(*(_read_cifar_batch(folder / name) for name in CIFAR_TRAIN_BATCHES))
    return class_major_pool(train, _read_cifar_batch(folder / CIFAR_TEST_BATCH))


class _NumpyArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, so that a data file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),  # numpy < 2, as in the original files
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a data file")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> Pool:
    """One batch: each row holds 3,072 bytes, channel-major (3, 32, 32)."""
    try:
        with path.open("rb") as file:
            batch = _NumpyArrayUnpickler(file, encoding="bytes").load()
        rows = np.asarray(batch[b"data"], dtype=np.uint8)
        return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(batch[b"labels"])
    except (*READ_ERRORS, pickle.UnpicklingError, LookupError, TypeError, ValueError) as error:
        raise DataError(f"{path}: not a CIFAR-10 batch ({error})") from error
