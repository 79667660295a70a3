"""Typed SCAE experiment configs, validated before any training starts.

A config file is a mapping with the sections below; every key is optional except
``dataset`` (mnist, fashion or cifar10). Ablations and command-line overrides are patches of
that mapping (``extends``, ``key.path=value``: :mod:`scae_hash.config_files`).

Every problem is reported as one :class:`ConfigError` line naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scae_hash.config_files import read_mapping
from scae_hash.constants import IMAGE_SHAPES, MAX_BITS, MIN_BITS
from scae_hash.errors import ConfigError
from scae_hash.model.terms import CODE_TERMS, HEAD_TERMS, LOSS_TERMS


@dataclass
class ModelConfig:
    """The stacked encoder: each block halves the feature map (its last conv has stride 2)."""

    block_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    convs_per_block: int = 1
    kernel_size: int = 3
    scales: list[float] = field(default_factory=lambda: [1.0, 0.5])
    fused_depths: list[int] = field(default_factory=lambda: [2, 3])
    pool_grid: int = 2
    feature_dim: int = 256
    decoder_input: Literal["codes", "features"] = "codes"
    # The continuous features the fitted model exports (re-ranking, the ITQ head): the
    # "projection" the contrastive loss acts on, or the "hidden" layer before it (SimCLR keeps
    # the layer before its projection head; measured better on Fashion-MNIST). Training is the
    # same either way; a "trained" head on "hidden" is trained in the head stage (head.epochs).
    representation: Literal["projection", "hidden"] = "projection"
    # > 0: append the cluster head's assignment probabilities (times this factor) to the
    # L2-normalised exported features, so the hash head sees the groups (needs loss.cluster).
    cluster_export: float = 0.0


@dataclass
class PretrainConfig:
    enabled: bool = True
    epochs_per_block: int = 1
    batch_size: int = 256
    learning_rate: float = 1e-3
    cache_dir: str | None = None


@dataclass
class FinetuneConfig:
    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    schedule: Literal["constant", "cosine"] = "cosine"
    # After the last epoch: "trained" keeps the jointly trained head (with head.epochs > 0:
    # trains a fresh head for head.epochs on the frozen features), "itq" sets it from ITQ of
    # the learned features
    # (scae_hash.hashers.itq_head), "itq_finetuned" sets it from ITQ, then trains it for head.epochs.
    hash_head: Literal["trained", "itq", "itq_finetuned"] = "trained"


@dataclass
class HeadConfig:
    """The hash-head stage: the head alone trained on the frozen exported features, with the
    quantization, bit-balance, decorrelation, similarity and neighbour-agreement terms (0
    switches one off; the neighbour term pairs each vector with one of its ``neighbours``
    nearest by cosine)."""

    epochs: int = 0
    batch_size: int = 256
    learning_rate: float = 1e-3
    quantization: float = 0.1
    balance: float = 0.1
    decorrelation: float = 0.0
    similarity: float = 1.0
    neighbour: float = 0.0
    neighbours: int = 10


@dataclass
class LossConfig:
    """Weights of the fine-tuning loss terms; 0 switches a term off."""

    reconstruction: float = 1.0
    quantization: float = 0.1
    balance: float = 0.1
    decorrelation: float = 0.0
    contrastive: float = 1.0
    similarity: float = 1.0
    temperature: float = 0.5
    # Positive of each image for the metric terms: a random one of its `neighbours` nearest
    # images in PCA space (mined without labels, see scae_hash.model.neighbours); 0 means a
    # second augmented view of the image itself (SimCLR).
    neighbours: int = 0
    # With neighbours: re-mine them in the model's own feature space every this many epochs
    # (0: PCA neighbours throughout).
    remine_every: int = 0
    # SCAN-style cluster term: weight, number of clusters, and weight of the balance (entropy)
    # part (scae_hash.model.losses.cluster_consistency_loss).
    cluster: float = 0.0
    clusters: int = 10
    cluster_entropy: float = 5.0
    # SCAN's self-labelling: weight, and the assignment above which a cluster is a pseudo-label.
    self_label: float = 0.0
    cluster_confidence: float = 0.99
    # true: the cluster terms train the cluster head only (on the evolving features, no
    # gradient into the representation), as SCAN's head on frozen features.
    cluster_detach: bool = False


@dataclass
class AugmentConfig:
    """Random views for the joint strategy (vectorised, see ``scae_hash.model.augment``)."""

    enabled: bool = True
    max_shift: float = 3.0
    zoom: float = 0.0
    pixel_drop: float = 0.1
    horizontal_flip: bool = False
    color_jitter: float = 0.0
    grayscale: float = 0.0


@dataclass
class SCAEConfig:
    dataset: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    bits: list[int] = field(default_factory=lambda: [16, 32, 48, 64])
    seed: int = 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return IMAGE_SHAPES[self.dataset]

    def model_hyperparameters(self) -> dict[str, Any]:
        """The keyword arguments of ``HashingModel`` (besides bits and seed) for this config:
        the model keeps only these, not the experiment schema."""
        model, loss, augment = self.model, self.loss, self.augment
        return {
            "image_shape": self.image_shape,
            "block_channels": model.block_channels,
            "convs_per_block": model.convs_per_block,
            "kernel_size": model.kernel_size,
            "scales": model.scales,
            "fused_depths": model.fused_depths,
            "pool_grid": model.pool_grid,
            "feature_dim": model.feature_dim,
            "decoder_input": model.decoder_input,
            "representation": model.representation,
            "loss_weights": {term: getattr(loss, term) for term in LOSS_TERMS},
            "temperature": loss.temperature,
            "clusters": loss.clusters if loss.cluster > 0 else 0,
            "cluster_entropy": loss.cluster_entropy,
            "cluster_confidence": loss.cluster_confidence,
            "cluster_detach": loss.cluster_detach,
            "cluster_export": model.cluster_export,
            "augment": {key: value for key, value in dataclasses.asdict(augment).items() if key != "enabled"}
            if augment.enabled
            else None,
            "metadata": self.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-ready), for provenance and for saving with a model."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, mapping: dict[str, Any], source: str = "config") -> "SCAEConfig":
        """Build and validate a config; raises ConfigError naming ``source`` and the key."""
        config = _build(cls, mapping, source, prefix="")
        _validate(config, source)
        return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> SCAEConfig:
    """Read a YAML config (following ``extends``), apply ``key.path=value`` overrides, validate."""
    mapping = read_mapping(path, overrides)
    if mapping.get("method", "scae") != "scae":
        raise ConfigError(f"{path}: a config of method {mapping['method']!r}, not of the thesis' SCAE-hash")
    mapping.pop("method", None)
    return SCAEConfig.from_dict(mapping, source=str(path))


def config_method(path: str | Path) -> str:
    """The method a config file trains: its ``method`` key, ``scae`` (SCAE-hash) when absent."""
    method = read_mapping(path).get("method", "scae")
    if not isinstance(method, str):
        raise ConfigError(f"{path}: 'method' must be a name, got {method!r}")
    return method


def build_section(cls: type, mapping: Any, source: str) -> Any:
    """A config dataclass from a mapping, every problem one ConfigError line (for other methods' configs)."""
    return _build(cls, mapping, source, prefix="")


def _build(cls: type, mapping: Any, source: str, prefix: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source}: '{where}' must be a mapping, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0]}' in {where} (known: {', '.join(known)})"
        )
    values = {}
    for name, value in mapping.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, source, prefix=f"{prefix}{name}.")
        else:
            values[name] = _coerce(value, hint, f"{source}: '{prefix}{name}'")
    return cls(**values)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a simple type hint; ints are accepted where floats are expected."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where} must be a non-empty list, got {value!r}")
        return [_coerce(item, args[0], where) for item in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{where} must be {hint.__name__}, got {value!r}")
    return value


def _validate(config: SCAEConfig, source: str) -> None:
    def fail(message: str) -> typing.NoReturn:
        raise ConfigError(f"{source}: {message}")

    if not config.dataset:
        fail(f"missing 'dataset' (one of {', '.join(IMAGE_SHAPES)})")
    if config.dataset not in IMAGE_SHAPES:
        fail(f"unknown data set 'dataset: {config.dataset}' (known: {', '.join(IMAGE_SHAPES)})")
    for bits in config.bits:
        if not MIN_BITS <= bits <= MAX_BITS:
            fail(f"'bits' must be in {MIN_BITS}..{MAX_BITS}, got {bits}")

    model = config.model
    for name in ("block_channels", "convs_per_block", "kernel_size", "pool_grid", "feature_dim"):
        values = getattr(model, name)
        if any(v < 1 for v in (values if isinstance(values, list) else [values])):
            fail(f"'model.{name}' must be positive, got {values}")
    depth = len(model.block_channels)
    for fused in model.fused_depths:
        if not 1 <= fused <= depth:
            fail(f"'model.fused_depths' entry {fused} is not a block depth in 1..{depth}")
    height, width, _ = config.image_shape
    for scale in model.scales:
        if not 0 < scale <= 1:
            fail(f"'model.scales' entry {scale} must be in (0, 1]")
        side = math.floor(min(height, width) * scale)
        if side < 2**depth:
            fail(
                f"'model.scales' entry {scale} shrinks {config.dataset}'s {height}x{width} "
                f"images to {side} px, too small for {depth} stride-2 blocks "
                f"(needs >= {2**depth} px to keep a feature map)"
            )

    head_stage = config.finetune.hash_head != "itq"
    if config.finetune.hash_head == "itq_finetuned" and config.head.epochs < 1:
        fail("'finetune.hash_head: itq_finetuned' needs 'head.epochs' >= 1")
    if config.finetune.hash_head == "trained" and config.head.epochs < 1:
        if model.representation == "hidden" or model.cluster_export > 0:
            fail("a 'trained' hash head on the hidden layer or with 'model.cluster_export' is trained in the "
                 "head stage: set 'head.epochs' >= 1")
    if head_stage and config.head.epochs > 0:
        head = config.head
        if head.batch_size < 2 or not head.learning_rate > 0:
            fail("'head.batch_size' must be >= 2 and 'head.learning_rate' > 0")
        if min(getattr(head, term) for term in HEAD_TERMS) < 0:
            fail("'head' loss weights must be >= 0")
        if head.neighbour > 0 and head.neighbours < 1:
            fail(f"'head.neighbours' must be >= 1 with the neighbour term on, got {head.neighbours}")
    if config.head.epochs < 0:
        fail("'head.epochs' must be >= 0")
    loss = config.loss
    if loss.cluster > 0 and loss.clusters < 2:
        fail(f"'loss.clusters' must be >= 2 with the cluster term on, got {loss.clusters}")
    if loss.self_label > 0 and loss.cluster <= 0:
        fail("'loss.self_label' needs the cluster head: set 'loss.cluster' > 0")
    if not 0 < loss.cluster_confidence < 1:
        fail(f"'loss.cluster_confidence' must be in (0, 1), got {loss.cluster_confidence}")
    if loss.cluster_entropy < 0:
        fail(f"'loss.cluster_entropy' must be >= 0, got {loss.cluster_entropy}")
    if model.cluster_export < 0:
        fail(f"'model.cluster_export' must be >= 0, got {model.cluster_export}")
    if model.cluster_export > 0:
        if loss.cluster <= 0:
            fail("'model.cluster_export' needs the cluster head: set 'loss.cluster' > 0")
        joint_code_terms = [t for t in CODE_TERMS if getattr(loss, t) > 0]
        if loss.reconstruction > 0 and model.decoder_input == "codes":
            joint_code_terms.append("reconstruction from codes")
        if joint_code_terms:
            fail("with 'model.cluster_export' the hash head reads more than the training features: switch off "
                 f"the joint code terms ({', '.join(joint_code_terms)}; 'model.decoder_input: features')")

    for section in ("pretrain", "finetune"):
        stage = getattr(config, section)
        epochs_name = "epochs_per_block" if section == "pretrain" else "epochs"
        if getattr(stage, epochs_name) < 0:
            fail(f"'{section}.{epochs_name}' must be >= 0")
        if stage.batch_size < 2:
            fail(f"'{section}.batch_size' must be >= 2 (in-batch losses need pairs)")
        if not stage.learning_rate > 0:
            fail(f"'{section}.learning_rate' must be > 0, got {stage.learning_rate}")

    weights = {term: getattr(config.loss, term) for term in LOSS_TERMS}
    for term, weight in weights.items():
        if weight < 0:
            fail(f"loss weight 'loss.{term}' must be >= 0, got {weight}")
    if not any(w > 0 for w in weights.values()):
        fail("every loss weight is 0: switch at least one 'loss' term on")
    if not config.loss.temperature > 0:
        fail(f"'loss.temperature' must be > 0, got {config.loss.temperature}")
    if config.loss.neighbours < 0:
        fail(f"'loss.neighbours' must be >= 0 (0: augmented views only), got {config.loss.neighbours}")
    if config.loss.remine_every < 0:
        fail(f"'loss.remine_every' must be >= 0 (0: never), got {config.loss.remine_every}")

    augment = config.augment
    for name in ("max_shift", "zoom", "color_jitter"):
        if getattr(augment, name) < 0:
            fail(f"'augment.{name}' must be >= 0")
    for name in ("pixel_drop", "grayscale"):
        if not 0 <= getattr(augment, name) < 1:
            fail(f"'augment.{name}' must be a probability in [0, 1)")
    if augment.zoom >= 1:
        fail(f"'augment.zoom' must be < 1, got {augment.zoom}")
