"""Image trees `<split>/<class>/<file>`, as a folder or a zip: the CIFAR-10 JPEG copy and a user's
own labelled images, decoded into one pool (a zip's decoded arrays cached, as decoding is slow)."""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from scae_hash.atomic import OutputError, atomic_write
from scae_hash.data.dataset import READ_ERRORS, Dataset
from scae_hash.errors import DataError
from scae_hash.images import decode_image

# Narrower than images.IMAGE_SUFFIXES on purpose: the files of a tree make a data set's pool,
# which saved splits index, so reading more kinds of file would silently change an existing
# tree's pool. Data sets come as JPEG (CIFAR-10) or PNG; only those decoders are offered.
TREE_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TREE_IMAGE_FORMATS = ("JPEG", "PNG")
CACHE_FORMAT_VERSION = 1  # bump when the decoded-array cache layout changes


class LabelledImages(NamedTuple):
    """Images decoded from a `<split>/<class>/<file>` tree, before they are named as a data set."""

    images: np.ndarray  # uint8 (n, h, w, c)
    labels: np.ndarray  # int64 (n,)
    class_names: tuple[str, ...]


def load_image_dataset(path: str | os.PathLike, *, progress: bool = True) -> Dataset:
    """A user's own `<split>/<class>/<file>` folder or zip, as a data set named after it."""
    path = Path(path).expanduser()
    if path.is_dir():
        splits = _split_order(entry.name for entry in path.iterdir() if entry.is_dir())
        decoded = load_image_folder(path, splits, progress=progress)
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                splits = _split_order(name.split("/")[0] for name in names if name.count("/") >= 2)
        except READ_ERRORS as error:
            raise DataError(f"{path}: cannot read zip ({error})") from error
        decoded = load_image_zip(path, splits, progress=progress, cache_dir=default_cache_dir())
    return Dataset(path.stem, decoded.images, decoded.labels, decoded.class_names, str(path))


def _split_order(split_names: Iterable[str]) -> tuple[str, ...]:
    """The split folders a user's collection has: train, then test, then the others by name."""
    names = set(split_names)
    known = [name for name in ("train", "test") if name in names]
    return (*known, *sorted(names - set(known))) or ("train",)


