"""The image paths of an index, kept as the file stores them: one byte array, NUL between paths.

A million paths as Python strings cost several times their bytes and seconds to build; an
index server shows a few dozen of them per query. `PathTable` holds the raw bytes and where
each path starts, and decodes a path only when it is asked for.

Paths are the bytes the file system gave (NUL is the one byte no path holds), so a non-UTF-8
file name survives; in Python they are `str` with surrogate escapes (what `os` functions
take back), printable through `images.display_path`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

_SCAN_BYTES = 1 << 20  # NULs are looked for this many bytes at a time: a bounded temporary


def encode_paths(paths: Iterable[str]) -> np.ndarray:
    """Paths as one uint8 array: their file-system bytes joined by NUL."""
    return np.frombuffer(b"\0".join(os.fsencode(path) for path in paths), dtype=np.uint8)


class PathTable(Sequence[str]):
    """Paths decoded on demand from their stored bytes (see the module docstring)."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
        dtype = np.uint32 if self.raw.size < 2**32 else np.int64
        ends = [(np.flatnonzero(self.raw[start:start + _SCAN_BYTES] == 0) + start).astype(dtype)
                for start in range(0, self.raw.size, _SCAN_BYTES)]
        count = sum(len(end) for end in ends) + 1 if self.raw.size else 0
        # starts[i]:starts[i + 1] - 1 are path i's bytes (a virtual separator after the last path)
        self.starts = np.empty(count + 1, dtype)
        self.starts[0] = 0
        if count:
            np.concatenate(ends, out=self.starts[1:-1])
            self.starts[1:-1] += 1
            self.starts[-1] = self.raw.size + 1

    @classmethod
    def from_paths(cls, paths: Iterable[str]) -> "PathTable":
        return cls(encode_paths(paths))

    def __len__(self) -> int:
        return len(self.starts) - 1

    def bytes_of(self, position: int) -> bytes:
        """Path `position` as the file system's bytes."""
        if not -len(self) <= position < len(self):
            raise IndexError(position)
        position %= len(self)
        return self.raw[int(self.starts[position]):int(self.starts[position + 1]) - 1].tobytes()

    def __getitem__(self, position: int | slice) -> str | list[str]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        return os.fsdecode(self.bytes_of(int(position)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_list())

    def to_list(self) -> list[str]:
        """Every path as a `str` (for whole-index work such as appending, not for serving)."""
        return os.fsdecode(self.raw.tobytes()).split("\0") if len(self) else []

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PathTable):
            return np.array_equal(self.raw, other.raw)
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return self.to_list() == list(other)
        return NotImplemented

    __hash__ = None  # mutable-looking and compared by content, like a list

    def __repr__(self) -> str:
        return f"PathTable({len(self)} paths, {self.raw.size} bytes)"

    def common_folder(self) -> str:
        """The deepest folder that holds every path (as `os.path.commonpath` of their folders),
        found over the raw bytes without decoding each path."""
        if not len(self):
            return os.sep
        first = self.bytes_of(0)
        prefix = len(first)
        reference = np.frombuffer(first, dtype=np.uint8)
        padded = np.concatenate([self.raw, np.zeros(1, np.uint8)])  # reads past the end see a NUL
        offsets = np.arange(prefix, dtype=np.int64)
        for start in range(0, len(self), 1 << 14):
            if not prefix:
                break
            rows = self.starts[start:min(start + (1 << 14), len(self))].astype(np.int64)
            window = padded[np.minimum(rows[:, None] + offsets[:prefix], self.raw.size)]
            differs = window != reference[:prefix]
            mismatch = np.where(differs.any(axis=1), differs.argmax(axis=1), prefix)
            prefix = int(mismatch.min())
        # The prefix may end inside a name ("/a/bc", "/a/bd"): its folder ends at the last separator.
        return os.fsdecode(first[:first.rfind(os.fsencode(os.sep), 0, prefix)]) or os.sep
