"""Fine-tuning: the whole stacked encoder, hash head and decoder trained on the joint loss."""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from scae_hash.config import SCAEConfig
from scae_hash.model.hashing_model import HashingModel
from scae_hash.model.neighbours import NeighbourPairs, RemineNeighbours, mine_neighbours
from scae_hash.model.resume import EpochSeeds, ShuffledImages, StopOnNaN
from scae_hash.model.stages import announce, progress_on_stderr, cosine_schedule, fit_verbosity, stage_callbacks


def finetune(
    model: HashingModel,
    images: np.ndarray,
    config: SCAEConfig,
    *,
    seed: int,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: tuple[keras.callbacks.Callback, ...] = (),
) -> float:
    """Train ``model`` for the configured fixed schedule (no selection on any score);
    returns the wall time in seconds."""
    settings = config.finetune
    stage = f"finetune_{model.n_bits}"
    announce(progress, f"{stage}: {settings.epochs} epoch(s) on {len(images)} images")
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate))
    extra = [cosine_schedule(settings.learning_rate, settings.epochs)] if settings.schedule == "cosine" else []
    if config.loss.neighbours > 0 and model.uses_two_views:
        announce(progress, f"{stage}: mining {config.loss.neighbours} neighbours per image (PCA + cosine)")
        neighbours = mine_neighbours(images, config.loss.neighbours, seed)
        batches = NeighbourPairs(images, neighbours, settings.batch_size, seed)
        if config.loss.remine_every > 0:
            state_file = run_dir / "backup" / stage / "neighbours.npy" if run_dir is not None else None
            extra.append(RemineNeighbours(batches, config.loss.neighbours, config.loss.remine_every, state_file=state_file))
    else:
        batches = ShuffledImages(images, settings.batch_size, seed)
    with progress_on_stderr():
        model.fit(
            batches,
            epochs=settings.epochs,
            shuffle=False,  # the batches shuffle themselves, per (seed, epoch)
            verbose=fit_verbosity(progress),
            # callbacks that add to an epoch's logs (a ValidationCurve) run before the history CSV
            callbacks=[*[c for c in callbacks if getattr(c, "adds_to_logs", False)],
                       *stage_callbacks(run_dir, stage, resume=resume), EpochSeeds(seed, batches),
                       StopOnNaN(stage, "finetune.learning_rate"), *extra,
                       *[c for c in callbacks if not getattr(c, "adds_to_logs", False)]],
        )
    return time.perf_counter() - started
