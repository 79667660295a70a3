"""The fine-tuning model: multi-scale encoder -> features -> tanh hash head, plus a decoder.

Training follows the joint strategy: two random views of each batch go through the encoder
together (one view when both metric terms are off); a contrastive loss acts on the continuous features, the hash losses on the relaxed
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

import keras
from keras import layers, ops

from scae_hash.config import SCAEConfig
from scae_hash.model import losses
from scae_hash.model.augment import ViewAugmenter
from scae_hash.model.blocks import ConvAEBlocks
from scae_hash.model.encoder import build_multiscale_encoder

LOSS_TERMS = ("reconstruction", "quantization", "balance", "decorrelation", "contrastive", "similarity")


@keras.saving.register_keras_serializable(package="scae_hash")
class HashingModel(keras.Model):
    """Built entirely from an ``SCAEConfig`` dict and the bit count, so a ``.keras`` file
    carries its own config. ``blocks`` exposes the conv-AE blocks for greedy pretraining."""

    def __init__(self, scae_config: dict, n_bits: int, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scae_config = scae_config
        self.n_bits = int(n_bits)
        self.seed = int(seed)
        config = SCAEConfig.from_dict(scae_config)
        self.term_weights = {term: getattr(config.loss, term) for term in LOSS_TERMS}
        self.temperature = config.loss.temperature
        self.decoder_input = config.model.decoder_input
        self.representation = config.model.representation
        # The metric terms compare two views; without them one view is enough.
        self.uses_two_views = config.loss.contrastive > 0 or config.loss.similarity > 0

        model = config.model
        self.blocks = ConvAEBlocks(
            config.image_shape, model.block_channels, model.kernel_size, model.convs_per_block
        )
        self.encoder = build_multiscale_encoder(self.blocks, model)
        self.feature_head = keras.Sequential(
            [
                layers.Dense(model.feature_dim, activation="relu", name="feature_hidden"),
                layers.Dense(model.feature_dim, name="features"),
            ],
            name="feature_head",
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
        augment = config.augment
        self.augmenter = (
            ViewAugmenter(
                max_shift=augment.max_shift,
                zoom=augment.zoom,
                pixel_drop=augment.pixel_drop,
                horizontal_flip=augment.horizontal_flip,
                color_jitter=augment.color_jitter,
                grayscale=augment.grayscale,
                seed=seed,
                name="augmenter",
            )
            if augment.enabled
            else None
        )
        self.trackers = {
            term: keras.metrics.Mean(name=f"{term}_loss")
            for term, weight in self.term_weights.items()
            if weight > 0
        }
        self._build_for_inference(config.image_shape)

    def _build_for_inference(self, image_shape: tuple[int, int, int]) -> None:
        fused = self.encoder.output.shape[-1]
        self.feature_head.build((None, fused))
        self.hash_head.build((None, self.feature_head.output_shape[-1]))
        width = self.n_bits if self.decoder_input == "codes" else self.feature_head.output_shape[-1]
        self.decoder.build((None, width))
        self.built = True

    def _embed(self, images, training: bool):
        hidden_layer, projection_layer = self.feature_head.layers
        hidden = hidden_layer(self.encoder(images))
        features = projection_layer(hidden)
        if not training and self.representation == "hidden":
            features = hidden
        return features, self.hash_head(features)

    def call(self, images, training: bool = False):
        # Training batches are images, or (images, partners) with neighbour positives; a pair
        # always takes the training road (JAX's trainer builds on a batch with training=False).
        pair = isinstance(images, (tuple, list))
        if not training and not pair:
            features, codes = self._embed(images, training=False)
            return {"features": features, "codes": codes}
        images, partners = images if pair else (images, images)
        augment = self.augmenter or (lambda batch: batch)
        views = [augment(images), augment(partners)] if self.uses_two_views else [augment(images)]
        features, codes = self._embed(ops.concatenate(views, axis=0), training=True)
        outputs = {"features": features, "codes": codes}
        if self.term_weights["reconstruction"] > 0:
            n = ops.shape(images)[0]
            source = codes if self.decoder_input == "codes" else features
            outputs["reconstruction"] = self.decoder(source[:n])
        return outputs

    def loss_terms(self, images, outputs) -> dict:
        """Unweighted values of the switched-on loss terms for one training batch."""
        features, codes = outputs["features"], outputs["codes"]
        n = ops.shape(images)[0]
        term_functions = {
            "reconstruction": lambda: losses.reconstruction_loss(images, outputs["reconstruction"]),
            "quantization": lambda: losses.quantization_loss(codes),
            "balance": lambda: losses.balance_loss(codes),
            "decorrelation": lambda: losses.decorrelation_loss(codes),
            "contrastive": lambda: losses.nt_xent_loss(features[:n], features[n:], self.temperature),
            "similarity": lambda: losses.similarity_preserving_loss(codes, features),
        }
        return {term: term_functions[term]() for term in self.trackers}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        images = x[0] if isinstance(x, (tuple, list)) else x
        terms = self.loss_terms(images, y_pred)
        total = 0.0
        for term, value in terms.items():
            self.trackers[term].update_state(value)
            total = total + self.term_weights[term] * value
        return total

    @property
    def metrics(self) -> list:
        tracked = super().metrics
        return tracked + [t for t in self.trackers.values() if t not in tracked]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "scae_config": self.scae_config,
            "n_bits": self.n_bits,
            "seed": self.seed,
        }
