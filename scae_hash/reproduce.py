"""`scae-hash reproduce`: run every cell of the plan that is missing or stale, then rebuild the
tables, figures and the result tables of README and docs/*.md from results/.

Each cell runs in its own process (the plain `scae-hash` command line, or a script), which
appends its rows once, atomically and under the results file's lock, when the cell is finished;
SCAE cells run with `--resume` in a run folder keyed by the commit and the resolved config, so
a killed run (even `kill -9`) loses at most the current epoch: the next run finds the finished
cells' rows and continues with the rest. A child dies with this process (Linux), and one lock per
results folder keeps two runs from doing the same cell twice.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from scae_hash.atomic import locked, write_text
from scae_hash.errors import ScaeHashError
from scae_hash.cell_state import CellState, cell_states, read_rows, row_key
from scae_hash.code_identity import CodeVersions
from scae_hash.plan import Cell, Plan, load_plan

QUICK_PLAN = "experiments/plan_quick.yaml"
TABLE_MARKER = re.compile(r"(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results -->)", re.S)


class ReproduceError(ScaeHashError):
    """A cell or an output command failed, a check fell outside the tolerance, or the plan is busy."""


def reproduce_command(plan_file: str | Path, *, only: list[str] | None = None, dry_run: bool = False,
                      check: list[str] | None = None, tolerance: float | None = None,
                      data_dir: str | None = None, worktree: str | Path | None = None,
                      commit_rows: bool = False) -> None:
    """The `scae-hash reproduce` subcommand: ``check`` re-runs those cells and compares; ``dry_run``
    prints the state of each cell; else every missing or stale cell runs, then the outputs.
    With ``worktree``, cells run from a worktree of HEAD (:func:`prepare_worktree`);
    ``commit_rows`` commits the results folder after each finished cell."""
    plan = load_plan(plan_file)
    data = data_dir or os.environ.get("SCAE_HASH_DATA")
    env = {**os.environ, **({"SCAE_HASH_DATA": str(Path(data).resolve())} if data else {})}
    if check:
        check_cells(plan, check, tolerance if tolerance is not None else plan.tolerance, env=env)
        return
    cells = plan.select(only)
    if dry_run:
        print_plan(plan, cell_states(cells, plan.results_dir))
        return
    with _exclusive(plan.results_dir):
        checkout = prepare_worktree(Path(worktree)) if worktree is not None else None
        states = cell_states(cells, plan.results_dir, CodeVersions(checkout) if checkout else None)
        failed = run_cells(plan, [state for state in states if state.status != "done"], env=env,
                           checkout=checkout, commit_rows=commit_rows)
        for command in plan.outputs:
            print(f"$ {' '.join(command)}", file=sys.stderr, flush=True)
            if _run(_python(command), env) != 0:
                failed.append(" ".join(command))
        if plan.readme is not None:
            for document in documents_with_tables(plan.readme):
                names = insert_tables(document, plan.tables_dir)
                if names:
                    print(f"{document} tables from {plan.tables_dir}/: {', '.join(names)}", file=sys.stderr)
    if plan.summary:
        print_summary(plan, cells)
    if failed:
        raise ReproduceError(f"{len(failed)} step(s) failed: {', '.join(failed)} (rerun to retry them)")


def print_plan(plan: Plan, states: list[CellState], stream=None) -> None:
    """Every cell with its state, estimated time and why, then totals per part and overall."""
    stream = stream or sys.stdout
    width = max([len(state.cell.name) for state in states] + [4])
    print(f"Plan {plan.path}: {len(states)} cells, rows in {plan.results_dir}/", file=stream)
    print(f"  {'part':<12} {'cell':<{width}}  {'state':<7}  {'est.':>8}  note", file=stream)
    for state in states:
        estimate = duration(state.estimate_seconds) if state.status != "done" else ""
        print(f"  {state.cell.part:<12} {state.cell.name:<{width}}  {state.status:<7}  {estimate:>8}  {state.reason}",
              file=stream)
    print(file=stream)
    for part in dict.fromkeys(state.cell.part for state in states):
        print(f"{part}: {_counts([state for state in states if state.cell.part == part])}", file=stream)
    todo = [state for state in states if state.status != "done"]
    seconds = sum(state.estimate_seconds for state in todo)
    print(f"Total: {_counts(states)}; to run: {len(todo)} cells, about {duration(seconds)} "
          "(each: the median fit time of earlier rows like it plus start-up and scoring, "
          "else the kind's default)", file=stream)


def _counts(states: list[CellState]) -> str:
    return ", ".join(f"{sum(state.status == status for state in states)} {status}"
                     for status in ("done", "stale", "missing"))


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def run_cells(plan: Plan, todo: list[CellState], *, env: dict, checkout: Path | None = None,
              commit_rows: bool = False) -> list[str]:
    """Run each cell in its own process (in ``checkout``, a worktree, when given: its code, this
    checkout's folders); returns the names of those that failed."""
    if not todo:
        print("Every selected cell is done.", file=sys.stderr)
        return []
    from scae_hash.results import code_commit

    # not HEAD: committing finished rows must not orphan the checkpoints of the rest
    commit = _last_code_commit(checkout) if checkout else code_commit()
    folders = {"results_dir": plan.results_dir, "figures_dir": plan.figures_dir, "run_dir": plan.run_dir}
    if checkout:  # the cells run there but write here (paths relative to it: rows name no home folder)
        folders = {name: Path(os.path.relpath(folder.resolve(), checkout)) for name, folder in folders.items()}
        env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))}
    run_root = folders.pop("run_dir") / (commit[:12] + ("-dirty" if commit.endswith("-dirty") else ""))
    failed = []
    bar = tqdm(total=max(1, round(sum(state.estimate_seconds for state in todo))), unit="s", desc="plan",
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]", file=sys.stderr)
    with bar:
        for number, state in enumerate(todo, 1):
            cell = state.cell
            bar.set_postfix_str(f"cell {number}/{len(todo)}: {cell.name}")
            why = f" ({state.status}{': ' + state.reason if state.reason else ''})"
            bar.write(f"[{number}/{len(todo)}] {cell.name}{why}", file=sys.stderr)
            command = cell.command(sys.executable, run_dir=run_root / cell.config_key, **folders)
            code = _run(command, env, cwd=checkout)
            finished = cell_states([cell], plan.results_dir)[0].status != "missing"
            if code != 0 or not finished:
                failed.append(cell.name)
                bar.write(f"[{number}/{len(todo)}] {cell.name} failed (exit {code}"
                          f"{'' if finished else ', no row'}): {' '.join(command)}", file=sys.stderr)
            elif commit_rows:
                bar.write(_commit_results(plan.results_dir, f"Rows of {cell.name} (code at {commit[:7]})"),
                          file=sys.stderr)
            bar.update(round(state.estimate_seconds))
    return failed


