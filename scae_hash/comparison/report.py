"""The comparison's table (Markdown and LaTeX, by the project's one table writer in
`scae_hash.results`) and figure (in `scae_hash.figure_style`'s colours and markers, as every
other figure), from saved rows only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from scae_hash.atomic import write_text
from scae_hash.comparison.ranking import ENTRIES, ENTRY_LABELS
from scae_hash.errors import ConfigError
from scae_hash.figure_style import apply_style, method_style
from scae_hash.tables import to_latex, to_markdown

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TABLE_COLUMNS = ["Supervision", "Ranking", "mAP", "mAP@1000", "P@10", "Encode ms/query", "Query ms ({n} items, measured)",
                 "Bytes/item",
                 "Query ms 1M (extrap.)", "Query ms 100M (extrap.)", "Memory 1M (extrap.)", "Memory 100M (extrap.)"]


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


def display_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows as text cells, one row per method (the index), for the shared table writer."""
    cells = []
    for row in rows.itertuples():
        ranking = row.ranking + (f" ({int(row.shortlist):,})" if row.ranking == "two-stage" else "")
        cells.append([row.supervision, ranking, f"{row.map:.4f}", f"{row.map_at_1000:.4f}",
                      f"{row.precision_at_10:.4f}", _ms(row.encode_ms_per_image), _ms(row.query_ms),
                      f"{int(row.bytes_per_item):,}",
                      _ms(row.query_ms_1m), _ms(row.query_ms_100m), _size(row.memory_bytes_1m),
                      _size(row.memory_bytes_100m)])
    columns = [column.format(n=f"{int(rows.iloc[0].n_database):,}") for column in TABLE_COLUMNS]
    index = pd.Index([ENTRY_LABELS.get(method, method) for method in rows["method"]], name="Method")
    return pd.DataFrame(cells, index=index, columns=columns)


def table_notes(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    return (
        f"{int(first.n_query):,} queries against {int(first.n_database):,} database items (split seed "
        f"{int(first.split_seed)}), {int(first.bits)} bits. Query ms: wall time per query, one query at a time, "
        f"top {int(first.timing_k)} returned, faiss flat index (binary Hamming or inner product on unit features), "
        f"{int(first.query_threads)} thread(s), mean over {int(first.timing_queries)} queries, best of "
        f"{int(first.timing_repeats)} rounds that time every row in turn; encoding the query image is not included "
        "there: encode ms/query is its own column (each model's encoding time per image, batched, summed over "
        "the models a row uses; IMH places a new image on the fitted layout through its neighbours). "
        "Two-stage: the Hamming shortlist (ties by database index) re-ranked by cosine of the features; its mAP "
        "scores the re-ranked shortlist followed by the rest in Hamming order. Dual model: codes of the SCAE model, "
        "features of a second SCAE model trained with the next seed. 1M / 100M columns are a linear extrapolation "
        "(scan time and memory grow with the items, re-ranking a fixed shortlist does not), not measurements; a "
        "rate measured on a database that still fits the CPU's last-level cache is optimistic once it does not. "
        "Supervised rows used the class labels in training (the reference ceiling); all others never saw a label."
    )


def comparison_figure(rows: pd.DataFrame, dataset_label: str) -> Figure:
    """mAP and mAP@1000 against measured query time and against bytes per item; supervised rows
    hollow. mAP@1000 shows what re-ranking a shortlist changes (the full-ranking mAP barely moves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    apply_style()
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 7.6), sharex="col", sharey="row")
    for row in rows.itertuples():
        look = method_style(row.method)
        colour = look["color"]
        style = dict(marker=look["marker"], s=70, linewidths=1.6, zorder=3, alpha=0.85,
                     facecolors="none" if row.supervision == "supervised" else colour, edgecolors=colour)
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


def write_tables(frame: pd.DataFrame, tables_dir: Path) -> list[Path]:
    """The table (.md, .tex) of every data set and code length in the saved rows."""
    written = []
    for (dataset, bits), rows in _groups(frame):
        table, notes = display_table(rows), table_notes(rows)
        caption = f"Deep hashing vs deep metric learning on {_label(dataset)}, {bits} bits. {notes}"
        written += [write_text(tables_dir / f"comparison_{dataset}.md", f"{to_markdown(table)}\n\n{notes}\n"),
                    write_text(tables_dir / f"comparison_{dataset}.tex", f"{to_latex(table, caption, wide=True)}\n")]
    return written


def write_figures(frame: pd.DataFrame, figures_dir: Path) -> list[Path]:
    """The figure (.png, .pdf) of every data set and code length in the saved rows."""
    from scae_hash.plots import save_figure

    written = []
    for (dataset, _), rows in _groups(frame):
        written += save_figure(comparison_figure(rows, _label(dataset)), figures_dir, f"comparison_{dataset}")
    return written


def _groups(frame: pd.DataFrame) -> list[tuple[tuple[str, int], pd.DataFrame]]:
    """Each data set's rows at its (one) code length, in ENTRIES order."""
    pairs = frame[["dataset", "bits"]].drop_duplicates().itertuples(index=False)
    return [((dataset, int(bits)), comparison_table(frame, dataset, int(bits))) for dataset, bits in pairs]


def _label(dataset: str) -> str:
    from scae_hash.plots import DATASET_LABELS

    return DATASET_LABELS.get(dataset, dataset)
