"""SCAE-manifold: the thesis' stacked conv autoencoder trained on the data's neighbourhood
graph (see `scae_hash.manifold.network`), a method of its own beside SCAE-hash.

Fit: the graph and UMAP layout of the training images (cached by content, shared with the
manifold baseline), greedy pretraining of the conv-AE blocks (cached), the graph-trained
network (cached per config and seed, so every code length of a seed shares one network), and
ITQ on random Fourier features of the network's layout of the training images. A cached
network is saved with its layout frame, so a fit that reuses it needs no graph (whose
vectors alone take about 90 s on CIFAR-10). Encode: the network, then that binarization: no
neighbour search at query time.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from scae_hash.atomic import atomic_path_staged
from scae_hash.devices import use_local_devices
from scae_hash.hashers.base import Hasher, flatten
from scae_hash.hashers.manifold import default_cache_dir
from scae_hash.manifold.binarize import FourierITQ
from scae_hash.manifold.config import ManifoldConfig
from scae_hash.manifold.embedding import Layout, UmapSettings, check_graph_input, fit_layout
from scae_hash.manifold.graph_vectors import graph_vectors
from scae_hash.manifold.network import GraphAutoencoder, GraphEdges, LayoutFrame
from scae_hash.model.blocks import ConvAEBlocks
from scae_hash.model.pretrain import pretrain_blocks, pretraining_key
from scae_hash.model.resume import EpochSeeds, StopOnNaN, drop_backup
from scae_hash.model.stages import announce, cosine_schedule, fit_verbosity, progress_on_stderr, stage_callbacks

INFERENCE_BATCH = 1024
STAGE = "manifold"


class SCAEManifoldHasher(Hasher):
    name = "scae-manifold"

    def __init__(self, n_bits: int, seed: int = 0, *, config: ManifoldConfig, run_dir: Path | None = None,
                 resume: bool = False, progress: bool = True,
                 callbacks: Sequence[keras.callbacks.Callback] = ()) -> None:
        super().__init__(n_bits, seed)
        self.config, self.resume, self.progress = config, resume, progress
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks = tuple(callbacks)

    def fit(self, x: np.ndarray) -> "SCAEManifoldHasher":
        check_graph_input(flatten(x), self.config.graph.n_neighbors, self.name)
        use_local_devices([self.config.pretrain.batch_size, self.config.train.batch_size])
        self.network_ = self._trained_network(x)
        self.binarizer_ = FourierITQ(self.n_bits, self.seed).fit(self.features(x))
        return self

    def _trained_network(self, x: np.ndarray) -> GraphAutoencoder:
        """The network trained on the graph of ``x``, or the one a fit of another code length
        left in ``run_dir``: that one needs only its layout frame, not the graph."""
        weights_file = frame_file = None
        if self.run_dir is not None:
            key = self._network_key(x)
            weights_file, frame_file = (self.run_dir / f"network-{key}.{kind}" for kind in ("weights.h5", "frame.npz"))
        if weights_file is not None and weights_file.is_file():
            if not frame_file.is_file():  # a network saved before its frame was
                LayoutFrame.of(self._layout(x)).save(frame_file)
            announce(self.progress, f"{STAGE}: reusing the trained network {weights_file}")
            network = self._network(LayoutFrame.load(frame_file))
            network.load_weights(weights_file)
            return network
        layout = self._layout(x)
        frame = LayoutFrame.of(layout)
        network = self._network(frame)
        started = time.perf_counter()
        if self.config.pretrain.enabled:
            autoencoder = self.config.autoencoder_config()
            cache = (self.run_dir or Path(".")) / "pretrained" / pretraining_key(autoencoder, self.seed, x)
            pretrain_blocks(network.blocks, x, autoencoder, seed=self.seed, cache_dir=cache, run_dir=self.run_dir,
                            resume=self.resume, progress=self.progress)
        settings = self.config.train
        announce(self.progress, f"{STAGE}: {settings.epochs} epochs on the graph's edges")
        network.compile(optimizer=keras.optimizers.Adam(settings.learning_rate))
        edges = GraphEdges(x, layout.embedding, layout.heads, layout.tails, layout.weights,
                           settings.batch_size, self.seed)
        with progress_on_stderr():
            network.fit(edges, epochs=settings.epochs, shuffle=False, verbose=fit_verbosity(self.progress),
                        callbacks=[*stage_callbacks(self.run_dir, STAGE, resume=self.resume),
                                   EpochSeeds(self.seed, edges), cosine_schedule(settings.learning_rate, settings.epochs),
                                   StopOnNaN(STAGE, "train.learning_rate"), *self.callbacks])
        if weights_file is not None:
            frame.save(frame_file)
            with atomic_path_staged(weights_file) as temporary:
                network.save_weights(temporary)
            drop_backup(self.run_dir, STAGE)
        self.train_seconds_ = time.perf_counter() - started
        return network

    def _layout(self, x: np.ndarray) -> Layout:
        """UMAP's layout of the graph vectors of ``x`` (cached by content)."""
        graph = self.config.graph
        announce(self.progress, f"graph: {graph.n_neighbors}-neighbour UMAP layout of {graph.source} "
                 f"({len(x)} images; cached after the first fit)")
        vectors = graph_vectors(x, graph.source, graph.pca_dim, self.seed)
        return fit_layout(vectors, UmapSettings(graph.n_components, graph.n_neighbors, graph.min_dist, self.seed),
                          cache_dir=default_cache_dir(), progress=False)

    def _network(self, frame: LayoutFrame) -> GraphAutoencoder:
        """A fresh, built network, its initial weights drawn from the seed."""
        keras.utils.set_random_seed(self.seed)
        model = self.config.model
        blocks = ConvAEBlocks(self.config.image_shape, model.block_channels, model.kernel_size, model.convs_per_block)
        network = GraphAutoencoder(blocks, self.config, frame=frame, seed=self.seed)
        network.build((None, *self.config.image_shape))
        return network

    def _network_key(self, x: np.ndarray) -> str:
        described = {"config": self.config.network_key(), "seed": self.seed, "backend": keras.backend.backend(),
                     "data": [list(x.shape), hashlib.blake2b(np.ascontiguousarray(x).data).hexdigest()]}
        return hashlib.blake2b(json.dumps(described, sort_keys=True).encode(), digest_size=8).hexdigest()

    def features(self, x: np.ndarray) -> np.ndarray:
        """The network's layout coordinates of each image."""
        outputs = self.network_.predict(x, batch_size=INFERENCE_BATCH, verbose=0)
        return np.asarray(outputs["layout"], dtype=np.float32)

    def encode(self, x: np.ndarray) -> np.ndarray:
        return self.binarizer_.bits(self.features(x))

    def encode_with_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = self.features(x)
        return self.binarizer_.bits(features), features
