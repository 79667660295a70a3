"""The SCAE hasher: greedy-pretrained, multi-scale stacked conv autoencoder + tanh hash head."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from scae_hash.atomic import atomic_path
from scae_hash.config import SCAEConfig
from scae_hash.devices import use_local_devices
from scae_hash.errors import ConfigError, DataError
from scae_hash.hashers.base import Hasher
from scae_hash.hashers.itq_head import set_head_from_itq
from scae_hash.model.finetune import finetune
from scae_hash.model.hashing_model import HashingModel
from scae_hash.model.head_stage import reset_head, train_hash_head
from scae_hash.model.pretrain import pretrain_blocks, pretraining_key
from scae_hash.model.resume import drop_backup
from scae_hash.model.terms import HEAD_TERMS
from scae_hash.checks import check_neighbours, load_keras_file
from scae_hash.model.stages import announce

INFERENCE_BATCH = 1024


class SCAEHasher(Hasher):
    """Pretrains the conv-AE blocks greedily (cached across bit lengths), fine-tunes the
    whole model with the joint loss, and hashes images as ``codes > 0``.

    ``run_dir`` receives the per-stage history CSVs, resumable backups, the pretraining
    cache (``pretrained/<key>``, unless ``pretrain.cache_dir`` is set) and
    ``model_<bits>.keras``; use one ``run_dir`` for all bit lengths to share pretraining.
    """

    name = "scae"

    def __init__(
        self,
        n_bits: int,
        seed: int = 0,
        *,
        config: SCAEConfig | None,
        run_dir: Path | None = None,
        resume: bool = False,
        progress: bool = True,
        callbacks: Sequence[keras.callbacks.Callback] = (),
    ) -> None:
        super().__init__(n_bits, seed)
        self.config = config
        self.callbacks = tuple(callbacks)  # join every stage of every fit (e.g. a ValidationCurve)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.resume = resume
        self.progress = progress

    @property
    def model_path(self) -> Path | None:
        return self.run_dir / f"model_{self.n_bits}.keras" if self.run_dir is not None else None

    def fit(
        self, x: np.ndarray, *, callbacks: Sequence[keras.callbacks.Callback] = ()
    ) -> "SCAEHasher":
        """Pretrain then fine-tune on unlabelled images; ``callbacks`` join every stage.

        With ``resume=True`` a finished model in ``run_dir`` is loaded instead of retrained,
        and an interrupted stage continues from its last saved epoch.
        """
        x = self._check_images(x)
        callbacks = (*self.callbacks, *callbacks)
        use_local_devices([self.config.pretrain.batch_size, self.config.finetune.batch_size])
        check_neighbours(self.config, len(x))
        if self.resume and self.model_path is not None and self.model_path.is_file():
            announce(self.progress, f"resume: loading finished {self.model_path}")
            self.model_ = self._load_model(self.model_path)
            return self
        keras.utils.set_random_seed(self.seed)
        model = HashingModel(self.n_bits, seed=self.seed, **self.config.model_hyperparameters())
        self.timings_ = {}
        if self.config.pretrain.enabled:
            with self._pretrain_cache(x) as cache_dir:
                self.timings_.update(
                    pretrain_blocks(
                        model.blocks,
                        x,
                        self.config,
                        seed=self.seed,
                        cache_dir=Path(cache_dir),
                        run_dir=self.run_dir,
                        resume=self.resume,
                        progress=self.progress,
                        callbacks=tuple(callbacks),
                    )
                )
            # fine-tuning changes the shared blocks: keep them as pretraining left them (figures)
            self.pretrained_blocks_ = [layer.get_weights() for layer in (*model.blocks.encoders, *model.blocks.decoders)]
        self.timings_["finetune"] = finetune(
            model,
            x,
            self.config,
            seed=self.seed,
            run_dir=self.run_dir,
            resume=self.resume,
            progress=self.progress,
            callbacks=tuple(callbacks),
        )
        self.trained_head_ = model.hash_head.get_weights()  # the head the decoder was trained with (figures)
        self.model_ = model
        self.refit_head(x, callbacks=callbacks)
        if self.model_path is not None:
            self.save(self.model_path)
            for stage in (f"finetune_{self.n_bits}", f"head_{self.n_bits}"):
                drop_backup(self.run_dir, stage)
        return self

    def refit_head(self, x: np.ndarray, *, callbacks: Sequence[keras.callbacks.Callback] = ()) -> "SCAEHasher":
        """Set the fitted model's hash head as ``finetune.hash_head`` says, on the exported
        features of ``x``: ITQ, and/or the head stage (``trained`` with ``head.epochs`` > 0
        trains it from fresh weights, i.e. from scratch). Also how a head variant of one trained
        representation is made without retraining it."""
        model, kind, head = self.model_, self.config.finetune.hash_head, self.config.head
        head_stage = kind != "itq" and head.epochs > 0
        if kind == "trained" and not head_stage:
            return self
        features = np.asarray(model.predict(x, batch_size=INFERENCE_BATCH, verbose=0)["features"], dtype=np.float32)
        if kind in ("itq", "itq_finetuned"):
            announce(self.progress, f"hash head: ITQ on the learned features of {len(x)} images")
            set_head_from_itq(model.hash_head, features, self.n_bits, self.seed)
        else:
            keras.utils.set_random_seed(self.seed)
            reset_head(model.hash_head)
        if head_stage:
            weights = {term: getattr(head, term) for term in HEAD_TERMS}
            self.timings_ = getattr(self, "timings_", {})  # a loaded model has no other stages
            self.timings_["head"] = train_hash_head(
                model.hash_head, features, epochs=head.epochs, batch_size=head.batch_size,
                learning_rate=head.learning_rate, term_weights=weights, seed=self.seed, neighbours=head.neighbours,
                stage=f"head_{self.n_bits}", run_dir=self.run_dir, resume=self.resume,
                progress=self.progress, callbacks=tuple(callbacks),
            )
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        return (self._predict(x)["codes"] > 0).astype(np.uint8)

    def features(self, x: np.ndarray) -> np.ndarray:
        return self._predict(x)["features"].astype(np.float32)

    def encode_with_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = self._predict(x)
        return (outputs["codes"] > 0).astype(np.uint8), outputs["features"].astype(np.float32)

    def save(self, path: str | Path) -> None:
        """Save the fine-tuned model (with its config, bits and seed) as a ``.keras`` file."""
        with atomic_path(path) as temporary:  # a kill mid-save leaves the previous model intact
            self.model_.save(temporary)

    @classmethod
    def load(cls, path: str | Path, *, progress: bool = True) -> "SCAEHasher":
        """Rebuild a fitted hasher from a ``.keras`` file written by :meth:`save`."""
        model = cls._load_model(Path(path))
        try:  # the experiment config is provenance only: a renamed key must not block loading
            config = SCAEConfig.from_dict(model.metadata, source=str(path))
        except ConfigError:
            config = None
        hasher = cls(model.n_bits, model.seed, config=config, progress=progress)
        hasher.model_ = model
        return hasher

    @staticmethod
    def _load_model(path: Path) -> HashingModel:
        model = load_keras_file(path)
        if not isinstance(model, HashingModel):
            raise ConfigError(f"{path} is not an SCAE hashing model")
        return model

    def _predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if not hasattr(self, "model_"):
            raise RuntimeError("SCAEHasher is not fitted: call fit() or load() first")
        return self.model_.predict(self._check_images(x), batch_size=INFERENCE_BATCH, verbose=0)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The input size: the fitted model's own, else the config's."""
        return self.model_.image_shape if hasattr(self, "model_") else self.config.image_shape

    def _check_images(self, x: np.ndarray) -> np.ndarray:
        expected = self.image_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise DataError(
                f"the model expects images of shape (n, {', '.join(map(str, expected))}), "
                f"got {x.shape}"
            )
        return np.asarray(x, dtype=np.float32)

    def _pretrain_cache(self, x: np.ndarray):
        """The cache folder for this config/seed/data (a temporary one without a run_dir)."""
        key = pretraining_key(self.config, self.seed, x)
        if self.config.pretrain.cache_dir is not None:
            return contextlib.nullcontext(Path(self.config.pretrain.cache_dir) / key)
        if self.run_dir is not None:
            return contextlib.nullcontext(self.run_dir / "pretrained" / key)
        return tempfile.TemporaryDirectory()
