"""Retrieval structures against brute force, with many ties."""

import faiss
import numpy as np
import pytest

from scae_hash.codes import pack_bits
from scae_hash.errors import ConfigError
from scae_hash.index import HammingIndex, two_stage_search


@pytest.fixture
def codes():
    """Short codes and duplicated items: most distances are tied."""
    rng = np.random.default_rng(0)
    database = rng.integers(0, 2, (500, 12), dtype=np.uint8)
    database[250:] = database[:250]
    queries = np.concatenate([database[:3], rng.integers(0, 2, (4, 12), dtype=np.uint8)])
    return queries, database


def brute_distances(queries, database):
    return (queries[:, None, :] != database[None, :, :]).sum(axis=2)


def brute_ranking(distances):
    """The protocol's tie rule: by distance, equal distances in database order."""
    return np.lexsort((np.arange(len(distances)), distances))


def test_search_is_exact_with_ties_in_database_order(codes):
    queries, database = codes
    distances, ids = HammingIndex(12).add(database[:200]).add(database[200:]).search(queries, 20)
    brute = brute_distances(queries, database)
    for q in range(len(queries)):
        expected = brute_ranking(brute[q])[:20]
        np.testing.assert_array_equal(ids[q], expected)
        np.testing.assert_array_equal(distances[q], brute[q][expected])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("k", [1, 10, 100, 1000])
def test_tie_rule_holds_across_faiss_scan_blocks_and_threads(threads, k):
    """8-bit codes over 70,000 items (faiss scans 65,536 at a time): thousands of items per
    distance, so any other tie order would show."""
    rng = np.random.default_rng(k)
    database = rng.integers(0, 2, (70_000, 8), dtype=np.uint8)
    queries = rng.integers(0, 2, (6, 8), dtype=np.uint8)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        distances, ids = HammingIndex(8).add(database).search(queries, k)
        single = [HammingIndex(8).add(database).search(query[None], k)[1][0] for query in queries[:2]]
    finally:
        faiss.omp_set_num_threads(before)
    brute = brute_distances(queries, database)
    for q in range(len(queries)):
        expected = brute_ranking(brute[q])[:k]
        np.testing.assert_array_equal(ids[q], expected)
        np.testing.assert_array_equal(distances[q], brute[q][expected])
    for q, found in enumerate(single):
        np.testing.assert_array_equal(found, ids[q])


def test_k_beyond_the_database(codes):
    queries, database = codes
    distances, ids = HammingIndex(12).add(database[:5]).search(queries, 50)
    assert ids.shape == distances.shape == (len(queries), 5)
    assert HammingIndex(12).search(queries, 5)[1].shape == (len(queries), 0)


def test_packed_storage_round_trips(codes):
    _, database = codes
    index = HammingIndex(12).add(database)
    np.testing.assert_array_equal(index.packed(), pack_bits(database))
    np.testing.assert_array_equal(index.codes(), database)
    again = HammingIndex(12).add_packed(index.packed())
    np.testing.assert_array_equal(again.search(database[:4], 7)[1], index.search(database[:4], 7)[1])


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_radius_lookup_finds_exactly_the_items_within_radius(codes, radius):
    queries, database = codes
    index = HammingIndex(12).add(database)
    brute = brute_distances(queries, database)
    for q, (distances, ids) in enumerate(index.range_search(queries, radius)):
        expected = brute_ranking(brute[q])[: (brute[q] <= radius).sum()]
        np.testing.assert_array_equal(ids, expected)
        np.testing.assert_array_equal(distances, brute[q][expected])


@pytest.mark.parametrize("n_bits", [16, 64, 256])
@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_multi_index_hashing_equals_brute_force(n_bits, radius):
    """Codes long enough to cut into radius + 1 substrings of 8+ bits use the hash tables
    (else faiss' exact scan); queries near database items, so every radius finds some."""
    rng = np.random.default_rng(n_bits + radius)
    database = rng.integers(0, 2, (3000, n_bits), dtype=np.uint8)
    database[1500:2000] = database[:500]  # ties
    queries = database[rng.choice(3000, 40)].copy()
    for row, flips in enumerate(rng.integers(0, radius + 2, 40)):
        queries[row, rng.choice(n_bits, flips, replace=False)] ^= 1
    index = HammingIndex(n_bits).add(database)
    found = index.range_search(queries, radius)
    assert isinstance(index._radius_index(radius), faiss.IndexBinaryMultiHash) == (n_bits // (radius + 1) >= 8)
    brute = brute_distances(queries, database)
    assert sum(len(ids) for _, ids in found) > len(queries) // 2
    for q, (distances, ids) in enumerate(found):
        expected = brute_ranking(brute[q])[: (brute[q] <= radius).sum()]
        np.testing.assert_array_equal(ids, expected)
        np.testing.assert_array_equal(distances, brute[q][expected])
    index.add(queries)  # the tables are rebuilt for the grown index
    assert all(len(ids) >= 1 for _, ids in index.range_search(queries, radius))


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
    queries, database = codes
    with pytest.raises(ConfigError, match="12-bit"):
        HammingIndex(12).add(database[:, :8])
    with pytest.raises(ConfigError, match="12-bit"):
        HammingIndex(12).add(database).search(queries[:, :8], 3)
    with pytest.raises(ConfigError, match="radius"):
        HammingIndex(12).add(database).range_search(queries, -1)
