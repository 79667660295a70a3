"""Loading MNIST, Fashion-MNIST and CIFAR-10 into one in-memory form, from whatever copy is at hand.

Every data set becomes a `Dataset`: uint8 images (n, h, w, c) and int64 labels in a fixed pool
order, because docs/protocol.md's splits are indices into that pool. The pool is the training part
followed by the test part:

- MNIST, Fashion-MNIST: the 60,000 train images in file order, then the 10,000 t10k images.
- CIFAR-10: the 50,000 train images, then the 10,000 test images, each part ordered by class id
  and, within a class, by file name (JPEG copy) or by original position (pickled batches, which
  are stably sorted by class to match). The labels array, hence every split, is then the same
  for every CIFAR-10 source; `Dataset.source` records which copy was read.

Where the files are looked for, first match wins: the `data_dir` argument (strict: nothing found
there is an error), the folder in $SCAE_HASH_DATA, the Debian Fashion-MNIST package folder, the
Keras cache ($KERAS_HOME or ~/.keras, under datasets/), and last a `keras.datasets` download.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from scae_hash.constants import DATASETS
from scae_hash.errors import DataError
from scae_hash.images import decode_image

ALIASES = {
    "fashion-mnist": "fashion",
    "fashion_mnist": "fashion",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}

MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# The canonical label ids 0-9. This order is also the sorted order, which is how image folders
# number their classes, so a CIFAR-10 folder tree needs no special case.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CLASS_NAMES = {"mnist": MNIST_CLASSES, "fashion": FASHION_CLASSES, "cifar10": CIFAR10_CLASSES}

DATA_ENV_VAR = "SCAE_HASH_DATA"
# Where `apt-get install dataset-fashion-mnist` puts the four IDX files.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CACHE_FORMAT_VERSION = 1  # bump when the decoded-array cache layout changes

# IDX header: two zero bytes, a type code, the number of dimensions, then a big-endian uint32
# per dimension.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
_CIFAR_TEST_BATCH = "test_batch"
_CORRUPT_FILE_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile)

Pool = tuple[np.ndarray, np.ndarray]  # (images, labels) of a pool, or of one part of it


@dataclass(frozen=True)
class Dataset:
    """One data set's whole pool, in the fixed order that split indices refer to."""

    name: str
    images: np.ndarray  # uint8 (n, h, w, c), c = 1 or 3
    labels: np.ndarray  # int64 (n,)
    class_names: tuple[str, ...]
    source: str  # where it came from (path or "keras.datasets")

    def __post_init__(self) -> None:
        """Reject malformed arrays here, so that no model or metric has to guess their layout."""
        images, labels = self.images, self.labels
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(
                f"{self.source}: images must be uint8 (n, h, w, 1|3), "
                f"got {images.dtype} {images.shape}"
            )
        if labels.dtype != np.int64 or labels.shape != images.shape[:1]:
            raise DataError(
                f"{self.source}: labels must be int64 ({len(images)},), "
                f"got {labels.dtype} {labels.shape}"
            )
        if labels.size and not 0 <= labels.min() <= labels.max() < len(self.class_names):
            raise DataError(f"{self.source}: labels outside 0..{len(self.class_names) - 1}")

    def __len__(self) -> int:
        return len(self.labels)

    def as_float(self, indices: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """Float32 pixels in [0, 1] of the selected rows only: all of CIFAR-10 would take 737 MB."""
        selected = self.images if indices is None else self.images[np.asarray(indices)]
        pixels = selected.astype(np.float32)
        pixels /= 255
        return pixels


class LabelledImages(NamedTuple):
    """Images decoded from a `<split>/<class>/<file>` tree, before they are named as a data set."""

    images: np.ndarray  # uint8 (n, h, w, c)
    labels: np.ndarray  # int64 (n,)
    class_names: tuple[str, ...]


def canonical_name(name: str) -> str:
    """Map a name or alias to one of DATASETS, so that configs and the CLI may use either."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise DataError(
            f"unknown data set {name!r}; valid names: {', '.join(DATASETS)} "
            f"(aliases: {', '.join(ALIASES)})"
        )
    return key


# -------------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file, gzip or plain (told apart by content), checking header against size.

    The array is a read-only view of the decompressed bytes, which saves a copy of the data.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except _CORRUPT_FILE_ERRORS as error:
        raise DataError(f"{path}: cannot read IDX file ({error})") from error
    return _parse_idx(content, path)


def _parse_idx(content: bytes, path: Path) -> np.ndarray:
    """Check the magic number, dimensions and data size; a mismatch means a wrong or cut file."""
    magic = content[:4]
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES or magic[3] == 0:
        raise DataError(f"{path}: not an IDX file (magic number {magic.hex() or 'missing'})")
    dtype, n_dims = np.dtype(_IDX_DTYPES[magic[2]]), magic[3]
    header_size = 4 + 4 * n_dims
    if len(content) < header_size:
        raise DataError(f"{path}: IDX header cut short")
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", count=n_dims, offset=4))
    expected_size = header_size + dtype.itemsize * int(np.prod(shape))
    if len(content) != expected_size:
        raise DataError(
            f"{path}: IDX header says {shape} ({expected_size} bytes), "
            f"file holds {len(content)} bytes"
        )
    return np.frombuffer(content, dtype, offset=header_size).reshape(shape)


def idx_file_names(prefix: str) -> tuple[str, str]:
    """The standard (images, labels) file names of one part, e.g. 'train' or 't10k'."""
    return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


def load_idx_folder(folder: str | os.PathLike, prefixes: Sequence[str] = ("train", "t10k")) -> Pool:
    """Images (n, h, w, 1) uint8 and labels int64 of the parts named by `prefixes`, in that order.

    Each file may also be stored uncompressed, without the `.gz` ending.
    """
    parts = [_read_idx_part(Path(folder), prefix) for prefix in prefixes]
    return _join_parts(*parts)


def _read_idx_part(folder: Path, prefix: str) -> Pool:
    """One part's images and labels, checked to match each other."""
    images_name, labels_name = idx_file_names(prefix)
    images = read_idx(_find_idx_file(folder, images_name))
    labels = read_idx(_find_idx_file(folder, labels_name))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{folder}: {prefix} images {images.shape} do not match labels {labels.shape}"
        )
    return images, labels


