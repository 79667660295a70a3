"""Callbacks shared by every training stage: a CSV history and a resumable backup.

Each stage (``pretrain_block1``, ..., ``finetune_64``) keeps ``history_<stage>.csv`` and a
``backup/<stage>`` folder in the run folder. The backup (weights, optimizer state, epoch
counter) is written atomically after every epoch, so a killed run (even ``kill -9``)
restarted with ``resume=True`` continues from the last finished epoch of that stage; the CSV
is then appended to, not rewritten (see ``scae_hash.model.resume``).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
from pathlib import Path

import keras

from scae_hash.model.resume import AtomicBackupAndRestore, ResumableCSVLogger


def stage_callbacks(
    run_dir: Path | None, stage: str, *, resume: bool
) -> list[keras.callbacks.Callback]:
    """History and backup callbacks for one stage; a fresh (non-resumed) stage drops any
    stale backup so that it really starts from epoch 0."""
    if run_dir is None:
        return []
    run_dir.mkdir(parents=True, exist_ok=True)
    backup_dir = run_dir / "backup" / stage
    if not resume and backup_dir.exists():
        shutil.rmtree(backup_dir)
    history = run_dir / f"history_{stage}.csv"
    backup = AtomicBackupAndRestore(backup_dir)
    return [backup, ResumableCSVLogger(history, backup, append=resume and history.exists())]


def cosine_schedule(learning_rate: float, epochs: int) -> keras.callbacks.Callback:
    """Per-epoch cosine decay; keyed on the epoch number, so it survives a resume."""

    def rate(epoch: int) -> float:
        return learning_rate * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))

    return keras.callbacks.LearningRateScheduler(rate)


def fit_verbosity(progress: bool) -> int:
    """A progress bar on a terminal, one line per epoch in a log, nothing when quiet."""
    if not progress:
        return 0
    return 1 if sys.stderr.isatty() else 2


def progress_on_stderr() -> contextlib.AbstractContextManager:
    """Keras prints training progress on stdout; keep stdout for results (e.g. ``--json``)."""
    return contextlib.redirect_stdout(sys.stderr)


def announce(progress: bool, message: str) -> None:
    if progress:
        print(f"[scae-hash] {message}", file=sys.stderr, flush=True)
