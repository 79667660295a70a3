"""Index a folder of images, streaming: decode and encode in batches with bounded memory,
checkpoint every batch, resume an interrupted run, append new images, skip unreadable ones.

How a run survives `kill -9`: the work goes to a folder beside the output, `<INDEX>.partial/`.
It first receives the list of files to index (fixed for the whole run, so every image has one
position), the fitted hasher's arrays and then `state.json`, which marks it complete. Each
batch of positions is then written as one part file (codes, features, which positions were
skipped and why), atomically. The same command finds the folder, checks that it was started
with the same settings, and encodes only the batches without a part file; at the end all parts
are merged, in position order, into the index file (atomically), the skipped files are listed
beside it (`<INDEX>.skipped.txt`) and the work folder is removed. A part is written once per
batch, so every image lands in the index exactly once.

A baseline is fitted on a bounded random sample of the folder (`fit_sample` images, a
randomized PCA solver), then the whole folder is streamed through it. `append` encodes only
the files under the folder that the index does not hold yet, with the index's own hasher.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from scae_hash.atomic import atomic_path, atomic_write, check_writable, write_text
from scae_hash.codes import pack_bits
from scae_hash.errors import ConfigError, DataError
from scae_hash.hashers import Hasher, make_baseline
from scae_hash.image_search import ImageIndex, file_sha256, load_index, load_scae
from scae_hash.index_file import FORMAT_VERSION
from scae_hash.path_table import PathTable, encode_paths
from scae_hash.images import ImageReadError, decode_image, display_path, find_images, to_float

DEFAULT_BATCH = 256
DEFAULT_FIT_SAMPLE = 10_000
DECODE_WORKERS = min(4, os.cpu_count() or 1)  # Pillow releases the GIL while decoding
_PART_DIGITS = 10
_COPY_ROWS = 1 << 16  # rows per chunk when copying an existing index into an appended one


@dataclass(frozen=True)
class IndexSettings:
    """What a run was started with: a resumed run must have the same."""

    folder: str
    method: str | None = None  # a baseline's name, or None with a model
    bits: int = 64
    seed: int = 0
    image_shape: tuple[int, int, int] = (32, 32, 3)
    model: str | None = None
    rerank_model: str | None = None
    append: bool = False
    fit_sample: int = DEFAULT_FIT_SAMPLE


@dataclass
class IndexSummary:
    out: Path
    indexed: int  # images in the index file
    added: int  # images encoded by this run (all of them unless appending)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    skipped_file: Path | None = None
    method: str = ""
    n_bits: int = 0
    seconds: float = 0.0


def index_folder(settings: IndexSettings, out: str | os.PathLike, *, strict: bool = False,
                 batch_size: int = DEFAULT_BATCH, progress: bool = True) -> IndexSummary:
    """Index every image under `settings.folder` into `out` (see the module docstring)."""
    start_time = time.perf_counter()
    out = check_writable(out)
    settings = replace(settings, **{name: os.path.abspath(value) for name in ("folder", "model", "rerank_model")
                                    if (value := getattr(settings, name)) is not None})
    work = out.with_name(out.name + ".partial")
    base = _load_base(out, settings) if settings.append else None
    state = _read_state(work)
    if state is not None and state["settings"] != _jsonable(settings):
        raise ConfigError(f"{display_path(work)} holds an interrupted run with other settings; rerun that "
                          "command to finish it, or delete the folder to start over")
    if state is not None and progress:
        print(f"resuming the interrupted run in {display_path(work)}", file=sys.stderr)
    try:
        if state is None:
            state = _start(work, settings, base, batch_size, strict=strict, progress=progress)
            if state is None:  # appending found nothing new
                return IndexSummary(out, len(base.paths), 0, method=base.method, n_bits=base.n_bits,
                                    seconds=time.perf_counter() - start_time)
        files = PathTable(np.fromfile(work / "files.bin", dtype=np.uint8)).to_list()
        hasher, shape = _hasher(settings, work, base)
        rerank_model = base.rerank_model_path if base is not None else settings.rerank_model
        second = load_scae(rerank_model) if rerank_model else None
        _encode_parts(work, files, hasher, shape, second, state["batch_size"], strict=strict, progress=progress)
    except ImageReadError:  # --strict refuses the whole folder: nothing is indexed
        shutil.rmtree(work, ignore_errors=True)
        raise

    parts = [_part_path(work, start) for start in range(0, len(files), state["batch_size"])]
    positions, skipped = _collect(parts, files)
    skipped_file = out.with_name(out.name + ".skipped.txt")
    if skipped:
        with atomic_write(skipped_file, "wb") as stream:
            stream.write(b"".join(os.fsencode(path) + b"\t" + why.encode("utf-8", "surrogateescape") + b"\n"
                                  for path, why in skipped))
    else:
        skipped_file.unlink(missing_ok=True)
    if base is None and not len(positions):
        shutil.rmtree(work)
        raise DataError(f"none of the {len(files)} images under {display_path(settings.folder)} could be read "
                        f"(listed in {display_path(skipped_file)})")
    # A run killed after it replaced the index file finds its images there already.
    merged = base is not None and len(positions) and files[positions[0]] in set(base.paths.to_list())
    if len(positions) and not merged:
        _write_index(out, parts, [files[i] for i in positions], hasher, shape, settings, base)
    shutil.rmtree(work)
    indexed = (len(base.paths) if base is not None else 0) + (0 if merged else len(positions))
    return IndexSummary(out, indexed, len(positions), skipped, skipped_file if skipped else None,
                        hasher.name, hasher.n_bits, time.perf_counter() - start_time)


def _load_base(out: Path, settings: IndexSettings) -> ImageIndex:
    """The index that --append adds to; it keeps its own hasher and re-rank model."""
    if not out.is_file():
        raise DataError(f"--append: index file {display_path(out)} does not exist")
    base = load_index(out)
    if settings.rerank_model is not None:
        base.rerank_model(settings.rerank_model)  # refuses a model other than the index's
    return base


def _jsonable(settings: IndexSettings) -> dict:
    return json.loads(json.dumps(asdict(settings)))


def _read_state(work: Path) -> dict | None:
    """The state of an interrupted run, or None (no run, or one killed before it was set up)."""
    try:
        return json.loads((work / "state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise DataError(f"{display_path(work)}: unreadable state of an interrupted run ({error}); "
                        "delete the folder to start over") from None


def _start(work: Path, settings: IndexSettings, base, batch_size: int, *, strict: bool, progress: bool) -> dict | None:
    """Set up the work folder: the file list, the fitted hasher, then state.json."""
    files = find_images(settings.folder)
    if base is not None:
        known = set(base.paths.to_list())
        files = [path for path in files if path not in known]
        if not files:
            return None
    shutil.rmtree(work, ignore_errors=True)  # left by a run killed while setting up
    work.mkdir()
    with atomic_write(work / "files.bin", "wb") as stream:
        stream.write(encode_paths(files).tobytes())
    if base is None and settings.method is not None:
        hasher = _fit_baseline(files, settings, strict=strict, progress=progress)
        with atomic_path(work / "hasher.npz") as temporary:
            np.savez(temporary, **hasher.learned_state())
    state = {"settings": _jsonable(settings), "batch_size": int(batch_size), "files": len(files)}
    write_text(work / "state.json", json.dumps(state))
    return state


def _fit_baseline(files: list[str], settings: IndexSettings, *, strict: bool, progress: bool) -> Hasher:
    """Fit a baseline on a seeded random sample of at most `fit_sample` images."""
    rng = np.random.default_rng(settings.seed)
    sample = np.sort(rng.choice(len(files), min(settings.fit_sample, len(files)), replace=False))
    pixels, _ = _read_batch([files[i] for i in sample], [settings.image_shape], strict=strict,
                            progress=progress, description="reading the fit sample", warn=False)
    if not len(pixels[0]):
        raise DataError(f"none of the {len(sample)} sampled images under {display_path(settings.folder)} "
                        "could be read")
    if progress:
        print(f"fitting {settings.method} ({settings.bits} bits) on {len(pixels[0])} images", file=sys.stderr)
    return make_baseline(settings.method, settings.bits, settings.seed, pca_solver="randomized").fit(pixels[0])


def _hasher(settings: IndexSettings, work: Path, base: ImageIndex | None) -> tuple[Hasher, tuple[int, int, int]]:
    """The hasher of the run and the image shape it takes."""
    if base is not None:
        return base.hasher, base.image_shape
    if settings.model is not None:
        hasher = load_scae(settings.model)
        return hasher, tuple(hasher.config.image_shape)
    with np.load(work / "hasher.npz", allow_pickle=False) as stored:
        state = {key: stored[key] for key in stored.files}
    hasher = make_baseline(settings.method, settings.bits, settings.seed, pca_solver="randomized")
    return hasher.restore_state(state), settings.image_shape


def _part_path(work: Path, start: int) -> Path:
    return work / f"part-{start:0{_PART_DIGITS}d}.npz"


def _encode_parts(work: Path, files: list[str], hasher: Hasher, shape: tuple[int, int, int], second: Hasher | None,
                  batch_size: int, *, strict: bool, progress: bool) -> None:
    """Encode every batch that has no part file yet, writing one part file per batch."""
    starts = range(0, len(files), batch_size)
    todo = [start for start in starts if not _part_path(work, start).is_file()]
    done = len(files) - sum(min(batch_size, len(files) - start) for start in todo)
    shapes = [shape] + ([tuple(second.config.image_shape)] if second is not None else [])
    pool = ThreadPoolExecutor(DECODE_WORKERS)
    try:
        with tqdm(total=len(files), initial=done, unit="img", desc="indexing", disable=not progress,
                  smoothing=0.1) as bar:
            for start in todo:
                stop = min(start + batch_size, len(files))
                pixels, bad = _read_batch(files[start:stop], shapes, strict=strict, pool=pool, bar=bar)
                good = np.setdiff1d(np.arange(stop - start), [i for i, _ in bad])
                arrays = {"positions": start + good, "skipped": np.array([start + i for i, _ in bad], dtype=np.int64),
                          "reasons": encode_paths([why for _, why in bad])}
                if len(good):
                    bits, features = hasher.encode_with_features(pixels[0])
                    arrays["packed"] = pack_bits(bits)
                    if features is not None:
                        arrays["features"] = features.astype(np.float32)
                    if second is not None:
                        arrays["rerank_features"] = second.features(pixels[1]).astype(np.float32)
                with atomic_path(_part_path(work, start)) as temporary:
                    np.savez(temporary, **arrays)
    finally:  # on Ctrl-C, stop now rather than decode the rest of the batch first
        pool.shutdown(wait=True, cancel_futures=True)


def _read_batch(paths: list[str], shapes: list[tuple[int, int, int]], *, strict: bool, pool=None, bar=None,
                progress: bool = False, description: str = "",
                warn: bool = True) -> tuple[list[np.ndarray], list[tuple[int, str]]]:
    """Decode images once, as float32 pixels for each shape; unreadable ones are left out
    (with one warning line each, if `warn`), or refused with `strict`."""
    def read(path: str) -> list[np.ndarray] | str:
        try:
            pixels = decode_image(path)
        except ImageReadError as error:
            if strict:
                raise
            return error.reason
        return [to_float(pixels, shape) for shape in shapes]

    own_bar = bar is None
    bar = tqdm(total=len(paths), unit="img", desc=description, disable=not progress) if own_bar else bar
    decoded, bad = [], []
    results = pool.map(read, paths) if pool is not None else map(read, paths)
    for row, result in enumerate(results):
        if isinstance(result, str):
            bad.append((row, result))
            if warn:
                tqdm.write(f"scae-hash: warning: skipped {display_path(paths[row])}: {result}", file=sys.stderr)
        else:
            decoded.append(result)
        bar.update()
    if own_bar:
        bar.close()
    stacked = [np.stack([images[i] for images in decoded]) if decoded
               else np.empty((0, *shape), np.float32) for i, shape in enumerate(shapes)]
    return stacked, bad


def _collect(parts: list[Path], files: list[str]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """The positions encoded by all parts, in order, and the (path, why) of the skipped ones."""
    positions, skipped = [], []
    for part in parts:
        with np.load(part, allow_pickle=False) as stored:
            positions.append(stored["positions"])
            skipped += [(files[i], why) for i, why in zip(stored["skipped"], PathTable(stored["reasons"]).to_list())]
    return np.concatenate(positions), skipped


def _write_index(out: Path, parts: list[Path], paths: list[str], hasher: Hasher, shape: tuple[int, int, int],
                 settings: IndexSettings, base: ImageIndex | None) -> None:
    """Write the index file from the existing index (when appending) and the parts, in order."""
    n_base = len(base.paths) if base is not None else 0
    total = n_base + len(paths)
    dims = {}
    for part in parts:  # feature sizes, from any part that holds encoded images
        with np.load(part, allow_pickle=False) as stored:
            dims.update({name: stored[name].shape[1] for name in ("features", "rerank_features") if name in stored.files})
    with atomic_path(out) as temporary, h5py.File(temporary, "w") as f:
        packed = f.create_dataset("packed_bits", (total, -(-hasher.n_bits // 8)), dtype=np.uint8)
        features = {name: f.create_dataset(name, (total, dim), dtype=np.float32) for name, dim in dims.items()}
        attrs = {"format_version": FORMAT_VERSION, "method": hasher.name, "n_bits": hasher.n_bits,
                 "seed": hasher.seed, "image_shape": list(shape)}
        # Where the images were found: `serve` serves no file from elsewhere.
        if base is None or base.folders is not None:
            folders = dict.fromkeys([*(base.folders if base is not None else []), settings.folder])
            attrs["folders"] = np.array([os.fsencode(folder) for folder in folders], dtype=h5py.string_dtype("ascii"))
        if base is not None:
            packed[:n_base] = base.codes.packed()
            with h5py.File(base.file, "r") as old:
                attrs.update({key: value for key, value in old.attrs.items() if key not in attrs})
                for name, dataset in features.items():
                    for row in range(0, n_base, _COPY_ROWS):
                        stop = min(row + _COPY_ROWS, n_base)
                        dataset[row:stop] = old[name][row:stop]
                if "hasher_state" in old:
                    old.copy("hasher_state", f)
        elif settings.model is not None:
            attrs["model_path"] = os.path.abspath(settings.model)
        else:
            attrs.update(pca_solver="randomized", fit_sample=settings.fit_sample)
            group = f.create_group("hasher_state")
            for key, value in hasher.learned_state().items():
                group.create_dataset(key, data=value)
        if settings.rerank_model is not None and base is None:
            attrs.update(rerank_model_path=os.path.abspath(settings.rerank_model),
                         rerank_model_sha256=file_sha256(settings.rerank_model))
        row = n_base
        for part in parts:
            with np.load(part, allow_pickle=False) as stored:
                count = len(stored["positions"])
                if count:
                    packed[row:row + count] = stored["packed"]
                    for name, dataset in features.items():
                        dataset[row:row + count] = stored[name]
                row += count
        f.create_dataset("paths", data=np.concatenate([base.paths.raw, np.zeros(1, np.uint8), encode_paths(paths)]) if n_base
                         else encode_paths(paths))
        f.attrs.update(attrs)