def _find_idx_file(folder: Path, name: str) -> Path:
    """The gzip file, or else its uncompressed twin."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: missing {name}")


def _has_idx_files(folder: Path) -> bool:
    names = [name for prefix in ("train", "t10k") for name in idx_file_names(prefix)]
    return all(
        (folder / name).is_file() or (folder / name.removesuffix(".gz")).is_file() for name in names
    )


# -------------------------------------------------------------------------------------------------
# Image trees (the CIFAR-10 JPEG copy, or a user's own images)


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
    except _CORRUPT_FILE_ERRORS as error:
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
        if len(parts) == 3 and parts[0] in splits and parts[2].lower().endswith(IMAGE_SUFFIXES)
    ]
    empty_splits = [split for split in splits if not any(entry[0] == split for entry in entries)]
    if empty_splits:
        where = ", ".join(f"{split}/<class>/" for split in empty_splits)
        raise DataError(f"no {'/'.join(IMAGE_SUFFIXES)} images under {where}")
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
    pixels = [decode_image(read(name), name, reduce=False, formats=("JPEG", "PNG")) for name in bar]
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
    except (*_CORRUPT_FILE_ERRORS, KeyError, ValueError):
        return None


def _write_cache(cache_file: Path, decoded: LabelledImages) -> None:
    """Write a temporary file, then rename it: a concurrent reader never sees half a file."""
    folder = cache_file.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as file:
            class_names = np.array(decoded.class_names)
            np.savez(file, images=decoded.images, labels=decoded.labels, class_names=class_names)
        os.replace(file.name, cache_file)
    except OSError as error:
        warnings.warn(f"could not cache decoded images in {cache_file.parent} ({error})")


# -------------------------------------------------------------------------------------------------
# Keras cache files (mnist.npz, cifar-10-batches-py/)


def load_keras_npz(path: str | os.PathLike) -> Pool:
    """Images (n, h, w, 1) and int64 labels from a Keras `mnist.npz`: train, then test."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            train = (stored["x_train"], stored["y_train"])
            test = (stored["x_test"], stored["y_test"])
    except (*_CORRUPT_FILE_ERRORS, KeyError, ValueError) as error:
        raise DataError(f"{path}: not a Keras mnist.npz ({error})") from error
    return _join_parts(train, test)


def load_cifar_batches(folder: str | os.PathLike) -> Pool:
    """Images (n, 32, 32, 3) and labels from the pickled CIFAR-10 batches, in the JPEG copy's order.

    That is data_batch_1..5 then test_batch, each part stably sorted by class.
    """
    folder = Path(folder)
    train = _join_parts(*(_read_cifar_batch(folder / name) for name in _CIFAR_TRAIN_BATCHES))
    return _class_major_pool(train, _read_cifar_batch(folder / _CIFAR_TEST_BATCH))


