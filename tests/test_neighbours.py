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
