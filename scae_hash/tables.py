"""Tables from the saved result rows: which rows a thesis table shows, mean ± std over seeds,
ablations against the full model, the validation runs, and the one Markdown/LaTeX writer.
Nothing here runs a model: the rows come from :mod:`scae_hash.results`."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scae_hash.constants import RUN_KEYS


def read_results(paths: list[str | os.PathLike], *, latest: bool = True) -> pd.DataFrame:
    """All result rows from the given CSVs, keeping only the latest row of each run (every row
    with ``latest=False``)."""
    frames = [pd.read_csv(path) for path in paths if Path(path).is_file()]
    if not frames:
        raise FileNotFoundError(f"no result files among: {', '.join(map(str, paths))}")
    frame = pd.concat(frames, ignore_index=True)
    frame["variant"] = frame["variant"].fillna("").astype(str) if "variant" in frame else ""
    frame["split"] = frame["split"].fillna("test").astype(str) if "split" in frame else "test"
    if latest:
        frame = frame.drop_duplicates(subset=list(RUN_KEYS), keep="last")
    return frame.reset_index(drop=True)


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


#: Each method with ablations: the prefix of its variants (the config's run name), the folder of
#: their configs and that of the full model's, relative to the repository. The tables and the
#: ablation figure both read it, so a method added here gets both.
ABLATED = {"scae": ("", "experiments/configs/ablations", "experiments/configs"),
           "scae-manifold": ("scae-manifold-", "experiments/configs/ablations/manifold", "experiments/configs/manifold")}


def ablation_variants(method: str, root: Path) -> set[str]:
    """The variant names of a method's ablation configs (their run names)."""
    prefix, folder, _ = ABLATED[method]
    return {prefix + path.stem for path in (root / folder).glob("*.yaml")}


@dataclass(frozen=True, eq=False)
class AblationGroup:
    """A method's ablation configs at one setting beside its full model (variant ``full``): one
    ablation table, one panel of the ablation figure."""

    method: str
    dataset: str
    protocol: str
    bits: int
    full: str
    rows: pd.DataFrame


def ablation_groups(frame: pd.DataFrame, ablation_names: set[str], method: str = "scae",
                    prefix: str = "") -> list[AblationGroup]:
    """Every setting where an ablation config (a variant in ``ablation_names``) ran beside the
    data set's own config (variant ``prefix + dataset``)."""
    rows = frame[frame["method"] == method]
    groups = []
    for (dataset, protocol, bits), group in rows.groupby(["dataset", "protocol", "bits"]):
        full = prefix + dataset
        group = group[(group["variant"] == full) | group["variant"].isin(ablation_names)]
        if group["variant"].nunique() >= 2 and (group["variant"] == full).any():
            groups.append(AblationGroup(method, dataset, protocol, int(bits), full, group))
    return groups


def ablation_table(frame: pd.DataFrame, dataset: str, protocol: str, bits: int, method: str = "scae",
                   metrics: dict[str, str] | None = None, full: str | None = None) -> pd.DataFrame:
    """One row per config variant at one code length: each metric as mean ± std over seeds, and
    the mAP change against the full model (variant ``full``, default the data set's own config)
    paired by training seed (a variant and the full model of one seed share the split and the
    seed's draws, so the pairing cancels some seed-to-seed noise). The full model comes first,
    then variants from best to worst. Where rows carry the plan's ``stale`` flag, the seeds cell
    counts the stale ones, and a change that pairs a stale row with a current one says so: it
    compares two versions of the code."""
    metrics = metrics or {"map": "mAP", "precision_at_100": "P@100"}
    full = full or dataset
    rows = frame[(frame["method"] == method) & (frame["dataset"] == dataset) & (frame["protocol"] == protocol)
                 & (frame["bits"] == bits)]
    if "stale" not in rows:
        rows = rows.assign(stale=False)
    reference = rows[rows["variant"] == full].set_index("seed")[["map", "stale"]].add_suffix("_full")
    table = {}
    for variant, group in rows.groupby("variant"):
        stale = int(group["stale"].sum())
        cells = {"seeds": str(len(group)) + (f" ({stale} stale)" if stale else "")}
        cells.update({label: mean_std(group[metric]) for metric, label in metrics.items() if metric in group})
        pairs = group.set_index("seed")[["map", "stale"]].join(reference, how="inner")
        change = pairs["map"] - pairs["map_full"]
        if variant == full or change.empty:
            cells["Δ mAP (paired seeds)"] = "–"
        else:
            mixed = (pairs["stale"] != pairs["stale_full"]).any()
            cells["Δ mAP (paired seeds)"] = mean_std(change, "+.4f") + (" (stale pairs)" if mixed else "")
        table[variant] = cells
    order = rows.groupby("variant")["map"].mean().sort_values(ascending=False).index
    order = [v for v in order if v == full] + [v for v in order if v != full]
    return pd.DataFrame.from_dict(table, orient="index").loc[order].rename_axis("variant")


