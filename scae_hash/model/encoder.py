"""The multi-scale stacked encoder: one image pyramid, shared conv blocks, fused granularities.

Each scale of the image (e.g. 28x28 and 14x14) runs through the same stacked blocks, so a
pretrained block serves every scale. The feature maps of the chosen depths are average-pooled
to a small grid and concatenated across depths and scales (multi-granularity): shallow maps
keep strokes and textures, deep maps the layout, the half scale a coarser view of both.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from scae_hash.model.blocks import ConvAEBlocks


def _pool_to_grid(feature_map, side: int, grid: int, name: str):
    """Average-pool a side x side map to about grid x grid cells, then flatten."""
    window = max(1, math.ceil(side / grid))
    if window > 1:
        pool = layers.AveragePooling2D(window, strides=window, padding="same", name=f"{name}_pool")
        feature_map = pool(feature_map)
    return layers.Flatten(name=f"{name}_flatten")(feature_map)


def _downscale(image, scale: float, size: tuple[int, int], tag: str):
    """Exact area averaging when 1/scale is an integer (scale 0.5: the mean of each 2x2
    patch); bilinear resizing otherwise."""
    factor = round(1 / scale)
    if abs(factor * scale - 1) < 1e-6:
        return layers.AveragePooling2D(factor, name=f"{tag}_downscale")(image)
    return layers.Resizing(*size, interpolation="bilinear", name=f"{tag}_resize")(image)


def build_multiscale_encoder(
    blocks: ConvAEBlocks, scales: list[float], fused_depths: list[int], pool_grid: int
) -> keras.Model:
    """Image -> fused multi-scale, multi-depth descriptor (a flat vector)."""
    height, width, channels = blocks.image_shape
    image = keras.Input((height, width, channels), name="image")
    pooled = []
    for scale in scales:
        tag = f"s{round(scale * 100)}"
        side_h, side_w = math.floor(height * scale), math.floor(width * scale)
        x = image
        if (side_h, side_w) != (height, width):
            x = _downscale(x, scale, (side_h, side_w), tag)
        side = min(side_h, side_w)
        for depth, block_encoder in enumerate(blocks.encoders, start=1):
            x = block_encoder(x)
            side = (side + 1) // 2
            if depth in fused_depths:
                pooled.append(_pool_to_grid(x, side, pool_grid, f"{tag}_d{depth}"))
    fused = pooled[0] if len(pooled) == 1 else layers.Concatenate(name="fuse")(pooled)
    return keras.Model(image, fused, name="multiscale_encoder")
