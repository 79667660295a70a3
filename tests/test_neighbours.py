"""Neighbour positives: mined without labels, never the image itself, fed as pairs."""

import numpy as np

from scae_hash.model.neighbours import NeighbourPairs, mine_neighbours


def test_neighbours_are_the_nearest_others_and_never_self():
    rng = np.random.default_rng(0)
    centres = rng.random((4, 6, 6, 1))
    labels = np.repeat(np.arange(4), 50)
    images = (centres[labels] + 0.02 * rng.standard_normal((200, 6, 6, 1))).astype(np.float32)
    images[10] = images[11]  # an exact duplicate must still not be its own neighbour
    neighbours = mine_neighbours(images, k=5)
    assert neighbours.shape == (200, 5)
    assert not (neighbours == np.arange(200)[:, None]).any()
    assert 11 in neighbours[10] and 10 in neighbours[11]
    assert (labels[neighbours] == labels[:, None]).mean() > 0.99


def test_pairs_cover_every_image_once_per_epoch_with_a_neighbour_partner():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    neighbours = (np.arange(10)[:, None] + np.array([[1, 2]])) % 10
    pairs = NeighbourPairs(images, neighbours, batch_size=4, seed=0)
    assert len(pairs) == 3
    seen = []
    for batch in range(len(pairs)):
        ((anchors, partners),) = pairs[batch]
        anchor_ids, partner_ids = anchors.ravel().astype(int), partners.ravel().astype(int)
        assert all(p in neighbours[a] for a, p in zip(anchor_ids, partner_ids))
        seen += list(anchor_ids)
    assert sorted(seen) == list(range(10))


def test_remining_uses_the_models_own_features():
    import keras

    from scae_hash.config import SCAEConfig
    from scae_hash.model.hashing_model import HashingModel
    from scae_hash.model.neighbours import RemineNeighbours, nearest_by_cosine

    config = SCAEConfig.from_dict(
        {"dataset": "mnist", "model": {"block_channels": [4], "scales": [1.0], "fused_depths": [1], "feature_dim": 8}}
    )
    keras.utils.set_random_seed(0)
    model = HashingModel(8, **config.model_hyperparameters())
    images = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    pairs = NeighbourPairs(images, np.zeros((64, 3), dtype=np.int64), batch_size=16, seed=0)
    remine = RemineNeighbours(pairs, k=3, every=2)
    remine.set_model(model)

    remine.on_epoch_begin(0)
    remine.on_epoch_begin(1)
    assert not pairs.neighbours.any()  # not yet: epochs 2, 4, ... re-mine
    remine.on_epoch_begin(2)
    features = np.asarray(model.predict(images, verbose=0)["features"])
    np.testing.assert_array_equal(pairs.neighbours, nearest_by_cosine(features, 3))


def test_a_resumed_run_remines_at_once():
    from scae_hash.model.neighbours import RemineNeighbours

    class FakeModel:
        calls = 0

        def predict(self, images, **kwargs):
            FakeModel.calls += 1
            return {"features": np.eye(len(images), dtype=np.float32) + 1}

    pairs = NeighbourPairs(np.zeros((5, 2, 2, 1), np.float32), np.zeros((5, 2), np.int64), batch_size=2, seed=0)
    remine = RemineNeighbours(pairs, k=2, every=2)
    remine.set_model(FakeModel())
    remine.on_epoch_begin(3)  # resumed after epoch 2: its mined neighbours were lost
    assert FakeModel.calls == 1
    remine.on_epoch_begin(4)
    assert FakeModel.calls == 2
