"""The shallow baselines: interface, reproducibility, and what each method promises."""

import numpy as np
import pytest

from scae_hash.errors import ConfigError
from scae_hash.hashers import BASELINES, make_baseline
from scae_hash.hashers.shallow import ITQ, PCAH


def clustered_images(n_per_class: int = 30, n_classes: int = 20, seed: int = 0):
    """Small 'images' drawn around class centres, so that any sensible hash keeps neighbours."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_classes, 6, 6, 1))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    images = centres[labels] + 0.05 * rng.standard_normal((len(labels), 6, 6, 1))
    return images.astype(np.float32), labels


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_codes_are_binary_reproducible_and_seeded(method):
    x, _ = clustered_images()
    codes = make_baseline(method, 16, seed=3).fit(x).encode(x)
    assert codes.shape == (len(x), 16) and codes.dtype == np.uint8
    assert set(np.unique(codes)) <= {0, 1}
    again = make_baseline(method, 16, seed=3).fit(x).encode(x)
    np.testing.assert_array_equal(codes, again)


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_neighbours_share_more_bits_than_strangers(method):
    x, labels = clustered_images()
    codes = make_baseline(method, 16).fit(x).encode(x).astype(int)
    distances = (codes[:, None, :] != codes[None, :, :]).sum(axis=2)
    same = labels[:, None] == labels[None, :]
    assert distances[same].mean() < 0.5 * distances[~same].mean()


def test_lsh_depends_on_seed():
    x, _ = clustered_images()
    a = make_baseline("lsh", 32, seed=0).fit(x).encode(x)
    b = make_baseline("lsh", 32, seed=1).fit(x).encode(x)
    assert not np.array_equal(a, b)


def test_itq_rotation_lowers_quantization_error_below_pca():
    x, _ = clustered_images(seed=1)
    pcah, itq = PCAH(16).fit(x), ITQ(16).fit(x)
    v = (x.reshape(len(x), -1) - itq.mean_) @ itq.components_

    def quantization_error(projected):
        return np.square(np.sign(projected) - projected).sum()

    scale = np.abs(v).mean()
    assert quantization_error(v @ itq.rotation_ / scale) < quantization_error(v / scale)
    rotation = itq.rotation_.astype(np.float64)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(16), atol=1e-5)
    assert pcah.components_.shape == (36, 16)


@pytest.mark.parametrize("method", ["pcah", "itq", "sh"])
def test_pca_methods_refuse_more_bits_than_dimensions(method):
    x, _ = clustered_images()  # 36-dimensional
    with pytest.raises(ConfigError, match="exceed the feature dimension 36"):
        make_baseline(method, 64).fit(x)


@pytest.mark.parametrize("bits", [4, 300])
def test_bits_out_of_range(bits):
    with pytest.raises(ConfigError, match="bits must be in 8..256"):
        make_baseline("lsh", bits)


@pytest.mark.parametrize("method, setting, message", [("itq", {"pca_solver": "full"}, "unknown PCA solver 'full'"),
                                                      ("imh", {"pca_solver": "full"}, "unknown PCA solver 'full'"),
                                                      ("imh", {"extension": "nope"}, "unknown extension 'nope'")])
def test_a_bad_setting_is_a_config_error(method, setting, message):
    with pytest.raises(ConfigError, match=message):
        make_baseline(method, 16, **setting)


def test_unknown_method():
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        make_baseline("nope", 16)


def test_spectral_hashing_uses_low_frequencies_first():
    x, _ = clustered_images()
    sh = make_baseline("sh", 16).fit(x)
    assert np.all(np.diff(sh.frequencies_) >= 0)
    assert sh.frequencies_[0] > 0
