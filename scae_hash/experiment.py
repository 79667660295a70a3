"""The experiment layer: runs of the protocol with plain arguments in and result rows out.

`scae-hash baseline` and `train` (hence every cell of `reproduce`), experiments/hash_heads.py,
the deep-hashing comparison and experiments/bench_train.py all take this road, so the split,
the training subset, the run names and the results file are decided here once, with the split
seed an argument everywhere. Nothing here reads an ``argparse.Namespace``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scae_hash.constants import FIGURE_BITS, FIGURE_SEED
from scae_hash.errors import ScaeHashError

#: Where validation rows go (under the results folder): never mixed into the thesis tables.
VALIDATION_FILE = "validation.csv"


def _quiet(message: str) -> None:
    """The default log: say nothing."""


@dataclass(frozen=True)
class RunSettings:
    """Where a grid of runs scores and records: the same for every run of the grid."""

    seed: int = 0
    split_seed: int = 0
    split: str = "test"  # or "validation": queries drawn from the training set
    data_dir: str | None = None
    results_dir: str | Path = "results"
    save: bool = True  # append rows (and curves, artifacts, the split) under results_dir
    codes_out: str | None = None  # a docs/protocol.md codes file per run (a template)
    progress: bool = True
    log: Callable[[str], None] = field(default=_quiet, compare=False)
    on_row: Callable[[dict], None] = field(default=lambda row: None, compare=False)

    @property
    def validating(self) -> bool:
        return self.split == "validation"

    def results_file(self, test_file: str) -> Path:
        """The CSV a run's rows go to: ``test_file`` for the thesis tables, else the validation file."""
        return Path(self.results_dir) / (VALIDATION_FILE if self.validating else test_file)


@dataclass(frozen=True)
class ProtocolData:
    """A data set with the split a run trains and scores on."""

    dataset: Any  # scae_hash.data.Dataset
    split: Any  # scae_hash.protocol.Split
    protocol: str  # the data set's name, or it with the training subset
    split_file: Path


def subset_suffix(subset: int | None) -> str:
    """Marks the names of a training-subset run's files apart from the full run's."""
    return f"-subset{subset}" if subset else ""


def run_name(config_path: str | Path, method: str = "scae", overrides: Sequence[str] = ()) -> str:
    """A config's run name: its file stem (prefixed by a method other than the thesis'), with a
    digest of the ``--set`` overrides, so an overridden run never resumes or reuses another's models."""
    name = Path(config_path).stem if method == "scae" else f"{method}-{Path(config_path).stem}"
    if overrides:
        name += "-" + hashlib.sha1("\n".join(overrides).encode()).hexdigest()[:8]
    return name


def protocol_data(dataset_name: str, settings: RunSettings, subset: int | None = None) -> ProtocolData:
    """Load a data set and draw the protocol's split (or its validation split) with the split
    seed; with ``subset``, train on that many training images drawn with the run's seed."""
    from scae_hash.data import load_dataset
    from scae_hash.protocol import Split, split_for, subset_indices

    dataset = load_dataset(dataset_name, settings.data_dir, progress=settings.progress)
    split = split_for(settings.split, dataset.labels, settings.split_seed)
    tag = "-validation" if settings.validating else ""
    split_file = Path(settings.results_dir) / "splits" / f"{dataset.name}-seed{settings.split_seed}{tag}.json"
    protocol = dataset.name
    if subset:
        split = Split(split.query, split.database, subset_indices(split.train, subset, settings.seed))
        protocol = f"{dataset.name} (train subset {subset})"
    return ProtocolData(dataset, split, protocol, split_file)


