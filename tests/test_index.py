"""Retrieval structures against brute force."""

import numpy as np
import pytest

from scae_hash.errors import ConfigError
from scae_hash.index import HammingIndex, HashBuckets, two_stage_search


@pytest.fixture
def codes():
    rng = np.random.default_rng(0)
    database = rng.integers(0, 2, (500, 12), dtype=np.uint8)
    queries = np.concatenate([database[:3], rng.integers(0, 2, (4, 12), dtype=np.uint8)])
    return queries, database


def brute_distances(queries, database):
    return (queries[:, None, :] != database[None, :, :]).sum(axis=2)


def test_search_is_exact_with_ties_in_database_order(codes):
    queries, database = codes
    distances, ids = HammingIndex(12).add(database[:200]).add(database[200:]).search(queries, 20)
    brute = brute_distances(queries, database)
    for q in range(len(queries)):
        expected = np.lexsort((np.arange(len(database)), brute[q]))[:20]
        np.testing.assert_array_equal(ids[q], expected)
        np.testing.assert_array_equal(distances[q], brute[q][expected])


def test_k_beyond_the_database(codes):
    queries, database = codes
    distances, ids = HammingIndex(12).add(database[:5]).search(queries, 50)
    assert ids.shape == (len(queries), 5)


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_bucket_lookup_finds_exactly_the_items_within_radius(codes, radius):
    queries, database = codes
    buckets = HashBuckets(12).add(database)
    brute = brute_distances(queries, database)
    for q, query in enumerate(queries):
        np.testing.assert_array_equal(buckets.lookup(query, radius), np.flatnonzero(brute[q] <= radius))


def test_two_stage_reranks_the_shortlist_by_features(codes):
    queries, database = codes
    rng = np.random.default_rng(1)
    database_features = rng.standard_normal((len(database), 8)).astype(np.float32)
    query_features = database_features[:len(queries)] + 0.01
    index = HammingIndex(12).add(database)
    scores, ids = two_stage_search(index, queries, query_features, database_features, k=5, shortlist=50)
    _, shortlist = index.search(queries, 50)
    for q in range(len(queries)):
        assert set(ids[q]) <= set(shortlist[q])
        assert np.all(np.diff(scores[q]) <= 1e-6)
    assert ids[0, 0] == 0  # query 0's features are item 0's
    with pytest.raises(ConfigError, match="shortlist"):
        two_stage_search(index, queries, query_features, database_features, k=60, shortlist=50)


def test_wrong_code_length_is_refused(codes):
    _, database = codes
    with pytest.raises(ConfigError, match="12-bit"):
        HammingIndex(12).add(database[:, :8])
