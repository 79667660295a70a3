"""Every thesis figure as a function of saved results: redrawing never retrains."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from scae_hash.atomic import atomic_path  # noqa: E402
from scae_hash.figure_style import apply_style, method_style  # noqa: E402

apply_style()

METHOD_LABELS = {"lsh": "LSH", "pcah": "PCAH", "itq": "ITQ", "sh": "SH", "scae": "SCAE-hash",
                 "scae-features": "SCAE features (float, cosine)", "imh": "IMH (UMAP manifold)",
                 "imh-features": "IMH embedding (float, cosine)", "scae-manifold": "SCAE-manifold",
                 "scae-manifold-features": "SCAE-manifold layout (float, cosine)"}
DATASET_LABELS = {"mnist": "MNIST", "fashion": "Fashion-MNIST", "cifar10": "CIFAR-10 (JPEG copy)"}


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _panels(datasets: list[str]):
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.1 * len(datasets), 2.8), squeeze=False)
    return fig, dict(zip(datasets, axes[0]))


def metric_vs_bits(frame: pd.DataFrame, metric: str, ylabel: str) -> plt.Figure:
    """Mean (and std over seeds) of a metric against code length, one panel per data set."""
    datasets = sorted(frame["dataset"].unique(), key=list(DATASET_LABELS).index)
    fig, panels = _panels(datasets)
    stats = frame.groupby(["dataset", "method", "bits"])[metric].agg(["mean", "std"]).reset_index()
    stats = stats.dropna(subset=["mean"])  # a method without this metric (features have no P@r2) gets no entry
    for dataset, ax in panels.items():
        for method, rows in stats[stats["dataset"] == dataset].groupby("method"):
            ax.errorbar(rows["bits"], rows["mean"], yerr=rows["std"].fillna(0), capsize=3, markersize=5,
                        label=_label(method), **method_style(method))
        ax.set(title=DATASET_LABELS.get(dataset, dataset), xlabel="bits", ylabel=ylabel)
        ax.set_xticks(sorted(frame["bits"].unique()))
        ax.grid(alpha=0.3)
    _legend(fig, panels)
    return fig


def _legend(fig: plt.Figure, panels: dict) -> None:
    """One legend for all panels, below them, so that it hides no data."""
    entries = {}
    for ax in panels.values():
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    fig.tight_layout()
    fig.legend(entries.values(), entries.keys(), loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False,
               ncol=min(len(entries), 6))


def curves_at_bits(curves: list[dict], bits: int, x_key: str | None, y_key: str, xlabel: str,
                   ylabel: str, title: str = "") -> plt.Figure:
    """One curve per method at one code length, one panel per data set (seed 0 runs)."""
    chosen = [c for c in curves if c["bits"] == bits and c.get("seed", 0) == 0]
    datasets = sorted({c["dataset"] for c in chosen}, key=list(DATASET_LABELS).index)
    fig, panels = _panels(datasets)
    for curve in sorted(chosen, key=lambda c: c["method"]):
        y = curve[y_key]
        x = curve[x_key] if x_key else range(1, len(y) + 1)
        panels[curve["dataset"]].plot(x, y, label=_label(curve["method"]), markevery=0.2, markersize=4,
                                      **method_style(curve["method"]))
    for dataset, ax in panels.items():
        ax.set(title=f"{DATASET_LABELS.get(dataset, dataset)}, {bits} bits", xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    _legend(fig, panels)
    return fig


def save_figure(fig: plt.Figure, folder: str | Path, name: str) -> list[Path]:
    """PDF for the thesis, PNG for a quick look."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{suffix}" for suffix in ("pdf", "png")]
    for path in paths:
        with atomic_path(path) as temporary:
            fig.savefig(temporary, format=path.suffix[1:], dpi=150, bbox_inches="tight",
                        metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(fig)
    return paths