def mean_std(values: pd.Series, spec: str = ".4f") -> str:
    """'mean ± std' (the std only when there are several values); a mean that rounds to zero is
    written without a minus sign."""
    mean = format(values.mean(), spec)
    if float(mean) == 0:
        mean = format(0.0, spec)
    return mean + (f" ± {values.std():.4f}" if len(values) > 1 else "")


def summary_table(frame: pd.DataFrame, metric: str, dataset: str) -> pd.DataFrame:
    """Methods x bits of 'mean ± std' over seeds (std only when there are several seeds)."""
    rows = main_rows(frame)
    return _mean_std_cells(rows[rows["dataset"] == dataset], "method", metric)


VALIDATED_METHODS = ["scae", "itq", "imh", "scae-manifold"]
PIXEL_BASELINES = {"itq": "ITQ on pixels", "imh": "IMH on pixels"}


def validation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Every validation run (the latest row of each run and setting): what it ran against its
    config file as it is now, its mAP, and its commit (``-dirty``: uncommitted code). A run
    repeated after its config changed keeps both rows, each saying how it differs."""
    validation = frame[frame["split"] == "validation"]
    rows = validation[validation["method"].isin(VALIDATED_METHODS)]
    features = validation[validation["method"].isin([f"{m}-features" for m in VALIDATED_METHODS])]
    pair = ["variant", "dataset", "bits", "seed", "command", "commit"]  # both rows of one run share these
    feature_map = features.drop_duplicates(pair, keep="last").set_index(pair)["map"]
    configs_now = {path: _config_now(path) for path in set(map(_config_path, rows["command"])) - {None}}
    table = pd.DataFrame({
        "data set": rows["dataset"],
        "run": [variant or method for variant, method in zip(rows["variant"], rows["method"])],
        "what it runs": [_what_runs(row, configs_now) for _, row in rows.iterrows()],
        "bits": rows["bits"].astype(int).astype(str),
        "seed": rows["seed"].astype(int).astype(str),
        "mAP": rows["map"].map("{:.4f}".format),
        "features mAP": [f"{feature_map[key]:.4f}" if key in feature_map.index else "–"
                         for key in zip(*(rows[column] for column in pair))],
        "commit": rows["commit"].astype(str).map(lambda c: c[:7] + ("-dirty" if c.endswith("-dirty") else "")),
    })
    table = table.drop_duplicates(["data set", "run", "what it runs", "bits", "seed"], keep="last")
    return table.sort_values(["data set", "run", "what it runs", "seed"]).set_index("data set")


def _what_runs(row: pd.Series, configs_now: dict[str, dict | None]) -> str:
    """'<config stem> [head <kind>] [setting=value ...]': ITQ or IMH on pixels with its --set
    overrides; a model's config file, then each setting in which the row's resolved config
    differs from that file now (its --set overrides, and any edit of the file since), or, for a
    row without a readable config, the --set overrides of its command."""
    words = shlex.split(str(row["command"]))
    sets = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "--set"]
    if row["method"] in PIXEL_BASELINES:
        return " ".join([PIXEL_BASELINES[row["method"]], *sets])
    path = _config_path(row["command"])
    config = Path(path).with_suffix("").as_posix().removeprefix("experiments/configs/") if path else "?"
    head = row["variant"].rsplit("-head-", 1)[1] if "-head-" in row["variant"] else ""
    changed = _settings_changed(row, configs_now.get(path))
    return " ".join([config, *([f"head {head}"] if head else []), *(sets if changed is None else changed)])


def _config_path(command) -> str | None:
    """The --config argument of a row's command."""
    words = shlex.split(str(command))
    return next((words[i + 1] for i, word in enumerate(words[:-1]) if word == "--config"), None)


def _config_now(path: str) -> dict | None:
    """The resolved config of a config file as it is now; None when it cannot be read."""
    from scae_hash.errors import ScaeHashError
    from scae_hash.experiment import load_method_config

    try:
        return load_method_config(path).to_dict()
    except (OSError, ScaeHashError):
        return None


def _settings_changed(row: pd.Series, current: dict | None) -> list[str] | None:
    """'setting=value' for each setting of the row's resolved config that its config file
    (``current``, as it is now) does not have; None when either cannot be read."""
    from scae_hash.cell_state import ABSENT, config_differences, with_defaults

    if current is None:
        return None
    try:
        recorded = json.loads(row.get("config"))
    except (TypeError, ValueError):
        return None
    if not isinstance(recorded, dict):
        return None
    differences = config_differences(with_defaults(recorded, current.get("method", "scae")), current)
    return [f"{path}={json.dumps(value, separators=(',', ':'))}" for path, value, _ in differences
            if value is not ABSENT and path not in ("seed", "bits")]


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
