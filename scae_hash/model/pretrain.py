"""Greedy layer-wise pretraining of the stacked conv-AE blocks.

Block 1 learns to reconstruct the image; block k learns to reconstruct the output of blocks
1..k-1, which stay frozen while it trains. Each finished block's weights are saved in a
cache folder keyed by everything pretraining depends on (data, seed, block architecture,
pretraining schedule) but not the bit count, so the runs for 16, 32, 48 and 64 bits
pretrain once.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from scae_hash.config import SCAEConfig
from scae_hash.model.blocks import ConvAEBlocks
from scae_hash.model.resume import EpochSeeds, ShuffledImages, StopOnNaN, drop_backup
from scae_hash.model.stages import announce, progress_on_stderr, fit_verbosity, stage_callbacks


class BlockReconstructor(keras.Model):
    """Trains block k (encoder + decoder) on the output of the frozen blocks before it."""

    def __init__(self, blocks: ConvAEBlocks, k: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frozen = blocks.encoders[: k - 1]
        self.block_encoder = blocks.encoders[k - 1]
        self.block_decoder = blocks.decoders[k - 1]
        self.built = True  # every block was built with its shapes by ConvAEBlocks

    def call(self, images):
        target = images
        for encoder in self.frozen:
            target = encoder(target, training=False)
        return {"target": target, "reconstruction": self.block_decoder(self.block_encoder(target))}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        target = ops.stop_gradient(y_pred["target"])
        return ops.mean(ops.square(target - y_pred["reconstruction"]))


def pretraining_key(config: SCAEConfig, seed: int, images: np.ndarray) -> str:
    """Hash of what the pretrained blocks depend on; the bit count is deliberately absent."""
    relevant = {
        "dataset": config.dataset,
        "blocks": [config.model.block_channels, config.model.kernel_size, config.model.convs_per_block],
        "pretrain": [
            config.pretrain.epochs_per_block,
            config.pretrain.batch_size,
            config.pretrain.learning_rate,
        ],
        "seed": seed,
        "data": [list(images.shape), hashlib.blake2b(np.ascontiguousarray(images).data).hexdigest()],
        "backend": keras.backend.backend(),
    }
    return hashlib.blake2b(json.dumps(relevant).encode(), digest_size=8).hexdigest()


def pretrain_blocks(
    blocks: ConvAEBlocks,
    images: np.ndarray,
    config: SCAEConfig,
    *,
    seed: int,
    cache_dir: Path,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: tuple[keras.callbacks.Callback, ...] = (),
) -> dict[str, float]:
    """Pretrain (or load from ``cache_dir``) every block in turn; returns seconds per block."""
    settings = config.pretrain
    cache_dir.mkdir(parents=True, exist_ok=True)
    seconds = {}
    for k in range(1, len(blocks) + 1):
        stage = f"pretrain_block{k}"
        if blocks.has_saved_block(k, cache_dir):
            blocks.load_block(k, cache_dir)
            announce(progress, f"{stage}: reusing cached weights from {cache_dir}")
            continue
        announce(progress, f"{stage}/{len(blocks)}: {settings.epochs_per_block} epoch(s)")
        started = time.perf_counter()
        keras.utils.set_random_seed(seed + k)
        for encoder in blocks.encoders[: k - 1]:
            encoder.trainable = False
        trainer = BlockReconstructor(blocks, k, name=stage)
        trainer.compile(optimizer=keras.optimizers.Adam(settings.learning_rate))
        try:
            with progress_on_stderr():
                batches = ShuffledImages(images, settings.batch_size, seed + k)
                trainer.fit(
                    batches,
                    epochs=settings.epochs_per_block,
                    shuffle=False,  # the batches shuffle themselves, per (seed, epoch)
                    verbose=fit_verbosity(progress),
                    callbacks=[*stage_callbacks(run_dir, stage, resume=resume), EpochSeeds(seed + k, batches),
                               StopOnNaN(stage, "pretrain.learning_rate"), *callbacks],
                )
        finally:
            for encoder in blocks.encoders[: k - 1]:
                encoder.trainable = True
        blocks.save_block(k, cache_dir)
        drop_backup(run_dir, stage)
        seconds[stage] = time.perf_counter() - started
    return seconds
