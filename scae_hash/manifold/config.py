"""The SCAE-manifold's config: the thesis model's autoencoder sections (``model``, ``pretrain``)
plus the graph it learns and how. A config file says ``method: scae-manifold``; the thesis'
SCAE-hash configs stay as they are."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scae_hash.config import ModelConfig, PretrainConfig, SCAEConfig, build_section
from scae_hash.config_files import read_mapping
from scae_hash.constants import IMAGE_SHAPES, MAX_BITS, MIN_BITS
from scae_hash.errors import ConfigError

METHOD = "scae-manifold"


@dataclass
class GraphConfig:
    """The neighbourhood graph and its UMAP layout: built on PCA of the pixels, or of patch
    k-means features (``kmeans``: Coates and Ng's single-layer features, for colour images
    whose pixel neighbours are poor)."""

    source: Literal["pixels", "kmeans"] = "pixels"
    pca_dim: int = 50
    n_components: int = 16
    n_neighbors: int = 15
    min_dist: float = 0.0


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 256
    learning_rate: float = 1e-3


@dataclass
class ManifoldLossConfig:
    """Weights (0 switches a term off): the layout regression (UMAP's landmark term), UMAP's
    cross-entropy on sampled graph edges with ``negatives`` random pairs each, and the
    autoencoder's reconstruction."""

    layout: float = 1.0
    graph: float = 0.1
    negatives: int = 5
    reconstruction: float = 1.0


@dataclass
class ManifoldAugmentConfig:
    max_shift: float = 2.0
    horizontal_flip: bool = False
    color_jitter: float = 0.0


@dataclass
class ManifoldConfig:
    method: str = METHOD
    dataset: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: ManifoldLossConfig = field(default_factory=ManifoldLossConfig)
    augment: ManifoldAugmentConfig = field(default_factory=ManifoldAugmentConfig)
    bits: list[int] = field(default_factory=lambda: [64])
    seed: int = 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return IMAGE_SHAPES[self.dataset]

    def autoencoder_config(self) -> SCAEConfig:
        """The sections greedy pretraining reads, as the thesis model's config type."""
        return SCAEConfig(dataset=self.dataset, model=self.model, pretrain=self.pretrain)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def network_key(self) -> dict[str, Any]:
        """Everything the trained network depends on: all but the code lengths."""
        return {key: value for key, value in self.to_dict().items() if key != "bits"}


def load_manifold_config(path: str | Path, overrides: list[str] | None = None) -> ManifoldConfig:
    source = str(path)
    config = build_section(ManifoldConfig, read_mapping(path, overrides), source)
    problems = [
        (config.method == METHOD, f"'method' must be {METHOD}"),
        (config.dataset in IMAGE_SHAPES, f"'dataset' must be one of {', '.join(IMAGE_SHAPES)}"),
        (all(MIN_BITS <= b <= MAX_BITS for b in config.bits), f"'bits' must lie in {MIN_BITS}..{MAX_BITS}"),
        (config.graph.n_neighbors >= 2, "'graph.n_neighbors' must be at least 2"),
        (1 <= config.graph.n_components <= 64, "'graph.n_components' must be in 1..64"),
        (config.graph.pca_dim >= config.graph.n_components, "'graph.pca_dim' must be >= graph.n_components"),
        (config.train.epochs >= 1 and config.train.batch_size >= 2, "'train' needs epochs >= 1 and batch_size >= 2"),
        (config.train.learning_rate > 0, "'train.learning_rate' must be positive"),
        (min(config.loss.layout, config.loss.graph, config.loss.reconstruction) >= 0, "loss weights must be >= 0"),
        (config.loss.layout + config.loss.graph > 0, "one of loss.layout and loss.graph must be positive"),
        (config.loss.negatives >= 1, "'loss.negatives' must be at least 1"),
    ]
    for ok, message in problems:
        if not ok:
            raise ConfigError(f"{source}: {message}")
    return config
