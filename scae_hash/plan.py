"""The plan of every reported cell (experiments/plan.yaml) and the state of each: done, stale
or missing.

A plan names **kinds** (how one cell runs: a command template, the results file its rows go
to, which rows it leaves, the code it depends on) and **parts** (a kind and a grid of values,
expanded as a product into cells). Adding a kind of cell is one entry under ``kinds``: no code.

The state of each cell (done, stale or missing) is :mod:`scae_hash.cell_state`'s.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import shlex
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from scae_hash.checks import read_yaml_mapping
from scae_hash.code_identity import REPO_ROOT, command_dependencies
from scae_hash.constants import RUN_KEYS, SPLITS
from scae_hash.errors import ConfigError
from scae_hash.experiment import load_method_config

#: Filled in by the runner, not by the cell's values.
FOLDERS = ("results_dir", "run_dir", "figures_dir")
# A cell leaves test rows unless its kind's ``row`` names another split.
ROW_DEFAULTS = {"split": SPLITS[0]}
INT_KEYS = ("bits", "seed", "split_seed")
PLAN_KEYS = {"results_dir", "run_dir", "figures_dir", "tables_dir", "readme", "split_seed", "check_tolerance",
             "outputs", "summary", "note", "kinds", "kinds_from", "parts"}


@dataclass(frozen=True)
class Kind:
    """How one kind of cell runs and which result rows it leaves."""

    name: str
    command: tuple[str, ...]
    results: str
    cell_name: str
    row: dict[str, Any]
    inputs: tuple[str, ...]  # what no import shows (data files, configs read by path)
    estimate_seconds: float
    overhead_seconds: float
    config_in_row: bool  # the rows' ``config`` column is the resolved config of the cell's file


@dataclass(frozen=True)
class Cell:
    """One reported cell: a kind and the values that fill its templates."""

    part: str
    kind: Kind
    values: dict[str, Any]
    config: dict | None = None  # the resolved config, for cells that name a config file

    @cached_property
    def name(self) -> str:
        return _fill(self.kind.cell_name, self.values)

    @property
    def dataset(self) -> str:
        return str(self.values.get("dataset", ""))

    @cached_property
    def expected_rows(self) -> list[dict[str, Any]]:
        """The RUN_KEYS of every row this cell leaves (a list in ``row`` means one row each)."""
        template = {**{key: self.values.get(key, ROW_DEFAULTS.get(key)) for key in RUN_KEYS}, **self.kind.row}
        options = [[(key, item) for item in (value if isinstance(value, list) else [value])]
                   for key, value in template.items()]
        rows = []
        for combination in itertools.product(*options):
            row = {key: _fill(value, self.values) if isinstance(value, str) else value for key, value in combination}
            missing = [key for key in RUN_KEYS if row.get(key) is None]
            if missing:
                raise ConfigError(f"kind '{self.kind.name}': cell {self.name} does not set {', '.join(missing)}")
            rows.append(normalise_row(row))
        return rows

    def command(self, python: str, **folders: Path) -> list[str]:
        """The command line of this cell, with ``{results_dir}``, ``{run_dir}`` and
        ``{figures_dir}`` from ``folders``; ``scae-hash`` and ``python`` run under ``python``."""
        values = {**self.values, **{name: str(folder) for name, folder in folders.items()}}
        argv = [_fill(token, values) for token in self.kind.command]
        if argv[0] == "scae-hash":
            return [python, "-m", "scae_hash", *argv[1:]]
        if argv[0] == "python":
            return [python, *argv[1:]]
        return argv

    @property
    def argv(self) -> list[str]:
        """Its command line as the plan writes it, the runner's folders left empty."""
        return [_fill(token, {**self.values, **dict.fromkeys(FOLDERS, "")}) for token in self.kind.command]

    @cached_property
    def depends(self) -> tuple[str, ...]:
        """The code its command imports (with the methods it names) and the inputs the plan names."""
        return self.dependencies()

    def dependencies(self, root: Path = REPO_ROOT) -> tuple[str, ...]:
        """:attr:`depends` as read in the checkout at ``root`` (a worktree; default: this one)."""
        return (*(command_dependencies(self.argv, root) or ()), *self.kind.inputs)

    @property
    def config_key(self) -> str:
        """Names the run folder of cells that share a resolved config (they share pretraining)."""
        if self.config is None:
            return self.kind.name
        digest = hashlib.sha1(json.dumps(self.config, sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.values.get('variant', self.kind.name)}-{digest}"


@dataclass
class Plan:
    path: Path
    results_dir: Path
    run_dir: Path
    figures_dir: Path
    tolerance: float
    readme: Path | None
    tables_dir: Path
    outputs: list[list[str]]
    summary: list[str]
    note: str
    cells: list[Cell] = field(default_factory=list)

    def select(self, selectors: list[str] | None) -> list[Cell]:
        """The cells of each selector: a part name selects that part alone (not the other parts of
        its kind, nor cells whose names share its prefix), else a data set, else the cells whose
        name starts with it, segment by segment (``scae/fashion``)."""
        if not selectors:
            return list(self.cells)
        parts = {cell.part for cell in self.cells}

        def selected(cell: Cell, selector: str) -> bool:
            if selector in parts:
                return cell.part == selector
            return selector == cell.dataset or f"{cell.name}/".startswith(selector.rstrip("/") + "/")

        chosen = [cell for cell in self.cells if any(selected(cell, selector) for selector in selectors)]
        if not chosen:
            parts = sorted({cell.part for cell in self.cells})
            raise ConfigError(f"--only {' '.join(selectors)} matches no cell of {self.path} "
                              f"(parts: {', '.join(parts)}; or a data set, or a cell name prefix)")
        return chosen

    def find(self, names: list[str]) -> list[Cell]:
        by_name = {cell.name: cell for cell in self.cells}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            examples = ", ".join(cell.name for cell in self.cells[:: max(1, len(self.cells) // 4)][:4])
            raise ConfigError(f"no cell named {unknown[0]} in {self.path} (names look like: {examples})")
        return [by_name[name] for name in names]


def load_plan(path: str | Path) -> Plan:
    """Read and expand a plan file; any problem is one ConfigError line naming the file."""
    path = Path(path)
    spec = read_yaml_mapping(path, "plan file")
    unknown = sorted(set(spec) - PLAN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key '{unknown[0]}' (known: {', '.join(sorted(PLAN_KEYS))})")
    if "kinds_from" in spec:  # another plan's kinds, e.g. the quick plan reuses the main plan's
        spec["kinds"] = {**load_kinds(path.parent / spec["kinds_from"]), **(spec.get("kinds") or {})}
    if not isinstance(spec.get("kinds"), dict) or not isinstance(spec.get("parts"), dict):
        raise ConfigError(f"{path}: a plan needs the mappings 'kinds' (or 'kinds_from') and 'parts'")
    kinds = {name: _kind(name, entry, path) for name, entry in spec["kinds"].items()}
    readme = spec.get("readme")
    plan = Plan(
        path=path,
        results_dir=Path(spec.get("results_dir", "results")),
        run_dir=Path(spec.get("run_dir", "runs/reproduce")),
        figures_dir=Path(spec.get("figures_dir", "thesis_figures")),
        tolerance=float(spec.get("check_tolerance", 0.01)),
        readme=Path(readme) if readme else None,
        tables_dir=Path(spec.get("tables_dir", "results/tables")),
        outputs=[shlex.split(command) for command in spec.get("outputs") or []],
        summary=list(spec.get("summary") or []),
        note=str(spec.get("note", "")).strip(),
    )
    defaults = {"split_seed": int(spec.get("split_seed", 0))}
    for part, entry in spec["parts"].items():
        if not isinstance(entry, dict) or entry.get("kind") not in kinds:
            raise ConfigError(f"{path}: part '{part}' needs 'kind', one of: {', '.join(kinds)}")
        for grid in entry.get("grid") or []:
            plan.cells += _expand(part, kinds[entry["kind"]], {**defaults, **grid}, path)
    names = [cell.name for cell in plan.cells]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{path}: cell {duplicates[0]} is listed twice")
    return plan


def load_kinds(path: Path) -> dict[str, Any]:
    """The raw ``kinds`` mapping of a plan file."""
    spec = read_yaml_mapping(path, "plan file (kinds_from)")
    if not isinstance(spec.get("kinds"), dict):
        raise ConfigError(f"{path}: no 'kinds' mapping to reuse")
    return spec["kinds"]


def _kind(name: str, entry: Any, path: Path) -> Kind:
    required = ("command", "results", "name", "row")
    if not isinstance(entry, dict) or any(key not in entry for key in required):
        raise ConfigError(f"{path}: kind '{name}' needs {', '.join(required)}")
    return Kind(
        name=name,
        command=tuple(shlex.split(entry["command"])),
        results=entry["results"],
        cell_name=entry["name"],
        row=dict(entry["row"]),
        inputs=tuple(_flatten(entry.get("inputs") or [])),
        estimate_seconds=float(entry.get("estimate_seconds", 60)),
        overhead_seconds=float(entry.get("overhead_seconds", 0)),
        config_in_row=bool(entry.get("config_in_row", False)),
    )


def _expand(part: str, kind: Kind, grid: dict[str, Any], path: Path) -> list[Cell]:
    axes = {key: _values(key, value) for key, value in grid.items()}
    cells = []
    for combination in itertools.product(*axes.values()):
        values = dict(zip(axes, combination))
        config = None
        if "config" in values:
            loaded = load_method_config(values["config"])
            config = loaded.to_dict()
            values.setdefault("dataset", loaded.dataset)
            values.setdefault("variant", Path(values["config"]).stem)
        cells.append(Cell(part, kind, values, config))
    return cells


def _values(key: str, value: Any) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if key != "config":
        return values
    expanded = []
    for pattern in values:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        expanded += matches
    return expanded


def _flatten(items: list) -> list[str]:
    return [leaf for item in items for leaf in (_flatten(item) if isinstance(item, list) else [str(item)])]


def _fill(template: str, values: dict[str, Any]) -> str:
    try:
        return template.format(**values)
    except KeyError as error:
        raise ConfigError(f"template {template!r} uses {error.args[0]!r}, which the cell does not set") from None


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: ("" if row.get(key) is None or row.get(key) != row.get(key) else row.get(key)) for key in RUN_KEYS}
    out["split"] = out["split"] or ROW_DEFAULTS["split"]  # rows made before the column are test rows
    for key in INT_KEYS:
        out[key] = int(out[key])
    for key in ("method", "variant", "dataset", "protocol", "split"):
        out[key] = str(out[key])
    return out
