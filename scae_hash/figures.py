"""The thesis figures drawn from run artifacts (``results/artifacts``, ``results/histories``) and
ablation rows: retrieval examples, 2-D maps of codes and features, reconstructions, training
curves, per-bit firing rates and ablation bars. Nothing here trains or loads a data set."""

from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scae_hash.atomic import atomic_path
from scae_hash.figure_style import CLASS_COLOURS, OKABE_ITO, WRONG_COLOUR, apply_style, method_colour
from scae_hash.plots import DATASET_LABELS, METHOD_LABELS
from scae_hash.tables import AblationGroup, main_rows

apply_style()

MAP_COMPONENTS = 50  # features are reduced to this many principal components before t-SNE
MAP_SEED = 0
COMPACT = 0.5  # a class is named on a map when its spread (median distance to its median) is below this share of the map's
MAP_ITERATIONS = 500  # enough for a sample of a few thousand; each map is cached after its first draw


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def artifact_file(frame: pd.DataFrame, method: str, dataset: str, bits: int, seed: int = 0) -> Path | None:
    """The artifacts of the latest main-table run of (method, data set, bits, seed), if saved."""
    if "artifacts_file" not in frame:
        return None
    rows = main_rows(frame)
    rows = rows[(rows["method"] == method) & (rows["dataset"] == dataset) & (rows["bits"] == bits)
                & (rows["seed"] == seed)]
    files = [Path(path) for path in rows["artifacts_file"].dropna() if Path(path).is_file()]
    return files[-1] if files else None


def history_folder(artifacts_path: Path) -> Path:
    """Where a run's history CSVs were copied (``results/histories/<run>``)."""
    return artifacts_path.parent.parent / "histories" / artifacts_path.stem


# --- retrieval examples -------------------------------------------------------------------------

def _show(ax: plt.Axes, image: np.ndarray) -> None:
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    _frame(ax, None)


def _frame(ax: plt.Axes, colour: str | None, width: float = 3.0) -> None:
    for spine in ax.spines.values():
        spine.set_visible(colour is not None)
        if colour is not None:
            spine.set_edgecolor(colour)
            spine.set_linewidth(width)


def retrieval_examples(runs: dict[str, dict]) -> plt.Figure:
    """For each fixed query (left), its top results by each method (one row per method), wrong
    classes framed, the Hamming distance under each result and P@k at the end of the row.

    ``runs`` maps a method to its loaded artifacts (the same queries for every method)."""
    methods = list(runs)
    first = runs[methods[0]]
    n_queries, top_k = first["top_index"].shape
    names = first["meta"]["class_names"]
    rows_per_query = len(methods)
    gap = 0.32  # between two queries' groups, in row heights
    heights = []
    for q in range(n_queries):
        heights += [1.0] * rows_per_query + ([gap] if q < n_queries - 1 else [])
    widths = [1.25, 1.25] + [1.0] * top_k + [0.55]
    cell = 0.78
    fig = plt.figure(figsize=(cell * sum(widths), cell * 1.12 * sum(heights) + 0.45))
    grid = fig.add_gridspec(len(heights), len(widths), height_ratios=heights, width_ratios=widths, hspace=0.12,
                            wspace=0.05, left=0.01, right=0.99, bottom=0.01, top=1 - 0.45 / fig.get_figheight())
    for q in range(n_queries):
        top_row = q * (rows_per_query + 1)
        ax_query = fig.add_subplot(grid[top_row:top_row + rows_per_query, 0])
        label = int(first["query_labels"][q])
        _show(ax_query, first["query_images"][q])
        _frame(ax_query, OKABE_ITO["black"], 0.8)
        ax_query.set_xlabel(f"query {q + 1}: {names[label]}", fontsize=8, labelpad=2)
        for m, method in enumerate(methods):
            run, row = runs[method], top_row + m
            correct = run["top_labels"][q] == label
            ax_name = fig.add_subplot(grid[row, 1])
            ax_name.axis("off")
            ax_name.text(0.9, 0.5, method_label(method), ha="right", va="center", fontsize=8.5, fontweight="bold",
                         color=method_colour(method), transform=ax_name.transAxes)
            for k in range(top_k):
                ax = fig.add_subplot(grid[row, k + 2])
                _show(ax, run["top_images"][q, k])
                _frame(ax, None if correct[k] else WRONG_COLOUR)
                ax.set_xlabel(f"d={int(run['top_distances'][q, k])}", fontsize=6.5, labelpad=1)
                if row == 0:
                    ax.set_title(f"#{k + 1}", fontsize=8, pad=3)
            ax_score = fig.add_subplot(grid[row, -1])
            ax_score.axis("off")
            ax_score.text(0.15, 0.5, f"P@{top_k}\n{correct.mean():.1f}", ha="left", va="center", fontsize=8,
                          transform=ax_score.transAxes)
    meta = first["meta"]
    fig.suptitle(f"{dataset_label(meta['dataset'])}, {meta['bits']} bits: top {top_k} of {n_queries} fixed queries by "
                 f"Hamming distance d (ties by database index); wrong class framed", fontsize=9.5,
                 y=1 - 0.12 / fig.get_figheight())
    return fig