def check_cells(plan: Plan, names: list[str], tolerance: float, *, env: dict, stream=None) -> None:
    """Re-run reported cells from scratch in a temporary folder; compare their mAP."""
    stream = stream or sys.stdout
    cells = plan.find(names)
    reported = {state.cell.name: state for state in cell_states(cells, plan.results_dir)}
    absent = [name for name, state in reported.items() if state.status == "missing"]
    if absent:
        raise ReproduceError(f"no reported row to check for {', '.join(absent)} in {plan.results_dir}/")
    scratch = Path(tempfile.mkdtemp(prefix="scae-hash-check-"))
    env = {**env, "SCAE_HASH_UMAP_CACHE": str(scratch / "umap-cache")}  # refit UMAP: no cached layout counts
    lines, bad = [], []
    for cell in cells:
        results_dir = scratch / "results"
        started = time.perf_counter()
        command = cell.command(sys.executable, results_dir=results_dir, run_dir=scratch / "runs" / cell.config_key,
                               figures_dir=scratch / "figures")
        print(f"check {cell.name}: {' '.join(command)}", file=sys.stderr, flush=True)
        code = _run(command, env)
        seconds = time.perf_counter() - started
        fresh = {row_key(row): row for row in read_rows(results_dir, cell.kind.results)}
        for old in reported[cell.name].rows:
            new = fresh.get(row_key(old))
            label = cell.name + ("" if len(cell.expected_rows) == 1 else f" [{old['method']}]")
            if code != 0 or new is None:
                bad.append(label)
                lines.append((label, float(old["map"]), None, None, f"failed (exit {code})"))
                continue
            difference = float(new["map"]) - float(old["map"])
            ok = abs(difference) <= tolerance
            if not ok:
                bad.append(label)
            lines.append((label, float(old["map"]), float(new["map"]), difference,
                          f"{'ok' if ok else 'OUTSIDE'} ({duration(seconds)})"))
    print(f"{'cell':<32} {'reported':>9} {'reproduced':>10} {'difference':>10}  within ±{tolerance:g} mAP",
          file=stream)
    for label, old, new, difference, verdict in lines:
        new_text = f"{new:.4f}" if new is not None else "–"
        diff_text = f"{difference:+.4f}" if difference is not None else "–"
        print(f"{label:<32} {old:>9.4f} {new_text:>10} {diff_text:>10}  {verdict}", file=stream)
    for name, state in reported.items():
        if state.status == "stale":
            print(f"note: the reported row of {name} is stale ({state.reason})", file=stream)
    if bad:
        print(f"runs kept for inspection in {scratch}", file=stream)
        raise ReproduceError(f"{len(bad)} of {len(lines)} checked rows outside ±{tolerance:g} mAP or failed: "
                             f"{', '.join(bad)}")
    shutil.rmtree(scratch, ignore_errors=True)


def print_summary(plan: Plan, cells: list[Cell], stream=None) -> None:
    """The plan's summary columns for the latest row of each cell, side by side."""
    stream = stream or sys.stdout
    states = cell_states(cells, plan.results_dir)
    header = ["method", "dataset", "bits", *plan.summary]
    table = [header]
    for state in states:
        for row in state.rows:
            table.append([str(row["method"]), str(row["dataset"]), str(row["bits"]),
                          *(_number(row.get(column)) for column in plan.summary)])
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print(file=stream)
    for line in table:
        print("  ".join(cell.rjust(width) if i >= 3 else cell.ljust(width)
                        for i, (cell, width) in enumerate(zip(line, widths))), file=stream)
    if plan.note:
        print(f"\n{plan.note}", file=stream)