class _NumpyArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, so that a data file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),  # numpy < 2, as in the original files
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a data file")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> Pool:
    """One batch: each row holds 3,072 bytes, channel-major (3, 32, 32)."""
    try:
        with path.open("rb") as file:
            batch = _NumpyArrayUnpickler(file, encoding="bytes").load()
        rows = np.asarray(batch[b"data"], dtype=np.uint8)
        return rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(batch[b"labels"])
    except (
        *_CORRUPT_FILE_ERRORS, pickle.UnpicklingError, LookupError, TypeError, ValueError
    ) as error:
        raise DataError(f"{path}: not a CIFAR-10 batch ({error})") from error


def _join_parts(*parts: Pool) -> Pool:
    """Concatenate (images, labels) parts into the pool form: (n, h, w, c) uint8, (n,) int64."""
    images = np.concatenate([np.asarray(images, dtype=np.uint8) for images, _ in parts])
    labels = np.concatenate([np.asarray(labels).reshape(-1) for _, labels in parts])
    return (images[..., np.newaxis] if images.ndim == 3 else images), labels.astype(np.int64)


def _class_major_pool(train: Pool, test: Pool) -> Pool:
    """Join train and test, each stably sorted by class: the CIFAR-10 JPEG copy's order.

    With it the labels array, and so every split, is the same whichever CIFAR-10 copy is read.
    """
    images, labels = _join_parts(train, test)
    part_ids = np.repeat([0, 1], [len(train[1]), len(test[1])])
    order = np.lexsort((labels, part_ids))  # stable; the last key is the primary one
    return images[order], labels[order]


# -------------------------------------------------------------------------------------------------
# Finding a data set


class _Layout(NamedTuple):
    """One place, relative to a root folder, where a data set may be stored, and its format."""

    relative: str  # "." is the data set's own folder
    kind: str  # "idx", "npz", "zip", "folder" or "pickle"


_LAYOUTS = {
    "mnist": (
        _Layout("mnist", "idx"),
        _Layout(".", "idx"),
        _Layout("mnist.npz", "npz"),  # Keras cache
        _Layout("mnist/mnist.npz", "npz"),
    ),
    "fashion": (_Layout("fashion-mnist", "idx"), _Layout(".", "idx")),  # the first is also Keras'
    "cifar10": (
        _Layout("cifar10/cifar10-jpg.zip", "zip"),
        _Layout("cifar10-jpg.zip", "zip"),
        _Layout("cifar10", "folder"),
        _Layout(".", "folder"),
        _Layout("cifar-10-batches-py", "pickle"),  # Keras 2 cache
        _Layout("cifar-10-batches-py-target/cifar-10-batches-py", "pickle"),  # Keras 3 cache
        _Layout("cifar10/cifar-10-batches-py", "pickle"),
        _Layout(".", "pickle"),
    ),
}

_IS_PRESENT: dict[str, Callable[[Path], bool]] = {
    "idx": _has_idx_files,
    "npz": Path.is_file,
    "zip": Path.is_file,
    "folder": lambda path: (path / "train").is_dir() and (path / "test").is_dir(),
    "pickle": lambda path: (path / _CIFAR_TRAIN_BATCHES[0]).is_file(),
}

_IDX_NAMES = ", ".join(name for prefix in ("train", "t10k") for name in idx_file_names(prefix))
_EXPECTED_FILES = {  # appended to a layout's path in "not found" messages
    "idx": f"/{{{_IDX_NAMES}}}",
    "npz": "",
    "zip": "",
    "folder": "/{train,test}/<class>/*.jpg|png",
    "pickle": "/{data_batch_1..5, test_batch}",
}


def load_dataset(
    name: str, data_dir: str | os.PathLike | None = None, *, progress: bool = True
) -> Dataset:
    """Load a data set's whole pool (train then test) from the first place that holds it.

    `name` is one of DATASETS (or an alias), or the path of a user's own image folder or zip
    laid out as `<split>/<class>/<file>` (see `load_image_dataset`).
    `data_dir` is a folder holding `mnist/`, `fashion-mnist/`, `cifar10/` (or a Keras cache
    `datasets/` folder), or the data set's own folder. A `data_dir` given here must hold the
    data: a download would hide a typo in the path. $SCAE_HASH_DATA must be a folder of the
    first kind: it serves every data set, and MNIST and Fashion-MNIST files share their names.
    """
    if _is_image_collection(name):
        return load_image_dataset(name, progress=progress)
    name = canonical_name(name)
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        found = _find_in(name, root, own_folder=True)
        if found is None:
            raise DataError(_not_found_message(name, root))
        return _load_found(name, *found, progress=progress)
    for root, own_folder in _default_roots(name):
        found = _find_in(name, root, own_folder=own_folder)
        if found is not None:
            return _load_found(name, *found, progress=progress)
    return _download_with_keras(name)


