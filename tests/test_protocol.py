"""The docs/protocol.md splits: their set properties, their determinism, and the exact draw (pinned)."""

import os
from pathlib import Path

import numpy as np
import pytest

from scae_hash.data import read_idx
from scae_hash.errors import ConfigError, DataError
from scae_hash.protocol import Split, protocol_split, subset_indices, validation_split

REAL_DATA = Path(
    os.environ.get("SCAE_HASH_DATA") or Path(__file__).parents[1] / ".." / "shared" / "data"
)


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    """A shuffled pool of 10 classes of 250 to 430 items: room for test and validation queries."""
    rng = np.random.default_rng(7)
    return rng.permutation(np.repeat(np.arange(10), np.arange(250, 450, 20)))


def assert_partition(split: Split, pool: np.ndarray) -> None:
    for part in (split.query, split.database, split.train):
        assert part.dtype == np.int64 and np.all(np.diff(part) > 0)  # ascending, no repeats
    assert np.intersect1d(split.query, split.database).size == 0
    np.testing.assert_array_equal(np.union1d(split.query, split.database), pool)


def test_protocol_split_partitions_the_pool(labels):
    split = protocol_split(labels, seed=0)
    assert_partition(split, np.arange(len(labels)))
    assert np.bincount(labels[split.query]).tolist() == [100] * 10
    np.testing.assert_array_equal(split.train, split.database)


def test_protocol_split_is_a_function_of_the_seed(labels):
    query = protocol_split(labels, seed=3).query
    np.testing.assert_array_equal(protocol_split(labels.copy(), seed=3).query, query)
    assert not np.array_equal(protocol_split(labels, seed=4).query, query)


def test_the_draw_is_pinned():
    """Reported splits depend on this exact algorithm; a change here must be deliberate."""
    split = protocol_split(np.tile(np.arange(3), 150), seed=0, per_class=2)
    assert split.query.tolist() == [8, 35, 121, 139, 285, 378]


def test_the_real_mnist_seed_0_queries_are_pinned():
    folder = REAL_DATA / "mnist"
    if not folder.exists():
        pytest.skip(f"real data not found at {folder} (set SCAE_HASH_DATA to the shared data)")
    parts = [read_idx(folder / f"{part}-labels-idx1-ubyte.gz") for part in ("train", "t10k")]
    split = protocol_split(np.concatenate(parts), seed=0)
    assert (len(split.query), len(split.database)) == (1000, 69_000)
    assert split.query[:8].tolist() == [19, 156, 202, 326, 329, 344, 465, 474]


def test_a_class_too_small_for_the_queries_is_refused():
    with pytest.raises(DataError, match="class 1 has 99 items"):
        protocol_split(np.repeat([0, 1], [100, 99]))


@pytest.mark.parametrize(
    "bad_labels", [np.zeros((3, 2), np.int64), np.array([0.0, 1.0]), np.array([], np.int64)]
)
def test_labels_must_be_a_non_empty_integer_vector(bad_labels):
    with pytest.raises(DataError, match="1-D integer"):
        protocol_split(bad_labels)


def test_validation_split_stays_inside_the_training_set(labels):
    split = protocol_split(labels, seed=0)
    validation = validation_split(labels, split, seed=0)
    assert_partition(validation, split.train)
    assert np.intersect1d(validation.query, split.query).size == 0
    assert np.bincount(labels[validation.query]).tolist() == [100] * 10
    np.testing.assert_array_equal(validation.train, validation.database)


def test_validation_split_draws_with_seed_plus_one(labels):
    split = protocol_split(labels, seed=0)
    query = validation_split(labels, split, seed=0).query
    np.testing.assert_array_equal(validation_split(labels, split, seed=0).query, query)
    assert not np.array_equal(validation_split(labels, split, seed=1).query, query)
    pool = np.arange(len(labels))
    whole_pool = Split(query=np.empty(0, np.int64), database=pool, train=pool)
    np.testing.assert_array_equal(
        validation_split(labels, whole_pool, seed=0).query, protocol_split(labels, seed=1).query
    )


def test_subset_is_seeded_sorted_and_inside_the_indices():
    indices = np.arange(10, 1000, 3)
    subset = subset_indices(indices, 50, seed=2)
    assert len(subset) == 50 and np.all(np.diff(subset) > 0) and np.isin(subset, indices).all()
    np.testing.assert_array_equal(subset, subset_indices(indices, 50, seed=2))
    assert not np.array_equal(subset, subset_indices(indices, 50, seed=3))


@pytest.mark.parametrize("n", [0, 331])
def test_subset_size_out_of_range_is_refused(n):
    with pytest.raises(ConfigError, match="1..330"):
        subset_indices(np.arange(10, 1000, 3), n, seed=0)