def _number(value) -> str:
    if isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    if number != number:
        return "–"
    return str(int(number)) if number.is_integer() and abs(number) >= 1 else (
        f"{number:.1f}" if abs(number) >= 10 else f"{number:.4f}")


def documents_with_tables(readme: Path) -> list[Path]:
    """The plan's README and every Markdown page of the docs/ folder beside it: each may hold
    inserted tables, so a moved section keeps getting its numbers from results/."""
    return [readme, *sorted((readme.parent / "docs").glob("*.md"))]


def insert_tables(document: Path, tables_dir: Path) -> list[str]:
    """Replace the text between `<!-- results:NAME -->` and `<!-- /results -->` with
    `tables_dir/NAME.md`; returns the names filled in. Running it twice changes nothing."""
    if not document.is_file():
        return []
    text = document.read_text(encoding="utf-8")
    names = []

    def fill(match: re.Match) -> str:
        table = tables_dir / f"{match[2]}.md"
        names.append(match[2])
        if table.is_file():
            body = table.read_text(encoding="utf-8").strip()
        else:
            body = f"*No table yet: `scae-hash reproduce` writes {tables_dir.name}/{table.name}.*"
        return f"{match[1]}{body}\n{match[4]}"

    updated = TABLE_MARKER.sub(fill, text)
    if updated != text:
        write_text(document, updated)
    return names


def _python(command: list[str]) -> list[str]:
    """An output command whose `python` or `scae-hash` runs under this interpreter."""
    if command and command[0] == "scae-hash":
        return [sys.executable, "-m", "scae_hash", *command[1:]]
    return [sys.executable, *command[1:]] if command and command[0] == "python" else command


def prepare_worktree(path: Path) -> Path:
    """A detached git worktree of HEAD at ``path``, created or moved there, so that cells run
    committed code while this checkout is edited: each row names its commit, never ``-dirty``,
    and an edit made during the run neither enters its rows nor stops it."""
    head = _git(Path.cwd(), "rev-parse", "HEAD")
    if not path.exists():
        _git(Path.cwd(), "worktree", "add", "--detach", str(path), head)
        return path.resolve()
    if not (path / ".git").exists() or _git(path, "rev-parse", "--git-common-dir", absolute=True) != \
            _git(Path.cwd(), "rev-parse", "--git-common-dir", absolute=True):
        raise ReproduceError(f"--worktree {path} exists and is not a worktree of this repository")
    if _git(path, "status", "--porcelain", "--untracked-files=no"):
        raise ReproduceError(f"--worktree {path} has uncommitted changes; commit or discard them there first")
    _git(path, "checkout", "--quiet", "--detach", head)
    return path.resolve()


def _last_code_commit(checkout: Path) -> str:
    """The last commit that changed code in ``checkout`` (what :func:`results.code_commit` says there)."""
    from scae_hash.results import CODE_PATHS

    return _git(checkout, "log", "-1", "--format=%H", "--", *CODE_PATHS)


def _commit_results(results_dir: Path, message: str) -> str:
    """Commit the results folder alone (other staged changes stay staged); a line saying what happened."""
    try:
        _git(Path.cwd(), "add", "--all", "--", str(results_dir))
        if not _git(Path.cwd(), "diff", "--cached", "--name-only", "--", str(results_dir)):
            return "  nothing new to commit in " + str(results_dir)
        _git(Path.cwd(), "commit", "--quiet", "-m", message, "--", str(results_dir))
    except ReproduceError as error:
        return f"  rows not committed: {error}"
    return f"  committed: {message}"


def _git(folder: Path, *args: str, absolute: bool = False) -> str:
    """One git command's output; its error in one line."""
    try:
        out = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        lines = (getattr(error, "stderr", None) or str(error)).strip().splitlines()
        raise ReproduceError(f"git {' '.join(args[:2])} failed: {lines[-1] if lines else error}") from None
    return str((folder / out).resolve()) if absolute else out


def _run(command: list[str], env: dict, cwd: Path | None = None) -> int:
    """Run one child process in the foreground; it is killed if this process dies."""
    try:
        return subprocess.run(command, env=env, cwd=cwd,
                              preexec_fn=_die_with_parent if sys.platform == "linux" else None).returncode
    except FileNotFoundError:
        return 127


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to kill it when its parent dies (even by kill -9),
    so that an orphaned cell never writes its row beside the rerun's."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


@contextlib.contextmanager
def _exclusive(results_dir: Path) -> Iterator[None]:
    """One `reproduce` per results folder at a time."""
    from filelock import Timeout

    lock = locked(results_dir / "reproduce", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ReproduceError(f"another `scae-hash reproduce` is running on {results_dir}/ "
                             f"(it holds {lock.lock_file})") from None
    try:
        yield
    finally:
        lock.release()
