"""A SUPERVISED metric network: the reference ceiling of the deep-metric comparison.

Everything else in this project learns without labels. This hasher trains a small conv encoder
with the class labels (supervised contrastive loss, Khosla et al., NeurIPS 2020: in each batch
every image pulls towards all images of its class and away from the rest), so that its rows show
how far label-free hashing is from what labels buy. Its features are the unit-length
embeddings (ranked by cosine); its codes come from ITQ fitted on the training embeddings, so it
also has a Hamming row. Rows of this method carry ``supervision: supervised``.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from scae_hash.errors import ConfigError, DataError
from scae_hash.hashers.base import Hasher
from scae_hash.hashers.shallow import ITQ

INFERENCE_BATCH = 1024


class SupervisedContrastiveLoss(keras.losses.Loss):
    """SupCon over one batch of unit embeddings: the mean log-probability of picking a same-label
    image among all others, per anchor (an anchor with no same-label partner adds 0)."""

    def __init__(self, temperature: float = 0.1, name: str = "supervised_contrastive") -> None:
        super().__init__(name=name)
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        labels = ops.reshape(y_true, (-1,))
        logits = ops.matmul(y_pred, ops.transpose(y_pred)) / self.temperature
        is_self = ops.eye(ops.shape(y_pred)[0], dtype=logits.dtype)
        logits = logits - 1e9 * is_self  # an image is not its own candidate
        positives = ops.cast(ops.equal(labels[:, None], labels[None, :]), logits.dtype) * (1.0 - is_self)
        log_prob = logits - ops.logsumexp(logits, axis=1, keepdims=True)
        n_positives = ops.maximum(ops.sum(positives, axis=1), 1.0)
        return -ops.sum(positives * log_prob, axis=1) / n_positives


def build_encoder(image_shape: Sequence[int], channels: Sequence[int], embedding_dim: int) -> keras.Model:
    """Conv-ReLU-max-pool blocks, a hidden dense layer, and a unit-length embedding."""
    inputs = keras.Input(tuple(image_shape))
    hidden = inputs
    for width in channels:
        hidden = layers.Conv2D(width, 3, padding="same", activation="relu")(hidden)
        hidden = layers.MaxPooling2D()(hidden)
    hidden = layers.Flatten()(hidden)
    hidden = layers.Dense(4 * embedding_dim, activation="relu")(hidden)
    outputs = layers.UnitNormalization()(layers.Dense(embedding_dim)(hidden))
    return keras.Model(inputs, outputs, name="siamese_encoder")


class SiameseHasher(Hasher):
    """Supervised contrastive conv encoder (features) with an ITQ hash head (codes).

    Trained with labels: ``fit(x, labels=...)``. Cheap by design (a few epochs of a narrow
    network), since it is a reference point, not the thesis model.
    """

    name = "siamese-supervised"
    supervised = True

    def __init__(
        self,
        n_bits: int,
        seed: int = 0,
        *,
        channels: Sequence[int] = (16, 32, 64),
        embedding_dim: int | None = None,
        epochs: int = 3,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        temperature: float = 0.1,
        progress: bool = False,
    ) -> None:
        super().__init__(n_bits, seed)
        self.embedding_dim = int(embedding_dim or max(128, self.n_bits))
        if self.embedding_dim < self.n_bits:
            raise ConfigError(f"{self.name}: embedding_dim {self.embedding_dim} is below the {self.n_bits} bits "
                              "that ITQ takes from it")
        self.channels = tuple(int(width) for width in channels)
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.learning_rate, self.temperature = float(learning_rate), float(temperature)
        self.progress = progress

    def fit(self, x: np.ndarray, labels: np.ndarray | None = None) -> "SiameseHasher":
        """Train the encoder on (image, label) batches, then fit ITQ on the training embeddings."""
        if labels is None:
            raise ConfigError(f"{self.name} is supervised: fit(x, labels=...) needs the training labels")
        x = self._check_images(x)
        labels = np.asarray(labels)
        if labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{self.name}: labels must be integers of shape ({len(x)},), got "
                            f"{labels.dtype} {labels.shape}")
        keras.utils.set_random_seed(self.seed)
        self.model_ = build_encoder(x.shape[1:], self.channels, self.embedding_dim)
        self.model_.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                            loss=SupervisedContrastiveLoss(self.temperature))
        self.model_.fit(x, labels.astype(np.int32), batch_size=self.batch_size, epochs=self.epochs,
                        shuffle=True, verbose=2 if self.progress else 0)
        self.itq_ = ITQ(self.n_bits, self.seed).fit(self.features(x))
        return self

    def features(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise RuntimeError(f"{self.name} is not fitted: call fit(x, labels=...) first")
        return self.model_.predict(self._check_images(x), batch_size=INFERENCE_BATCH, verbose=0).astype(np.float32)

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.itq_.encode(self.features(x))

    def encode_with_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = self.features(x)
        return self.itq_.encode(features), features

    @staticmethod
    def _check_images(x: np.ndarray) -> np.ndarray:
        if np.ndim(x) != 4:
            raise DataError(f"expected images of shape (n, height, width, channels), got {np.shape(x)}")
        return np.asarray(x, dtype=np.float32)
