"""The hash head set from ITQ of the learned features, once fine-tuning has shaped them.

ITQ is linear, so it fits the model's ``Dense + tanh`` head exactly: bits stay ``h > 0``. It
lives with the hashers (ITQ is one of them), so that the model package needs none of them.
"""

from __future__ import annotations

import keras
import numpy as np

from scae_hash.hashers.shallow import ITQ

# tanh(TARGET) ~ 0.96: relaxed codes near +-1, so the quantization loss stays small.
TARGET_MEAN_ABS_ACTIVATION = 2.0


def set_head_from_itq(head: keras.layers.Layer, features: np.ndarray, n_bits: int, seed: int) -> None:
    """Replace ``head``'s weights by ITQ fitted on ``features`` (the exported features of the
    training images), scaled so that the relaxed codes sit near +-1."""
    weights, bias = ITQ(n_bits, seed).fit(features).linear_map()
    scale = TARGET_MEAN_ABS_ACTIVATION / max(float(np.abs(features @ weights + bias).mean()), 1e-12)
    head.set_weights([weights * scale, bias * scale])