# --- 2-D maps ------------------------------------------------------------------------------------

def _map_input(points: np.ndarray, kind: str) -> tuple[np.ndarray, str]:
    """Codes as +-1 (squared Euclidean distance = 4 x Hamming), features on the unit sphere
    (Euclidean ranks like cosine) and reduced by PCA: what t-SNE then embeds."""
    points = np.asarray(points, dtype=np.float64)
    if kind == "codes":
        return 2 * points - 1, "euclidean"
    if kind == "learned features":
        points = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    centred = points - points.mean(axis=0)
    if centred.shape[1] > MAP_COMPONENTS:
        centred = centred @ np.linalg.svd(centred, full_matrices=False)[2][:MAP_COMPONENTS].T
    return centred, "euclidean"


def embed_2d(points: np.ndarray, kind: str, cache_file: Path | None = None) -> np.ndarray:
    """t-SNE of a saved sample, cached in ``cache_file`` under a key of the input's content: a
    redraw reuses it, a new run's sample is embedded afresh (and replaces the old map)."""
    key = hashlib.blake2b(np.ascontiguousarray(points, dtype=np.float32).tobytes()
                          + f"{kind}{MAP_COMPONENTS}{MAP_SEED}{MAP_ITERATIONS}".encode(), digest_size=8).hexdigest()
    if cache_file is not None and cache_file.is_file():
        with np.load(cache_file) as stored:
            if key in stored.files:
                return stored[key]
    from sklearn.manifold import TSNE

    data, metric = _map_input(points, kind)
    embedding = TSNE(2, metric=metric, init="pca", learning_rate="auto", perplexity=30, max_iter=MAP_ITERATIONS,
                     random_state=MAP_SEED).fit_transform(data).astype(np.float32)
    if cache_file is not None:
        with atomic_path(cache_file) as temporary:
            with open(temporary, "wb") as stream:
                np.savez_compressed(stream, **{key: embedding})
    return embedding


def code_maps(runs: dict[str, dict], cache_dir: Path | None = None) -> plt.Figure:
    """t-SNE of the same database sample: each method's codes and features, coloured by class."""
    methods = list(runs)
    fig, axes = plt.subplots(len(methods), 2, figsize=(8.2, 3.7 * len(methods)), squeeze=False)
    names = runs[methods[0]]["meta"]["class_names"]
    for m, method in enumerate(methods):
        run = runs[method]
        panels = [("codes", run["sample_codes"], f"{run['meta']['bits']}-bit codes (Hamming)"),
                  (str(run["feature_kind"]), run["sample_features"], None)]
        for ax, (kind, points, title) in zip(axes[m], panels):
            name = f"{Path(run['path']).stem}-{'codes' if kind == 'codes' else 'features'}.npz"
            cache = cache_dir / name if cache_dir is not None else None
            xy = embed_2d(points, kind, cache)
            labels = run["sample_labels"]
            spread = np.median(np.linalg.norm(xy - np.median(xy, axis=0), axis=1))
            for c in np.unique(labels):
                chosen = xy[labels == c]
                ax.scatter(*chosen.T, s=3, color=CLASS_COLOURS[c % len(CLASS_COLOURS)], linewidths=0,
                           rasterized=True, label=names[c])
                centre = np.median(chosen, axis=0)
                if np.median(np.linalg.norm(chosen - centre, axis=1)) < COMPACT * spread:
                    ax.text(*centre, names[c], fontsize=7.5, ha="center", va="center", fontweight="bold",
                            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75, "linewidth": 0})
            title = title or ("learned features (cosine)" if kind == "learned features" else
                              "input pixels (Euclidean)")
            ax.set_title(f"{method_label(method)}: {title}", color=method_colour(method))
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_linewidth(0.5)
    meta = runs[methods[0]]["meta"]
    n = len(runs[methods[0]]["sample_labels"])
    fig.suptitle(f"{dataset_label(meta['dataset'])}: t-SNE of the same {n:,} database items, coloured by class\n"
                 "(a compact class is named at its median)", fontsize=10)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=CLASS_COLOURS[i % len(CLASS_COLOURS)],
                          markersize=6, label=name) for i, name in enumerate(names)]
    fig.tight_layout()
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8.5,
               title="class")
    return fig