def load_image_dataset(path: str | os.PathLike, *, progress: bool = True) -> Dataset:
    """A user's own `<split>/<class>/<file>` folder or zip, as a data set named after it."""
    path = Path(path).expanduser()
    if path.is_dir():
        splits = _split_order(entry.name for entry in path.iterdir() if entry.is_dir())
        decoded = load_image_folder(path, splits, progress=progress)
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                splits = _split_order(name.split("/")[0] for name in archive.namelist() if name.count("/") >= 2)
        except _CORRUPT_FILE_ERRORS as error:
            raise DataError(f"{path}: cannot read zip ({error})") from error
        decoded = load_image_zip(path, splits, progress=progress, cache_dir=default_cache_dir())
    return Dataset(path.stem, decoded.images, decoded.labels, decoded.class_names, str(path))


def _split_order(split_names: Iterable[str]) -> tuple[str, ...]:
    """The split folders a user's collection has: train, then test, then the others by name."""
    names = set(split_names)
    known = [name for name in ("train", "test") if name in names]
    return (*known, *sorted(names - set(known))) or ("train",)


def _is_image_collection(name: str) -> bool:
    """A path to a folder or zip, rather than the name of a known data set."""
    key = name.strip().lower()
    if key in DATASETS or key in ALIASES:
        return False
    path = Path(name).expanduser()
    return path.is_dir() or (path.suffix.lower() == ".zip" and path.is_file())


def _default_roots(name: str) -> list[tuple[Path, bool]]:
    """(folder, whether it is the data set's own folder), searched when no data_dir is given."""
    roots = []
    if os.environ.get(DATA_ENV_VAR):
        roots.append((Path(os.environ[DATA_ENV_VAR]).expanduser(), False))
    if name == "fashion":
        roots.append((DEBIAN_FASHION_DIR, True))
    return [*roots, (keras_cache_dir(), False)]


def keras_cache_dir() -> Path:
    """Where `keras.datasets` keeps its downloads: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "datasets"


def _find_in(name: str, root: Path, *, own_folder: bool) -> tuple[Path, str] | None:
    """The first (path, kind) of the data set's layouts under root (root itself if own_folder)."""
    for layout in _LAYOUTS[name]:
        path = root / layout.relative
        if (own_folder or layout.relative != ".") and _IS_PRESENT[layout.kind](path):
            return path, layout.kind
    return None


def _not_found_message(name: str, root: Path) -> str:
    if not root.is_dir():
        return f"data folder {root} does not exist"
    expected = "; ".join(
        f"{root / layout.relative}{_EXPECTED_FILES[layout.kind]}" for layout in _LAYOUTS[name]
    )
    return f"no {name} data in {root}: expected one of {expected}"


def _load_found(name: str, path: Path, kind: str, *, progress: bool) -> Dataset:
    """Read the data set from the layout found at path."""
    if kind == "zip":
        images, labels = _checked_classes(
            name, path, load_image_zip(path, progress=progress, cache_dir=default_cache_dir())
        )
    elif kind == "folder":
        images, labels = _checked_classes(name, path, load_image_folder(path, progress=progress))
    elif kind == "pickle":
        images, labels = load_cifar_batches(path)
    elif kind == "npz":
        images, labels = load_keras_npz(path)
    else:
        images, labels = load_idx_folder(path)
    return Dataset(name, images, labels, CLASS_NAMES[name], str(path))


def _checked_classes(name: str, path: Path, decoded: LabelledImages) -> Pool:
    """The decoded pool, if its class folders are the data set's (else its label ids would lie)."""
    if decoded.class_names != CLASS_NAMES[name]:
        raise DataError(
            f"{path}: class folders {', '.join(decoded.class_names)} are not {name}'s "
            f"{', '.join(CLASS_NAMES[name])}"
        )
    return decoded.images, decoded.labels


def _download_with_keras(name: str) -> Dataset:
    """Last resort, for online users: `keras.datasets` downloads (or reuses) the original files."""
    try:
        train, test = _keras_load_data(name)
    except Exception as error:  # keras reports network, HTTP and file problems as many types
        raise DataError(
            f"{name} not found locally (set ${DATA_ENV_VAR} or pass a data folder) and the "
            f"keras.datasets download failed: {error}"
        ) from error
    join = _class_major_pool if name == "cifar10" else _join_parts
    images, labels = join(train, test)
    return Dataset(name, images, labels, CLASS_NAMES[name], "keras.datasets")


def _keras_load_data(name: str) -> tuple[Pool, Pool]:
    """`keras.datasets.<name>.load_data()`; imported here only, as importing keras is slow."""
    from keras import datasets

    loaders = {
        "mnist": datasets.mnist,
        "fashion": datasets.fashion_mnist,
        "cifar10": datasets.cifar10,
    }
    return loaders[name].load_data()
