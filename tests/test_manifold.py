"""Manifold hashing (IMH with a UMAP layout) and the pieces the SCAE-manifold shares with it."""

import os
import subprocess
import sys

import numpy as np
import pytest

from scae_hash.errors import ConfigError, DataError
from scae_hash.hashers import make_baseline
from scae_hash.manifold.binarize import FourierITQ
from scae_hash.manifold.embedding import membership_weights
from scae_hash.manifold.extension import KnnExtension
from scae_hash.manifold.graph_loss import umap_cross_entropy
from scae_hash.metrics import evaluate_codes


def two_clusters(n_per_cluster: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per_cluster)
    centres = np.stack([np.full((8, 8, 1), 0.2), np.full((8, 8, 1), 0.8)])
    images = centres[labels] + 0.05 * rng.standard_normal((len(labels), 8, 8, 1))
    return images.astype(np.float32), labels


def test_imh_ranks_two_clusters_perfectly():
    x, labels = two_clusters()
    hasher = make_baseline("imh", 16).fit(x)
    codes = hasher.encode(x)
    metrics = evaluate_codes(codes[::7], codes, labels[::7], labels, progress=False)
    assert metrics.summary()["map"] == 1.0


def test_extension_matches_brute_force_weighted_mean():
    rng = np.random.default_rng(1)
    anchors, embedding, points = rng.random((200, 5)), rng.random((200, 3)), rng.random((17, 5))
    k = 6
    got = KnnExtension(anchors, embedding, k)(points)
    distances = np.sqrt(((points[:, None, :] - anchors[None, :, :]) ** 2).sum(-1))
    nearest = np.argsort(distances, axis=1)[:, :k]
    weights = membership_weights(np.take_along_axis(distances, nearest, axis=1))
    expected = (weights[:, :, None] * embedding[nearest]).sum(1) / weights.sum(1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_membership_weights_sum_to_log2_k_and_start_at_one():
    distances = np.sort(np.random.default_rng(2).random((50, 15)), axis=1)
    weights = membership_weights(distances)
    np.testing.assert_allclose(weights[:, 0], 1.0)
    np.testing.assert_allclose(weights.sum(axis=1), np.log2(15), rtol=1e-3)


def test_fourier_itq_keeps_close_points_close():
    rng = np.random.default_rng(3)
    embedding = np.concatenate([rng.normal(0, 0.1, (100, 4)), rng.normal(5, 0.1, (100, 4))])
    binarizer = FourierITQ(32, seed=0).fit(embedding)
    bits = binarizer.bits(embedding).astype(int)
    distances = (bits[:, None] != bits[None]).sum(-1)
    same = np.repeat([0, 1], 100)[:, None] == np.repeat([0, 1], 100)[None, :]
    assert distances[same].mean() < 0.5 * distances[~same].mean()


def test_graph_loss_prefers_the_layout_that_keeps_edges_close():
    # Toy graph: edges 0-1 and 2-3. Loss on its edges, with the other pair as the negatives.
    a, b = 1.58, 0.9
    edges_close = (np.array([[0.0, 0.0], [5.0, 5.0]]), np.array([[0.1, 0.0], [5.1, 5.0]]))
    edges_far = (np.array([[0.0, 0.0], [5.0, 5.0]]), np.array([[5.1, 5.0], [0.1, 0.0]]))
    close = float(umap_cross_entropy(*edges_close, a, b, negatives=1))
    far = float(umap_cross_entropy(*edges_far, a, b, negatives=1))
    assert close < 0.2 * far


def test_graph_loss_descent_pulls_edges_together():
    """Gradient descent on free 2-D points (numerical gradients) under the loss of the toy
    graph 0-1, 2-3 ends with each edge shorter than any non-edge."""
    points = np.random.default_rng(4).normal(0, 1, (4, 2))
    heads, tails = np.array([0, 2]), np.array([1, 3])

    def loss(flat):
        p = flat.reshape(4, 2)
        return float(umap_cross_entropy(p[heads], p[tails], 1.58, 0.9, negatives=1))

    flat = points.ravel()
    for _ in range(300):
        gradient = np.array([(loss(flat + step) - loss(flat - step)) / 2e-4 for step in np.eye(8) * 1e-4])
        flat = flat - 0.05 * gradient
    p = flat.reshape(4, 2)
    distance = lambda i, j: np.linalg.norm(p[i] - p[j])  # noqa: E731
    assert max(distance(0, 1), distance(2, 3)) < 0.5 * min(distance(0, 3), distance(1, 2))


@pytest.mark.parametrize("images, message", [
    (np.random.default_rng(0).random((10, 8, 8, 1), dtype=np.float32), "needs more than 15 training images"),
    (np.full((100, 8, 8, 1), 0.5, dtype=np.float32), "all training images are identical"),
])
def test_imh_refuses_inputs_without_a_graph_in_one_line(images, message):
    with pytest.raises(DataError, match=message):
        make_baseline("imh", 16).fit(images)


def test_restoring_a_tampered_state_is_refused():
    x, _ = two_clusters()
    state = make_baseline("imh", 16).fit(x).learned_state()
    make_baseline("imh", 16).restore_state(state)  # intact: accepted
    for name, broken in [("anchors_", state["anchors_"][:, :-1]), ("neighbours_", np.array([10_000])),
                         ("binarizer_rotation_", state["binarizer_rotation_"][:-1]),
                         ("anchor_embedding_", np.full_like(state["anchor_embedding_"], np.nan))]:
        with pytest.raises(DataError, match="tampered or damaged state"):
            make_baseline("imh", 16).restore_state({**state, name: broken})
    with pytest.raises(DataError, match="lacks"):
        make_baseline("imh", 16).restore_state({k: v for k, v in state.items() if k != "mean_"})


def test_graph_edges_draw_tails_among_neighbours_by_weight():
    from scae_hash.manifold.network import GraphEdges

    heads = np.array([0, 0, 1, 2, 2, 2], dtype=np.int32)
    tails = np.array([1, 2, 0, 0, 1, 3], dtype=np.int32)
    weights = np.array([0.9, 0.1, 1.0, 0.5, 0.25, 0.25], dtype=np.float32)
    images = np.zeros((4, 2, 2, 1), dtype=np.float32)
    edges = GraphEdges(images, np.zeros((4, 2)), heads, tails, weights, batch_size=2, seed=0)
    draws = []
    for epoch in range(400):
        edges.set_epoch(epoch)
        draws.append(edges.partner.copy())
    draws = np.array(draws)
    assert set(draws[:, 1]) == {0} and draws[:, 3].tolist() == [3] * 400  # node 3 has no edges: itself
    assert abs((draws[:, 0] == 1).mean() - 0.9) < 0.06
    assert abs((draws[:, 2] == 0).mean() - 0.5) < 0.08


def test_manifold_config_is_validated(tmp_path):
    from scae_hash.config import load_config
    from scae_hash.manifold.config import load_manifold_config

    path = tmp_path / "m.yaml"
    path.write_text("method: scae-manifold\ndataset: mnist\ngraph: {n_neighbors: 1}\n")
    with pytest.raises(ConfigError, match="n_neighbors"):
        load_manifold_config(path)
    path.write_text("method: scae-manifold\ndataset: mnist\ngraph: {neighbours: 5}\n")
    with pytest.raises(ConfigError, match="unknown key 'graph.neighbours'"):
        load_manifold_config(path)
    path.write_text("method: scae-manifold\ndataset: mnist\n")
    assert load_manifold_config(path).graph.n_neighbors == 15
    with pytest.raises(ConfigError, match="not of the thesis"):
        load_config(path)


@pytest.mark.parametrize("kind, message", [("few", "needs more than 15 training images"),
                                            ("constant", "all training images are identical")])
def test_index_refuses_folders_without_a_graph_in_one_line(tmp_path, kind, message):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(10 if kind == "few" else 40):
        pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) if kind == "few" else np.full((16, 16, 3), 128, np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    done = subprocess.run([sys.executable, "-m", "scae_hash", "index", str(tmp_path), "--method", "imh", "--bits", "16",
                           "--out", str(tmp_path / "index.h5"), "--quiet"], capture_output=True, text=True)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in done.stderr, done.stderr


def synthetic_digits(groups: int, per_group: int):
    """MNIST-shaped images: noisy copies of random binary patterns, one pattern a group."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(groups), per_group)
    centres = rng.random((groups, 28, 28, 1)) > 0.7
    noise = 0.15 * rng.standard_normal((len(labels), 28, 28, 1))
    return np.clip(centres[labels] * 0.9 + noise, 0, 1).astype(np.float32), labels


def tiny_manifold_config(tmp_path, train: str = "{epochs: 2, batch_size: 32}"):
    from scae_hash.manifold.config import load_manifold_config

    path = tmp_path / "tiny.yaml"
    path.write_text("method: scae-manifold\ndataset: mnist\nmodel: {block_channels: [4, 8], fused_depths: [1, 2], "
                    "feature_dim: 16}\npretrain: {batch_size: 64}\ngraph: {n_components: 4, pca_dim: 10}\n"
                    f"train: {train}\n")
    return load_manifold_config(path)


def test_graph_autoencoder_builds_every_layer_without_a_warning(tmp_path):
    import warnings

    from scae_hash.manifold.network import GraphAutoencoder, LayoutFrame
    from scae_hash.model.blocks import ConvAEBlocks

    config = tiny_manifold_config(tmp_path)
    frame = LayoutFrame(a=1.5, b=0.9, mean=np.zeros(4, np.float32), scale=np.ones(4, np.float32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        network = GraphAutoencoder(ConvAEBlocks((28, 28, 1), [4, 8], 3, 1), config, frame=frame, seed=0)
        outputs = network(np.zeros((2, 28, 28, 1), np.float32))
    assert [str(warning.message) for warning in caught] == []
    assert outputs["layout"].shape == (2, 4)
    assert all(layer.built for layer in network.decoder.layers)  # the loss's decoder too: reuse loads it


def test_a_reused_scae_manifold_network_needs_no_graph(tmp_path, monkeypatch):
    """A second code length reuses the first fit's network with its saved layout frame, without
    computing the graph vectors; a network saved before frames were saved gets its frame then."""
    from scae_hash.hashers import scae_manifold

    x, _ = synthetic_digits(groups=2, per_group=40)
    config = tiny_manifold_config(tmp_path, train="{epochs: 1, batch_size: 16}")
    config.pretrain.enabled = False
    fit = lambda bits: scae_manifold.SCAEManifoldHasher(bits, 0, config=config, run_dir=tmp_path / "run",  # noqa: E731
                                                        progress=False).fit(x)
    first = fit(16)
    (frame_file,) = (tmp_path / "run").glob("network-*.frame.npz")
    with monkeypatch.context() as patched:
        patched.setattr(scae_manifold, "graph_vectors", lambda *args: pytest.fail("graph vectors computed"))
        second = fit(32)
    assert not hasattr(second, "train_seconds_")
    np.testing.assert_array_equal(first.features(x), second.features(x))
    frame_file.unlink()
    np.testing.assert_array_equal(fit(32).features(x), second.features(x))
    assert frame_file.is_file()


@pytest.mark.slow
def test_scae_manifold_learns_the_groups_and_reuses_its_network(tmp_path):
    """A tiny SCAE-manifold on three groups of synthetic digits: codes keep the groups far above
    chance, and a second code length reuses the trained network instead of training again."""
    from scae_hash.hashers.scae_manifold import SCAEManifoldHasher
    from scae_hash.manifold.config import ManifoldConfig

    x, labels = synthetic_digits(groups=3, per_group=150)
    config = tiny_manifold_config(tmp_path)
    assert isinstance(config, ManifoldConfig)
    first = SCAEManifoldHasher(16, 0, config=config, run_dir=tmp_path / "run", progress=False).fit(x)
    codes = first.encode(x)
    metrics = evaluate_codes(codes[::10], codes, labels[::10], labels, progress=False)
    assert metrics.summary()["map"] > 0.8  # chance is 1/3
    second = SCAEManifoldHasher(32, 0, config=config, run_dir=tmp_path / "run", progress=False).fit(x)
    assert not hasattr(second, "train_seconds_") and hasattr(first, "train_seconds_")
    np.testing.assert_array_equal(first.features(x), second.features(x))


def test_train_refuses_too_few_images_for_the_graph_in_one_line(real_data_dir):
    # TensorFlow sets TF_CPP_MIN_LOG_LEVEL in this process once a test imports it; a user's shell has none.
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "scae_hash", "train", "--config", "experiments/configs/manifold/mnist.yaml",
                           "--bits", "16", "--subset", "10", "--no-save", "--quiet", "--data-dir", str(real_data_dir)],
                          capture_output=True, text=True, env=environment)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == ["scae-hash: error: scae-manifold: a 15-neighbour graph needs more than 15 training images, got 10"]
    assert "Traceback" not in done.stderr
