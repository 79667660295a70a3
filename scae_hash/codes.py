"""Binary codes: validation, packing and exact Hamming distances.

Codes travel as uint8 {0, 1} arrays of shape (n, n_bits) (the docs/protocol.md layout, clear but
8x larger than needed). For distances they are packed into uint64 words, zero-padded to a
multiple of 64 bits so padding never adds to a distance, and compared with XOR + popcount
(``np.bitwise_count``). Measured side by side on 1,000 x 69,000 codes on 2 CPU cores, this
was about 2x faster than the exact +-1 float32 matrix product (0.08-0.12 s against 0.15-0.37 s
at 64 bits, still ahead at 256), whose float output must be written and converted back;
but only while the uint64 XOR temporary stays small enough for the cache (a naive
full-size XOR took 0.5 s): hence the row blocks below.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from scae_hash.errors import CodesFileError

WORD_BITS = 64
# Bytes of the uint64 XOR temporary per row block: small enough for the L2/L3 cache.
_XOR_BLOCK_BYTES = 1 << 21
# Distance entries per chunk yielded by iter_hamming_distances (4 MB of uint8).
_CHUNK_ENTRIES = 1 << 22


def validate_bits(bits: np.ndarray, name: str = "codes") -> np.ndarray:
    """Return `bits` as uint8 after checking the (n, n_bits) {0, 1} layout.

    Every consumer of codes calls this first, so a wrong file fails with one clear message
    instead of producing silently wrong distances (e.g. a {-1, 1} array would wrap around).
    """
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] == 0:
        raise CodesFileError(f"{name} must be a 2-D (n, n_bits) array with n_bits >= 1, got shape {bits.shape}")
    if bits.dtype != np.bool_ and not ((bits == 0) | (bits == 1)).all():
        raise CodesFileError(f"{name} must hold only the values 0 and 1 (got {np.unique(bits)[:5]}...)")
    return bits.astype(np.uint8, copy=False)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack (n, n_bits) {0, 1} codes into (n, ceil(n_bits / 8)) uint8: the storage of an index."""
    return np.packbits(validate_bits(bits), axis=1)


def unpack_bits(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of `pack_bits`: the number of bits is needed because the last byte is padded."""
    packed = np.asarray(packed)
    if packed.ndim != 2 or packed.dtype != np.uint8 or not 0 < n_bits <= 8 * packed.shape[1]:
        raise CodesFileError(
            f"packed codes must be 2-D uint8 holding {n_bits} bits, got {packed.dtype} {packed.shape}"
        )
    return np.unpackbits(packed, axis=1, count=n_bits)


def distance_dtype(n_bits: int) -> np.dtype:
    """Smallest unsigned dtype holding every distance 0..n_bits (uint8 sorts fastest)."""
    return np.dtype(np.uint8 if n_bits <= np.iinfo(np.uint8).max else np.uint16)


def pack_words(bits: np.ndarray) -> np.ndarray:
    """Pack codes into (n, ceil(n_bits / 64)) uint64 words, zero-padded, for XOR + popcount."""
    packed = pack_bits(bits)
    n_words = -(-packed.shape[1] // 8)
    padded = np.zeros((packed.shape[0], 8 * n_words), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


def hamming_distances_packed(
    query_words: np.ndarray, database_words: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Exact Hamming distances between `pack_words` outputs, written into `out` if given.

    `out` lets a caller reuse one buffer per chunk; without it the dtype covers every
    padded bit (callers that know n_bits pass a smaller `out`, see `hamming_distances`).
    """
    n_queries, n_words = query_words.shape
    n_database = database_words.shape[0]
    if database_words.shape[1] != n_words:
        raise CodesFileError(f"query codes have {n_words} words but database codes have {database_words.shape[1]}")
    if out is None:
        out = np.empty((n_queries, n_database), dtype=distance_dtype(WORD_BITS * n_words))
    rows = max(1, _XOR_BLOCK_BYTES // (8 * max(n_database, 1)))
    xor = np.empty((rows, n_database), dtype=np.uint64)
    word_count = np.empty((rows, n_database), dtype=np.uint8)
    for start in range(0, n_queries, rows):
        stop = min(start + rows, n_queries)
        block_xor, block_count, block_out = xor[: stop - start], word_count[: stop - start], out[start:stop]
        for word in range(n_words):
            np.bitwise_xor(query_words[start:stop, word, None], database_words[None, :, word], out=block_xor)
            if word == 0:
                np.bitwise_count(block_xor, out=block_out)
            else:
                np.bitwise_count(block_xor, out=block_count)
                block_out += block_count
    return out


def iter_hamming_distances(
    query_bits: np.ndarray, database_bits: np.ndarray, chunk_size: int | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (query_slice, distances) chunk by chunk so no caller holds all nq x ndb distances.

    `chunk_size` is the number of queries per chunk; by default about 4 MB of distances.
    """
    query_words, database_words, dtype = _packed_pair(query_bits, database_bits)
    n_queries, n_database = query_words.shape[0], database_words.shape[0]
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ENTRIES // max(n_database, 1))
    for start in range(0, n_queries, chunk_size):
        rows = slice(start, min(start + chunk_size, n_queries))
        out = np.empty((rows.stop - rows.start, n_database), dtype=dtype)
        yield rows, hamming_distances_packed(query_words[rows], database_words, out=out)


def hamming_distances(query_bits: np.ndarray, database_bits: np.ndarray) -> np.ndarray:
    """All (nq, ndb) exact Hamming distances, uint8 up to 255 bits, else uint16.

    For moderate sizes only: large evaluations go chunk by chunk (`iter_hamming_distances`).
    """
    query_words, database_words, dtype = _packed_pair(query_bits, database_bits)
    out = np.empty((query_words.shape[0], database_words.shape[0]), dtype=dtype)
    return hamming_distances_packed(query_words, database_words, out=out)


def validate_pair(query_bits: np.ndarray, database_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate both code sets and check that they have the same length."""
    query_bits = validate_bits(query_bits, "query codes")
    database_bits = validate_bits(database_bits, "database codes")
    if query_bits.shape[1] != database_bits.shape[1]:
        raise CodesFileError(
            f"query codes have {query_bits.shape[1]} bits but database codes have {database_bits.shape[1]}"
        )
    return query_bits, database_bits


def _packed_pair(query_bits: np.ndarray, database_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """Validate both code sets and pack them into words."""
    query_bits, database_bits = validate_pair(query_bits, database_bits)
    return pack_words(query_bits), pack_words(database_bits), distance_dtype(query_bits.shape[1])
