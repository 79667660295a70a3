"""What makes a resumed stage train exactly like an uninterrupted one, and fail in one line.

Keras' ``BackupAndRestore`` restores the weights, the optimizer state and the epoch counter,
but not the rest of a run's randomness: ``fit(shuffle=True)`` and a NumPy generator advanced
epoch by epoch restart from their first epoch's order, and the augmenter's ``SeedGenerator``
state is not part of the saved weights. Here every epoch's randomness is a pure function of
(seed, epoch): :class:`ShuffledImages` and ``NeighbourPairs`` draw their order from it, and
:class:`EpochSeeds` sets both the data's epoch and every ``SeedGenerator`` at the start of
each epoch. :class:`AtomicBackupAndRestore` writes its backup so that a kill at any moment
leaves a consistent one; :class:`ResumableCSVLogger` drops a history's torn last line and
the rows of epochs that are about to run again; :class:`StopOnNaN` ends a diverging stage
at its first non-finite batch loss.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import shutil
from pathlib import Path

import keras
import numpy as np

from scae_hash.atomic import atomic_path_staged, write_text
from scae_hash.errors import ScaeHashError


class ResumeError(ScaeHashError):
    """A run's backup cannot be used to resume it."""


class DivergedError(ScaeHashError):
    """A training stage's loss became NaN or infinite."""


def epoch_rng(seed: int, epoch: int, *salt: int) -> np.random.Generator:
    """The generator of one epoch: the same for a resumed run as for an uninterrupted one."""
    return np.random.default_rng([seed, epoch, *salt])


class EpochData(keras.utils.PyDataset):
    """A PyDataset whose batches depend only on (seed, epoch, batch): ``set_epoch`` draws the
    epoch's randomness, ``on_epoch_end`` moves to the next epoch (and :class:`EpochSeeds` sets
    the epoch explicitly, which is what a resumed fit needs)."""

    def __init__(self, n: int, batch_size: int, seed: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = epoch_rng(self.seed, epoch).permutation(self.n)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def rows(self, batch: int) -> np.ndarray:
        return self.order[batch * self.batch_size : (batch + 1) * self.batch_size]

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)


class ShuffledImages(EpochData):
    """``fit(images, shuffle=True)`` with an order that a resumed run reproduces."""

    def __init__(self, images: np.ndarray, batch_size: int, seed: int, **kwargs) -> None:
        self.images = images
        super().__init__(len(images), batch_size, seed, **kwargs)

    def __getitem__(self, batch: int):
        return (self.images[self.rows(batch)],)


class EpochSeeds(keras.callbacks.Callback):
    """At each epoch's start, set the data's epoch and reseed every ``SeedGenerator`` of the
    model (augmentation, dropout) from (seed, epoch): their state is not in the backup. Python's
    ``random``, which Keras uses to shuffle a PyDataset's batches under ``fit(shuffle=True)``,
    is reseeded too."""

    def __init__(self, seed: int, data: EpochData | None = None) -> None:
        super().__init__()
        self.seed, self.data = seed, data

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        if self.data is not None:
            self.data.set_epoch(epoch)
        states = [v for v in self.model.variables if v.name == "seed_generator_state"]
        python_seed, *seeds = epoch_rng(self.seed, epoch, 1).integers(0, 2**31, 1 + len(states))
        random.seed(int(python_seed))
        for state, seed in zip(states, seeds):
            state.assign(np.array([seed, 0], dtype=keras.backend.standardize_dtype(state.dtype)))


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose backup survives a kill at any moment.

    Keras overwrites ``latest.weights.h5`` in place and then the epoch file, so a kill can
    leave a torn weights file, or the weights of epoch n beside the epoch number n - 1. Here
    each epoch's weights go to their own file, written atomically; the metadata, written
    atomically after them, names that file and is the commit point. A backup that cannot be
    read is refused in one line naming it. The backup is kept after the fit (the caller drops
    it with :func:`drop_backup` once the stage's result is saved), so a kill between the end
    of the fit and that save resumes without retraining.
    """

    def __init__(self, backup_dir: str | Path) -> None:
        super().__init__(str(backup_dir), delete_checkpoint=False)
        self.folder = Path(backup_dir)
        self.metadata_file = self.folder / "training_metadata.json"
        self.initial_epoch = 0

    def on_train_begin(self, logs=None) -> None:
        if not self.metadata_file.is_file():
            return
        try:
            metadata = json.loads(self.metadata_file.read_text())
            # a backup written by Keras' own BackupAndRestore has no "weights" key
            epoch, weights = int(metadata["epoch"]), self.folder / metadata.get("weights", "latest.weights.h5")
            if self.model.optimizer is not None and not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(weights)
        except Exception as error:  # any damage to a backup: one line, never a traceback
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ResumeError(
                f"cannot resume from the backup in {self.folder} ({reason}); delete that folder to restart this stage"
            ) from None
        self.initial_epoch = self.model._initial_epoch = epoch

    def _save_model(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = self.folder / f"epoch{self._current_epoch}.weights.h5"
        with atomic_path_staged(weights) as temporary:
            self.model.save_weights(temporary, overwrite=True)
        write_text(self.metadata_file, json.dumps({"epoch": self._current_epoch, "weights": weights.name}))
        for stale in self.folder.glob("epoch*.weights.h5"):
            if stale != weights:
                stale.unlink(missing_ok=True)


def drop_backup(run_dir: Path | None, stage: str) -> None:
    """Remove a stage's backup once what the stage made (cache, model file) is saved."""
    if run_dir is not None:
        shutil.rmtree(run_dir / "backup" / stage, ignore_errors=True)


class ResumableCSVLogger(keras.callbacks.CSVLogger):
    """A per-stage history that a resumed stage continues: before appending, a killed run's
    torn last line and the rows of the epochs about to be trained again are dropped."""

    def __init__(self, filename: str | Path, backup: AtomicBackupAndRestore, append: bool) -> None:
        super().__init__(str(filename), append=append)
        self.path, self.backup = Path(filename), backup

    def on_train_begin(self, logs=None) -> None:
        if self.append and self.path.is_file():
            write_text(self.path, kept_history(self.path.read_text(errors="replace"), self.backup.initial_epoch))
        super().on_train_begin(logs)


def kept_history(text: str, next_epoch: int) -> str:
    """The header and the complete rows of epochs before ``next_epoch`` of a CSV history."""
    lines = text.splitlines(keepends=True)
    if not lines or not lines[-1].endswith("\n"):
        lines = lines[:-1]  # torn by a kill mid-write
    if not lines:
        return ""
    header = next(csv.reader(io.StringIO(lines[0])))
    kept = [lines[0]]
    for line in lines[1:]:
        row = next(csv.reader(io.StringIO(line)), [])
        if len(row) == len(header) and row[0].isdigit() and int(row[0]) < next_epoch:
            kept.append(line)
    return "".join(kept)


class StopOnNaN(keras.callbacks.Callback):
    """End a stage at its first batch with a non-finite loss, naming the stage and epoch
    (a diverging run would otherwise train on NaN and fail later, far from the cause)."""

    def __init__(self, stage: str, setting: str) -> None:
        super().__init__()
        self.stage, self.setting, self.epoch = stage, setting, 0

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise DivergedError(
                f"{self.stage} diverged: the loss became {float(loss)} at epoch {self.epoch + 1}, "
                f"batch {batch + 1}; lower {self.setting}"
            )