def run_grid(datasets: Sequence[str], runs: Sequence[tuple[str, int]], make: Callable[[str, int], Any],
             settings: RunSettings, *, test_file: str, config: dict | None = None, subset: int | None = None,
             variant: str = "") -> list[dict]:
    """Fit, encode and score ``make(method, bits)`` for every run on every data set; record the rows."""
    from scae_hash.checks import check_run_outputs, codes_path
    from scae_hash.codes_file import save_codes
    from scae_hash.evaluation import run_hasher
    from scae_hash.results import append_rows, save_curves, save_split

    check_run_outputs(settings.results_dir if settings.save else None, settings.codes_out, settings.seed,
                      datasets, runs)  # before anything long: a typo must not cost a fit
    rows: list[dict] = []
    n_runs = len(datasets) * len(runs)
    keep_outputs = settings.save and not settings.validating  # curves and artifacts serve the thesis figures
    for dataset_name in datasets:
        data = protocol_data(dataset_name, settings, subset)
        if settings.save:
            save_split(data.split_file, data.dataset.name, settings.split_seed, data.split.query)
        for method, bits in runs:
            settings.log(f"[{len(rows) + 1}/{n_runs}] {method} {data.dataset.name} {bits} bits")
            hasher = make(method, bits)
            outcome = run_hasher(hasher, data.dataset, data.split, method=method, protocol=data.protocol,
                                 split_seed=settings.split_seed, config=config, progress=settings.progress)
            run_rows = [outcome.row] + ([outcome.feature_row] if outcome.feature_row else [])
            for row in run_rows:
                row.update({"split": settings.split, **({"variant": variant} if variant else {})})
            outcome.row["split_file"] = str(data.split_file)
            if settings.codes_out:
                path = codes_path(settings.codes_out, n_runs, method=method, dataset=data.dataset.name, bits=bits,
                                  seed=settings.seed)
                save_codes(path, outcome.codes)
                outcome.row["codes_file"] = str(path)
            # A subset run must not overwrite the curves of the full run it is a cheap copy of.
            name = f"{method}-{variant or data.dataset.name}-{bits}b-seed{settings.seed}{subset_suffix(subset)}"
            if keep_outputs:
                outcome.row["curves_file"] = str(save_curves(
                    Path(settings.results_dir) / "curves" / f"{name}.json", outcome.metrics, outcome.row))
            if keep_outputs and (bits, settings.seed) == (FIGURE_BITS, FIGURE_SEED):
                from scae_hash.artifacts import save_run_artifacts  # what the figures need beyond the row

                outcome.row["artifacts_file"] = str(save_run_artifacts(settings.results_dir, name, hasher, outcome,
                                                                       data.dataset, data.split))
            if settings.save:
                append_rows(run_rows, settings.results_file(test_file))
            for row in run_rows:
                settings.on_row(row)
            rows += run_rows
    return rows


def run_baselines(methods: Sequence[str], datasets: Sequence[str], bits: Sequence[int], settings: RunSettings,
                  hyperparameters: dict[str, Any] | None = None, variant: str = "") -> list[dict]:
    """Every baseline at every code length on every data set (rows in baselines.csv)."""
    from scae_hash.hashers import make_baseline

    hyperparameters = hyperparameters or {}
    for method in methods:  # a misspelt name or setting is one line, before any data loads
        make_baseline(method, bits[0], settings.seed, **hyperparameters)
    return run_grid(datasets, [(method, n_bits) for method in methods for n_bits in bits],
                    lambda method, n_bits: make_baseline(method, n_bits, settings.seed, **hyperparameters),
                    settings, test_file="baselines.csv", variant=variant)


def load_method_config(path: str | Path, overrides: Sequence[str] = ()):
    """A config of the thesis' SCAE-hash or of another method, by its ``method`` key; a bad
    config is one line, before Keras loads."""
    from scae_hash.config import config_method, load_config

    method = config_method(path)
    if method == "scae":
        return load_config(path, list(overrides))
    from scae_hash.manifold.config import METHOD, load_manifold_config

    if method != METHOD:
        raise ScaeHashError(f"{path}: unknown method {method!r}; train knows scae (the default) and {METHOD}")
    return load_manifold_config(path, list(overrides))


def run_training(config_path: str | Path, settings: RunSettings, *, seed: int | None = None,
                 bits: Sequence[int] = (), overrides: Sequence[str] = (), subset: int | None = None,
                 run_dir: str | Path = "runs", resume: bool = False, validate_each_epoch: bool = False) -> list[dict]:
    """Train the config's model at each code length (default: the config's) with ``seed`` (default:
    the config's) and score it (rows in scae.csv)."""
    from scae_hash.checks import check_run_outputs
    from scae_hash.hashers import method_class
    from scae_hash.interrupt import StopOnInterrupt, interrupt_at_batch_end

    config = load_method_config(config_path, overrides)
    check_run_outputs(None, None, 0, [], [], run_dir=run_dir)
    settings = replace(settings, seed=config.seed if seed is None else seed)
    method = getattr(config, "method", "scae")
    name = run_name(config_path, method, overrides)
    split_tag = "-validation" if settings.validating else ""  # never resume a full run from a smoke run
    model_dir = Path(run_dir) / f"{name}{subset_suffix(subset)}{split_tag}-seed{settings.seed}"

    def make(method_name: str, n_bits: int):
        callbacks = [StopOnInterrupt()]
        if validate_each_epoch:
            from scae_hash.data import load_dataset
            from scae_hash.validation import ValidationCurve

            dataset = load_dataset(config.dataset, settings.data_dir, progress=False)
            callbacks.append(ValidationCurve(dataset, n_bits, settings.seed, settings.split_seed,
                                             progress=settings.progress))
        # the method's class by name: a row depends on the code of the method it trains only
        return method_class(method_name)(n_bits, settings.seed, config=config, run_dir=model_dir, resume=resume,
                                         progress=settings.progress, callbacks=callbacks)

    with interrupt_at_batch_end():
        return run_grid([config.dataset], [(method, n_bits) for n_bits in (bits or config.bits)], make, settings,
                        test_file="scae.csv", config=config.to_dict(), subset=subset, variant=name)
