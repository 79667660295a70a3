"""Images as the model's autoencoders see them: what each pretrained block and the fine-tuned
decoder reconstruct (figures only; training never calls this)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from scae_hash.model.blocks import ConvAEBlocks


def block_reconstructions(blocks: ConvAEBlocks, pretrained: list[list[np.ndarray]], images: np.ndarray) -> np.ndarray:
    """(n_blocks, n, h, w, c): image -> encoders 1..k -> decoders k..1, with the weights as greedy
    pretraining left them (``pretrained``: the encoders' then the decoders' weights, as the SCAE
    hasher keeps them; fine-tuning changes these shared blocks afterwards). ``blocks`` get their
    own weights back before this returns."""
    layers = [*blocks.encoders, *blocks.decoders]
    own = [layer.get_weights() for layer in layers]
    for layer, weights in zip(layers, pretrained):
        layer.set_weights(weights)
    try:
        outputs, encoded = [], ops.convert_to_tensor(images)
        for k in range(len(blocks)):
            encoded = blocks.encoders[k](encoded)
            decoded = encoded
            for decoder in reversed(blocks.decoders[: k + 1]):
                decoded = decoder(decoded)
            outputs.append(ops.convert_to_numpy(decoded))
    finally:
        for layer, weights in zip(layers, own):
            layer.set_weights(weights)
    return np.stack(outputs)


def decoder_reconstruction(model: keras.Model, images: np.ndarray, trained_head: list[np.ndarray] | None) -> np.ndarray:
    """The fine-tuned decoder's output for clean images, from the input it was trained on: the
    projection's features, or the relaxed codes of the hash head as fine-tuning left it
    (``trained_head``, when an ITQ head replaced it afterwards)."""
    hidden_layer, projection_layer = model.feature_head.layers
    features = projection_layer(hidden_layer(model.encoder(ops.convert_to_tensor(images))))
    source = features
    if model.decoder_input == "codes":
        kernel, bias = trained_head if trained_head is not None else model.hash_head.get_weights()
        source = ops.tanh(ops.matmul(features, kernel) + bias)
    return ops.convert_to_numpy(model.decoder(source))
