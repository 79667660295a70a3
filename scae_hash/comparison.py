"""Deep metric learning vs deep hashing on one data set and code length: quality, query time and
memory of each way to rank the database, from the same models.

Rankings (each a row of results/comparison.csv):

* ``hamming``: the whole database by Hamming distance of the codes (ties by database index).
* ``cosine``: the whole database by cosine similarity of the continuous features.
* ``two-stage``: the first S items of the Hamming ranking (ties by database index, so the cut
  is the protocol's) re-ranked by cosine similarity of features (equal similarities keep their
  Hamming order), **followed by the rest of the database in Hamming order**. mAP is scored on
  that full ranking; mAP@1000 and P@10 see only its head.

Models: the SCAE hasher of the data set's config (training seed ``seed``); a second SCAE model,
trained the same way with seed ``seed + 1``, whose features re-rank the first one's shortlist
(the dual-model strategy: one model for the codes, an independently trained one for the
features); the supervised Siamese network (labels used in training: the reference ceiling);
ITQ on pixels for reference.

Costs: query time is the measured wall time of answering one query at a time against the full
database (the top ``TIMING_K`` items, faiss flat indexes, the same thread count for every row,
best of several repeats). Two-stage time is the shortlist scan plus the re-ranking of the
shortlist, timed apart. Extrapolation to larger databases is linear in the scanned part (the
re-ranking of a fixed shortlist does not grow) and linear in memory; it is a model, not a
measurement. Bytes per item: 64-bit codes are 8 bytes; float32 features 4 per dimension; a
two-stage index stores both.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scae_hash.atomic import atomic_path, write_text
from scae_hash.codes import distance_dtype, hamming_distances_packed, pack_words
from scae_hash.codes_file import CodesFile
from scae_hash.errors import ConfigError
from scae_hash.metrics import RetrievalMetrics, evaluate_codes, evaluate_features, evaluate_ranking

TIMING_K = 100  # items returned per timed query
EXTRAPOLATE_TO = {"1m": 1_000_000, "100m": 100_000_000}


@dataclass(frozen=True)
class Entry:
    """One row of the comparison: which model's codes and which model's features rank how."""

    method: str
    codes: str | None = None  # model key whose codes rank (Hamming)
    features: str | None = None  # model key whose features rank or re-rank (cosine)
    shortlist: int | None = None  # two-stage: size of the Hamming shortlist

    @property
    def ranking(self) -> str:
        if self.codes and self.features:
            return "two-stage"
        return "hamming" if self.codes else "cosine"

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(key for key in (self.codes, self.features) if key))


# Model keys: "scae" (training seed), "scae-dual" (seed + 1), "siamese-supervised", "itq".
SUPERVISED_MODELS = frozenset({"siamese-supervised"})
ENTRIES: tuple[Entry, ...] = (
    Entry("scae", codes="scae"),
    Entry("scae-features", features="scae"),
    Entry("scae-two-stage-100", codes="scae", features="scae", shortlist=100),
    Entry("scae-two-stage-1000", codes="scae", features="scae", shortlist=1000),
    Entry("scae-dual-two-stage-100", codes="scae", features="scae-dual", shortlist=100),
    Entry("scae-dual-two-stage-1000", codes="scae", features="scae-dual", shortlist=1000),
    Entry("itq", codes="itq"),
    Entry("siamese-supervised", codes="siamese-supervised"),
    Entry("siamese-supervised-features", features="siamese-supervised"),
    Entry("scae+siamese-supervised-two-stage-1000", codes="scae", features="siamese-supervised", shortlist=1000),
)
ENTRY_LABELS = {
    "scae": "SCAE-hash codes",
    "scae-features": "SCAE features",
    "scae-two-stage-100": "SCAE two-stage, shortlist 100",
    "scae-two-stage-1000": "SCAE two-stage, shortlist 1,000",
    "scae-dual-two-stage-100": "Dual model (SCAE seed+1 features), shortlist 100",
    "scae-dual-two-stage-1000": "Dual model (SCAE seed+1 features), shortlist 1,000",
    "itq": "ITQ on pixels",
    "siamese-supervised": "Siamese codes (ITQ) [supervised]",
    "siamese-supervised-features": "Siamese features [supervised]",
    "scae+siamese-supervised-two-stage-1000": "SCAE shortlist 1,000 + Siamese re-rank [supervised]",
}


def supervision(entry: Entry) -> str:
    """A row is supervised as soon as any model behind it saw labels in training."""
    return "supervised" if SUPERVISED_MODELS.intersection(entry.models) else "unsupervised"


def two_stage_ranking(
    query_bits: np.ndarray,
    database_bits: np.ndarray,
    query_features: np.ndarray,
    database_features: np.ndarray,
    shortlist: int,
) -> Callable[[slice], np.ndarray]:
    """`rank_rows` for :func:`scae_hash.metrics.evaluate_ranking`: the full two-stage ranking
    (the module docstring defines it) of the queries in a slice."""
    if shortlist < 1:
        raise ConfigError(f"the shortlist must hold at least one item, got {shortlist}")
    query_words, database_words = pack_words(query_bits), pack_words(database_bits)
    dtype = distance_dtype(query_bits.shape[1])
    query_unit, database_unit = unit_rows(query_features), unit_rows(database_features)

    def rank_rows(rows: slice) -> np.ndarray:
        distances = np.empty((rows.stop - rows.start, len(database_words)), dtype=dtype)
        hamming_distances_packed(query_words[rows], database_words, out=distances)
        order = np.argsort(distances, axis=1, kind="stable")
        head = order[:, :shortlist]
        similarity = np.einsum("qd,qsd->qs", query_unit[rows], database_unit[head])
        head = np.take_along_axis(head, np.argsort(-similarity, axis=1, kind="stable"), axis=1)
        return np.concatenate([head, order[:, shortlist:]], axis=1)

    return rank_rows


def unit_rows(features: np.ndarray) -> np.ndarray:
    """float32 rows of unit length (zero rows stay zero), so a dot product is the cosine."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1).astype(np.float32)


