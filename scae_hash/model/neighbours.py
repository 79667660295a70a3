"""Neighbour positives for the metric loss, mined without labels.

Two augmented views of one image teach invariance to the augmentation only; on MNIST that
left the codes below ITQ. The nearest neighbours of an image in PCA space are another view
that shares its content far more often than chance (measured on the training set: 95 % of
the 10 nearest neighbours share the class on MNIST, 80 % on Fashion-MNIST, 43 % on
CIFAR-10, against 10 % for a random image), so pairing each image with a random one of its
k neighbours gives the contrastive loss semantic positives at no labelling cost.

Once the model has learned something, its own features may find purer neighbours than PCA
pixels: ``RemineNeighbours`` re-mines them from the model's features every few epochs.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import keras
import numpy as np
from sklearn.decomposition import PCA

from scae_hash.atomic import atomic_path
from scae_hash.model.resume import EpochData, epoch_rng

PCA_DIMENSIONS = 64


def mine_neighbours(images: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Indices (n, k) of each image's k nearest other images, by cosine in PCA space."""
    flat = images.reshape(len(images), -1)
    dimensions = min(PCA_DIMENSIONS, *flat.shape)
    projected = PCA(dimensions, svd_solver="randomized", random_state=seed).fit_transform(flat - flat.mean(axis=0))
    return nearest_by_cosine(projected, k)


def nearest_by_cosine(vectors: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of each row's k most cosine-similar other rows (exact search)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, neighbours = index.search(vectors, k + 1)
    return _drop_self(neighbours)


def _drop_self(neighbours: np.ndarray) -> np.ndarray:
    """Remove each row's own index (usually first, but exact duplicates may come before it)."""
    n, width = neighbours.shape
    is_self = neighbours == np.arange(n)[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # self not found among ties: drop the farthest
    return neighbours[~is_self].reshape(n, width - 1)


class NeighbourPairs(EpochData):
    """Batches of (images, one random neighbour of each); each epoch's order and partners
    depend only on (seed, epoch), so a resumed run sees the same pairs."""

    def __init__(self, images: np.ndarray, neighbours: np.ndarray, batch_size: int, seed: int, **kwargs) -> None:
        self.images, self.neighbours = images, neighbours
        super().__init__(len(images), batch_size, seed, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.choice = epoch_rng(self.seed, epoch, 2).integers(0, self.neighbours.shape[1], self.n)

    def __getitem__(self, batch: int):
        rows = self.rows(batch)
        partners = self.neighbours[rows, self.choice[rows]]
        return ((self.images[rows], self.images[partners]),)


class RemineNeighbours(keras.callbacks.Callback):
    """Every ``every`` epochs, replace ``pairs``' neighbours by the nearest images in the
    model's current feature space (inference mode: no augmentation).

    Mining happens at the start of epochs ``every, 2 * every, ...``. The mined neighbours are
    kept in ``state_file`` (beside the stage's backup), so a run resumed between two minings
    continues with the same neighbours; without that file it re-mines from the restored weights.
    """

    def __init__(self, pairs: NeighbourPairs, k: int, every: int, batch_size: int = 1024,
                 state_file: Path | None = None) -> None:
        super().__init__()
        self.pairs, self.k, self.every, self.batch_size, self.state_file = pairs, k, every, batch_size, state_file
        self.started = False

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        first_epoch_of_this_fit, self.started = not self.started, True
        if epoch < self.every or not (first_epoch_of_this_fit or epoch % self.every == 0):
            return
        if epoch % self.every and self.state_file is not None and self.state_file.is_file():
            self.pairs.neighbours = np.load(self.state_file)
            return
        features = self.model.predict(self.pairs.images, batch_size=self.batch_size, verbose=0)["features"]
        self.pairs.neighbours = nearest_by_cosine(np.asarray(features), self.k)
        if self.state_file is not None:
            with atomic_path(self.state_file) as temporary:
                np.save(temporary, self.pairs.neighbours)
