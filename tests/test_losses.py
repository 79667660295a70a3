"""Each SCAE loss term equals a value computed by hand with numpy on a small fixed tensor."""

import keras
import numpy as np
import pytest

from scae_hash.model import losses

CODES = np.array([[0.5, -0.2, 0.9], [-0.7, 0.1, 0.3], [0.2, 0.4, -1.0], [-0.1, -0.8, 0.6]], "float32")
FEATURES = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.5]], "float32")


def value(tensor) -> float:
    return float(keras.ops.convert_to_numpy(tensor))


def cosine(a: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return a @ a.T


def test_reconstruction_is_mean_squared_error():
    images = np.array([[0.0, 1.0], [0.5, 0.5]], "float32")
    recon = np.array([[0.5, 1.0], [0.0, 1.0]], "float32")
    assert value(losses.reconstruction_loss(images, recon)) == pytest.approx((0.25 + 0 + 0.25 + 0.25) / 4)


def test_quantization_is_mean_gap_to_sign():
    expected = np.mean((CODES - np.sign(CODES)) ** 2)
    assert value(losses.quantization_loss(CODES)) == pytest.approx(expected, rel=1e-6)
    # by hand, first row: (0.5, 0.8, 0.1)^2
    assert value(losses.quantization_loss(CODES[:1])) == pytest.approx((0.25 + 0.64 + 0.01) / 3, rel=1e-6)


def test_balance_is_mean_squared_bit_mean():
    bit_means = np.array([-0.025, -0.125, 0.2])
    assert value(losses.balance_loss(CODES)) == pytest.approx(np.mean(bit_means**2), rel=1e-5)


def test_decorrelation_is_distance_of_gram_to_identity():
    gram = CODES.T @ CODES / 4
    expected = np.mean((gram - np.eye(3)) ** 2)
    assert value(losses.decorrelation_loss(CODES)) == pytest.approx(expected, rel=1e-5)
    assert value(losses.decorrelation_loss(np.array([[1, 1], [1, -1]], "float32"))) == pytest.approx(0.0)


def test_nt_xent_matches_softmax_over_the_other_view():
    view_a, view_b = FEATURES[:2], FEATURES[2:]
    temperature = 0.5
    both = np.concatenate([view_a, view_b])
    logits = cosine(both) / temperature
    expected = 0.0
    for i, positive in enumerate([2, 3, 0, 1]):
        others = [j for j in range(4) if j != i]
        expected -= logits[i, positive] - np.log(np.exp(logits[i, others]).sum())
    expected /= 4
    got = value(losses.nt_xent_loss(view_a, view_b, temperature))
    assert got == pytest.approx(expected, rel=1e-5)


def test_similarity_preserving_compares_cosine_matrices():
    codes = CODES[:, :2]
    expected = np.mean((cosine(codes) - cosine(FEATURES)) ** 2)
    assert value(losses.similarity_preserving_loss(codes, FEATURES)) == pytest.approx(expected, rel=1e-5)


def test_cluster_consistency_is_scan_loss():
    a = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], "float32")
    b = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]], "float32")
    consistency = -np.mean(np.log((a * b).sum(axis=1)))
    mean = np.concatenate([a, b]).mean(axis=0)
    entropy = -(mean * np.log(mean)).sum()
    got = value(losses.cluster_consistency_loss(a, b, entropy_weight=2.0))
    assert got == pytest.approx(consistency - 2.0 * entropy, rel=1e-5)
    # one confident shared cluster scores better than a split pair, at equal balance
    same = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
    split = np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
    assert value(losses.cluster_consistency_loss(same, same, 1.0)) < value(losses.cluster_consistency_loss(same, split, 1.0))


def test_self_label_uses_only_confident_samples_as_pseudo_labels():
    a = np.array([[0.995, 0.005], [0.6, 0.4], [0.001, 0.999]], "float32")
    b = np.array([[0.7, 0.3], [0.1, 0.9], [0.2, 0.8]], "float32")
    expected = -(np.log(0.7) + np.log(0.8)) / 2  # rows 0 and 2 are confident; row 1 is ignored
    assert value(losses.self_label_loss(a, b, 0.99)) == pytest.approx(expected, rel=1e-5)
    assert value(losses.self_label_loss(a[1:2], b[1:2], 0.99)) == 0.0


def test_neighbour_agreement_is_mean_cosine_gap():
    a, b = CODES[:2], CODES[2:]
    cosines = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert value(losses.neighbour_agreement_loss(a, b)) == pytest.approx(np.mean(1 - cosines), rel=1e-5)
    assert value(losses.neighbour_agreement_loss(a, a)) == pytest.approx(0.0, abs=1e-6)
