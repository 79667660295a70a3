"""The plan of every reported cell (experiments/plan.yaml) and the state of each: done, stale
or missing.

A plan names **kinds** (how one cell runs: a command template, the results file its rows go
to, which rows it leaves, the code it depends on) and **parts** (a kind and a grid of values,
expanded as a product into cells). Adding a kind of cell is one entry under ``kinds``: no code.

A cell is *done* when the latest row of each run it leaves (``constants.RUN_KEYS``) exists in its
results file and is not stale. A row is *stale* when

* its resolved config (the ``config`` JSON of the row, for kinds with ``config_in_row``; keys
  that the row predates count at their default) differs from the cell's config now, or
* it was made from uncommitted code (its commit ends in ``-dirty``: what ran cannot be known), or
* the code it depends on (the kind's ``depends`` paths) differs between the commit that made the
  row and the working tree. Python files are compared by their syntax tree without docstrings,
  so comments and docstrings never make a row stale; other files byte for byte. One
  ``git ls-tree`` per distinct commit, cached.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import itertools
import json
import math
import shlex
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from scae_hash.checks import read_yaml_mapping
from scae_hash.config import SCAEConfig, config_method, load_config
from scae_hash.constants import RUN_KEYS, SPLITS
from scae_hash.errors import ConfigError

# A cell leaves test rows unless its kind's ``row`` names another split.
ROW_DEFAULTS = {"split": SPLITS[0]}
INT_KEYS = ("bits", "seed", "split_seed")
STATUSES = ("done", "stale", "missing")
PLAN_KEYS = {"results_dir", "run_dir", "figures_dir", "tables_dir", "readme", "split_seed", "check_tolerance",
             "outputs", "summary", "note", "dependency_sets", "kinds", "kinds_from", "parts"}


@dataclass(frozen=True)
class Kind:
    """How one kind of cell runs and which result rows it leaves."""

    name: str
    command: tuple[str, ...]
    results: str
    cell_name: str
    row: dict[str, Any]
    depends: tuple[str, ...]
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
            rows.append(_normalise(row))
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
        """Cells whose part, kind or data set is a selector, or whose name starts with one."""
        if not selectors:
            return list(self.cells)
        chosen = [cell for cell in self.cells if any(
            selector in (cell.part, cell.kind.name, cell.dataset) or cell.name.startswith(selector)
            for selector in selectors)]
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
        depends=tuple(_flatten(entry.get("depends") or [])),
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


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: ("" if row.get(key) is None or row.get(key) != row.get(key) else row.get(key)) for key in RUN_KEYS}
    out["split"] = out["split"] or ROW_DEFAULTS["split"]  # rows made before the column are test rows
    for key in INT_KEYS:
        out[key] = int(out[key])
    for key in ("method", "variant", "dataset", "protocol", "split"):
        out[key] = str(out[key])
    return out


# ---------------------------------------------------------------------------- state of cells


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
            rows.append({**record, **_normalise(record)})
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
        reasons = [reason for reason in (_stale_reason(cell, row, code) for row in present) if reason]
        status, reason = ("stale", reasons[0]) if reasons else ("done", _done_note(present))
        states.append(CellState(cell, status, reason, present, estimate))
    return states


def row_key(row: dict) -> tuple:
    """The run a normalised row belongs to (its RUN_KEYS)."""
    return tuple(row[key] for key in RUN_KEYS)


def _done_note(rows: tuple[dict, ...]) -> str:
    commits = sorted({str(row.get("commit"))[:7] for row in rows if _has(row, "commit")})
    return f"commit {', '.join(commits)}" if commits else "no commit recorded: staleness not checked"


def _has(row: dict, key: str) -> bool:
    value = row.get(key)
    return value is not None and value == value and str(value) != ""


def _stale_reason(cell: Cell, row: dict, code: "CodeVersions") -> str:
    if cell.config is not None and cell.kind.config_in_row and _has(row, "config"):
        try:
            recorded = json.loads(row["config"])
        except (TypeError, ValueError):
            return "its config is not readable JSON"
        recorded = _with_defaults(recorded, _config_defaults(cell.config.get("method", "scae")))
        if recorded != cell.config:
            return "config differs: " + ", ".join(_differences(recorded, cell.config)[:3])
    if not cell.kind.depends or not _has(row, "commit"):
        return ""
    commit = str(row["commit"])
    if commit.endswith("-dirty"):
        return f"made from uncommitted code ({commit[:7]}-dirty)"
    changed = code.changed(commit, cell.kind.depends)
    if changed is None:
        return f"its commit {commit[:12]} is not in this repository's history"
    if changed:
        more = f" (+{len(changed) - 2} more)" if len(changed) > 2 else ""
        return f"code changed since {commit[:7]}: {', '.join(changed[:2])}{more}"
    return ""


def load_method_config(path: str | Path):
    """A cell's config, of the thesis' SCAE-hash or of another method, by its ``method`` key."""
    if config_method(path) == "scae":
        return load_config(path)
    from scae_hash.manifold.config import load_manifold_config

    return load_manifold_config(path)


def _config_defaults(method: str = "scae") -> dict:
    if method == "scae":
        return SCAEConfig().to_dict()
    from scae_hash.manifold.config import ManifoldConfig

    return ManifoldConfig().to_dict()


def _with_defaults(recorded: Any, defaults: Any) -> Any:
    """A row's config with the keys it predates filled in by their defaults: an option added
    later, left at its default, keeps the old behaviour (code changes are judged apart)."""
    if not isinstance(recorded, dict) or not isinstance(defaults, dict):
        return recorded
    return {**defaults, **{key: _with_defaults(value, defaults.get(key)) for key, value in recorded.items()}}


def _differences(recorded: Any, current: Any, prefix: str = "") -> list[str]:
    if isinstance(recorded, dict) and isinstance(current, dict):
        out = []
        for key in sorted(set(recorded) | set(current)):
            where = f"{prefix}{key}"
            if key not in recorded:
                out.append(f"{where} added")
            elif key not in current:
                out.append(f"{where} removed")
            else:
                out += _differences(recorded[key], current[key], where + ".")
        return out
    return [] if recorded == current else [f"{prefix.rstrip('.')} {recorded!r} -> {current!r}"]


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


# ---------------------------------------------------------------------------- code versions


class CodeVersions:
    """Which dependency files differ between a commit and the working tree, ignoring
    docstrings and comments in Python files. Trees and digests are cached per process."""

    def __init__(self, root: str | Path | None = None) -> None:
        from scae_hash.results import REPO_ROOT

        self.root = Path(root) if root is not None else REPO_ROOT
        self._trees: dict[str, dict[str, str] | None] = {}
        self._current: dict[tuple[str, ...], dict[str, str]] = {}
        self._digests: dict[str, str] = {}

    def changed(self, commit: str, paths: tuple[str, ...]) -> list[str] | None:
        """Files under ``paths`` that differ; None when ``commit`` is not in the history."""
        tree = self._tree(commit)
        if tree is None:
            return None
        current = self._working_tree(paths)
        names = sorted(name for name in set(tree) | set(current) if _under(name, paths))
        return [name for name in names if not self._same(name, tree.get(name), current.get(name), commit)]

    def _same(self, name: str, old_blob: str | None, new_blob: str | None, commit: str) -> bool:
        if old_blob is None or new_blob is None:
            return old_blob == new_blob
        if old_blob == new_blob:
            return True
        if not name.endswith(".py"):
            return False
        old = self._digest(old_blob, lambda: self._git("cat-file", "blob", old_blob))
        new = self._digest(new_blob, lambda: (self.root / name).read_text(encoding="utf-8", errors="replace"))
        return old == new

    def _digest(self, blob: str, read) -> str:
        if blob not in self._digests:
            self._digests[blob] = semantic_digest(read())
        return self._digests[blob]

    def _tree(self, commit: str) -> dict[str, str] | None:
        if commit not in self._trees:
            try:
                listing = self._git("ls-tree", "-r", "--full-tree", commit)
            except (OSError, subprocess.CalledProcessError):
                self._trees[commit] = None
            else:
                self._trees[commit] = {line.split("\t", 1)[1]: line.split()[2]
                                       for line in listing.splitlines() if line.split()[1] == "blob"}
        return self._trees[commit]

    def _working_tree(self, paths: tuple[str, ...]) -> dict[str, str]:
        """Blob ids of the files on disk under ``paths``: tracked and untracked, not ignored."""
        if paths not in self._current:
            listed = self._git("ls-files", "--cached", "--others", "--exclude-standard", "--", *paths).splitlines()
            names = sorted({name for name in listed if (self.root / name).is_file()})
            blobs = self._git("hash-object", "--stdin-paths", stdin="\n".join(names) + "\n").split() if names else []
            self._current[paths] = dict(zip(names, blobs))
        return self._current[paths]

    def _git(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=self.root, input=stdin, capture_output=True, text=True,
                              check=True).stdout


def _under(name: str, paths: tuple[str, ...]) -> bool:
    return any(name == path.rstrip("/") or name.startswith(path.rstrip("/") + "/") for path in paths)


def semantic_digest(source: str) -> str:
    """A digest of Python source that ignores comments, docstrings and formatting."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return hashlib.sha1(source.encode()).hexdigest()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha1(ast.dump(tree).encode()).hexdigest()
