"""How far the saved SCAE-hash rows are from the targets of experiments/targets.yaml: one row
per data set, computed from results/ like every table, so the account cannot go stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scae_hash.checks import read_yaml_mapping
from scae_hash.tables import load_curves, main_rows, mean_std


def load_targets(path: str | Path) -> dict:
    return read_yaml_mapping(Path(path), "targets file")


def targets_table(frame: pd.DataFrame, targets: dict) -> pd.DataFrame:
    """Per data set with a target: the target and reached mAP (mean ± std over seeds) of the
    targets' ``method`` (default scae), the reference's mAP, the code lengths where the method's
    mean mAP is above the reference's, and the N where its precision@N (mean curve over seeds)
    is below that of ``precision_reference`` (default: the reference)."""
    reference, bits = targets["reference"], int(targets["bits"])
    method = targets.get("method", "scae")
    precision_reference = targets.get("precision_reference", reference)
    rows = main_rows(frame)

    def mean_map(runs: pd.DataFrame, n_bits: int) -> float:
        return runs[runs["bits"] == n_bits]["map"].mean()

    table = {}
    for dataset, target in targets["map"].items():
        ours = rows[(rows["method"] == method) & (rows["dataset"] == dataset)]
        theirs = rows[(rows["method"] == reference) & (rows["dataset"] == dataset)]
        precision_theirs = rows[(rows["method"] == precision_reference) & (rows["dataset"] == dataset)]
        at_bits = ours[ours["bits"] == bits]["map"]
        if at_bits.empty:
            continue
        above = [b for b in targets["above_reference_at_bits"] if mean_map(ours, b) > mean_map(theirs, b)]
        table[dataset] = {
            f"target mAP @{bits}": f"{target:.2f}",
            "reached (seeds)": f"{mean_std(at_bits)} ({len(at_bits)})",
            "distance": f"{at_bits.mean() - target:+.4f}",
            f"{reference} mAP @{bits}": f"{mean_map(theirs, bits):.4f}",
            f"bits above {reference}": _listed(above, targets["above_reference_at_bits"]),
            f"P@N below {precision_reference}'s": _precision_shortfall(ours, precision_theirs, bits,
                                                                      targets["precision_at_n"]),
        }
    return pd.DataFrame.from_dict(table, orient="index").rename_axis("data set")


def _precision_shortfall(ours: pd.DataFrame, theirs: pd.DataFrame, bits: int, n_range: list[int]) -> str:
    """The N of n_range where the mean precision@N curve over seeds falls below the reference's."""
    mine, reference = (_mean_curve(rows[rows["bits"] == bits]) for rows in (ours, theirs))
    if mine is None or reference is None:
        return "no curves"
    first, last = n_range
    last = min(last, len(mine), len(reference))
    below = np.flatnonzero(mine[first - 1:last] < reference[first - 1:last]) + first
    if below.size == 0:
        return "none"
    if below.size == last - first + 1:
        return f"every N ({first}–{last})"
    return f"N = {_ranges(below)} ({below.size} of {last - first + 1})"


def _mean_curve(rows: pd.DataFrame) -> np.ndarray | None:
    curves = [np.asarray(c["precision_curve"]) for c in load_curves(rows)]
    if not curves:
        return None
    shortest = min(len(c) for c in curves)
    return np.mean([c[:shortest] for c in curves], axis=0)


def _ranges(values: np.ndarray) -> str:
    """'1–2, 5, 9–40' from sorted integers."""
    breaks = np.flatnonzero(np.diff(values) != 1)
    starts, ends = np.r_[values[0], values[breaks + 1]], np.r_[values[breaks], values[-1]]
    parts = [str(s) if s == e else f"{s}–{e}" for s, e in zip(starts, ends)]
    return ", ".join(parts[:6]) + (f", … ({len(parts) - 6} more runs)" if len(parts) > 6 else "")


def _listed(chosen: list[int], every: list[int]) -> str:
    if len(chosen) == len(every):
        return f"all ({', '.join(map(str, every))})"
    return ", ".join(map(str, chosen)) or "none"