def load_image_zip(
    path: str | os.PathLike,
    splits: Sequence[str] = ("train", "test"),
    *,
    progress: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> LabelledImages:
    """Decode a zip of `<split>/<class>/<file>.{jpg,jpeg,png}` images, in pool order.

    (See `order_image_files` for the order.) With `cache_dir`, the decoded arrays are kept there
    as .npz keyed by the zip's path, size and mtime: decoding CIFAR-10's 60,000 JPEGs takes
    12-17 s on one core (PIL's per-file overhead, so threads do not help), reading the cache
    under a second.
    """
    path = Path(path)
    use_cache = cache_dir is not None and path.is_file()
    cache_file = _cache_file(path, splits, Path(cache_dir)) if use_cache else None
    cached = _read_cache(cache_file) if cache_file is not None else None
    if cached is not None:
        return cached
    try:
        with zipfile.ZipFile(path) as archive:
            names, labels, class_names = order_image_files(archive.namelist(), splits)
            images = decode_images(names, archive.read, progress=progress, description=path.name)
    except READ_ERRORS as error:
        raise DataError(f"{path}: cannot read zip ({error})") from error
    except DataError as error:
        raise DataError(f"{path}: {error}") from error
    decoded = LabelledImages(images, labels, class_names)
    if cache_file is not None:
        _write_cache(cache_file, decoded)
    return decoded


def load_image_folder(
    root: str | os.PathLike, splits: Sequence[str] = ("train", "test"), *, progress: bool = False
) -> LabelledImages:
    """Decode a tree `<root>/<split>/<class>/<file>.{jpg,jpeg,png}`, in pool order.

    (See `order_image_files` for the order.)
    """
    root = Path(root)
    files = [file.relative_to(root).as_posix() for file in root.glob("*/*/*") if file.is_file()]
    try:
        names, labels, class_names = order_image_files(files, splits)
        images = decode_images(
            names, lambda name: (root / name).read_bytes(), progress=progress, description=root.name
        )
    except DataError as error:
        raise DataError(f"{root}: {error}") from error
    return LabelledImages(images, labels, class_names)


def order_image_files(
    files: Iterable[str], splits: Sequence[str]
) -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """Put `<split>/<class>/<file>` paths in pool order: split as given, class id, file name.

    Returns (paths, labels, class names). Class ids follow the sorted class names (for CIFAR-10
    that is its canonical order); other paths (folders, other depths, other endings) are ignored.
    """
    entries = [
        tuple(parts)
        for parts in (file.split("/") for file in files)
        if len(parts) == 3 and parts[0] in splits and parts[2].lower().endswith(TREE_IMAGE_SUFFIXES)
    ]
    empty_splits = [split for split in splits if not any(entry[0] == split for entry in entries)]
    if empty_splits:
        where = ", ".join(f"{split}/<class>/" for split in empty_splits)
        raise DataError(f"no {'/'.join(TREE_IMAGE_SUFFIXES)} images under {where}")
    class_names = tuple(sorted({entry[1] for entry in entries}))
    class_ids = {class_name: class_id for class_id, class_name in enumerate(class_names)}
    entries.sort(key=lambda entry: (splits.index(entry[0]), class_ids[entry[1]], entry[2]))
    labels = np.array([class_ids[entry[1]] for entry in entries], dtype=np.int64)
    return ["/".join(entry) for entry in entries], labels, class_names


def decode_images(
    names: Sequence[str],
    read: Callable[[str], bytes],
    *,
    progress: bool = False,
    description: str = "images",
) -> np.ndarray:
    """Decode the named images into one uint8 array (n, h, w, c), all greyscale (c = 1) or all RGB.

    All images must share one size: resizing would silently change the data. A set that mixes
    greyscale and colour becomes RGB throughout.
    """
    if not names:
        raise DataError("no images to decode")
    bar = tqdm(names, desc=f"decoding {description}", unit="img", disable=not progress)
    pixels = [decode_image(read(name), name, reduce=False, formats=TREE_IMAGE_FORMATS) for name in bar]
    size = pixels[0].shape[:2]
    odd_sized = next((name for name, image in zip(names, pixels) if image.shape[:2] != size), None)
    if odd_sized is not None:
        odd_size = pixels[names.index(odd_sized)].shape[:2]
        raise DataError(f"images differ in size: {names[0]} is {size}, {odd_sized} is {odd_size}")
    if any(image.ndim == 3 for image in pixels):
        return np.stack([_as_rgb(image) for image in pixels])
    return np.stack(pixels)[..., np.newaxis]


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    return np.repeat(pixels[..., np.newaxis], 3, axis=-1) if pixels.ndim == 2 else pixels


def default_cache_dir() -> Path:
    """Where decoded arrays are kept: $XDG_CACHE_HOME/scae-hash, else ~/.cache/scae-hash."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scae-hash"


def _cache_file(path: Path, splits: Sequence[str], cache_dir: Path) -> Path:
    """A cache file name that changes whenever the zip is replaced or touched."""
    path = path.resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{'/'.join(splits)}|{CACHE_FORMAT_VERSION}"
    return cache_dir / f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _read_cache(cache_file: Path) -> LabelledImages | None:
    """The cached arrays, or None when there is no usable cache (a bad one is decoded again)."""
    try:
        with np.load(cache_file, allow_pickle=False) as stored:
            class_names = tuple(stored["class_names"].tolist())
            return LabelledImages(stored["images"], stored["labels"], class_names)
    except (*READ_ERRORS, KeyError, ValueError):
        return None


def _write_cache(cache_file: Path, decoded: LabelledImages) -> None:
    """Write the cache atomically (a concurrent reader never sees half a file); a cache that
    cannot be written costs only time, so it is a warning."""
    try:
        with atomic_write(cache_file, "wb") as stream:
            class_names = np.array(decoded.class_names)
            np.savez(stream, images=decoded.images, labels=decoded.labels, class_names=class_names)
    except (OSError, OutputError) as error:
        warnings.warn(f"could not cache decoded images in {cache_file.parent} ({error})")
