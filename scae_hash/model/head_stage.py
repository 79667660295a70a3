"""The hash-head stage: after the representation is trained, the hash head alone is trained on
the frozen exported features with the hash losses, as the thesis fine-tunes its hash layer.

The features are computed once (inference mode, no augmentation), so an epoch costs a few
matrix products. The similarity term asks the codes to keep the cosine similarities of the
features centred with their training mean (ITQ's view of them: uncentred ReLU features are
all alike by cosine), while quantization pushes the relaxed codes to +-1 and balance makes
each bit fire on half of every batch. The neighbour term (``head.neighbour``) pairs each
feature vector with one of its nearest neighbours by cosine and pulls their relaxed codes
together: the top of a Hamming ranking is what mAP rewards most.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from scae_hash.model import losses
from scae_hash.model.neighbours import NeighbourPairs, nearest_by_cosine
from scae_hash.model.resume import EpochSeeds, ShuffledImages, StopOnNaN
from scae_hash.model.stages import announce, fit_verbosity, progress_on_stderr, stage_callbacks
from scae_hash.model.terms import HEAD_TERMS
from scae_hash.model.tracked_terms import TrackedTerms


class HeadTrainer(TrackedTerms, keras.Model):
    """Trains ``head`` (a ``Dense + tanh`` layer shared with the hashing model) on features."""

    def __init__(self, head: keras.layers.Layer, term_weights: dict[str, float], centre: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        self.head = head
        self.term_weights = {term: float(term_weights.get(term, 0.0)) for term in HEAD_TERMS}
        self.centre = ops.convert_to_tensor(np.asarray(centre, dtype="float32"))
        self.trackers = {term: keras.metrics.Mean(name=f"{term}_loss") for term, w in self.term_weights.items() if w > 0}
        self.built = True

    def call(self, features):
        if isinstance(features, (tuple, list)):  # (features, a neighbour's features)
            features = ops.concatenate(features, axis=0)
        return self.head(features)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        codes, pair = y_pred, isinstance(x, (tuple, list))
        x = ops.concatenate(x, axis=0) if pair else x
        n = ops.shape(codes)[0] // 2
        term_functions = {
            "quantization": lambda: losses.quantization_loss(codes),
            "balance": lambda: losses.balance_loss(codes),
            "decorrelation": lambda: losses.decorrelation_loss(codes),
            "similarity": lambda: losses.similarity_preserving_loss(codes, x - self.centre),
            "neighbour": lambda: losses.neighbour_agreement_loss(codes[:n], codes[n:]),
        }
        return self.weighted_total({term: term_functions[term]() for term in self.trackers})


def reset_head(head: keras.layers.Layer) -> None:
    """Fresh (Glorot, zero-bias) weights for a built Dense head: a head trained from scratch."""
    kernel, bias = head.get_weights()
    initial = keras.initializers.GlorotUniform()(kernel.shape)
    head.set_weights([keras.ops.convert_to_numpy(initial), np.zeros_like(bias)])


def train_hash_head(
    head: keras.layers.Layer,
    features: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    term_weights: dict[str, float],
    seed: int,
    neighbours: int = 10,
    stage: str,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: tuple[keras.callbacks.Callback, ...] = (),
) -> float:
    """Train ``head`` for ``epochs`` on fixed ``features`` (n, dim); returns wall seconds."""
    announce(progress, f"{stage}: {epochs} epoch(s) of the hash head on {len(features)} feature vectors")
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    features = np.asarray(features, dtype=np.float32)
    trainer = HeadTrainer(head, term_weights, features.mean(axis=0), name=stage)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate))
    if term_weights.get("neighbour", 0.0) > 0:
        announce(progress, f"{stage}: mining {neighbours} neighbours per feature vector (cosine)")
        batches = NeighbourPairs(features, nearest_by_cosine(features, neighbours), batch_size, seed)
    else:
        batches = ShuffledImages(features, batch_size, seed)
    with progress_on_stderr():
        trainer.fit(
            batches,
            epochs=epochs,
            verbose=fit_verbosity(progress),
            callbacks=[*stage_callbacks(run_dir, stage, resume=resume), EpochSeeds(seed, batches),
                       StopOnNaN(stage, "head.learning_rate"), *callbacks],
        )
    return time.perf_counter() - started
