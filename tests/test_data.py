"""Data loading: every format on generated files, real data slices, and where data is looked for."""

import gzip
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scae_hash import data
from scae_hash.data import (
    CIFAR10_CLASSES,
    Dataset,
    canonical_name,
    image_trees,
    keras_files,
    load_dataset,
    load_idx_folder,
    load_image_folder,
    load_image_zip,
    locate,
    order_image_files,
    read_idx,
)
from scae_hash.errors import DataError

REAL_DATA = Path(
    os.environ.get("SCAE_HASH_DATA") or Path(__file__).parents[1] / ".." / "shared" / "data"
)
REAL_FASHION = data.DEBIAN_FASHION_DIR
MNIST_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def real_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set SCAE_HASH_DATA to the shared data)")
    return path


@pytest.fixture(autouse=True)
def isolated_from_network_and_caches(monkeypatch, tmp_path):
    """No test may download, nor read or fill the user's data folders and caches."""

    def fail_download(name):
        pytest.fail(f"a test tried to download {name}")

    monkeypatch.setattr(locate, "_keras_load_data", fail_download)
    monkeypatch.delenv(data.DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(locate, "DEBIAN_FASHION_DIR", tmp_path / "no-debian-package")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# -------------------------------------------------------------------------------------------------
# Writers of generated files


def idx_bytes(array: np.ndarray) -> bytes:
    type_code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    shape = struct.pack(f">{array.ndim}I", *array.shape)
    return bytes([0, 0, type_code, array.ndim]) + shape + array.tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    content = idx_bytes(array)
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def write_idx_folder(folder: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The four standard IDX gz files of a tiny 6 + 4 image data set; returns its pool."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, (10, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, 10).astype(np.uint8)
    for prefix, part in (("train", slice(0, 6)), ("t10k", slice(6, None))):
        images_name, labels_name = data.idx_file_names(prefix)
        write_idx(folder / images_name, images[part])
        write_idx(folder / labels_name, labels[part])
    return images[..., np.newaxis], labels.astype(np.int64)


def encode_image(pixels: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def png(shape: tuple[int, ...], value: int = 0) -> bytes:
    return encode_image(np.full(shape, value, np.uint8), "PNG")


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def two_class_pngs() -> tuple[dict[str, bytes], np.ndarray, np.ndarray]:
    """Lossless images of classes 'ant' and 'bee' stored in scrambled order, plus non-images."""
    rng = np.random.default_rng(0)
    pool_order = [f"train/{name}" for name in ("ant/0", "ant/1", "bee/0", "bee/1")]
    pool_order += ["test/ant/0", "test/bee/0"]
    pixels = {name: rng.integers(0, 256, (6, 5, 3), dtype=np.uint8) for name in pool_order}
    files = {f"{name}.png": encode_image(pixels[name], "PNG") for name in reversed(pool_order)}
    files |= {"README.txt": b"not an image", "train/ant/notes.txt": b"neither"}
    return files, np.stack([pixels[name] for name in pool_order]), np.array([0, 0, 1, 1, 0, 1])


def cifar_like_zip(path: Path) -> Path:
    """A zip in the CIFAR-10 JPEG copy's layout: one flat-coloured 4x4 image per class and split."""
    flat_images = [
        encode_image(np.full((4, 4, 3), 20 * class_id, np.uint8), "JPEG") for class_id in range(10)
    ]
    files = {
        f"{split}/{name}/0000.jpg": image
        for split in ("train", "test")
        for name, image in zip(CIFAR10_CLASSES, flat_images)
    }
    return write_zip(path, files)


# -------------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("MNIST", "mnist"),
        ("fashion-mnist", "fashion"),
        ("fashion_mnist", "fashion"),
        ("cifar-10", "cifar10"),
    ],
)
def test_canonical_name_accepts_aliases(alias, name):
    assert canonical_name(alias) == name


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(DataError, match="mnist, fashion, cifar10"):
        load_dataset("imagenet")


# -------------------------------------------------------------------------------------------------
# IDX


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips(tmp_path, compress):
    images = np.arange(60, dtype=np.uint8).reshape(3, 5, 4)
    counts = np.array([7, -2, 100_000], dtype=">i4")
    for name, array in (("images", images), ("counts", counts)):
        np.testing.assert_array_equal(read_idx(write_idx(tmp_path / name, array, compress)), array)


def damaged_idx_file(tmp_path: Path, damage: str) -> Path:
    content = idx_bytes(np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8))
    compressed = gzip.compress(content)
    middle = len(compressed) // 2
    damaged = {
        "corrupt gz": compressed[:middle] + bytes(64) + compressed[middle + 64 :],
        "truncated gz": compressed[:middle],
        "wrong magic": b"\x08\x03" + content[2:],
        "truncated plain": content[:-1],
        "empty": b"",
    }[damage]
    path = tmp_path / damage
    path.write_bytes(damaged)
    return path


