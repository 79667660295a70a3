"""Random views of a batch for the joint strategy, vectorised with ``keras.ops``.

Shift, zoom and horizontal flip are one separable resampling: per sample, a row and a
column interpolation matrix (bilinear weights, zero outside the image) applied with two
batched einsums. An integer shift makes them one-hot shift matrices. This costs about as
much as a tiny matmul, whereas Keras' RandomRotation/RandomZoom layers were measured 50x
slower. Pixel dropout, colour jitter and grayscale are elementwise.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="scae_hash")
class ViewAugmenter(keras.layers.Layer):
    """Makes one random view of each image (float images in [0, 1], channels last)."""

    def __init__(
        self,
        max_shift: float = 3.0,
        zoom: float = 0.0,
        pixel_drop: float = 0.0,
        horizontal_flip: bool = False,
        color_jitter: float = 0.0,
        grayscale: float = 0.0,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.max_shift = float(max_shift)
        self.zoom = float(zoom)
        self.pixel_drop = float(pixel_drop)
        self.horizontal_flip = bool(horizontal_flip)
        self.color_jitter = float(color_jitter)
        self.grayscale = float(grayscale)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, shape, low: float, high: float):
        return keras.random.uniform(shape, low, high, seed=self.seed_generator)

    def _resampling_matrix(self, size: int, shift, scale, flip=None):
        """(n, size, size) bilinear weights: output pixel i reads source coordinate
        centre + (i - centre) * scale + shift, mirrored when ``flip``."""
        centre = (size - 1) / 2.0
        out = ops.arange(size, dtype="float32")[None, :]
        source = centre + (out - centre) * scale[:, None] + shift[:, None]
        if flip is not None:
            source = ops.where(flip[:, None], 2 * centre - source, source)
        grid = ops.arange(size, dtype="float32")[None, None, :]
        return ops.relu(1.0 - ops.abs(source[:, :, None] - grid))

    def _geometric(self, images):
        n, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        scale = self._uniform((n,), 1.0 - self.zoom, 1.0 + self.zoom)
        shift_rows = self._uniform((n,), -self.max_shift, self.max_shift)
        shift_cols = self._uniform((n,), -self.max_shift, self.max_shift)
        flip = self._uniform((n,), 0.0, 1.0) < 0.5 if self.horizontal_flip else None
        rows = self._resampling_matrix(height, shift_rows, scale)
        cols = self._resampling_matrix(width, shift_cols, scale, flip)
        images = ops.einsum("nij,njwc->niwc", rows, images)
        return ops.einsum("nkw,niwc->nikc", cols, images)

    def _photometric(self, images):
        n = ops.shape(images)[0]
        strength = self.color_jitter
        if strength > 0:
            brightness = self._uniform((n, 1, 1, 1), 1 - strength, 1 + strength)
            contrast = self._uniform((n, 1, 1, 1), 1 - strength, 1 + strength)
            mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
            images = (images - mean) * contrast + mean * brightness
            if images.shape[-1] == 3:
                saturation = self._uniform((n, 1, 1, 1), 1 - strength, 1 + strength)
                gray = ops.mean(images, axis=-1, keepdims=True)
                images = gray + (images - gray) * saturation
        if self.grayscale > 0 and images.shape[-1] == 3:
            to_gray = self._uniform((n, 1, 1, 1), 0.0, 1.0) < self.grayscale
            images = ops.where(to_gray, ops.mean(images, axis=-1, keepdims=True), images)
        return ops.clip(images, 0.0, 1.0)

    def call(self, images):
        if self.max_shift > 0 or self.zoom > 0 or self.horizontal_flip:
            images = self._geometric(images)
        images = self._photometric(images)
        if self.pixel_drop > 0:
            shape = (ops.shape(images)[0], images.shape[1], images.shape[2], 1)
            keep = self._uniform(shape, 0.0, 1.0) >= self.pixel_drop
            images = images * ops.cast(keep, images.dtype)
        return images

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "max_shift": self.max_shift,
            "zoom": self.zoom,
            "pixel_drop": self.pixel_drop,
            "horizontal_flip": self.horizontal_flip,
            "color_jitter": self.color_jitter,
            "grayscale": self.grayscale,
            "seed": self.seed,
        }
