"""The one image decoder: every mode read to the right 8-bit pixels, bad files refused in one line."""

import io
import struct
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from scae_hash.images import ImageReadError, TooLargeError, _as_8bit, decode_image, find_images, load_image, to_float

from large_images import flat_png


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def rgb16_png(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG written by hand (Pillow does not write them)."""
    height, width, _ = pixels.shape
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_16_bit_grey_is_scaled_not_clipped():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    decoded = decode_image(png_bytes(Image.fromarray(values)))
    np.testing.assert_array_equal(decoded, [[0, 1, 128, 255]])


def test_16_bit_rgb_keeps_its_scale():
    values = np.array([[[0, 32896, 65535], [65535, 0, 257]]], dtype=np.uint16)
    decoded = decode_image(rgb16_png(values))
    assert decoded.shape == (1, 2, 3)
    np.testing.assert_allclose(decoded, values / 257, atol=1)


def test_32_bit_integer_and_float_grey():
    integers = Image.fromarray(np.array([[0, 65535, 70000, -5]], dtype=np.int32))
    assert integers.mode == "I"
    np.testing.assert_array_equal(decode_image(_tiff(integers)), [[0, 255, 255, 0]])
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0, 2.0]], dtype=np.float32))
    np.testing.assert_array_equal(decode_image(_tiff(floats)), [[0, 128, 255, 255]])


def _tiff(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF")
    return buffer.getvalue()


def test_transparent_pixels_are_composited_on_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]  # opaque red
    rgba[0, 1] = [0, 0, 0, 0]  # fully transparent black: shows white
    rgba[1, 0] = [0, 0, 0, 128]  # half transparent black: grey
    decoded = decode_image(png_bytes(Image.fromarray(rgba, "RGBA")))
    np.testing.assert_array_equal(decoded[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(decoded[0, 1], [255, 255, 255])
    assert np.all(np.abs(decoded[1, 0].astype(int) - 127) <= 1)
    grey_alpha = Image.fromarray(np.array([[[10, 255], [10, 0]]], dtype=np.uint8), "LA")
    np.testing.assert_array_equal(decode_image(png_bytes(grey_alpha)), [[10, 255]])


def test_palette_images_go_through_their_palette():
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putdata([0, 1])
    np.testing.assert_array_equal(decode_image(png_bytes(palette)), [[[255, 0, 0], [0, 0, 255]]])
    np.testing.assert_array_equal(decode_image(png_bytes(palette, transparency=1)), [[[255, 0, 0], [255, 255, 255]]])


def test_grey_modes_stay_grey_and_cmyk_becomes_rgb():
    assert decode_image(png_bytes(Image.new("1", (3, 2), 1))).tolist() == [[255] * 3] * 2
    assert decode_image(png_bytes(Image.new("L", (3, 2), 7))).shape == (2, 3)
    buffer = io.BytesIO()
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(buffer, format="JPEG", quality=100)
    red = decode_image(buffer.getvalue())
    assert red.shape == (4, 4, 3) and red[0, 0, 0] > 200 and red[0, 0, 1] < 60


def test_resizing_and_channels():
    colour = np.zeros((40, 60, 3), dtype=np.uint8)
    colour[..., 1] = 200
    pixels = load_image(png_bytes(Image.fromarray(colour)), (8, 12, 3))
    assert pixels.shape == (8, 12, 3) and pixels.dtype == np.float32
    np.testing.assert_allclose(pixels[..., 1], 200 / 255)
    grey = to_float(colour, (4, 6, 1))
    assert grey.shape == (4, 6, 1) and np.allclose(grey, round(0.587 * 200) / 255, atol=1 / 255)
    assert to_float(np.full((4, 6), 51, np.uint8), (4, 6, 3)).shape == (4, 6, 3)


def test_huge_jpeg_is_decoded_at_a_reduced_scale():
    buffer = io.BytesIO()
    Image.new("RGB", (4000, 3000), (10, 200, 30)).save(buffer, format="JPEG")
    assert decode_image(buffer.getvalue(), reduce=False).shape == (3000, 4000, 3)
    assert decode_image(buffer.getvalue()).shape == (1500, 2000, 3)
    pixels = load_image(buffer.getvalue(), (30, 40, 3))
    assert pixels.shape == (30, 40, 3) and abs(255 * pixels[15, 20, 1] - 200) <= 3


def test_decompression_bombs_and_broken_files_are_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for size in ((40, 30), (100, 100)):  # beyond the limit (a warning in Pillow), and beyond twice it
        with pytest.raises(ImageReadError, match="decompression bomb"):
            decode_image(png_bytes(Image.new("L", size)))
    monkeypatch.undo()
    good = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 20, 3), dtype=np.uint8)))
    for content, reason in ((b"", "empty file"), (b"hello", "not an image format"), (good[:len(good) // 2], "")):
        with pytest.raises(ImageReadError, match=f"cannot decode image x.png \\({reason}"):
            decode_image(content, "x.png")


def test_find_images_lists_every_depth_and_odd_names(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    names = [tmp_path / "a" / "b" / "deep.PNG", tmp_path / "top.jpg", tmp_path / "sp ace.gif"]
    for path in names:
        path.write_bytes(b"")
    odd = bytes(tmp_path) + b"/caf\xe9.png"  # Latin-1 bytes: not UTF-8
    open(odd, "wb").close()
    (tmp_path / "notes.txt").write_text("x")
    found = find_images(tmp_path)
    assert len(found) == 4 and sorted(found) == found
    assert any(path.endswith("caf\udce9.png") for path in found)


def _float64_road(image: Image.Image) -> np.ndarray:
    """How high-depth greyscale was brought to 8 bits before: the reference to stay equal to."""
    scale = 255.0 if image.mode == "F" else 255.0 / 65535
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * scale), 0, 255).astype(np.uint8)


def test_high_depth_grey_is_pixel_for_pixel_what_the_float64_road_gave():
    rng = np.random.default_rng(0)
    every_level = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    integers = np.concatenate([every_level.ravel().astype(np.int32) - 300,
                               rng.integers(-2**31, 2**31 - 1, 4000, dtype=np.int64).astype(np.int32)])
    floats = np.concatenate([rng.random(10_000, dtype=np.float32) * 1.2 - 0.1,
                             np.array([0.5, 1.5, 254.5, 255.5], np.float32) / 255])
    big_endian = Image.new("I;16B", (300, 200))
    big_endian.frombytes(rng.integers(0, 256, 120_000, dtype=np.uint8).tobytes())
    tall = rng.integers(0, 65536, (3000, 700), dtype=np.uint16)  # more rows than one block
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fromarray's mode argument
        images = [Image.fromarray(every_level), Image.fromarray(integers.reshape(-1, 8)),
                  Image.fromarray(floats.reshape(-1, 4)), big_endian, Image.fromarray(tall)]
    for image in images:
        np.testing.assert_array_equal(np.asarray(_as_8bit(image)), _float64_road(image), err_msg=image.mode)


def test_a_16_bit_grey_image_takes_no_float64_copy(tmp_path):
    path = flat_png(tmp_path / "grey16.png", 1_500, 1_000, depth=16, grey=True)
    tracemalloc.start()
    try:
        pixels = decode_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pixels.shape == (1_000, 1_500) and (pixels == 128).all()
    assert peak < 6 * pixels.size  # the float64 road held 8 bytes a pixel, more than once


def test_a_pixel_budget_refuses_from_the_header_after_the_jpeg_reduction(tmp_path):
    path = flat_png(tmp_path / "wide.png", 5_000, 4_000)
    with pytest.raises(TooLargeError, match="5000 x 4000 pixels, more than the 16 megapixels"):
        decode_image(path, max_pixels=16_000_000)
    buffer = io.BytesIO()
    Image.new("RGB", (5_000, 4_000), (0, 128, 0)).save(buffer, format="JPEG")
    assert decode_image(buffer.getvalue(), max_pixels=16_000_000).shape == (2_000, 2_500, 3)  # drafted to 1/2