@pytest.mark.parametrize(
    "damage", ["corrupt gz", "truncated gz", "wrong magic", "truncated plain", "empty"]
)
def test_read_idx_rejects_damaged_files_naming_them(tmp_path, damage):
    path = damaged_idx_file(tmp_path, damage)
    with pytest.raises(DataError, match=str(path)):
        read_idx(path)


def test_load_idx_folder_puts_train_before_test(tmp_path):
    images, labels = write_idx_folder(tmp_path)
    loaded_images, loaded_labels = load_idx_folder(tmp_path)
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)
    assert loaded_labels.dtype == np.int64


def test_load_idx_folder_reads_uncompressed_twins_and_names_missing_files(tmp_path):
    images, _ = write_idx_folder(tmp_path)
    gz_file = tmp_path / "t10k-images-idx3-ubyte.gz"
    gz_file.with_suffix("").write_bytes(gzip.decompress(gz_file.read_bytes()))
    gz_file.unlink()
    np.testing.assert_array_equal(load_idx_folder(tmp_path)[0], images)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing train-labels-idx1-ubyte.gz"):
        load_idx_folder(tmp_path)


def test_real_mnist_test_labels():
    labels = read_idx(real_file(REAL_DATA / "mnist" / "t10k-labels-idx1-ubyte.gz"))
    assert labels.shape == (10_000,)
    assert np.bincount(labels).tolist() == MNIST_TEST_LABEL_COUNTS


def test_real_mnist_pool_is_train_then_test():
    mnist = load_dataset("mnist", real_file(REAL_DATA / "mnist").parent)
    assert mnist.images.shape == (70_000, 28, 28, 1) and mnist.images.dtype == np.uint8
    assert (mnist.labels[0], mnist.labels[60_000]) == (5, 7)  # first train and first test digit
    assert mnist.source == str(REAL_DATA / "mnist")


def test_real_fashion_from_the_debian_folder(monkeypatch):
    real_file(REAL_FASHION / "t10k-labels-idx1-ubyte.gz")
    monkeypatch.setattr(locate, "DEBIAN_FASHION_DIR", REAL_FASHION)
    fashion = load_dataset("fashion-mnist")
    assert fashion.images.shape == (70_000, 28, 28, 1)
    assert np.bincount(fashion.labels[60_000:]).tolist() == [1000] * 10
    assert fashion.class_names[9] == "Ankle boot"


# -------------------------------------------------------------------------------------------------
# Image trees


