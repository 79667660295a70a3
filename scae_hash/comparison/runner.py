"""Running the comparison: which models, fitted or reused, encoded once and cached; each
missing row scored, timed and appended as soon as it is done; then the table and the figure.

Models: the SCAE hasher of the data set's config (training seed ``seed``); a second SCAE model,
trained the same way with seed ``seed + 1``, whose features re-rank the first one's shortlist
(the dual-model strategy: one model for the codes, an independently trained one for the
features); the supervised Siamese network (labels used in training: the reference ceiling);
ITQ on pixels for reference.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from scae_hash.atomic import atomic_path
from scae_hash.codes_file import CodesFile
from scae_hash.comparison.costs import EXTRAPOLATE_TO, TIMING_K, QueryCost, bytes_per_item, measure_query_costs
from scae_hash.comparison.ranking import ENTRIES, Entry, score_entry, supervision
from scae_hash.errors import ConfigError
from scae_hash.metrics import RetrievalMetrics

if TYPE_CHECKING:
    from scae_hash.data import Dataset
    from scae_hash.hashers.base import Hasher
    from scae_hash.protocol import Split


@dataclass(frozen=True)
class ComparisonSetup:
    """Where a comparison reads and writes, and how it measures; one data set and code length."""

    dataset: str
    bits: int = 64
    seed: int = 0
    split_seed: int = 0
    data_dir: str | None = None
    config_dir: Path = Path("experiments/configs")
    run_root: Path = Path("runs")
    results_dir: Path = Path("results")
    threads: int = 1
    repeats: int = 9
    timing_queries: int = 200
    siamese_epochs: int = 3
    only: tuple[str, ...] = ()  # entry methods to run (all when empty)
    force: bool = False  # recompute rows already saved (encodings stay cached)
    progress: bool = True

    @property
    def cache_dir(self) -> Path:
        """Each model's codes and features (codes files), so a rerun skips finished encodings."""
        return self.run_root / "comparison" / f"{self.dataset}-{self.bits}b-seed{self.seed}-split{self.split_seed}"

    @property
    def results_file(self) -> Path:
        return self.results_dir / "comparison.csv"


def make_hasher(key: str, setup: ComparisonSetup) -> Hasher:
    """The hasher behind a model key; an SCAE model reuses (or resumes) its run folder."""
    from scae_hash.hashers.shallow import ITQ

    if key == "itq":
        return ITQ(setup.bits, setup.seed)
    if key == "imh":
        from scae_hash.hashers.manifold import ManifoldHasher

        return ManifoldHasher(setup.bits, setup.seed)
    if key == "siamese-supervised":
        from scae_hash.hashers.siamese import SiameseHasher

        return SiameseHasher(setup.bits, setup.seed, epochs=setup.siamese_epochs, progress=setup.progress)
    if key not in ("scae", "scae-dual"):
        raise ConfigError(f"unknown comparison model {key!r}")
    from scae_hash.config import load_config
    from scae_hash.hashers.scae import SCAEHasher

    config_path = setup.config_dir / f"{setup.dataset}.yaml"
    if not config_path.is_file():
        raise ConfigError(f"no SCAE config {config_path} for data set {setup.dataset!r}")
    seed = setup.seed + (key == "scae-dual")
    # The folder `scae-hash train --config <config>` uses, so a model trained there is reused here.
    run_dir = setup.run_root / f"{config_path.stem}-seed{seed}"
    return SCAEHasher(setup.bits, seed, config=load_config(config_path), run_dir=run_dir, resume=True,
                      progress=setup.progress)


def encode_model(key: str, setup: ComparisonSetup, dataset: Dataset, split: Split) -> CodesFile:
    """Fit (or load) one model through the evaluation road and keep its codes and features;
    a cached codes file is reused unless its model file is newer."""
    from scae_hash.codes_file import load_codes, save_codes
    from scae_hash.evaluation import run_hasher

    path = setup.cache_dir / f"{key}.h5"
    hasher = make_hasher(key, setup)
    model_file = getattr(hasher, "model_path", None)
    model_is_newer = model_file is not None and model_file.is_file() and path.is_file() \
        and model_file.stat().st_mtime > path.stat().st_mtime
    if path.is_file() and not model_is_newer:
        return load_codes(path)
    reused = model_file is not None and model_file.is_file()
    config = hasher.config.to_dict() if hasattr(hasher, "config") else {
        name: value for name, value in vars(hasher).items()
        if not name.endswith("_") and isinstance(value, (bool, int, float, str, tuple))}
    outcome = run_hasher(hasher, dataset, split, method=hasher.name, protocol=dataset.name,
                         split_seed=setup.split_seed, config=config, progress=setup.progress)
    codes = outcome.codes
    codes.attrs.update(  # a reused model's fit time is its loading time: not reported
        fit_seconds=math.nan if reused else float(outcome.row["fit_seconds"]),
        encode_ms_per_image=float(outcome.row["encode_ms_per_image"]),
        supervision=outcome.row["supervision"],
        model_file=str(model_file) if model_file is not None else "",
        model_sha1=hashlib.sha1(model_file.read_bytes()).hexdigest()[:12] if model_file is not None else "",
        model_reused=bool(reused),
    )
    with atomic_path(path) as temporary:
        save_codes(temporary, codes)
    return codes


