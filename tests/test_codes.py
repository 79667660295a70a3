"""Bit codes: validation, packing and exact Hamming distances against brute force."""

import numpy as np
import pytest

from scae_hash.codes import (
    hamming_distances,
    hamming_distances_packed,
    iter_hamming_distances,
    pack_bits,
    pack_words,
    unpack_bits,
    validate_bits,
)
from scae_hash.errors import CodesFileError, ScaeHashError

BIT_COUNTS = (1, 7, 8, 13, 63, 64, 65, 130, 255, 256)


def random_bits(rng: np.random.Generator, n: int, n_bits: int) -> np.ndarray:
    return rng.integers(0, 2, size=(n, n_bits), dtype=np.uint8)


def brute_force_distances(query_bits: np.ndarray, database_bits: np.ndarray) -> np.ndarray:
    return (query_bits[:, None, :] != database_bits[None, :, :]).sum(axis=-1)


@pytest.mark.parametrize("n_bits", BIT_COUNTS)
def test_pack_unpack_round_trip(n_bits):
    bits = random_bits(np.random.default_rng(n_bits), 17, n_bits)
    packed = pack_bits(bits)
    assert packed.shape == (17, -(-n_bits // 8)) and packed.dtype == np.uint8
    np.testing.assert_array_equal(unpack_bits(packed, n_bits), bits)


def test_pack_bits_puts_the_first_bit_in_the_high_bit_like_np_packbits():
    bits = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(pack_bits(bits), [[0b10000000, 0b10000000]])


def test_pack_words_zero_pads_to_whole_words():
    words = pack_words(np.ones((3, 65), dtype=np.uint8))
    assert words.shape == (3, 2) and words.dtype == np.uint64
    np.testing.assert_array_equal(np.bitwise_count(words).sum(axis=1), [65, 65, 65])


@pytest.mark.parametrize(
    "bad",
    [np.zeros(8, dtype=np.uint8), np.zeros((2, 3, 4), dtype=np.uint8), np.zeros((4, 0), dtype=np.uint8),
     np.array([[0, 1, 2]]), np.array([[0, -1, 1]]), np.array([[0.5, 1.0]])],
    ids=["1-D", "3-D", "no-bits", "value-2", "value-minus-1", "value-half"],
)
def test_validate_bits_rejects_bad_layouts_with_one_clear_error(bad):
    with pytest.raises(CodesFileError, match="codes"):
        validate_bits(bad)
    assert issubclass(CodesFileError, ScaeHashError)


def test_validate_bits_accepts_bool_int_and_float_zero_one_and_returns_uint8():
    for bits in (np.array([[True, False]]), np.array([[1, 0]], dtype=np.int64), np.array([[1.0, 0.0]])):
        checked = validate_bits(bits)
        assert checked.dtype == np.uint8
        np.testing.assert_array_equal(checked, [[1, 0]])


def test_unpack_bits_rejects_more_bits_than_stored():
    with pytest.raises(CodesFileError):
        unpack_bits(np.zeros((2, 1), dtype=np.uint8), 9)


@pytest.mark.parametrize("n_bits", BIT_COUNTS)
def test_hamming_distances_match_brute_force(n_bits):
    rng = np.random.default_rng(100 + n_bits)
    query_bits, database_bits = random_bits(rng, 9, n_bits), random_bits(rng, 301, n_bits)
    distances = hamming_distances(query_bits, database_bits)
    assert distances.dtype == (np.uint8 if n_bits <= 255 else np.uint16)
    np.testing.assert_array_equal(distances, brute_force_distances(query_bits, database_bits))


def test_hamming_distances_reach_the_extremes():
    zeros, ones = np.zeros((1, 256), dtype=np.uint8), np.ones((1, 256), dtype=np.uint8)
    np.testing.assert_array_equal(hamming_distances(zeros, np.vstack([zeros, ones])), [[0, 256]])


def test_hamming_distances_packed_default_dtype_covers_every_word():
    rng = np.random.default_rng(3)
    query_bits, database_bits = random_bits(rng, 5, 250), random_bits(rng, 40, 250)
    distances = hamming_distances_packed(pack_words(query_bits), pack_words(database_bits))
    assert distances.dtype == np.uint16
    np.testing.assert_array_equal(distances, brute_force_distances(query_bits, database_bits))


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_iter_hamming_distances_covers_every_query_once(chunk_size):
    rng = np.random.default_rng(5)
    query_bits, database_bits = random_bits(rng, 23, 13), random_bits(rng, 50, 13)
    expected = brute_force_distances(query_bits, database_bits)
    next_row = 0
    for rows, distances in iter_hamming_distances(query_bits, database_bits, chunk_size=chunk_size):
        assert rows.start == next_row
        np.testing.assert_array_equal(distances, expected[rows])
        next_row = rows.stop
    assert next_row == len(query_bits)


def test_distances_reject_codes_of_different_lengths():
    with pytest.raises(CodesFileError, match="bits"):
        hamming_distances(np.zeros((2, 8), dtype=np.uint8), np.zeros((2, 9), dtype=np.uint8))
