"""The state of each cell of the plan (:mod:`scae_hash.plan`): done, stale or missing.

A cell is *done* when the latest row of each run it leaves (``constants.RUN_KEYS``) exists in its
results file and is not stale. A row is *stale* when

* its resolved config (the ``config`` JSON of the row, for kinds with ``config_in_row``; keys
  that the row predates count at their default) differs from the cell's config now, or
* it was made from uncommitted code (its commit ends in ``-dirty``: what ran cannot be known), or
* the code it depends on differs between the commit that made the row and the working tree:
  the modules its command imports (:mod:`scae_hash.code_identity`, the same rule that marks a
  row ``-dirty``) and the kind's ``inputs``, the files no import shows. Python is compared
  by its syntax tree without docstrings, so comments and docstrings never make a row stale;
  other files byte for byte. One ``git ls-tree`` per distinct commit, cached.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scae_hash.code_identity import REPO_ROOT, CodeVersions
from scae_hash.config import SCAEConfig
from scae_hash.constants import RUN_KEYS
from scae_hash.plan import Cell, load_plan, normalise_row

STATUSES = ("done", "stale", "missing")


@dataclass(frozen=True)
class CellState:
    cell: Cell
    status: str  # one of STATUSES
    reason: str
    rows: tuple[dict, ...]  # the latest row of each expected run that exists
    estimate_seconds: float


def read_rows(results_dir: Path, file_name: str) -> list[dict]:
    """Every row of one results CSV (empty when it does not exist yet), RUN_KEYS normalised."""
    import pandas as pd

    path = results_dir / file_name
    if not path.is_file():
        return []
    frame = pd.read_csv(path)
    rows = []
    for record in frame.to_dict("records"):
        try:
            rows.append({**record, **normalise_row(record)})
        except (TypeError, ValueError):
            continue  # a row without a full identity cannot be any cell's
    return rows


def cell_states(cells: list[Cell], results_dir: Path, code: "CodeVersions | None" = None) -> list[CellState]:
    """The state of each cell from the rows now in ``results_dir``."""
    code = code or CodeVersions()
    rows_by_file = {name: read_rows(results_dir, name) for name in {cell.kind.results for cell in cells}}
    latest = {name: {row_key(row): row for row in rows} for name, rows in rows_by_file.items()}
    states = []
    for cell in cells:
        found = [latest[cell.kind.results].get(row_key(expected)) for expected in cell.expected_rows]
        present = tuple(row for row in found if row is not None)
        estimate = estimate_seconds(cell, rows_by_file[cell.kind.results])
        if len(present) < len(found):
            reason = "" if not present else f"{len(present)} of {len(found)} rows"
            states.append(CellState(cell, "missing", reason, present, estimate))
            continue
        depends = cell.depends if code.root == REPO_ROOT else cell.dependencies(code.root)
        reasons = [reason for reason in (_stale_reason(cell, row, code, depends) for row in present) if reason]
        status, reason = ("stale", reasons[0]) if reasons else ("done", _done_note(present))
        states.append(CellState(cell, status, reason, present, estimate))
    return states


def row_key(row: dict) -> tuple:
    """The run a normalised row belongs to (its RUN_KEYS)."""
    return tuple(row[key] for key in RUN_KEYS)


def row_identity(row: dict) -> tuple:
    """A run's keys with the commit and time of the row: the very row, not a later rerun of it."""
    return (*row_key(normalise_row(row)), str(row.get("commit")), str(row.get("created")))


def mark_stale(frame, plan_file: Path):
    """The rows (a DataFrame) with a column ``stale``: whether the row is one behind a stale cell
    of the plan (as `reproduce --dry-run` sees it), so that every table and figure can mark the
    stale numbers it shows."""
    plan = load_plan(plan_file)
    stale = {row_identity(row) for state in cell_states(plan.cells, plan.results_dir) if state.status == "stale"
             for row in state.rows}
    return frame.assign(stale=[row_identity(row) in stale for row in frame.to_dict("records")])


def _done_note(rows: tuple[dict, ...]) -> str:
    commits = sorted({str(row.get("commit"))[:7] for row in rows if _has(row, "commit")})
    return f"commit {', '.join(commits)}" if commits else "no commit recorded: staleness not checked"


def _has(row: dict, key: str) -> bool:
    value = row.get(key)
    return value is not None and value == value and str(value) != ""


def _stale_reason(cell: Cell, row: dict, code: "CodeVersions", depends: tuple[str, ...]) -> str:
    if cell.config is not None and cell.kind.config_in_row and _has(row, "config"):
        try:
            recorded = json.loads(row["config"])
        except (TypeError, ValueError):
            return "its config is not readable JSON"
        recorded = with_defaults(recorded, cell.config.get("method", "scae"))
        if recorded != cell.config:
            return "config differs: " + ", ".join(map(_describe, config_differences(recorded, cell.config)[:3]))
    if not depends or not _has(row, "commit"):
        return ""
    commit = str(row["commit"])
    if commit.endswith("-dirty"):
        return f"made from uncommitted code ({commit[:7]}-dirty)"
    changed = code.changed(commit, depends)
    if changed is None:
        return f"its commit {commit[:12]} is not in this repository's history"
    if changed:
        more = f" (+{len(changed) - 2} more)" if len(changed) > 2 else ""
        return f"code changed since {commit[:7]}: {', '.join(changed[:2])}{more}"
    return ""


def with_defaults(recorded: dict, method: str = "scae") -> dict:
    """A row's resolved config with the keys it predates filled in by their defaults (an
    option added later, left at its default, keeps the old behaviour)."""
    if method == "scae":
        defaults = SCAEConfig().to_dict()
    else:
        from scae_hash.manifold.config import ManifoldConfig

        defaults = ManifoldConfig().to_dict()
    return _fill(recorded, defaults)


def _fill(recorded: Any, defaults: Any) -> Any:
    if not isinstance(recorded, dict) or not isinstance(defaults, dict):
        return recorded
    return {**defaults, **{key: _fill(value, defaults.get(key)) for key, value in recorded.items()}}


#: Stands for a key that one side of :func:`config_differences` lacks.
ABSENT = object()


def config_differences(recorded: Any, current: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every setting in which two resolved configs differ, as (dotted path, recorded value,
    current value), a missing key's value being :data:`ABSENT`."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(recorded) | set(current)):
            out += config_differences(recorded.get(key, ABSENT), current.get(key, ABSENT), f"{prefix}{key}.")
        return out
    return [] if recorded == current else [(prefix.rstrip("."), recorded, current)]


def _describe(difference: tuple[str, Any, Any]) -> str:
    path, recorded, current = difference
    if recorded is ABSENT:
        return f"{path} added"
    if current is ABSENT:
        return f"{path} removed"
    return f"{path} {recorded!r} -> {current!r}"


def estimate_seconds(cell: Cell, rows: list[dict]) -> float:
    """Median fit time of earlier rows like this cell's first row (same method, data set,
    variant and bits; else same method and data set; else same method), plus the kind's
    overhead (start-up, data, encoding, scoring); the kind's default without such rows."""
    first = cell.expected_rows[0]
    levels = (("method", "variant", "dataset", "protocol", "bits"), ("method", "dataset", "protocol"), ("method",))
    for keys in levels:
        times = [float(row["fit_seconds"]) for row in rows
                 if all(row[key] == first[key] for key in keys) and _finite(row.get("fit_seconds"))]
        if times:
            times.sort()
            return times[len(times) // 2] + cell.kind.overhead_seconds
    return cell.kind.estimate_seconds


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
