"""Loading MNIST, Fashion-MNIST, CIFAR-10 or a user's labelled images into one in-memory form.

One module per job: `dataset` (the `Dataset` type, its fixed pool order and the data sets'
names), `idx` (MNIST's file format), `image_trees` (`<split>/<class>/<file>` folders and zips,
with their decoded-array cache), `keras_files` (what `keras.datasets` caches) and `locate`
(which copy to read: `load_dataset`). The names below are the package's public surface.
"""

from scae_hash.data.dataset import (
    ALIASES,
    CIFAR10_CLASSES,
    CLASS_NAMES,
    FASHION_CLASSES,
    MNIST_CLASSES,
    Dataset,
    Pool,
    canonical_name,
)
from scae_hash.data.idx import idx_file_names, load_idx_folder, read_idx
from scae_hash.data.image_trees import (
    CACHE_FORMAT_VERSION,
    LabelledImages,
    decode_images,
    default_cache_dir,
    load_image_dataset,
    load_image_folder,
    load_image_zip,
    order_image_files,
)
from scae_hash.data.keras_files import load_cifar_batches, load_keras_npz
from scae_hash.data.locate import DATA_ENV_VAR, DEBIAN_FASHION_DIR, keras_cache_dir, load_dataset

__all__ = [
    "ALIASES", "CACHE_FORMAT_VERSION", "CIFAR10_CLASSES", "CLASS_NAMES", "DATA_ENV_VAR",
    "DEBIAN_FASHION_DIR", "Dataset", "FASHION_CLASSES", "LabelledImages", "MNIST_CLASSES", "Pool",
    "canonical_name", "decode_images", "default_cache_dir", "idx_file_names", "keras_cache_dir",
    "load_cifar_batches", "load_dataset", "load_idx_folder", "load_image_dataset",
    "load_image_folder", "load_image_zip", "load_keras_npz", "order_image_files", "read_idx",
]