def score_entry(entry: Entry, models: dict[str, CodesFile], *, progress: bool = False) -> RetrievalMetrics:
    """The protocol's metrics of one entry's ranking (labels only judge relevance)."""
    first = models[entry.models[0]]
    labels = (first.query.labels, first.database.labels)
    if entry.ranking == "hamming":
        codes = models[entry.codes]
        return evaluate_codes(codes.query.bits, codes.database.bits, *labels, progress=progress)
    features = models[entry.features]
    if entry.ranking == "cosine":
        return evaluate_features(features.query.features, features.database.features, *labels, progress=progress)
    codes = models[entry.codes]
    rank_rows = two_stage_ranking(codes.query.bits, codes.database.bits, features.query.features,
                                  features.database.features, entry.shortlist)
    return evaluate_ranking(rank_rows, *labels, progress=progress)


@dataclass(frozen=True)
class QueryCost:
    """Per-query milliseconds: the scan that grows with the database, and the re-ranking of a
    fixed shortlist that does not."""

    scan_ms: float
    rerank_ms: float
    n_database: int

    @property
    def total_ms(self) -> float:
        return self.scan_ms + self.rerank_ms

    def extrapolated_ms(self, n_items: int) -> float:
        """Linear extrapolation of the scan to `n_items`, plus the constant re-ranking."""
        return self.scan_ms * n_items / self.n_database + self.rerank_ms