# --- reconstructions -----------------------------------------------------------------------------

def reconstructions(run: dict) -> plt.Figure:
    """Inputs, what each greedy-pretrained block reconstructs through the frozen blocks below it,
    and the fine-tuned decoder's reconstruction from the relaxed codes."""
    rows = [("input", run["originals"])]
    blocks = run.get("block_reconstructions")
    if blocks is not None:
        for k, images in enumerate(blocks, start=1):
            rows.append(("block 1" if k == 1 else f"blocks 1–{k}", images))
    rows.append(("fine-tuned\ndecoder", run["decoder_reconstruction"]))
    n = len(run["originals"])
    fig, axes = plt.subplots(len(rows), n, figsize=(1.0 * n + 1.3, 1.02 * len(rows) + 0.7), squeeze=False,
                             gridspec_kw={"hspace": 0.08, "wspace": 0.05})
    for r, (label, images) in enumerate(rows):
        for i in range(n):
            _show(axes[r, i], images[i])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    meta = run["meta"]
    source = "relaxed codes" if str(run.get("decoder_input", "codes")) == "codes" else "features"
    fig.suptitle(f"{dataset_label(meta['dataset'])}: {n} fixed queries; blocks 1–k: image → encoders 1..k → "
                 f"decoders k..1 as pretraining left them;\nfine-tuned decoder: from the {source} of the "
                 f"{meta['bits']}-bit model", fontsize=9.5)
    fig.subplots_adjust(left=0.13, right=0.99, bottom=0.01, top=1 - 0.6 / (1.02 * len(rows) + 0.7))
    return fig


# --- training curves -----------------------------------------------------------------------------

def read_histories(folder: Path) -> dict[str, pd.DataFrame]:
    """Stage name -> its per-epoch CSV history (epochs counted from 1)."""
    histories = {}
    for path in sorted(Path(folder).glob("history_*.csv")):
        frame = pd.read_csv(path)
        frame = frame.dropna(axis=1, how="all")
        frame["epoch"] = frame["epoch"] + 1
        histories[path.stem.removeprefix("history_")] = frame
    return histories


def training_curves(histories: dict[str, dict[str, pd.DataFrame]], title: str = "") -> plt.Figure:
    """Every loss term per epoch: the pretraining MSE of each block (blocks side by side, each
    with its own epochs: their targets differ, so they are not joined), then each fine-tuning term
    and the weighted total, one panel per term (they differ in scale), one line per data set."""
    pretraining = "pretraining: MSE per block"
    panels: dict[str, list] = {pretraining: []}
    for dataset, stages in histories.items():
        for stage, frame in stages.items():
            if stage.startswith("finetune"):
                for column in [c for c in frame.columns if c.endswith("loss") and not c.startswith("val_")]:
                    name = "fine-tuning: total (weighted)" if column == "loss" else column.removesuffix("_loss")
                    panels.setdefault(name, []).append((dataset, frame["epoch"], frame[column]))
    titles = [pretraining, "fine-tuning: total (weighted)"]
    titles += sorted(t for t in panels if t not in titles)
    n_cols = 4
    n_rows = -(-len(titles) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.0 * n_cols, 2.5 * n_rows), squeeze=False)
    datasets = list(histories)
    colours = dict(zip(datasets, [OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple")]))
    for ax, name in zip(axes.flat, titles):
        for dataset, epochs, values in panels.get(name, []):
            ax.plot(epochs, values, color=colours[dataset], marker="o", markersize=4, linewidth=1.3)
        ax.set(title=name, xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    _pretraining_panel(axes.flat[0], histories, colours)
    for ax in list(axes.flat)[len(titles):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colours[d], marker="o", label=dataset_label(d)) for d in datasets]
    fig.suptitle(title or "every loss term per epoch (terms unweighted; the total is their weighted sum)")
    fig.tight_layout(rect=(0, 0, 0.87, 1))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(0.87, 0.5), frameon=False)
    return fig


def _pretraining_panel(ax: plt.Axes, histories: dict[str, dict[str, pd.DataFrame]], colours: dict) -> None:
    blocks = sorted({stage for stages in histories.values() for stage in stages if stage.startswith("pretrain_block")})
    width = max([len(frame) for stages in histories.values() for stage, frame in stages.items()
                 if stage in blocks] or [1])
    for dataset, stages in histories.items():
        for k, stage in enumerate(blocks):
            if stage in stages:
                frame = stages[stage]
                ax.plot(k * (width + 1) + frame["epoch"], frame["loss"], color=colours[dataset], marker="o",
                        markersize=4, linewidth=1.3)
    ax.set_xticks([k * (width + 1) + (width + 1) / 2 for k in range(len(blocks))],
                  [stage.removeprefix("pretrain_").replace("block", "block ") for stage in blocks])
    ax.set_xlabel(f"{width} epoch(s) per block" if width > 1 else "1 epoch per block")
    ax.set_yscale("log")
    ax.set_ylabel("MSE (log scale)")


# --- firing rates --------------------------------------------------------------------------------

def bit_rates(runs: dict[str, dict[str, dict]]) -> plt.Figure:
    """Share of the database with each bit = 1, bits sorted by that share (bit i of one method
    has nothing to do with bit i of another): a balanced code sits on 0.5, a dead bit at 0 or 1."""
    datasets = list(runs)
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.0 * len(datasets), 3.2), squeeze=False, sharey=True)
    for ax, dataset in zip(axes[0], datasets):
        for method, run in runs[dataset].items():
            rates = np.sort(run["bit_rates"])
            ax.plot(np.arange(1, len(rates) + 1), rates, marker="o", markersize=2.5, linewidth=1.2,
                    color=method_colour(method), label=f"{method_label(method)} (mean |rate - 0.5| "
                    f"{np.abs(rates - 0.5).mean():.3f})")
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
        bits = run["meta"]["bits"]
        ax.set(title=f"{dataset_label(dataset)}, {bits} bits", xlabel="bit (sorted by firing rate)",
               xlim=(0, bits + 1))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", frameon=False, fontsize=7.5)
    # symmetric about 0.5, zoomed to the data (at least 0.4..0.6) so that small imbalances show
    spread = max(0.1, 1.15 * max(float(np.abs(run["bit_rates"] - 0.5).max()) for methods in runs.values()
                                 for run in methods.values()))
    axes[0, 0].set_ylim(max(0.0, 0.5 - spread), min(1.0, 0.5 + spread))
    axes[0, 0].set_ylabel("share of database with bit = 1")
    fig.tight_layout()
    return fig


