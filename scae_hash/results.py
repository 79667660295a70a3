"""Result rows with provenance: every reported number says how it was made."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scae_hash.atomic import atomic_write, locked, write_text
from scae_hash.code_identity import REPO_ROOT
from scae_hash.devices import describe_devices



# What a process that is no command of this repository (a test run) counts as its code.
CODE_PATHS = ("scae_hash", "experiments")


def git_commit() -> str:
    """The commit that ran, with '-dirty' when the code this command depends on
    (:mod:`scae_hash.code_identity`) differed from it."""
    return _commit_of(["rev-parse", "HEAD"])


def code_commit() -> str:
    """The last commit that changed code (CODE_PATHS), with '-dirty' like :func:`git_commit`:
    commits of result rows alone leave it unchanged, so checkpoints keyed by it survive them."""
    return _commit_of(["log", "-1", "--format=%H", "--", *CODE_PATHS])


def _commit_of(git_args: list[str]) -> str:
    """The commit a git command prints, with '-dirty' when the running command's code (by the
    rule `reproduce` judges rows with) differs from HEAD's."""
    from scae_hash.code_identity import CodeVersions, running_dependencies

    try:
        commit = subprocess.run(["git", *git_args], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = CodeVersions(REPO_ROOT).dirty(running_dependencies() or CODE_PATHS)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return (commit or "unknown") + ("-dirty" if dirty else "")


def command_line() -> str:
    program = Path(sys.argv[0]).name
    if program == "__main__.py":  # python -m scae_hash
        program = "scae-hash"
    command = " ".join(shlex.quote(arg) for arg in [program, *sys.argv[1:]])
    # an argument that is not UTF-8 (a file name's raw bytes) is kept as \xNN escapes: rows are UTF-8
    return command.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def provenance(config: dict | None = None) -> dict:
    """Fields that every result row and codes file carries."""
    return {
        "command": command_line(),
        "config": json.dumps(config or {}, sort_keys=True),
        "commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        **describe_devices(),  # backend, device_kind, device_count: where it trained
    }


def save_benchmark(path: str | os.PathLike, numbers: dict) -> Path:
    """A benchmark's numbers as JSON, with the command, commit and time that made them."""
    from scae_hash.atomic import write_text

    stamp = {"command": command_line(), "commit": git_commit(),
             "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return write_text(path, json.dumps({**stamp, **numbers}, indent=1) + "\n")


def append_rows(rows: list[dict], path: str | os.PathLike) -> Path:
    """Append rows to a CSV (creating it, and widening its columns when new keys appear).

    The file is re-read and replaced whole under a lock, so concurrent runs lose no row and
    a kill never leaves half a row."""
    path = Path(path)
    with locked(path):
        new = pd.DataFrame(rows)
        if path.exists():
            new = pd.concat([pd.read_csv(path), new], ignore_index=True)
        with atomic_write(path, newline="") as stream:
            new.to_csv(stream, index=False)
    return path


def save_split(path: str | os.PathLike, protocol: str, split_seed: int, query_index: np.ndarray) -> Path:
    """Store the chosen query indices so that anyone can check the split."""
    payload = {
        "protocol": protocol,
        "split_seed": split_seed,
        "n_query": int(len(query_index)),
        "query_index": [int(i) for i in query_index],
        "commit": git_commit(),
    }
    return write_text(path, json.dumps(payload) + "\n")


def save_curves(path: str | os.PathLike, metrics, row: dict) -> Path:
    """Store a run's curves (precision@N, Hamming-radius PR) so figures need no retraining."""
    keys = ("method", "dataset", "protocol", "bits", "seed", "split_seed", "map", "commit", "created", "command")
    payload = {key: row[key] for key in keys if key in row}
    payload.update({
        "precision_curve": metrics.precision_curve.tolist(),
        "radius_precision": metrics.radius_precision.tolist(),
        "radius_recall": metrics.radius_recall.tolist(),
        "radius_empty_share": metrics.radius_empty_share.tolist(),
    })
    return write_text(path, json.dumps(payload, default=float) + "\n")


# The data-set configs' `variant`s make the main tables, the others (ablations) their own.