def test_real_cifar_zip_listing_and_a_few_images(tmp_path):
    real_zip = real_file(REAL_DATA / "cifar10" / "cifar10-jpg.zip")
    with zipfile.ZipFile(real_zip) as archive:
        names, labels, class_names = order_image_files(archive.namelist(), ("train", "test"))
        assert class_names == CIFAR10_CLASSES and len(names) == 60_000
        assert (names[0], names[50_000]) == ("train/airplane/0000.jpg", "test/airplane/0000.jpg")
        assert np.bincount(labels[:50_000]).tolist() == [5000] * 10
        first_of_each_class = names[:50_000:5000] + names[50_000::1000]
        few = {name: archive.read(name) for name in first_of_each_class}
    decoded = load_image_zip(write_zip(tmp_path / "few.zip", few))
    assert decoded.images.shape == (20, 32, 32, 3) and decoded.images.dtype == np.uint8
    assert decoded.labels.tolist() == list(range(10)) * 2
    assert 20 < decoded.images.mean() < 235


@pytest.mark.parametrize("write", [write_zip, write_tree], ids=["zip", "folder"])
def test_image_tree_order_pixels_and_labels(tmp_path, write):
    files, pixels, labels = two_class_pngs()
    source = write(tmp_path / "images", files)
    decoded = (load_image_zip if write is write_zip else load_image_folder)(source)
    assert decoded.class_names == ("ant", "bee")
    np.testing.assert_array_equal(decoded.labels, labels)
    np.testing.assert_array_equal(decoded.images, pixels)


def test_cifar_class_folders_get_canonical_ids(tmp_path):
    decoded = load_image_zip(cifar_like_zip(tmp_path / "cifar.zip"))
    assert decoded.class_names == CIFAR10_CLASSES
    assert decoded.labels.tolist() == list(range(10)) * 2
    brightness = decoded.images[:10].mean(axis=(1, 2, 3))
    np.testing.assert_allclose(brightness, 20 * np.arange(10), atol=3)  # JPEG is lossy


def test_greyscale_stays_one_channel_and_mixed_sets_become_rgb(tmp_path):
    grey_files = {"train/a/0.png": png((4, 4), 77), "test/a/0.png": png((4, 4), 77)}
    assert load_image_folder(write_tree(tmp_path / "grey", grey_files)).images.shape == (2, 4, 4, 1)
    mixed_files = grey_files | {"test/a/1.jpg": encode_image(np.zeros((4, 4, 3), np.uint8), "JPEG")}
    mixed = load_image_folder(write_tree(tmp_path / "mixed", mixed_files)).images
    assert mixed.shape == (3, 4, 4, 3)
    assert (mixed[0] == 77).all()


def test_images_of_different_sizes_are_refused(tmp_path):
    files = {"train/a/0.png": png((4, 4)), "test/a/0.png": png((5, 4))}
    with pytest.raises(DataError, match=r"differ in size.*test/a/0.png is \(5, 4\)"):
        load_image_zip(write_zip(tmp_path / "sizes.zip", files))


def test_bad_zips_and_images_are_data_errors_naming_them(tmp_path):
    good = write_zip(tmp_path / "good.zip", two_class_pngs()[0]).read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="truncated.zip: cannot read zip"):
        load_image_zip(truncated)
    broken_files = {"train/a/0.jpg": b"not a jpeg", "test/a/0.jpg": b""}
    broken = write_zip(tmp_path / "broken.zip", broken_files)
    with pytest.raises(DataError, match="broken.zip: cannot decode image train/a/0.jpg"):
        load_image_zip(broken)
    no_test = write_zip(tmp_path / "no-test.zip", {"train/a/0.png": png((2, 2))})
    with pytest.raises(DataError, match="no .* images under test/<class>/"):
        load_image_zip(no_test)


def test_decoded_zip_is_cached_until_the_zip_changes(tmp_path, monkeypatch):
    zip_path, cache = cifar_like_zip(tmp_path / "cifar.zip"), tmp_path / "decoded"
    first = load_image_zip(zip_path, cache_dir=cache)
    assert len(list(cache.glob("cifar-*.npz"))) == 1

    def fail_decode(*args, **kwargs):
        pytest.fail("decoded despite the cache")

    monkeypatch.setattr(image_trees, "decode_images", fail_decode)
    cached = load_image_zip(zip_path, cache_dir=cache)
    np.testing.assert_array_equal(cached.images, first.images)
    np.testing.assert_array_equal(cached.labels, first.labels)
    assert cached.class_names == first.class_names
    os.utime(zip_path, ns=(0, 0))
    with pytest.raises(pytest.fail.Exception, match="decoded despite the cache"):
        load_image_zip(zip_path, cache_dir=cache)