def bytes_per_item(entry: Entry, models: dict[str, CodesFile]) -> int:
    """What the index stores per database item: packed codes, float32 features, or both."""
    total = 0
    if entry.codes:
        total += -(-models[entry.codes].n_bits // 8)
    if entry.features:
        total += 4 * models[entry.features].database.features.shape[1]
    return total


def mean_ms_per_query(answer: Callable[[int], object], n_queries: int) -> float:
    """Mean wall time of answering queries 0..n_queries-1 one at a time."""
    start = time.perf_counter()
    for query in range(n_queries):
        answer(query)
    return 1e3 * (time.perf_counter() - start) / n_queries


def query_stages(entry: Entry, models: dict[str, CodesFile], *, n_queries: int, k: int = TIMING_K
                 ) -> tuple[Callable[[int], object], Callable[[int], object] | None, int, int]:
    """The entry's search as a service would run it, one query at a time: (scan, re-rank or None,
    queries available, database size). The scan is a faiss flat index (binary Hamming for codes,
    inner product on unit features) returning `k` items, or the shortlist of a two-stage entry."""
    import faiss

    if entry.codes:
        codes = models[entry.codes]
        index = faiss.IndexBinaryFlat(codes.n_bits)
        index.add(np.packbits(codes.database.bits, axis=1))
        queries = np.packbits(codes.query.bits[:n_queries], axis=1)
        depth = entry.shortlist or k
        rerank = None
        if entry.features:
            _, candidates = index.search(queries, depth)
            features = models[entry.features]
            query_unit = unit_rows(features.query.features[:n_queries])
            database_unit = unit_rows(features.database.features)

            def rerank(i: int) -> np.ndarray:
                similarity = database_unit[candidates[i]] @ query_unit[i]
                return candidates[i][np.argsort(-similarity, kind="stable")[:k]]

        return (lambda i: index.search(queries[i:i + 1], depth)), rerank, len(queries), len(codes.database.bits)
    features = models[entry.features]
    database_unit = unit_rows(features.database.features)
    index = faiss.IndexFlatIP(database_unit.shape[1])
    index.add(database_unit)
    queries = unit_rows(features.query.features[:n_queries])
    return (lambda i: index.search(queries[i:i + 1], k)), None, len(queries), len(database_unit)


def measure_query_costs(entries: Sequence[Entry], models: dict[str, CodesFile], *, threads: int = 1,
                        repeats: int = 9, n_queries: int = 200, k: int = TIMING_K) -> dict[str, QueryCost]:
    """Per-query cost of every entry, with `threads` threads everywhere, timed in interleaved
    rounds (each round times every entry once, the best round counts): a busy moment of the
    shared machine then slows every row alike instead of one row only."""
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(threads)
    stages = {entry.method: query_stages(entry, models, n_queries=n_queries, k=k) for entry in entries}
    best = {method: [math.inf, math.inf if rerank else 0.0] for method, (_, rerank, _, _) in stages.items()}
    with threadpool_limits(threads):
        for _ in range(repeats):
            for method, (scan, rerank, n_available, _) in stages.items():
                best[method][0] = min(best[method][0], mean_ms_per_query(scan, n_available))
                if rerank is not None:
                    best[method][1] = min(best[method][1], mean_ms_per_query(rerank, n_available))
    return {method: QueryCost(scan_ms=best[method][0], rerank_ms=best[method][1], n_database=stages[method][3])
            for method in stages}


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


# ---------------------------------------------------------------- table and figure


def comparison_table(frame: pd.DataFrame, dataset: str, bits: int) -> pd.DataFrame:
    """The rows of one data set and code length in ENTRIES order, with display columns."""
    rows = frame[(frame["dataset"] == dataset) & (frame["bits"] == bits)].copy()
    order = {entry.method: position for position, entry in enumerate(ENTRIES)}
    rows = rows[rows["method"].isin(order)].sort_values("method", key=lambda column: column.map(order))
    if rows.empty:
        raise ConfigError(f"no comparison rows for {dataset} at {bits} bits")
    return rows.reset_index(drop=True)


def _size(n_bytes: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes:.0f} B"


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


TABLE_HEADER = ["Method", "Supervision", "Ranking", "mAP", "mAP@1000", "P@10", "Query ms ({n} items, measured)",
                "Bytes/item", "Query ms 1M (extrap.)", "Query ms 100M (extrap.)", "Memory 1M (extrap.)",
                "Memory 100M (extrap.)"]


def _table_cells(rows: pd.DataFrame) -> list[list[str]]:
    cells = []
    for row in rows.itertuples():
        ranking = row.ranking + (f" ({int(row.shortlist):,})" if row.ranking == "two-stage" else "")
        cells.append([ENTRY_LABELS.get(row.method, row.method), row.supervision, ranking, f"{row.map:.4f}",
                      f"{row.map_at_1000:.4f}", f"{row.precision_at_10:.4f}", _ms(row.query_ms),
                      f"{int(row.bytes_per_item):,}", _ms(row.query_ms_1m), _ms(row.query_ms_100m),
                      _size(row.memory_bytes_1m), _size(row.memory_bytes_100m)])
    return cells


def table_notes(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    return (
        f"{int(first.n_query):,} queries against {int(first.n_database):,} database items (split seed "
        f"{int(first.split_seed)}), {int(first.bits)} bits. Query ms: wall time per query, one query at a time, "
        f"top {int(first.timing_k)} returned, faiss flat index (binary Hamming or inner product on unit features), "
        f"{int(first.query_threads)} thread(s), mean over {int(first.timing_queries)} queries, best of "
        f"{int(first.timing_repeats)} rounds that time every row in turn; encoding the query image is not included. "
        "Two-stage: the Hamming shortlist (ties by database index) re-ranked by cosine of the features; its mAP "
        "scores the re-ranked shortlist followed by the rest in Hamming order. Dual model: codes of the SCAE model, "
        "features of a second SCAE model trained with the next seed. 1M / 100M columns are a linear extrapolation "
        "(scan time and memory grow with the items, re-ranking a fixed shortlist does not), not measurements; a "
        "rate measured on a database that still fits the CPU's last-level cache is optimistic once it does not. "
        "Supervised rows used the class labels in training (the reference ceiling); all others never saw a label."
    )


def to_markdown(rows: pd.DataFrame) -> str:
    header = [cell.format(n=f"{int(rows.iloc[0].n_database):,}") for cell in TABLE_HEADER]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _table_cells(rows)]
    return "\n".join(lines) + "\n\n" + table_notes(rows) + "\n"


def to_latex(rows: pd.DataFrame, dataset_label: str) -> str:
    def escape(text: str) -> str:
        return text.replace("&", r"\&").replace("%", r"\%").replace("_", r"\_").replace("#", r"\#")

    header = [cell.format(n=f"{int(rows.iloc[0].n_database):,}") for cell in TABLE_HEADER]
    caption = (f"Deep hashing vs deep metric learning on {dataset_label}, {int(rows.iloc[0].bits)} bits. "
               + table_notes(rows))
    lines = [r"\begin{table*}[t]", r"\centering", r"\scriptsize", rf"\caption{{{escape(caption)}}}",
             r"\begin{tabular}{lll" + "r" * (len(header) - 3) + "}", r"\toprule",
             " & ".join(escape(cell) for cell in header) + r" \\", r"\midrule"]
    lines += [" & ".join(escape(cell) for cell in cells) + r" \\" for cells in _table_cells(rows)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


# Okabe-Ito colours (colour-blind safe) by model family; markers by ranking.
FAMILY_COLOURS = {"scae": "#0072B2", "dual": "#E69F00", "itq": "#000000", "supervised": "#D55E00"}
RANKING_MARKERS = {"hamming": "o", "cosine": "s", 100: "^", 1000: "D"}


def _style(row) -> tuple[str, str, bool]:
    supervised = row.supervision == "supervised"
    family = ("supervised" if supervised else "itq" if row.method == "itq"
              else "dual" if "dual" in row.method else "scae")
    marker = RANKING_MARKERS[int(row.shortlist)] if row.ranking == "two-stage" else RANKING_MARKERS[row.ranking]
    return FAMILY_COLOURS[family], marker, supervised


def comparison_figure(rows: pd.DataFrame, dataset_label: str):
    """mAP and mAP@1000 against measured query time and against bytes per item; supervised rows
    hollow. mAP@1000 shows what re-ranking a shortlist changes (the full-ranking mAP barely moves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(2, 2, figsize=(10.5, 7.6), sharex="col", sharey="row")
    for row in rows.itertuples():
        colour, marker, supervised = _style(row)
        style = dict(marker=marker, s=70, linewidths=1.6, zorder=3, alpha=0.85,
                     facecolors="none" if supervised else colour, edgecolors=colour)
        for metric, (by_time, by_bytes) in zip(("map", "map_at_1000"), axes):
            by_time.scatter(row.query_ms, getattr(row, metric), label=ENTRY_LABELS.get(row.method, row.method),
                            **style)
            by_bytes.scatter(row.bytes_per_item, getattr(row, metric), **style)
    n_database = int(rows.iloc[0].n_database)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for (by_time, by_bytes), ylabel in zip(axes, ("mAP (whole ranking)", "mAP@1000")):
        by_time.set_ylabel(ylabel)
        for ax in (by_time, by_bytes):
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
            ax.grid(alpha=0.3, which="both")
    axes[1, 0].set_xlabel(f"query time, ms per query ({n_database:,} items, measured)")
    axes[1, 1].set_xlabel("memory, bytes per database item")
    times = rows["query_ms"]
    axes[1, 0].set_xticks([tick for tick in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
                           if times.min() / 2 <= tick <= times.max() * 2])
    sizes = rows["bytes_per_item"]
    axes[1, 1].set_xticks([2 ** power for power in range(2, 16) if sizes.min() / 2 <= 2 ** power <= sizes.max() * 2])
    fig.suptitle(f"Deep hashing vs deep metric learning: {dataset_label}, {int(rows.iloc[0].bits)} bits "
                 "(hollow = supervised, trained with labels)", fontsize=11)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8.5, frameon=False)
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    return fig


def write_outputs(frame: pd.DataFrame, dataset: str, bits: int, *, tables_dir: Path, figures_dir: Path,
                  dataset_label: str) -> list[Path]:
    """Write the table (.md, .tex) and the figure (.png, .pdf) of one data set from saved rows."""
    import matplotlib.pyplot as plt

    rows = comparison_table(frame, dataset, bits)
    written = [write_text(tables_dir / f"comparison_{dataset}.md", to_markdown(rows)),
               write_text(tables_dir / f"comparison_{dataset}.tex", to_latex(rows, dataset_label))]
    fig = comparison_figure(rows, dataset_label)
    for suffix in (".png", ".pdf"):
        target = figures_dir / f"comparison_{dataset}{suffix}"
        with atomic_path(target) as temporary:
            fig.savefig(temporary, dpi=160 if suffix == ".png" else None, format=suffix[1:])
        written.append(target)
    plt.close(fig)
    return written



# ---------------------------------------------------------------- running


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
    figures_dir: Path = Path("thesis_figures")
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


def make_hasher(key: str, setup: ComparisonSetup):
    """The hasher behind a model key; an SCAE model reuses (or resumes) its run folder."""
    from scae_hash.hashers.shallow import ITQ

    if key == "itq":
        return ITQ(setup.bits, setup.seed)
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


def encode_model(key: str, setup: ComparisonSetup, dataset, split) -> CodesFile:
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


def done_methods(setup: ComparisonSetup) -> set[str]:
    """Entries whose row this data set, code length and seeds already have."""
    if setup.force or not setup.results_file.is_file():
        return set()
    frame = pd.read_csv(setup.results_file)
    same = ((frame["dataset"] == setup.dataset) & (frame["bits"] == setup.bits)
            & (frame["seed"] == setup.seed) & (frame["split_seed"] == setup.split_seed))
    return set(frame.loc[same, "method"])


def run_comparison(setup: ComparisonSetup, log: Callable[[str], None] = print) -> tuple[list[dict], list[Path]]:
    """Every missing row of the comparison, each appended as soon as it is scored; then the
    table and the figure from all saved rows. Returns the new rows and the files written."""
    from scae_hash.atomic import check_writable
    from scae_hash.data import load_dataset
    from scae_hash.protocol import protocol_split
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
        dataset = load_dataset(setup.dataset, setup.data_dir, progress=setup.progress)
        if dataset.name != setup.dataset:
            raise ConfigError(f"use the data set's own name {dataset.name!r}, not {setup.dataset!r}")
        split = protocol_split(dataset.labels, seed=setup.split_seed)
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
    return new_rows, redraw(setup)


def redraw(setup: ComparisonSetup) -> list[Path]:
    """The table and the figure of one data set and code length from the saved rows only."""
    from scae_hash.plots import DATASET_LABELS
    from scae_hash.results import read_results

    if not setup.results_file.is_file():
        raise ConfigError(f"no comparison rows yet: {setup.results_file} does not exist")
    frame = read_results([setup.results_file])
    return write_outputs(frame, setup.dataset, setup.bits, tables_dir=setup.results_dir / "tables",
                         figures_dir=setup.figures_dir,
                         dataset_label=DATASET_LABELS.get(setup.dataset, setup.dataset))
