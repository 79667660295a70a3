"""Finding a data set's files, whichever copy is at hand, and reading them with the right reader.

Where the files are looked for, first match wins: the `data_dir` argument (strict: nothing found
there is an error), the folder in $SCAE_HASH_DATA, the Debian Fashion-MNIST package folder, the
Keras cache ($KERAS_HOME or ~/.keras, under datasets/), and last a `keras.datasets` download.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from scae_hash.constants import DATASETS
from scae_hash.data.dataset import (
    ALIASES,
    CLASS_NAMES,
    Dataset,
    Pool,
    canonical_name,
    class_major_pool,
    join_parts,
)
from scae_hash.data.idx import IDX_FILES, has_idx_files, load_idx_folder
from scae_hash.data.image_trees import (
    LabelledImages,
    default_cache_dir,
    load_image_dataset,
    load_image_folder,
    load_image_zip,
)
from scae_hash.data.keras_files import CIFAR_TRAIN_BATCHES, load_cifar_batches, load_keras_npz
from scae_hash.errors import DataError

DATA_ENV_VAR = "SCAE_HASH_DATA"
# Where `apt-get install dataset-fashion-mnist` puts the four IDX files.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


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
    "idx": has_idx_files,
    "npz": Path.is_file,
    "zip": Path.is_file,
    "folder": lambda path: (path / "train").is_dir() and (path / "test").is_dir(),
    "pickle": lambda path: (path / CIFAR_TRAIN_BATCHES[0]).is_file(),
}

_EXPECTED_FILES = {  # appended to a layout's path in "not found" messages
    "idx": f"/{{{', '.join(IDX_FILES)}}}",
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
    join = class_major_pool if name == "cifar10" else join_parts
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
