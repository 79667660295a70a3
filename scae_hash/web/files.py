"""Which indexed file `/image/<id>` may send, and the name a result shows.

The index file names the paths, and an index file can be altered: a path is served only when
it lies (as written, `..` folded) inside a folder the index was built from and the file
opens as an image, so a path rewritten to /etc/passwd, or a text file in the folder, is
refused. Nothing is done per image when the server starts: a path is decoded, checked and
named when a result shows it.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image

from scae_hash.image_search import ImageIndex
from scae_hash.images import IMAGE_FORMATS, display_path

# Pillow calls a JPEG with an embedded preview (most cameras') MPO; browsers know it as JPEG.
_MIME_OVERRIDES = {"MPO": "image/jpeg"}


class NotServed(Exception):
    """An indexed image that cannot be sent, with the reason in words."""


@dataclass
class ServedImage:
    stream: BinaryIO
    mimetype: str
    size: int
    modified: float


class IndexedFiles:
    """The indexed images of one index, served by position."""

    def __init__(self, index: ImageIndex) -> None:
        self.paths = index.paths
        self._folders = index.folders

    def __len__(self) -> int:
        return len(self.paths)

    @functools.cached_property
    def folders(self) -> list[str]:
        """The indexed folders; for a file written before they were recorded, the folder that
        holds every indexed path (found on first use, over the stored bytes)."""
        folders = self._folders if self._folders is not None else [self.paths.common_folder()]
        return [os.path.normpath(folder) for folder in folders]

    @functools.cached_property
    def root(self) -> str:
        """The folder that names are shown relative to: short, and still unique."""
        return os.path.commonpath(self.folders)

    def name(self, position: int) -> str:
        """Path `position` relative to the indexed folder, printable whatever its bytes."""
        path = os.path.normpath(self.paths[position])
        inside = os.path.commonpath([path, self.root]) == self.root if os.path.isabs(path) else False
        return display_path(os.path.relpath(path, self.root) if inside else path)

    def exists(self, position: int) -> bool:
        return os.path.isfile(self.paths[position])

    def open(self, position: int) -> ServedImage:
        """The file of `position`, opened and checked (see the module docstring)."""
        if not 0 <= position < len(self.paths):
            raise NotServed(f"there is no indexed image {position} (the index holds {len(self.paths)})")
        path = self.paths[position]
        normal = os.path.normpath(path)
        if not os.path.isabs(normal) or not any(os.path.commonpath([normal, folder]) == folder
                                                for folder in self.folders):
            raise NotServed(f"{display_path(path)} lies outside the indexed folder, so it is not served")
        try:
            stream = open(path, "rb")
        except FileNotFoundError:
            raise NotServed(f"{display_path(path)} is missing: moved or deleted since it was indexed") from None
        except OSError as error:
            raise NotServed(f"{display_path(path)} cannot be read ({error.strerror})") from None
        try:
            status = os.fstat(stream.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise NotServed(f"{display_path(path)} is not a file")
            try:
                with Image.open(stream, formats=IMAGE_FORMATS) as image:
                    mimetype = _MIME_OVERRIDES.get(image.format) or Image.MIME.get(image.format, "application/octet-stream")
            except Exception:  # Pillow's ways of saying "not an image" are many
                raise NotServed(f"{display_path(path)} is not an image (any more)") from None
            stream.seek(0)
        except BaseException:
            stream.close()
            raise
        return ServedImage(stream, mimetype, status.st_size, status.st_mtime)
