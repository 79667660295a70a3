"""The SCAE that learns the manifold: the thesis model's greedy-pretrained, multi-scale conv
autoencoder, with a low-dimensional head trained on the data's neighbourhood graph.

A batch is a set of graph edges (an image and a neighbour drawn in proportion to its
membership strength). Both ends pass, augmented, through the shared encoder; the loss is
UMAP's cross-entropy on the edges and random pairs, the regression of each image's head to its
place in UMAP's layout (the landmark term that fixes the global arrangement), and the
reconstruction of each view from the hidden layer. A new image is then encoded by the network
alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from scae_hash.atomic import atomic_path
from scae_hash.manifold.config import ManifoldConfig
from scae_hash.manifold.embedding import Layout
from scae_hash.manifold.graph_loss import umap_cross_entropy
from scae_hash.model.augment import ViewAugmenter
from scae_hash.model.blocks import ConvAEBlocks
from scae_hash.model.encoder import build_multiscale_encoder
from scae_hash.model.resume import EpochData, epoch_rng


@dataclass(frozen=True)
class LayoutFrame:
    """What the network keeps of UMAP's layout: the curve 1 / (1 + a d^(2b)) of the graph loss,
    and the layout's mean and scale, in which the head predicts standardised coordinates. Saved
    beside a trained network, it is all that a reused network needs of the graph."""

    a: float
    b: float
    mean: np.ndarray   # (n_components,) float32
    scale: np.ndarray  # (n_components,) float32

    @classmethod
    def of(cls, layout: Layout) -> "LayoutFrame":
        embedding = layout.embedding
        return cls(layout.a, layout.b, embedding.mean(axis=0), embedding.std(axis=0) + 1e-6)

    def save(self, path: Path) -> None:
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, a=self.a, b=self.b, mean=self.mean, scale=self.scale)

    @classmethod
    def load(cls, path: Path) -> "LayoutFrame":
        with np.load(path) as saved:
            return cls(float(saved["a"]), float(saved["b"]), saved["mean"], saved["scale"])


class GraphAutoencoder(keras.Model):
    """Image -> (hidden, layout coordinates); trained on (heads, tails, their layout targets)."""

    def __init__(self, blocks: ConvAEBlocks, config: ManifoldConfig, *, frame: LayoutFrame, seed: int,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        settings = config.model
        self.blocks = blocks  # for greedy pretraining, as the thesis model's
        self.encoder = build_multiscale_encoder(blocks, settings.scales, settings.fused_depths, settings.pool_grid)
        self.hidden = layers.Dense(settings.feature_dim, activation="relu", name="hidden")
        self.head = layers.Dense(config.graph.n_components, name="layout")
        height, width, channels = blocks.output_shape
        self.decoder = keras.Sequential([layers.Dense(height * width * channels, activation="relu"),
                                         layers.Reshape((height, width, channels)), *reversed(blocks.decoders)],
                                        name="decoder")
        augment = config.augment
        self.augmenter = ViewAugmenter(max_shift=augment.max_shift, horizontal_flip=augment.horizontal_flip,
                                       color_jitter=augment.color_jitter, seed=seed)
        self.weights_of_terms = config.loss
        self.a, self.b = float(frame.a), float(frame.b)
        # The head predicts standardised layout coordinates (a well-scaled regression); the
        # graph loss and the exported features are in UMAP's own units, where a and b hold.
        self.layout_mean = np.asarray(frame.mean, dtype="float32")
        self.layout_scale = np.asarray(frame.scale, dtype="float32")

    def build(self, input_shape=None) -> None:
        """Every layer from the encoder's known width (the blocks fix the image shape), the
        decoder too, although only the loss calls it: a reused network loads all its weights."""
        width = self.encoder.output.shape[-1]
        self.hidden.build((None, width))
        self.head.build((None, self.hidden.units))
        self.decoder.build((None, self.hidden.units))

    def call(self, inputs, training: bool = False):
        """Images -> hidden and layout; a training batch of edges (heads, tails, their
        targets) also returns the augmented views and targets the loss needs."""
        if isinstance(inputs, (tuple, list)):
            heads, tails, head_targets, tail_targets = inputs
            views = ops.concatenate([heads, tails], axis=0)
            views = self.augmenter(views) if training else views
            return {**self(views, training=training), "views": views,
                    "targets": ops.concatenate([head_targets, tail_targets], axis=0)}
        hidden = self.hidden(self.encoder(inputs, training=training))
        standardised = self.head(hidden)
        return {"hidden": hidden, "standardised": standardised,
                "layout": standardised * self.layout_scale + self.layout_mean}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        weights, total = self.weights_of_terms, 0.0
        if weights.layout > 0:
            targets = (y_pred["targets"] - self.layout_mean) / self.layout_scale
            total = total + weights.layout * ops.mean(ops.square(y_pred["standardised"] - targets))
        if weights.graph > 0:
            heads, tails = ops.split(y_pred["layout"], 2, axis=0)
            total = total + weights.graph * umap_cross_entropy(heads, tails, self.a, self.b, weights.negatives)
        if weights.reconstruction > 0:
            reconstruction = self.decoder(y_pred["hidden"])
            total = total + weights.reconstruction * ops.mean(ops.square(reconstruction - y_pred["views"]))
        return total


class GraphEdges(EpochData):
    """Batches of graph edges: heads in a random order, each with a tail drawn from its graph
    neighbours in proportion to membership strength; depends only on (seed, epoch). An epoch
    is n / 2 edges, so it passes as many images through the network as the data set holds."""

    def __init__(self, images: np.ndarray, targets: np.ndarray, heads: np.ndarray, tails: np.ndarray,
                 weights: np.ndarray, batch_size: int, seed: int, **kwargs) -> None:
        self.images, self.targets = images, targets
        order = np.lexsort((tails, heads))
        self.tails, weights = tails[order], weights[order].astype(np.float64)
        self.starts = np.searchsorted(heads[order], np.arange(len(images) + 1))
        self.cumulative = np.concatenate([[0.0], np.cumsum(weights)])
        super().__init__(len(images), batch_size, seed, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        low, high = self.cumulative[self.starts[:-1]], self.cumulative[self.starts[1:]]
        draw = low + epoch_rng(self.seed, epoch, 3).uniform(size=self.n) * (high - low)
        position = np.clip(np.searchsorted(self.cumulative, draw, side="right") - 1, self.starts[:-1],
                           np.maximum(self.starts[1:] - 1, self.starts[:-1]))
        has_edges = self.starts[1:] > self.starts[:-1]
        self.partner = np.where(has_edges, self.tails[np.minimum(position, len(self.tails) - 1)], np.arange(self.n))

    def __len__(self) -> int:
        return max(1, -(-self.n // (2 * self.batch_size)))

    def __getitem__(self, batch: int):
        rows = self.rows(batch)
        partners = self.partner[rows]
        return ((self.images[rows], self.images[partners], self.targets[rows], self.targets[partners]),)
