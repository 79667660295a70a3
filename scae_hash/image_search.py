"""Index a folder of images and query it: the retrieval a user of the hash codes sees.

The index file (HDF5) holds the packed codes, the image paths, the image size the hasher
expects, and the hasher itself: a baseline's learned arrays, or the path of an SCAE `.keras`
model. Nothing is pickled, so an index file is safe to open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from PIL import Image
from tqdm import tqdm

from scae_hash.codes import hamming_distances, pack_bits, unpack_bits
from scae_hash.errors import DataError
from scae_hash.hashers import BASELINES, Hasher, make_baseline
from scae_hash.index import HammingIndex, HashBuckets, two_stage_search

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def find_images(root: str | os.PathLike) -> list[Path]:
    """Every image below a folder (any depth), in a fixed order."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    files = sorted(path for path in root.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return files


def read_images(paths: list[Path], shape: tuple[int, int, int], *, progress: bool = False) -> np.ndarray:
    """Images resized to (height, width) and converted to the channels the hasher expects,
    as float32 in [0, 1]: a user's photos come in every size."""
    height, width, channels = shape
    mode = "L" if channels == 1 else "RGB"
    pixels = np.empty((len(paths), height, width, channels), dtype=np.float32)
    for row, path in enumerate(tqdm(paths, desc="reading images", unit="img", disable=not progress)):
        try:
            with Image.open(path) as image:
                resized = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
        except (OSError, SyntaxError, ValueError) as error:
            raise DataError(f"cannot read image {path} ({error})") from None
        pixels[row] = np.asarray(resized, dtype=np.float32).reshape(height, width, channels) / 255
    return pixels


@dataclass
class ImageIndex:
    hasher: Hasher
    image_shape: tuple[int, int, int]
    paths: list[str]
    bits: np.ndarray
    features: np.ndarray | None = None


def build_index(folder: str | os.PathLike, hasher: Hasher, image_shape: tuple[int, int, int], *,
                fit: bool, progress: bool = True) -> ImageIndex:
    """Encode every image of a folder (fitting the hasher on them first when `fit`)."""
    paths = find_images(folder)
    images = read_images(paths, image_shape, progress=progress)
    if fit:
        hasher.fit(images)
    return ImageIndex(hasher, image_shape, [str(p) for p in paths], hasher.encode(images), hasher.features(images))


def save_index(path: str | os.PathLike, index: ImageIndex, model_path: str | None = None) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("packed_bits", data=pack_bits(index.bits))
        f.create_dataset("paths", data=np.array(index.paths, dtype=object), dtype=h5py.string_dtype())
        if index.features is not None:
            f.create_dataset("features", data=index.features)
        f.attrs.update(method=index.hasher.name, n_bits=index.hasher.n_bits, seed=index.hasher.seed,
                       image_shape=list(index.image_shape))
        if model_path is not None:
            f.attrs["model_path"] = str(Path(model_path).resolve())
        else:
            state = f.create_group("hasher_state")
            for key, value in index.hasher.learned_state().items():
                state.create_dataset(key, data=value)


def load_index(path: str | os.PathLike) -> ImageIndex:
    if not Path(path).is_file():
        raise DataError(f"index file not found: {path}")
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            n_bits = int(attrs["n_bits"])
            bits = unpack_bits(f["packed_bits"][()], n_bits)
            paths = [p.decode() if isinstance(p, bytes) else p for p in f["paths"][()]]
            features = f["features"][()] if "features" in f else None
            state = {key: f["hasher_state"][key][()] for key in f["hasher_state"]} if "hasher_state" in f else None
    except (OSError, KeyError) as error:
        raise DataError(f"{path}: not an index written by `scae-hash index` ({error})") from None
    if "model_path" in attrs:
        from scae_hash.hashers.scae import SCAEHasher

        hasher = SCAEHasher.load(attrs["model_path"], progress=False)
    elif attrs["method"] in BASELINES and state is not None:
        hasher = make_baseline(attrs["method"], n_bits, int(attrs["seed"])).restore_state(state)
    else:
        raise DataError(f"{path}: unknown hasher {attrs.get('method')!r}")
    return ImageIndex(hasher, tuple(int(v) for v in attrs["image_shape"]), paths, bits, features)


def search(index: ImageIndex, query_paths: list[Path], *, k: int = 10, radius: int | None = None,
           rerank: int | None = None) -> list[list[tuple[str, float]]]:
    """Per query image: (path, score) of the results, by Hamming ranking (score = distance),
    hash-bucket lookup within `radius`, or two-stage re-ranking of a `rerank`-long shortlist
    by feature cosine (score = similarity)."""
    images = read_images(query_paths, index.image_shape)
    query_bits = index.hasher.encode(images)
    if radius is not None:
        buckets = HashBuckets(index.hasher.n_bits).add(index.bits)
        results = []
        for bits in query_bits:
            ids = buckets.lookup(bits, radius)
            distances = hamming_distances(bits[None, :], index.bits[ids])[0]
            order = np.argsort(distances, kind="stable")[:k]
            results.append([(index.paths[i], float(d)) for i, d in zip(ids[order], distances[order])])
        return results
    hamming = HammingIndex(index.hasher.n_bits).add(index.bits)
    if rerank is not None:
        if index.features is None:
            raise DataError(f"{index.hasher.name} has no continuous features to re-rank with")
        scores, ids = two_stage_search(hamming, query_bits, index.hasher.features(images), index.features,
                                       k=k, shortlist=max(rerank, k))
    else:
        scores, ids = hamming.search(query_bits, k)
    return [[(index.paths[i], float(s)) for i, s in zip(row_ids, row_scores)] for row_ids, row_scores in zip(ids, scores)]
