"""Query an index of images: the retrieval a user of the hash codes sees.

The index file (HDF5, written by `scae_hash.indexer`) holds the packed codes, the image paths,
the image size the hasher expects, the hasher itself (a baseline's learned arrays, or the
path of an SCAE `.keras` model), optionally the model's continuous features, and optionally
the features of a second, separately trained model (`index --rerank-model`) for dual-model
re-ranking. Nothing is pickled, so an index file is safe to open.

Paths are stored as the bytes the file system gave, joined by NUL (`scae_hash.path_table`),
and a path is decoded only when a result shows it. Every field is checked when the file is
opened (`scae_hash.index_file`): an altered file is refused in one line, not in a query.

This module is on the path of `scae-hash search`, whose start-up time matters: it imports
neither Keras (an SCAE model is loaded on first use) nor scikit-learn nor tqdm.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from scae_hash.errors import DataError
from scae_hash.hashers import Hasher
from scae_hash.images import decode_image, display_path, load_image, to_float
from scae_hash.index import HammingIndex
from scae_hash.index_file import read_index_file
from scae_hash.path_table import PathTable
from scae_hash.rerank import rerank_shortlist, unit_rows

DEFAULT_SHORTLIST = 100  # shortlist of a dual-model re-rank when no --rerank N is given
_HASH_CHUNK = 1 << 20
# Reading more than 1/8 of a feature set's rows one by one is slower than reading it whole.
_WHOLE_READ_SHARE = 8


def file_sha256(path: str | os.PathLike) -> str:
    """Content hash of a model file: ties stored features to the exact model that made them."""
    import hashlib  # only re-ranking with a second model needs it: not on every search's start

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_HASH_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def process_seconds() -> float | None:
    """Seconds since this process started (the interpreter's own start-up included), from
    Linux's /proc; None where that is not available."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat", "rb") as stream:
            started = int(stream.read().rsplit(b")", 1)[1].split()[19]) / ticks
        with open("/proc/uptime", "rb") as stream:
            uptime = float(stream.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(uptime - started, 0.0)


def load_scae(path: str | os.PathLike) -> Hasher:
    """A trained SCAE model as a hasher (imports Keras: seconds)."""
    from scae_hash.hashers.scae import SCAEHasher

    if not Path(path).is_file():
        raise DataError(f"model file not found: {display_path(path)}")
    return SCAEHasher.load(path, progress=False)


class ImageIndex:
    """An index file opened for search: codes in a faiss-backed `HammingIndex`, paths as their
    stored bytes; features stay on disk and only the rows a re-rank needs are read.

    `hasher` of an SCAE index is loaded on first use; `timings` records how long that took.
    """

    def __init__(self, *, method: str, n_bits: int, seed: int, image_shape: tuple[int, int, int],
                 paths: PathTable | Sequence[str], codes: HammingIndex, hasher: Hasher | None = None,
                 model_path: str | None = None, file: Path | None = None,
                 rerank_model_path: str | None = None, rerank_model_sha256: str | None = None,
                 folders: list[str] | None = None) -> None:
        self.method, self.n_bits, self.seed = method, int(n_bits), int(seed)
        self.image_shape = tuple(int(side) for side in image_shape)
        self.paths = paths if isinstance(paths, PathTable) else PathTable.from_paths(paths)
        self.folders = folders
        self.codes = codes
        self.model_path = model_path
        self.file = file
        self.rerank_model_path = rerank_model_path
        self.rerank_model_sha256 = rerank_model_sha256
        self.timings: dict[str, float] = {}
        self._hasher = hasher
        self._features: np.ndarray | None = None
        self._rerank_models: dict[str, Hasher] = {}

    @property
    def hasher(self) -> Hasher:
        if self._hasher is None:
            start = time.perf_counter()
            self._hasher = load_scae(self.model_path)
            self.timings["model load"] = time.perf_counter() - start
        return self._hasher

    @property
    def bits(self) -> np.ndarray:
        """All codes unpacked, (n, n_bits) {0, 1} (8x the memory of the index: for tests)."""
        return self.codes.codes()

    @property
    def has_features(self) -> bool:
        """Whether the index holds the model's continuous features (without reading them)."""
        return self._features is not None or self._dataset_shape("features") is not None

    @property
    def features(self) -> np.ndarray | None:
        """All of the model's database features, or None: read whole on first use and kept
        (a search reads only the rows it re-ranks, see `feature_rows`)."""
        if self._features is None and self.has_features:
            self._features = self.feature_rows("features", np.arange(len(self.paths)))
        return self._features

    @features.setter
    def features(self, features: np.ndarray | None) -> None:
        self._features = features

    def feature_rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows `ids` (any shape) of a feature set ("features" or "rerank_features"), reading
        only those rows from disk unless the set is in memory."""
        ids = np.asarray(ids)
        if name == "features" and self._features is not None:
            return self._features[ids]
        unique, inverse = np.unique(ids, return_inverse=True)
        with h5py.File(self.file, "r") as f:
            stored = f[name]
            if len(unique) > len(stored) // _WHOLE_READ_SHARE:  # one read beats many row reads
                return stored[()][ids]
            rows = stored[unique] if len(unique) else np.empty((0, stored.shape[1]), stored.dtype)
        return rows[inverse.reshape(ids.shape)]

    def rerank_model(self, model: str | os.PathLike | Hasher) -> Hasher:
        """The second model of a dual-model search, checked to be the one the index's
        re-rank features came from (by content hash), loaded once."""
        if isinstance(model, Hasher):
            return model
        key = os.path.abspath(model)
        if key not in self._rerank_models:
            if self.rerank_model_sha256 is None:
                raise DataError(f"{display_path(self.file)} holds no re-rank model's features; build it with "
                                f"`scae-hash index FOLDER ... --rerank-model {display_path(model)}`")
            if not Path(model).is_file():
                raise DataError(f"model file not found: {display_path(model)}")
            if file_sha256(model) != self.rerank_model_sha256:
                raise DataError(f"{display_path(model)} is not the model whose features {display_path(self.file)} "
                                f"holds ({display_path(self.rerank_model_path)}); re-index with --rerank-model")
            start = time.perf_counter()
            self._rerank_models[key] = load_scae(model)
            self.timings["model load"] = self.timings.get("model load", 0.0) + time.perf_counter() - start
        return self._rerank_models[key]

    def _dataset_shape(self, name: str) -> tuple[int, ...] | None:
        if self.file is None:
            return None
        with h5py.File(self.file, "r") as f:
            return f[name].shape if name in f else None


def load_index(path: str | os.PathLike) -> ImageIndex:
    """Open an index file written by `scae-hash index`, checked field by field (the SCAE model
    itself loads on first use)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"index file not found: {display_path(path)}")
    fields = read_index_file(path)
    return ImageIndex(method=fields.method, n_bits=fields.n_bits, seed=fields.seed, image_shape=fields.image_shape,
                      paths=fields.paths, codes=fields.codes,
                      hasher=fields.hasher, model_path=fields.model_path, file=path,
                      rerank_model_path=fields.rerank_model_path, rerank_model_sha256=fields.rerank_model_sha256,
                      folders=fields.folders)


Results = list[list[tuple[str, float]]]


@dataclass
class Hits:
    """One query's results: index positions and their scores, best first (one page of them:
    from `offset`), and how many results there are in all (`total`): every indexed image for
    a ranking, those within the radius for a lookup, the shortlist for a re-rank."""

    ids: np.ndarray
    scores: np.ndarray
    total: int
    offset: int = 0
    shortlist: int | None = None  # the re-ranked shortlist's length, for a re-rank


def read_images(paths: Sequence[str | os.PathLike], shape: tuple[int, int, int]) -> np.ndarray:
    """Images as float32 (n, height, width, channels) in [0, 1], resized to `shape`."""
    return np.stack([load_image(path, shape) for path in paths])


def decode_queries(query_paths: Sequence[str | os.PathLike], timings: dict[str, float] | None = None) -> list[np.ndarray]:
    """Query images decoded as `images.decode_image` does (the road indexing takes)."""
    start = time.perf_counter()
    images = []
    for query in query_paths:
        if not os.path.isfile(query):
            raise DataError(f"query image not found: {display_path(query)}")
        images.append(decode_image(query))
    if timings is not None:
        timings["decode"] = time.perf_counter() - start
    return images


def search(index: ImageIndex, query_paths: Sequence[str | os.PathLike], *, k: int = 10,
           radius: int | None = None, rerank: int | None = None,
           rerank_model: str | os.PathLike | Hasher | None = None,
           timings: dict[str, float] | None = None) -> Results:
    """Per query image: (path, score) of the results, by Hamming ranking (score = distance),
    lookup within Hamming `radius`, or a Hamming shortlist re-ranked by feature cosine
    (score = similarity): `rerank` = N re-ranks N candidates with the index's own model's
    features; `rerank_model` re-ranks (N, or DEFAULT_SHORTLIST) with a second model's.
    `timings`, if given, receives the seconds spent decoding, loading models, encoding and
    searching."""
    timings = {} if timings is None else timings
    images = decode_queries(query_paths, timings)
    return search_images(index, images, k=k, radius=radius, rerank=rerank, rerank_model=rerank_model,
                         timings=timings)


def search_images(index: ImageIndex, images: Sequence[np.ndarray], *, k: int = 10, radius: int | None = None,
                  rerank: int | None = None, rerank_model: str | os.PathLike | Hasher | None = None,
                  timings: dict[str, float] | None = None) -> Results:
    """`search` for images already decoded by `images.decode_image` (uint8, any size)."""
    found = find(index, images, k=k, radius=radius, rerank=rerank, rerank_model=rerank_model, timings=timings)
    return [[(index.paths[i], float(s)) for i, s in zip(hits.ids, hits.scores)] for hits in found]


def find(index: ImageIndex, images: Sequence[np.ndarray], *, k: int = 10, offset: int = 0, radius: int | None = None,
         rerank: int | None = None, rerank_model: str | os.PathLike | Hasher | None = None,
         timings: dict[str, float] | None = None) -> list[Hits]:
    """`search_images` as positions, scores and counts: results offset..offset + k - 1 of each
    query (a page). A re-rank shortlist must hold the page: one shorter is refused, as
    `index.two_stage_search` refuses it, not silently lengthened."""
    timings = {} if timings is None else timings
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    if offset < 0:
        raise DataError(f"the offset must be at least 0, got {offset}")
    if radius is not None and (rerank is not None or rerank_model is not None):
        raise DataError("choose either a radius lookup or a re-rank, not both")
    reranking = rerank is not None or rerank_model is not None
    shortlist = rerank if rerank is not None else max(DEFAULT_SHORTLIST, offset + k)
    if reranking and shortlist < offset + k:
        wanted = f"k ({k})" if not offset else f"offset + k ({offset} + {k})"
        raise DataError(f"the shortlist ({shortlist}) must be at least {wanted}")
    loaded = sum(index.timings.values())
    hasher = index.hasher
    second = index.rerank_model(rerank_model) if rerank_model is not None else None
    timings["model load"] = sum(index.timings.values()) - loaded

    start = time.perf_counter()
    pixels = np.stack([to_float(image, index.image_shape) for image in images])
    want_features = rerank is not None and second is None
    if want_features and not index.has_features:
        raise DataError(f"{index.method} has no continuous features to re-rank with")
    query_bits, query_features = (hasher.encode_with_features(pixels) if want_features
                                  else (hasher.encode(pixels), None))
    if second is not None:
        shape = second.config.image_shape
        query_features = second.features(np.stack([to_float(image, shape) for image in images]))
    timings["encode"] = time.perf_counter() - start

    start = time.perf_counter()
    stop = offset + k
    if radius is not None:
        found = [Hits(ids[offset:stop], distances[offset:stop].astype(float), len(ids), offset)
                 for distances, ids in index.codes.range_search(query_bits, radius)]
    elif reranking:
        _, candidates = index.codes.search(query_bits, shortlist)
        database_features = index.feature_rows("rerank_features" if second is not None else "features", candidates)
        scores, ids = rerank_shortlist(candidates, unit_rows(query_features), unit_rows(database_features), stop)
        found = [Hits(row_ids[offset:], row_scores[offset:], candidates.shape[1], offset, shortlist)
                 for row_ids, row_scores in zip(ids, scores)]
    else:
        distances, ids = index.codes.search(query_bits, stop)
        found = [Hits(row_ids[offset:], row_distances[offset:].astype(float), index.codes.ntotal, offset)
                 for row_ids, row_distances in zip(ids, distances)]
    timings["search"] = time.perf_counter() - start
    return found
