"""What a run saves for the figures beyond its result row, so that no figure needs retraining.

One small compressed ``.npz`` per run (``results/artifacts/<run>.npz``) holds: a fixed sample of
database codes and features with labels and indices (for the 2-D maps), every bit's firing rate
over the whole database, the top results of a few fixed queries with their thumbnails (the
retrieval examples) and, for the SCAE hasher, a few images as each greedy-pretrained block
and the fine-tuned decoder reconstruct them. The run's training histories (CSV) are copied to
``results/histories/<run>/``, with the run's provenance. The samples and queries are the same for every method of a
data set, so SCAE-hash and ITQ can be shown side by side.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from scae_hash.atomic import atomic_path, write_text
from scae_hash.codes import hamming_distances, pack_bits, unpack_bits
from scae_hash.data import Dataset
from scae_hash.hashers.base import Hasher
from scae_hash.protocol import Split

SAMPLE_SIZE = 2000  # database items in the 2-D maps
SAMPLE_SEED = 0  # the same sample for every method and run
N_QUERIES = 5  # queries spread evenly over the split's query list
TOP_K = 10
N_RECONSTRUCTIONS = 8  # queries (spread the same way) that are reconstructed
PIXEL_COMPONENTS = 50  # a method without features is mapped from its input pixels, PCA-reduced


def save_run_artifacts(results_dir: str | Path, run_name: str, hasher: Hasher, outcome, dataset: Dataset,
                       split: Split) -> Path:
    """Write ``<results_dir>/artifacts/<run_name>.npz`` (and copy SCAE histories); returns the npz path."""
    results_dir = Path(results_dir)
    arrays = {
        **_meta(outcome.row, dataset),
        **code_sample(outcome.codes.database, dataset),
        "bit_rates": outcome.codes.database.bits.mean(axis=0).astype(np.float32),
        **retrieval_examples(outcome.codes.query, outcome.codes.database, dataset),
        **reconstructions(hasher, dataset, split.query[spread_positions(len(split.query), N_RECONSTRUCTIONS)]),
    }
    path = results_dir / "artifacts" / f"{run_name}.npz"
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as stream:
            np.savez_compressed(stream, **arrays)
    copy_histories(getattr(hasher, "run_dir", None), results_dir / "histories" / run_name,
                   n_bits=hasher.n_bits, provenance=run_provenance(outcome.row))
    return path


PROVENANCE_KEYS = ("method", "variant", "dataset", "protocol", "bits", "seed", "commit", "created", "command")


def run_provenance(row: dict) -> dict:
    """What made a run's artifacts and histories: its result row's keys, commit and command."""
    return {key: row.get(key) for key in PROVENANCE_KEYS}


def _meta(row: dict, dataset: Dataset) -> dict:
    meta = run_provenance(row) | {"class_names": list(dataset.class_names)}
    return {"meta": np.array(json.dumps(meta, default=str))}


def sample_positions(n_database: int) -> np.ndarray:
    """Positions (in the database) of the fixed map sample, ascending."""
    rng = np.random.default_rng(SAMPLE_SEED)
    return np.sort(rng.choice(n_database, min(SAMPLE_SIZE, n_database), replace=False))


def code_sample(database, dataset: Dataset) -> dict:
    """Packed codes, labels, indices and features (or PCA-reduced pixels) of the map sample."""
    positions = sample_positions(len(database.bits))
    index = database.index[positions]
    if database.features is not None:
        features, kind = database.features[positions], "learned features"
    else:
        features, kind = _pixel_components(dataset.as_float(index)), "pixels (first principal components)"
    return {
        "sample_index": index.astype(np.int64),
        "sample_labels": database.labels[positions].astype(np.int16),
        "sample_codes": pack_bits(database.bits[positions]),
        "sample_features": features.astype(np.float16),
        "feature_kind": np.array(kind),
    }


def _pixel_components(pixels: np.ndarray) -> np.ndarray:
    flat = pixels.reshape(len(pixels), -1)
    flat = flat - flat.mean(axis=0)
    basis = np.linalg.svd(flat, full_matrices=False)[2]
    return flat @ basis[:PIXEL_COMPONENTS].T


def spread_positions(n: int, count: int) -> np.ndarray:
    """``count`` positions spread evenly over ``0..n-1``: the query list is sorted by pool index,
    and a pool stored class by class (CIFAR-10) would give one class in its first entries."""
    return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))


def retrieval_examples(query, database, dataset: Dataset) -> dict:
    """Top ``TOP_K`` database items of ``N_QUERIES`` fixed queries (Hamming ranking, ties by
    database index as in docs/protocol.md), with their thumbnails."""
    chosen = spread_positions(len(query.bits), N_QUERIES)
    distances = hamming_distances(query.bits[chosen], database.bits)
    top = np.argsort(distances, axis=1, kind="stable")[:, :TOP_K]
    top_index = database.index[top]
    return {
        "query_index": query.index[chosen].astype(np.int64),
        "query_labels": query.labels[chosen].astype(np.int16),
        "query_images": dataset.images[query.index[chosen]],
        "top_index": top_index.astype(np.int64),
        "top_labels": database.labels[top].astype(np.int16),
        "top_distances": np.take_along_axis(distances, top, axis=1).astype(np.int16),
        "top_images": dataset.images[top_index],
    }


def reconstructions(hasher: Hasher, dataset: Dataset, index: np.ndarray) -> dict:
    """Originals and their reconstructions by each pretrained block and by the fine-tuned
    decoder (uint8), for a hasher that has them (the SCAE); nothing otherwise."""
    pretrained = getattr(hasher, "pretrained_blocks_", None)
    model = getattr(hasher, "model_", None)
    if model is None or not hasattr(model, "decoder"):
        return {}
    from scae_hash.model.reconstruct import block_reconstructions, decoder_reconstruction

    images = dataset.as_float(index)
    arrays = {"reconstruction_index": np.asarray(index, dtype=np.int64), "originals": dataset.images[index],
              "decoder_input": np.array(model.decoder_input),
              "decoder_reconstruction": _to_uint8(decoder_reconstruction(
                  model, images, getattr(hasher, "trained_head_", None)))}
    if pretrained is not None:
        arrays["block_reconstructions"] = _to_uint8(block_reconstructions(model.blocks, pretrained, images))
    return arrays


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)


def copy_histories(run_dir: Path | None, target: Path, *, n_bits: int, provenance: dict) -> list[Path]:
    """Copy the pretraining histories and this code length's fine-tuning history of a run folder,
    with ``provenance.json`` (:func:`run_provenance`) beside them: Keras' CSVs have no room for it."""
    if run_dir is None or not Path(run_dir).is_dir():
        return []
    sources = sorted(Path(run_dir).glob("history_pretrain_block*.csv"))
    sources += [path for path in [Path(run_dir) / f"history_finetune_{n_bits}.csv"] if path.is_file()]
    copied = []
    for source in sources:
        with atomic_path(target / source.name) as temporary:
            shutil.copyfile(source, temporary)
        copied.append(target / source.name)
    if copied:
        copied.append(write_text(target / "provenance.json", json.dumps(provenance, default=str, indent=1) + "\n"))
    return copied


def load_artifacts(path: str | Path) -> dict:
    """A saved artifacts file as a dict of arrays, with ``meta`` decoded, codes unpacked and
    its own ``path``."""
    with np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["meta"] = json.loads(str(arrays["meta"]))
    arrays["path"] = str(path)
    if "sample_codes" in arrays:
        arrays["sample_codes"] = unpack_bits(arrays["sample_codes"], int(arrays["meta"]["bits"]))
    return arrays
