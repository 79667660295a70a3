"""The validation road: choosing a config is an experiment too, so it takes the same runner as
the test rows, on the validation split of the protocol (queries drawn from the training set
with the split seed + 1, against the rest of it), and its rows go to a file of their own.

``ValidationCurve`` is the per-epoch view of the same split: a Keras callback that, after every
fine-tuning epoch, scores the validation queries with the model's features (cosine), with ITQ
fitted on those features, and with the current hash head's codes, and puts the three mAPs
into the epoch's logs (so the stage's history CSV gets them as columns). It never reads the
test queries: the validation queries and their database both come from the training set.
"""

from __future__ import annotations

import sys

import keras
import numpy as np

from scae_hash.data import Dataset
from scae_hash.hashers.shallow import ITQ
from scae_hash.metrics import evaluate_codes, evaluate_features
from scae_hash.protocol import split_for

INFERENCE_BATCH = 1024


class ValidationCurve(keras.callbacks.Callback):
    """After each epoch of a model that outputs ``features`` and ``codes``, adds
    ``val_map_features``, ``val_map_itq`` and ``val_map_codes`` to the epoch's logs.

    ``adds_to_logs`` asks the fine-tuning stage to run it before its history logger, so the
    logger sees the new keys. Other stages (pretraining blocks, the head stage) are skipped.
    """

    adds_to_logs = True

    def __init__(self, dataset: Dataset, n_bits: int, seed: int, split_seed: int = 0, progress: bool = True) -> None:
        super().__init__()
        split = split_for("validation", dataset.labels, split_seed)
        self.query, self.database = dataset.as_float(split.query), dataset.as_float(split.database)
        self.query_labels, self.database_labels = dataset.labels[split.query], dataset.labels[split.database]
        self.n_bits, self.seed, self.progress = n_bits, seed, progress
        self.curve: list[dict] = []

    def _outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = self.model.predict(images, batch_size=INFERENCE_BATCH, verbose=0)
        return np.asarray(outputs["features"], dtype=np.float32), np.asarray(outputs["codes"]) > 0

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if not hasattr(self.model, "hash_head") or not hasattr(self.model, "encoder"):
            return
        query_features, query_bits = self._outputs(self.query)
        database_features, database_bits = self._outputs(self.database)
        labels = (self.query_labels, self.database_labels)
        itq = ITQ(self.n_bits, self.seed).fit(database_features)
        point = {
            "val_map_features": evaluate_features(query_features, database_features, *labels).map,
            "val_map_itq": evaluate_codes(itq.encode(query_features), itq.encode(database_features), *labels).map,
            "val_map_codes": evaluate_codes(query_bits.astype(np.uint8), database_bits.astype(np.uint8), *labels).map,
        }
        point = {key: round(float(value), 4) for key, value in point.items()}
        if logs is not None:
            logs.update(point)
        self.curve.append({"epoch": epoch + 1, **point})
        if self.progress:
            print(f"[scae-hash] validation after epoch {epoch + 1}: {point}", file=sys.stderr, flush=True)
