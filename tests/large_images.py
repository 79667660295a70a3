"""Large images that are small on disk: the uploads that cost a server seconds (tests and
experiments/bench_serve.py)."""

import struct
import zlib
from pathlib import Path


def flat_png(path: Path, width: int, height: int, depth: int = 8, grey: bool = False) -> Path:
    """A flat mid-grey PNG of width x height pixels (RGB, or greyscale with `grey`; 8 or 16
    bits a sample) of a few hundred KB, written row by row: making it costs no memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" + b"\x80" * (width * (1 if grey else 3) * depth // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, 0 if grey else 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path
