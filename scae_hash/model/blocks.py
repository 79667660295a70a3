"""One convolutional autoencoder block: the unit that greedy pretraining trains at a time."""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from scae_hash.atomic import atomic_path_staged


def build_block_encoder(
    index: int, channels: int, kernel_size: int, convs: int
) -> keras.Sequential:
    """Convs with ReLU; the last has stride 2, so every block halves the feature map.

    The input shape is left open so that one block serves every scale of the pyramid.
    """
    stack = [
        layers.Conv2D(
            channels,
            kernel_size,
            strides=2 if i == convs - 1 else 1,
            padding="same",
            activation="relu",
            name=f"block{index}_conv{i + 1}",
        )
        for i in range(convs)
    ]
    return keras.Sequential(stack, name=f"block{index}_encoder")


def build_block_decoder(
    index: int, input_shape: tuple[int, int, int], kernel_size: int
) -> keras.Sequential:
    """Maps the block's output back to its input: a stride-2 transposed conv (cropped when the
    input side was odd). Block 1 reconstructs pixels in [0, 1] (sigmoid); deeper blocks
    reconstruct ReLU features (relu)."""
    height, width, channels = input_shape
    up_height, up_width = 2 * ((height + 1) // 2), 2 * ((width + 1) // 2)
    stack: list[layers.Layer] = [
        layers.Conv2DTranspose(
            channels,
            kernel_size,
            strides=2,
            padding="same",
            activation="sigmoid" if index == 1 else "relu",
            name=f"block{index}_deconv",
        )
    ]
    if (up_height, up_width) != (height, width):
        crop = ((0, up_height - height), (0, up_width - width))
        stack.append(layers.Cropping2D(crop, name=f"block{index}_crop"))
    return keras.Sequential(stack, name=f"block{index}_decoder")


def block_input_shapes(
    image_shape: tuple[int, int, int], block_channels: list[int]
) -> list[tuple[int, int, int]]:
    """Input shape of each block at scale 1 (the shape its decoder must reproduce)."""
    height, width, channels = image_shape
    shapes = []
    for out_channels in block_channels:
        shapes.append((height, width, channels))
        height, width, channels = (height + 1) // 2, (width + 1) // 2, out_channels
    shapes.append((height, width, channels))
    return shapes


class ConvAEBlocks:
    """The stacked blocks' encoders and decoders, built once and shared by pretraining, the
    multi-scale encoder (weights shared across scales) and the fine-tuning decoder."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        block_channels: list[int],
        kernel_size: int = 3,
        convs_per_block: int = 1,
    ) -> None:
        self.image_shape = tuple(image_shape)
        self.shapes = block_input_shapes(self.image_shape, block_channels)
        self.encoders = []
        self.decoders = []
        for i, channels in enumerate(block_channels, start=1):
            encoder = build_block_encoder(i, channels, kernel_size, convs_per_block)
            encoder.build((None, None, None, self.shapes[i - 1][-1]))
            decoder = build_block_decoder(i, self.shapes[i - 1], kernel_size)
            decoder.build((None, *self.shapes[i]))
            self.encoders.append(encoder)
            self.decoders.append(decoder)

    def __len__(self) -> int:
        return len(self.encoders)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """Shape of the deepest feature map at scale 1."""
        return self.shapes[-1]

    def save_block(self, k: int, directory: Path) -> None:
        """Save block k's (1-based) encoder and decoder weights as ``.weights.h5`` files."""
        for part, layer in (("encoder", self.encoders[k - 1]), ("decoder", self.decoders[k - 1])):
            with atomic_path_staged(Path(directory) / f"block{k}_{part}.weights.h5") as temporary:
                layer.save_weights(temporary)

    def load_block(self, k: int, directory: Path) -> None:
        self.encoders[k - 1].load_weights(Path(directory) / f"block{k}_encoder.weights.h5")
        self.decoders[k - 1].load_weights(Path(directory) / f"block{k}_decoder.weights.h5")

    def has_saved_block(self, k: int, directory: Path) -> bool:
        return all(
            (Path(directory) / f"block{k}_{part}.weights.h5").is_file()
            for part in ("encoder", "decoder")
        )