def test_a_cache_write_cut_short_leaves_no_file_and_only_warns(tmp_path, monkeypatch):
    zip_path, cache = cifar_like_zip(tmp_path / "cifar.zip"), tmp_path / "decoded"

    def savez_then_fail(stream, **arrays):
        stream.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(image_trees.np, "savez", savez_then_fail)
    with pytest.warns(UserWarning, match="could not cache decoded images"):
        decoded = load_image_zip(zip_path, cache_dir=cache)
    assert len(decoded.labels) == 20 and list(cache.iterdir()) == []


# -------------------------------------------------------------------------------------------------
# Keras cache layout


def write_cifar_batches(folder: Path) -> np.ndarray:
    """Pickled batches like the original CIFAR-10 ones, 4 rows each; returns all raw rows."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for batch_name in [*keras_files.CIFAR_TRAIN_BATCHES, keras_files.CIFAR_TEST_BATCH]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [9, 0, 5, 0]}
        (folder / batch_name).write_bytes(pickle.dumps(batch))
        rows.append(batch[b"data"])
    return np.concatenate(rows)


def test_keras_cache_files_are_read_without_keras(tmp_path):
    keras_datasets = tmp_path / "keras-home" / "datasets"
    keras_datasets.mkdir(parents=True)
    images = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([1, 2, 3, 4, 5], np.uint8)
    np.savez(
        keras_datasets / "mnist.npz",
        x_train=images[:3], y_train=labels[:3], x_test=images[3:], y_test=labels[3:],
    )
    mnist = load_dataset("mnist")
    np.testing.assert_array_equal(mnist.images[..., 0], images)
    assert mnist.labels.tolist() == [1, 2, 3, 4, 5] and mnist.source.endswith("mnist.npz")

    fashion_images, _ = write_idx_folder(keras_datasets / "fashion-mnist")
    np.testing.assert_array_equal(load_dataset("fashion").images, fashion_images)


def test_keras_cifar_batches_are_transposed_and_put_in_class_order(tmp_path):
    keras_datasets = tmp_path / "keras-home" / "datasets"
    rows = write_cifar_batches(keras_datasets / "cifar-10-batches-py-target/cifar-10-batches-py")
    cifar = load_dataset("cifar10")
    assert cifar.images.shape == (24, 32, 32, 3)
    assert cifar.labels.tolist() == [0] * 10 + [5] * 5 + [9] * 5 + [0, 0, 5, 9]
    first_of_class_0 = rows[1]  # data_batch_1, row 1: the first class-0 image of the train part
    assert cifar.images[0, 2, 3, 1] == first_of_class_0[1 * 1024 + 2 * 32 + 3]  # channel-major


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_batches(folder)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": os.system, b"labels": []}))
    with pytest.raises(DataError, match="system is not allowed"):
        load_dataset("cifar10", tmp_path)


# -------------------------------------------------------------------------------------------------
# Where data is looked for


def test_data_dir_argument_beats_the_environment(tmp_path, monkeypatch):
    wanted, _ = write_idx_folder(tmp_path / "argument" / "mnist", seed=1)
    write_idx_folder(tmp_path / "environment" / "mnist", seed=2)
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path / "environment"))
    np.testing.assert_array_equal(load_dataset("mnist", tmp_path / "argument").images, wanted)
    assert load_dataset("mnist").source == str(tmp_path / "environment" / "mnist")


def test_data_dir_may_be_the_data_sets_own_folder(tmp_path):
    write_idx_folder(tmp_path / "my-mnist")
    assert load_dataset("mnist", tmp_path / "my-mnist").source == str(tmp_path / "my-mnist")
    (tmp_path / "my-cifar").mkdir()
    zip_path = cifar_like_zip(tmp_path / "my-cifar" / "cifar10-jpg.zip")
    cifar = load_dataset("cifar10", tmp_path / "my-cifar", progress=False)
    assert cifar.source == str(zip_path) and len(cifar) == 20


def test_environment_then_debian_folder_for_fashion(tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "collection" / "mnist")  # holds MNIST only
    debian_images, _ = write_idx_folder(tmp_path / "debian", seed=3)
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path / "collection"))
    monkeypatch.setattr(locate, "DEBIAN_FASHION_DIR", tmp_path / "debian")
    fashion = load_dataset("fashion")
    assert fashion.source == str(tmp_path / "debian")
    np.testing.assert_array_equal(fashion.images, debian_images)


def offline(name):
    raise OSError("offline")


def test_environment_folder_is_never_taken_for_another_data_sets_own_folder(tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "mnist")
    monkeypatch.setenv(data.DATA_ENV_VAR, str(tmp_path / "mnist"))
    monkeypatch.setattr(locate, "_keras_load_data", offline)
    with pytest.raises(DataError, match="fashion not found locally.*download failed: offline"):
        load_dataset("fashion")


def test_download_is_the_last_resort(monkeypatch):
    requested = []

    def fake_keras(name):
        requested.append(name)
        x = np.zeros((4, 32, 32, 3), np.uint8) + np.arange(4, dtype=np.uint8)[:, None, None, None]
        return (x[:3], np.array([[2], [0], [2]], np.uint8)), (x[3:], np.array([[1]], np.uint8))

    monkeypatch.setattr(locate, "_keras_load_data", fake_keras)
    cifar = load_dataset("cifar10")
    assert requested == ["cifar10"] and cifar.source == "keras.datasets"
    assert cifar.labels.tolist() == [0, 2, 2, 1]  # class order within train, as in the JPEG copy
    assert cifar.images[:, 0, 0, 0].tolist() == [1, 0, 2, 3]


def test_a_given_data_dir_without_the_files_is_an_error_not_a_download(tmp_path):
    expected = f"no mnist data in {tmp_path}: expected .*mnist/{{train-images-idx3-ubyte.gz"
    with pytest.raises(DataError, match=expected):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("cifar10", tmp_path / "typo")


def test_class_folders_of_another_data_set_are_refused(tmp_path):
    write_zip(tmp_path / "cifar10-jpg.zip", two_class_pngs()[0])
    with pytest.raises(DataError, match="class folders ant, bee are not cifar10's"):
        load_dataset("cifar10", tmp_path)


# -------------------------------------------------------------------------------------------------
# Dataset


def test_as_float_scales_only_the_selected_rows():
    images = np.array([0, 51, 255, 102], np.uint8).reshape(4, 1, 1, 1)
    dataset = Dataset("mnist", images, np.arange(4, dtype=np.int64), data.MNIST_CLASSES, "test")
    pixels = dataset.as_float([2, 0])
    assert pixels.dtype == np.float32 and pixels.shape == (2, 1, 1, 1)
    assert pixels.ravel().tolist() == [1.0, 0.0]
    assert dataset.as_float().ravel().tolist() == pytest.approx([0, 0.2, 1, 0.4])


@pytest.mark.parametrize(
    ("images", "labels", "problem"),
    [
        (np.zeros((2, 3, 3), np.uint8), np.zeros(2, np.int64), "images must be uint8"),
        (np.zeros((2, 3, 3, 1), np.uint8), np.zeros(2, np.int32), "labels must be int64"),
        (np.zeros((2, 3, 3, 1), np.uint8), np.array([0, 10]), "labels outside 0..9"),
    ],
)
def test_dataset_refuses_malformed_arrays(images, labels, problem):
    with pytest.raises(DataError, match=problem):
        Dataset("mnist", images, labels, data.MNIST_CLASSES, "test")