def entry_row(entry: Entry, models: dict[str, CodesFile], metrics: RetrievalMetrics, cost: QueryCost,
              *, seed: int, threads: int, n_timing_queries: int, repeats: int) -> dict:
    """One result row: quality, measured cost, and the extrapolated costs."""
    first = models[entry.models[0]]
    item_bytes = bytes_per_item(entry, models)
    summary = {key: value for key, value in metrics.summary().items() if key not in ("p_r2", "r2_empty_share")}
    features = models[entry.features].database.features if entry.features else None
    return {
        "method": entry.method,
        "ranking": entry.ranking,
        "shortlist": entry.shortlist,
        "codes_model": _describe(models[entry.codes]) if entry.codes else None,
        "features_model": _describe(models[entry.features]) if entry.features else None,
        "supervision": supervision(entry),
        "dataset": first.attrs["dataset"],
        "protocol": first.attrs["protocol"],
        "bits": first.n_bits,
        "seed": seed,
        "split_seed": int(first.attrs["split_seed"]),
        **summary,
        "n_query": len(first.query.labels),
        "n_database": len(first.database.labels),
        "feature_dim": int(features.shape[1]) if features is not None else None,
        "bytes_per_item": item_bytes,
        "query_ms": cost.total_ms,
        "scan_ms": cost.scan_ms,
        "rerank_ms": cost.rerank_ms,
        "timing_k": TIMING_K,
        "timing_queries": n_timing_queries,
        "timing_repeats": repeats,
        "query_threads": threads,
        **{f"query_ms_{name}": cost.extrapolated_ms(n) for name, n in EXTRAPOLATE_TO.items()},
        **{f"memory_bytes_{name}": item_bytes * n for name, n in EXTRAPOLATE_TO.items()},
        "fit_seconds": sum(float(models[key].attrs.get("fit_seconds", math.nan)) for key in entry.models),
        "encode_ms_per_image": sum(float(models[key].attrs.get("encode_ms_per_image", math.nan))
                                   for key in entry.models),
        "models": json.dumps({key: _describe(models[key]) for key in entry.models}),
    }


def _describe(codes: CodesFile) -> str:
    attrs = codes.attrs
    where = f" ({attrs['model_file']}, sha1 {attrs['model_sha1']})" if attrs.get("model_file") else ""
    return f"{attrs['method']} seed {attrs['seed']}{where}"


def done_methods(setup: ComparisonSetup) -> set[str]:
    """Entries whose row this data set, code length and seeds already have."""
    if setup.force or not setup.results_file.is_file():
        return set()
    frame = pd.read_csv(setup.results_file)
    same = ((frame["dataset"] == setup.dataset) & (frame["bits"] == setup.bits)
            & (frame["seed"] == setup.seed) & (frame["split_seed"] == setup.split_seed))
    return set(frame.loc[same, "method"])


def run_comparison(setup: ComparisonSetup, log: Callable[[str], None] = print) -> list[dict]:
    """Every missing row of the comparison, each appended as soon as it is scored (its table and
    figure are drawn from the saved rows by experiments/make_tables.py and make_figures.py)."""
    from scae_hash.atomic import check_writable
    from scae_hash.experiment import RunSettings, protocol_data
    from scae_hash.results import append_rows, provenance

    check_writable(setup.results_file)
    unknown = set(setup.only) - {entry.method for entry in ENTRIES}
    if unknown:
        raise ConfigError(f"unknown comparison rows {', '.join(sorted(unknown))}; choose among "
                          f"{', '.join(entry.method for entry in ENTRIES)}")
    todo = [entry for entry in ENTRIES
            if entry.method not in done_methods(setup) and (not setup.only or entry.method in setup.only)]
    new_rows = []
    if todo:
        settings = RunSettings(seed=setup.seed, split_seed=setup.split_seed, data_dir=setup.data_dir,
                               results_dir=setup.results_dir, progress=setup.progress)
        data = protocol_data(setup.dataset, settings)
        dataset, split = data.dataset, data.split
        if dataset.name != setup.dataset:
            raise ConfigError(f"use the data set's own name {dataset.name!r}, not {setup.dataset!r}")
        models: dict[str, CodesFile] = {}
        for key in dict.fromkeys(key for entry in todo for key in entry.models):
            log(f"[comparison] model {key}")
            models[key] = encode_model(key, setup, dataset, split)
        log(f"[comparison] timing {len(todo)} searches, {setup.repeats} interleaved rounds")
        costs = measure_query_costs(todo, models, threads=setup.threads, repeats=setup.repeats,
                                    n_queries=setup.timing_queries)
        for position, entry in enumerate(todo, 1):
            log(f"[comparison {position}/{len(todo)}] {entry.method}")
            metrics = score_entry(entry, models, progress=setup.progress)
            cost = costs[entry.method]
            row = entry_row(entry, models, metrics, cost, seed=setup.seed, threads=setup.threads,
                            n_timing_queries=setup.timing_queries, repeats=setup.repeats)
            configs = {key: json.loads(models[key].attrs.get("config") or "{}") for key in entry.models}
            row.update(provenance(configs), data_source=dataset.source)
            append_rows([row], setup.results_file)
            new_rows.append(row)
    return new_rows
