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
from scae_hash.constants import RUN_KEYS
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


def read_results(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """All result rows from the given CSVs, keeping only the latest row of each run."""
    frames = [pd.read_csv(path) for path in paths if Path(path).is_file()]
    if not frames:
        raise FileNotFoundError(f"no result files among: {', '.join(map(str, paths))}")
    frame = pd.concat(frames, ignore_index=True)
    frame["variant"] = frame["variant"].fillna("").astype(str) if "variant" in frame else ""
    frame["split"] = frame["split"].fillna("test").astype(str) if "split" in frame else "test"
    return frame.drop_duplicates(subset=list(RUN_KEYS), keep="last").reset_index(drop=True)


def load_curves(rows: pd.DataFrame) -> list[dict]:
    """The curves files that result rows point to (rows without one are skipped)."""
    files = rows.get("curves_file", pd.Series(dtype=str)).dropna()
    return [json.loads(Path(path).read_text()) for path in files if Path(path).is_file()]


def main_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the main comparison: trained on the full training set, baselines and SCAE
    runs of a data set's own config."""
    base_method = frame["method"].astype(str).str.removesuffix("-features")
    own_config = ((frame["variant"] == "") | (frame["variant"] == frame["dataset"])
                  | (frame["variant"] == base_method + "-" + frame["dataset"]))  # e.g. scae-manifold-mnist
    # validation rows (results/validation.csv) choose configs; they never enter a thesis table
    test_split = frame["split"].fillna("test") != "validation" if "split" in frame else True
    return frame[own_config & (frame["protocol"] == frame["dataset"]) & test_split]


def ablation_table(frame: pd.DataFrame, dataset: str, protocol: str, bits: int, method: str = "scae",
                   metrics: dict[str, str] | None = None, full: str | None = None) -> pd.DataFrame:
    """One row per config variant at one code length: each metric as mean ± std over seeds, and
    the mAP change against the full model (variant ``full``, default the data set's own config)
    paired by training seed (a variant and the full model of one seed share the split and the
    seed's draws, so the pairing cancels some seed-to-seed noise). The full model comes first,
    then variants from best to worst."""
    metrics = metrics or {"map": "mAP", "precision_at_100": "P@100"}
    full = full or dataset
    rows = frame[(frame["method"] == method) & (frame["dataset"] == dataset) & (frame["protocol"] == protocol)
                 & (frame["bits"] == bits)]
    reference = rows[rows["variant"] == full].set_index("seed")["map"]
    table = {}
    for variant, group in rows.groupby("variant"):
        cells = {"seeds": str(len(group))}
        cells.update({label: mean_std(group[metric]) for metric, label in metrics.items() if metric in group})
        change = (group.set_index("seed")["map"] - reference).dropna()
        cells["Δ mAP (paired seeds)"] = "–" if variant == full or change.empty else mean_std(change, "+.4f")
        table[variant] = cells
    order = rows.groupby("variant")["map"].mean().sort_values(ascending=False).index
    order = [v for v in order if v == full] + [v for v in order if v != full]
    return pd.DataFrame.from_dict(table, orient="index").loc[order].rename_axis("variant")


def mean_std(values: pd.Series, spec: str = ".4f") -> str:
    """'mean ± std' (the std only when there are several values)."""
    mean = format(values.mean(), spec)
    return mean + (f" ± {values.std():.4f}" if len(values) > 1 else "")


def summary_table(frame: pd.DataFrame, metric: str, dataset: str) -> pd.DataFrame:
    """Methods x bits of 'mean ± std' over seeds (std only when there are several seeds)."""
    rows = main_rows(frame)
    return _mean_std_cells(rows[rows["dataset"] == dataset], "method", metric)


VALIDATED_METHODS = ["scae", "itq", "imh", "scae-manifold"]
PIXEL_BASELINES = {"itq": "ITQ on pixels", "imh": "IMH on pixels"}


def validation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Every validation run (the latest row of each): what it changes against its config, read
    from the command that made it, its mAP, and its commit (``-dirty``: uncommitted code)."""
    rows = frame[(frame["split"] == "validation") & frame["method"].isin(VALIDATED_METHODS)]
    features = frame[(frame["split"] == "validation") & frame["method"].isin([f"{m}-features" for m in VALIDATED_METHODS])]
    features = features.assign(method=features["method"].str.removesuffix("-features"))
    feature_map = features.set_index(["method", "variant", "dataset", "bits", "seed"])["map"]
    table = pd.DataFrame({
        "data set": rows["dataset"],
        "run": [variant or method for variant, method in zip(rows["variant"], rows["method"])],
        "what it runs": [_what_runs(row) for _, row in rows.iterrows()],
        "bits": rows["bits"].astype(int).astype(str),
        "seed": rows["seed"].astype(int).astype(str),
        "mAP": rows["map"].map("{:.4f}".format),
        "features mAP": [f"{feature_map[key]:.4f}" if key in feature_map.index else "–"
                         for key in zip(rows["method"], rows["variant"], rows["dataset"], rows["bits"], rows["seed"])],
        "commit": rows["commit"].astype(str).map(lambda c: c[:7] + ("-dirty" if c.endswith("-dirty") else "")),
    })
    return table.sort_values(["data set", "run", "seed"]).set_index("data set")


def _what_runs(row: pd.Series) -> str:
    """'<config stem> [head <kind>] [--set ...]' from a row's command; ITQ on pixels for ITQ."""
    words = shlex.split(str(row["command"]))
    sets = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "--set"]
    if row["method"] in PIXEL_BASELINES:
        return " ".join([PIXEL_BASELINES[row["method"]], *sets])
    config = next((Path(words[i + 1]).with_suffix("").as_posix().removeprefix("experiments/configs/")
                   for i, word in enumerate(words[:-1]) if word == "--config"), "?")
    head = row["variant"].rsplit("-head-", 1)[1] if "-head-" in row["variant"] else ""
    return " ".join([config, *([f"head {head}"] if head else []), *sets])


def _mean_std_cells(rows: pd.DataFrame, by: str, metric: str) -> pd.DataFrame:
    cells = rows.groupby([by, "bits"])[metric].agg(mean_std)
    return cells.unstack("bits").fillna("–")


def to_markdown(table: pd.DataFrame) -> str:
    header = [table.index.name or "method", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(method), *row]) + " |" for method, row in zip(table.index, table.values)]
    return "\n".join(lines)


def to_latex(table: pd.DataFrame, caption: str, wide: bool = False) -> str:
    """A booktabs table; ``wide``: across both columns of a two-column page, in small type."""
    columns = "l" + "c" * len(table.columns)
    header = [_latex(table.index.name or "Method").capitalize(),
              *(f"{c} bits" if isinstance(c, (int, np.integer)) else _latex(str(c)) for c in table.columns)]
    environment = "table*" if wide else "table"
    lines = [rf"\begin{{{environment}}}[t]", r"\centering", *([r"\scriptsize"] if wide else []),
             rf"\caption{{{_latex(caption)}}}", rf"\begin{{tabular}}{{{columns}}}",
             r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join([_latex(str(method)), *(_latex(str(cell)) for cell in row)]) + r" \\"
              for method, row in zip(table.index, table.values)]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\end{{{environment}}}"]
    return "\n".join(lines)


def _latex(text: str) -> str:
    for plain, escaped in (("_", r"\_"), ("%", r"\%"), ("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("≥", r"$\geq$")):
        text = text.replace(plain, escaped)
    return text
