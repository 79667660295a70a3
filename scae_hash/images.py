"""The one image decoder: data sets (zips, folders) and a user's folders read pixels alike.

Every image becomes 8-bit greyscale (h, w) or RGB (h, w, 3) whatever its mode: 16-bit and
32-bit integer greyscale are scaled from their 0..65535 range (not clipped at 255), float
greyscale is read as 0..1, palette images are expanded through their palette, CMYK and other
colour spaces are converted to RGB, and a transparent image is composited on white (what an
image viewer shows; the colour under a fully transparent pixel is arbitrary). The EXIF
orientation is applied, so a photo is seen the way its camera meant.

Images larger than Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) are
refused before they are decoded, and a huge JPEG is decoded at a reduced scale (``draft``),
so a large photo costs little memory. Indexing and search take the same road (`load_image`),
so an indexed image and the same file as a query get the same pixels. A query from a stranger
(`serve`) takes that road too, under a tighter pixel budget (`max_pixels`) checked from the
header, after the JPEG reduction, before any pixel is decoded.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from scae_hash.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: Pillow's decoders for those suffixes: all that a file from outside is offered to.
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF")

_GREY_MODES = ("1", "L", "LA", "La", "I", "F") + tuple(mode for mode in Image.MODES if mode.startswith("I;16"))
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_INTEGER_GREY_MAX = 65535  # 16-bit greyscale (PNG, TIFF) arrives as mode I;16 or I
REDUCED_SIDE = 1024  # a reduced JPEG keeps at least this many pixels on each side
_CHUNK_PIXELS = 1 << 20  # high-depth greyscale is brought to 8 bits this many pixels at a time
# PIL's ways of saying "not an image" (UnidentifiedImageError and truncated files are OSErrors).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


class ImageReadError(DataError):
    """One image file cannot be decoded (corrupt, empty, not an image, too large)."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"cannot decode image {label} ({reason})")
        self.reason = reason


class TooLargeError(ImageReadError):
    """An image with more pixels than the caller's budget (`decode_image`'s `max_pixels`)."""


Source = str | os.PathLike | bytes


def decode_image(source: Source, name: str | None = None, *, reduce: bool = True,
                 formats: tuple[str, ...] | None = None, max_pixels: int | None = None) -> np.ndarray:
    """Pixels of one image as uint8: (h, w) for greyscale, (h, w, 3) for colour.

    `source` is a path or the file's bytes; `name` names it in errors. With `reduce`, a JPEG
    larger than twice REDUCED_SIDE on both sides is decoded at a reduced scale (a photo to be
    hashed at 32 x 32 needs no 24 megapixels); data sets pass False to get the stored pixels.
    `formats` limits the decoders Pillow may try; an image that would still decode to more
    than `max_pixels` is refused (TooLargeError) before decoding.
    """
    label = name if name is not None else _label(source)
    try:
        with warnings.catch_warnings():
            # Between 1x and 2x the limit Pillow only warns; a bomb is refused either way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=formats) as image:
                if reduce and image.format == "JPEG":
                    image.draft("L" if image.mode == "L" else "RGB", (REDUCED_SIDE, REDUCED_SIDE))
                if max_pixels is not None and image.width * image.height > max_pixels:
                    raise TooLargeError(label, f"{image.width} x {image.height} pixels, more than the "
                                               f"{max_pixels / 1e6:g} megapixels allowed here")
                return np.asarray(_as_8bit(ImageOps.exif_transpose(image)))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageReadError(label, f"decompression bomb? {error}") from None
    except FileNotFoundError:
        raise ImageReadError(label, "no such file") from None
    except UnidentifiedImageError:
        empty = source == b"" if isinstance(source, bytes) else os.path.getsize(source) == 0
        raise ImageReadError(label, "empty file" if empty else "not an image format Pillow reads") from None
    except _DECODE_ERRORS as error:
        raise ImageReadError(label, str(error) or type(error).__name__) from None


def load_image(source: Source, shape: tuple[int, int, int], name: str | None = None) -> np.ndarray:
    """One image as float32 in [0, 1], resized to `shape` = (height, width, channels): the
    pixels an index stores codes of, and a query is encoded from."""
    return to_float(decode_image(source, name), shape)


def to_float(pixels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 pixels from `decode_image` as float32 (height, width, channels) in [0, 1],
    resized if needed and made grey (luma) or RGB (grey repeated) as `shape` asks."""
    height, width, channels = shape
    pixels = resize_pixels(pixels, height, width)
    if channels == 1 and pixels.ndim == 3:
        pixels = np.asarray(Image.fromarray(pixels).convert("L"))
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if pixels.shape[-1] != channels:
        pixels = np.repeat(pixels, channels, axis=-1)
    return pixels.astype(np.float32) / 255


def resize_pixels(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 pixels resized (bilinear) to height x width, as `to_float` resizes them."""
    if pixels.shape[:2] == (height, width):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.BILINEAR))


def _as_8bit(image: Image.Image) -> Image.Image:
    """Mode L or RGB, scaled and composited as the module docstring says."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode == "P":
        return _composite(image.convert("RGBA")) if "transparency" in image.info else image.convert("RGB")
    if mode in _ALPHA_MODES:
        return _composite(image)
    if mode == "F" or mode == "I" or mode.startswith("I;16"):
        return Image.fromarray(_grey_to_8bit(np.asarray(image), mode == "F"))
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


@functools.cache
def _grey_table() -> np.ndarray:
    """uint8 of every 16-bit grey level: rint(level * 255 / 65535)."""
    return np.rint(np.arange(_INTEGER_GREY_MAX + 1) * (255.0 / _INTEGER_GREY_MAX)).astype(np.uint8)


def _grey_to_8bit(values: np.ndarray, floats: bool) -> np.ndarray:
    """High-depth greyscale as uint8, a block of rows at a time (no whole-image float64 copy):
    integers through a table of the 65,536 levels (below 0 is 0, above 65535 is 255), floats
    scaled from 0..1. Equal, pixel for pixel, to clip(rint(value * scale), 0, 255)."""
    out = np.empty(values.shape, np.uint8)
    rows = max(1, _CHUNK_PIXELS // max(values.shape[1] if values.ndim > 1 else 1, 1))
    table = None if floats else _grey_table()
    for start in range(0, len(values), rows):
        block = values[start:start + rows]
        if floats:
            out[start:start + rows] = np.clip(np.rint(block.astype(np.float64) * 255.0), 0, 255)
        else:
            if block.dtype != np.uint16:
                block = np.clip(block.astype(np.int64, copy=False), 0, _INTEGER_GREY_MAX)
            out[start:start + rows] = table[block]
    return out


def _composite(image: Image.Image) -> Image.Image:
    """A transparent image over a white background."""
    grey = image.mode in ("LA", "La")
    target = "L" if grey else "RGB"
    alpha = image.getchannel("A")
    background = Image.new(target, image.size, 255 if grey else (255, 255, 255))
    background.paste(image.convert(target), mask=alpha)
    return background


def _label(source: Source) -> str:
    if isinstance(source, bytes):
        return "<bytes>"
    return display_path(source)


def display_path(path: str | os.PathLike) -> str:
    """A path fit to print: bytes of a non-UTF-8 name shown as escapes instead of crashing."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def find_images(root: str | os.PathLike) -> list[str]:
    """Every image file below a folder (any depth), as absolute paths in a fixed order."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {display_path(root)} does not exist")
    base = os.path.abspath(root)
    files = sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(base)
        for name in names
        if name.lower().endswith(IMAGE_SUFFIXES)
    )
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {display_path(root)}")
    return files
