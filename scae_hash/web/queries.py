"""Query images decoded off the search worker, at a bounded cost each and a bounded number at once.

Every search runs on one worker thread (a hasher is not promised to be thread-safe), so
anything slow there delays every other query. Decoding and resizing, the part whose cost
depends on what a stranger uploads, happens here instead, before the worker, and the pixels
handed to it are already at the index's image size. An image is refused from its header when
it would decode to more than MAX_QUERY_PIXELS. One of up to LIGHT_PIXELS (what a query
usually is) is decoded at once on its request's thread; a larger one goes to a lane of its
own, DECODE_WORKERS threads with at most MAX_WAITING more waiting (others are told to retry,
HTTP 503), so large uploads, hostile or not, queue behind each other and not in front of
small queries; where the system allows it (Linux), that lane's threads also run at a lower
priority, so that a large decode takes the CPU time small queries leave.
"""

from __future__ import annotations

import io
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from werkzeug.exceptions import BadRequest, ServiceUnavailable

from scae_hash.images import IMAGE_FORMATS, ImageReadError, TooLargeError, decode_image, resize_pixels

#: A 16-megapixel photo (4928 x 3264) decodes in well under a second; an 88-megapixel PNG
#: of a few hundred KB would hold a core for seconds. A large JPEG counts after `draft`.
MAX_QUERY_PIXELS = 16_000_000
LIGHT_PIXELS = 2_000_000
DECODE_WORKERS = 1
MAX_WAITING = 4
LARGE_LANE_NICENESS = 10
_NOT_AN_IMAGE = ("empty file", "not an image format Pillow reads")


class QueryDecoder:
    """Decode a query (an upload's bytes, or an indexed file's path) to the index's image size."""

    def __init__(self, shape: tuple[int, int, int], *, max_pixels: int = MAX_QUERY_PIXELS,
                 workers: int = DECODE_WORKERS, waiting: int = MAX_WAITING) -> None:
        self.height, self.width = shape[:2]
        self.max_pixels = max_pixels
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="scae-hash-decode", initializer=_lower_priority)
        self.slots = threading.BoundedSemaphore(workers + waiting)

    def __call__(self, source: bytes | str, name: str) -> tuple[np.ndarray, float]:
        """(pixels at the index's size, seconds spent decoding); a bad image is a 400 with the
        reason, a full lane of large images a 503."""
        heavy = _header_pixels(source) > LIGHT_PIXELS
        if heavy and not self.slots.acquire(blocking=False):
            raise ServiceUnavailable("the server is busy decoding other large images; try again in a moment")
        try:
            return self.pool.submit(self._decode, source, name).result() if heavy else self._decode(source, name)
        except TooLargeError as error:
            raise BadRequest(f"{name!r} is too large to search with: {error.reason}; scale it down first") from None
        except ImageReadError as error:
            what = "an image" if error.reason in _NOT_AN_IMAGE else "a readable image"
            raise BadRequest(f"{name!r} is not {what} ({error.reason})") from None
        finally:
            if heavy:
                self.slots.release()

    def _decode(self, source: bytes | str, name: str) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        pixels = decode_image(source, repr(name), formats=IMAGE_FORMATS, max_pixels=self.max_pixels)
        return resize_pixels(pixels, self.height, self.width), time.perf_counter() - start


def _lower_priority() -> None:
    """Lower this thread's scheduling priority (Linux schedules threads one by one)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LARGE_LANE_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: the lane still bounds the cost
        pass


def _header_pixels(source: bytes | str) -> int:
    """Pixels an image's header declares (0 when there is no header to read: decoding says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a decompression bomb is refused when decoded
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=IMAGE_FORMATS) as image:
                return image.width * image.height
    except Exception:  # Pillow's ways of saying "not an image" are many
        return 0