# --- ablations -----------------------------------------------------------------------------------

def _stale_note(stale: int, count: int) -> str:
    """', stale' when every row of a bar is stale, ', 2 stale' when some are."""
    return "" if not stale else ", stale" if stale == count else f", {int(stale)} stale"


def ablations(groups: list[AblationGroup], metric: str = "map") -> plt.Figure:
    """mAP per config variant, mean ± std over seeds (n = seeds), the full model highlighted and
    drawn as a reference line; one panel per method and setting. A variant with rows the plan
    calls stale (a ``stale`` column) is hatched and labelled so: its code is not the full model's."""
    heights = [0.28 * group.rows["variant"].nunique() + 1.0 for group in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(6.6, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, group in zip(axes[:, 0], groups):
        rows = group.rows if "stale" in group.rows else group.rows.assign(stale=False)
        stats = rows.groupby("variant").agg(mean=(metric, "mean"), std=(metric, "std"), count=(metric, "count"),
                                            stale=("stale", "sum")).sort_values("mean")
        reference = stats.loc[group.full, "mean"]
        y = np.arange(len(stats))
        colours = [OKABE_ITO["vermillion"] if v == group.full else OKABE_ITO["blue"] for v in stats.index]
        ax.set_axisbelow(True)  # the grid behind the bars
        ax.barh(y, stats["mean"], color=colours, height=0.7,
                hatch=["//" if stale else "" for stale in stats["stale"]], edgecolor="white", linewidth=0)
        several = (stats["count"] > 1).to_numpy()
        ax.errorbar(stats["mean"][several], y[several], xerr=stats["std"][several], fmt="none", ecolor="black",
                    capsize=2.5, linewidth=1)
        ax.axvline(reference, color=OKABE_ITO["vermillion"], linestyle="--", linewidth=0.9)
        labels = [("full model" if v == group.full else v.removeprefix(f"{group.full}_").replace("_", " ")) +
                  f"  (n={int(n)}{_stale_note(stale, n)})"
                  for v, n, stale in zip(stats.index, stats["count"], stats["stale"])]
        ax.set_yticks(y, labels)
        for yi, (mean, std) in enumerate(zip(stats["mean"], stats["std"].fillna(0))):
            ax.text(mean + std + 0.005, yi, f"{mean:.3f}", va="center", fontsize=7)
        ax.set_xlim(0, min(1.0, (stats["mean"] + stats["std"].fillna(0)).max() * 1.15))
        setting = group.protocol.replace(group.dataset, dataset_label(group.dataset), 1)
        ax.set(xlabel="mAP" if metric == "map" else metric,
               title=f"{METHOD_LABELS.get(group.method, group.method)} ablations: {setting}, {group.bits} bits\n"
               "mean ± std over n seeds (n = 1: no error bar)" +
               ("; hatched: stale rows, older code" if stats["stale"].any() else ""))
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
