"""The fine-tuning model: multi-scale encoder -> features -> tanh hash head, plus a decoder.

Training follows the joint strategy: two random views of each batch go through the encoder
together (one view when every metric term is off); a contrastive loss acts on the continuous
features, an optional cluster term on a softmax cluster head, the hash losses on the relaxed
codes h, a similarity-preserving term makes the codes keep the features' neighbourhoods, and
the decoder reconstructs the clean image from the first view's codes (or features). All
terms live in ``compute_loss`` (no backend-specific ``train_step``) and each is tracked as a
metric, so ``CSVLogger`` writes one column per term and epoch. At inference the model maps
images to ``{"features", "codes"}``; bits are ``codes > 0``. The exported features are the
projection the metric terms shaped, or (``model.representation: hidden``) the layer before it,
which then also feeds the ITQ-set hash head.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers, ops

from scae_hash.model import losses
from scae_hash.model.augment import ViewAugmenter
from scae_hash.model.blocks import ConvAEBlocks
from scae_hash.model.encoder import build_multiscale_encoder
from scae_hash.model.terms import LOSS_TERMS
from scae_hash.model.tracked_terms import TrackedTerms


@keras.saving.register_keras_serializable(package="scae_hash")
class HashingModel(TrackedTerms, keras.Model):
    """Built from its own hyperparameters (architecture, loss weights, views), so a ``.keras``
    file loads whatever happens to the experiment config schema. ``metadata`` is carried
    along untouched (the experiment config that made the model, for provenance).
    ``blocks`` exposes the conv-AE blocks for greedy pretraining.

    With ``clusters`` > 0 a softmax cluster head reads the hidden layer and the ``cluster``
    term (SCAN) pulls an image and its positive into one cluster while keeping the clusters
    balanced, and the ``self_label`` term makes an image's confident cluster the label of its
    positive; ``cluster_export`` > 0 appends the assignment probabilities, times that
    factor, to the L2-normalised exported features (so the hash head sees the groups).
    """

    def __init__(
        self,
        n_bits: int,
        image_shape: tuple[int, int, int],
        *,
        block_channels: list[int],
        convs_per_block: int = 1,
        kernel_size: int = 3,
        scales: list[float] = (1.0,),
        fused_depths: list[int] = (1,),
        pool_grid: int = 2,
        feature_dim: int = 256,
        decoder_input: str = "codes",
        representation: str = "projection",
        loss_weights: dict[str, float] | None = None,
        temperature: float = 0.5,
        clusters: int = 0,
        cluster_entropy: float = 5.0,
        cluster_confidence: float = 0.99,
        cluster_export: float = 0.0,
        cluster_detach: bool = False,
        augment: dict[str, Any] | None = None,
        seed: int = 0,
        metadata: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.n_bits = int(n_bits)
        self.image_shape = tuple(int(side) for side in image_shape)
        self.hyperparameters = {
            "block_channels": [int(c) for c in block_channels],
            "convs_per_block": int(convs_per_block),
            "kernel_size": int(kernel_size),
            "scales": [float(s) for s in scales],
            "fused_depths": [int(d) for d in fused_depths],
            "pool_grid": int(pool_grid),
            "feature_dim": int(feature_dim),
            "decoder_input": decoder_input,
            "representation": representation,
            "loss_weights": {term: float((loss_weights or {}).get(term, 0.0)) for term in LOSS_TERMS},
            "temperature": float(temperature),
            "clusters": int(clusters),
            "cluster_entropy": float(cluster_entropy),
            "cluster_confidence": float(cluster_confidence),
            "cluster_export": float(cluster_export),
            "cluster_detach": bool(cluster_detach),
            "augment": dict(augment) if augment is not None else None,
        }
        self.seed = int(seed)
        self.metadata = metadata or {}
        self.term_weights = self.hyperparameters["loss_weights"]
        self.temperature = float(temperature)
        self.decoder_input = decoder_input
        self.representation = representation
        self.cluster_entropy = float(cluster_entropy)
        self.cluster_confidence = float(cluster_confidence)
        self.cluster_export = float(cluster_export)
        self.cluster_detach = bool(cluster_detach)
        # The metric terms compare two views; without them one view is enough.
        self.uses_two_views = any(self.term_weights[t] > 0 for t in ("contrastive", "similarity", "cluster", "self_label"))

        self.blocks = ConvAEBlocks(self.image_shape, block_channels, kernel_size, convs_per_block)
        self.encoder = build_multiscale_encoder(self.blocks, scales, fused_depths, pool_grid)
        self.feature_head = keras.Sequential(
            [
                layers.Dense(feature_dim, activation="relu", name="feature_hidden"),
                layers.Dense(feature_dim, name="features"),
            ],
            name="feature_head",
        )
        self.cluster_head = (
            layers.Dense(clusters, activation="softmax", name="cluster_head") if clusters > 0 else None
        )
        self.hash_head = layers.Dense(self.n_bits, activation="tanh", name="hash_head")
        deepest = self.blocks.output_shape
        self.decoder = keras.Sequential(
            [
                layers.Dense(math.prod(deepest), activation="relu", name="decoder_dense"),
                layers.Reshape(deepest, name="decoder_reshape"),
                *reversed(self.blocks.decoders),
            ],
            name="decoder",
        )
        self.augmenter = ViewAugmenter(**augment, seed=seed, name="augmenter") if augment is not None else None
        self.trackers = {
            term: keras.metrics.Mean(name=f"{term}_loss")
            for term, weight in self.term_weights.items()
            if weight > 0
        }
        self._build_for_inference()

    @property
    def export_dim(self) -> int:
        """Width of the exported features (what the hash head reads at inference)."""
        feature_dim = self.hyperparameters["feature_dim"]
        return feature_dim + (self.hyperparameters["clusters"] if self.cluster_export > 0 else 0)

    def _build_for_inference(self) -> None:
        fused = self.encoder.output.shape[-1]
        feature_dim = self.hyperparameters["feature_dim"]
        self.feature_head.build((None, fused))
        if self.cluster_head is not None:
            self.cluster_head.build((None, feature_dim))
        self.hash_head.build((None, self.export_dim))
        width = self.n_bits if self.decoder_input == "codes" else feature_dim
        self.decoder.build((None, width))
        self.built = True

    def _embed(self, images, training: bool):
        """(features, codes, cluster probabilities or None) of a batch.

        Training: the features are the projection the metric terms shape and the codes the
        jointly trained head's reading of them. Inference: the exported representation
        (``representation``, plus cluster probabilities with ``cluster_export``) and the
        hash head's reading of it."""
        hidden_layer, projection_layer = self.feature_head.layers
        hidden = hidden_layer(self.encoder(images))
        features = projection_layer(hidden)
        probabilities = None
        if self.cluster_head is not None:  # detached: the groups follow the features, not the reverse
            probabilities = self.cluster_head(ops.stop_gradient(hidden) if self.cluster_detach else hidden)
        if training:
            codes = self.hash_head(features) if self.export_dim == features.shape[-1] else None
            return features, codes, probabilities
        if self.representation == "hidden":
            features = hidden
        if self.cluster_export > 0:
            unit = features / ops.maximum(ops.norm(features, axis=1, keepdims=True), 1e-12)
            features = ops.concatenate([unit, self.cluster_export * probabilities], axis=1)
        return features, self.hash_head(features), probabilities

    def call(self, images, training: bool = False):
        # Training batches are images, or (images, partners) with neighbour positives; a pair
        # always takes the training road (JAX's trainer builds on a batch with training=False).
        pair = isinstance(images, (tuple, list))
        if not training and not pair:
            features, codes, _ = self._embed(images, training=False)
            return {"features": features, "codes": codes}
        images, partners = images if pair else (images, images)
        augment = self.augmenter or (lambda batch: batch)
        views = [augment(images), augment(partners)] if self.uses_two_views else [augment(images)]
        features, codes, probabilities = self._embed(ops.concatenate(views, axis=0), training=True)
        outputs = {"features": features}
        if codes is not None:
            outputs["codes"] = codes
        if probabilities is not None:
            outputs["clusters"] = probabilities
        if self.term_weights["reconstruction"] > 0:
            n = ops.shape(images)[0]
            source = codes if self.decoder_input == "codes" else features
            outputs["reconstruction"] = self.decoder(source[:n])
        return outputs

    def loss_terms(self, images, outputs) -> dict:
        """Unweighted values of the switched-on loss terms for one training batch."""
        features, codes, clusters = outputs["features"], outputs.get("codes"), outputs.get("clusters")
        n = ops.shape(images)[0]
        term_functions = {
            "reconstruction": lambda: losses.reconstruction_loss(images, outputs["reconstruction"]),
            "quantization": lambda: losses.quantization_loss(codes),
            "balance": lambda: losses.balance_loss(codes),
            "decorrelation": lambda: losses.decorrelation_loss(codes),
            "contrastive": lambda: losses.nt_xent_loss(features[:n], features[n:], self.temperature),
            "similarity": lambda: losses.similarity_preserving_loss(codes, features),
            "cluster": lambda: losses.cluster_consistency_loss(clusters[:n], clusters[n:], self.cluster_entropy),
            "self_label": lambda: losses.self_label_loss(clusters[:n], clusters[n:], self.cluster_confidence),
        }
        return {term: term_functions[term]() for term in self.trackers}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        images = x[0] if isinstance(x, (tuple, list)) else x
        return self.weighted_total(self.loss_terms(images, y_pred))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "n_bits": self.n_bits,
            "image_shape": list(self.image_shape),
            **self.hyperparameters,
            "seed": self.seed,
            "metadata": self.metadata,
        }

    @classmethod
    def from_config(cls, config: dict) -> "HashingModel":
        if "scae_config" in config:  # a file saved before the model had its own hyperparameters
            config = dict(config)
            config.update(legacy_hyperparameters(config.pop("scae_config")))
        return cls(**config)


def legacy_hyperparameters(scae_config: dict) -> dict:
    """The hyperparameters of a model saved with the whole experiment config inside, read
    leniently (defaults for what is missing), so such files keep loading."""
    from scae_hash.constants import IMAGE_SHAPES

    model, loss = scae_config.get("model", {}), scae_config.get("loss", {})
    augment = scae_config.get("augment", {})
    defaults = {"reconstruction": 1.0, "quantization": 0.1, "balance": 0.1, "contrastive": 1.0, "similarity": 1.0}
    augment_keys = ("max_shift", "zoom", "pixel_drop", "horizontal_flip", "color_jitter", "grayscale")
    return {
        "image_shape": IMAGE_SHAPES[scae_config["dataset"]],
        **{key: model[key] for key in ("block_channels", "convs_per_block", "kernel_size", "scales", "fused_depths",
                                       "pool_grid", "feature_dim", "decoder_input", "representation") if key in model},
        "loss_weights": {term: loss.get(term, defaults.get(term, 0.0)) for term in LOSS_TERMS},
        "temperature": loss.get("temperature", 0.5),
        "augment": {key: augment[key] for key in augment_keys if key in augment} if augment.get("enabled", True) else None,
        "metadata": scae_config,
    }
