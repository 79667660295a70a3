"""Thesis tables (Markdown and LaTeX) from the saved result rows: no retraining.

    python experiments/make_tables.py            # all metrics, all data sets in results/
"""

import argparse
import re
from pathlib import Path

from scae_hash.atomic import write_text
from scae_hash.cell_state import mark_stale
from scae_hash.tables import (ABLATED, ablation_groups, ablation_table, ablation_variants, main_rows, read_results,
                              summary_table, to_latex, to_markdown, validation_table)
from scae_hash.targets import load_targets, targets_table

REPO = Path(__file__).resolve().parents[1]
TARGETS = Path(__file__).resolve().parent / "targets.yaml"
METHOD_NAMES = {"scae": "SCAE-hash", "scae-manifold": "SCAE-manifold", "imh": "IMH (UMAP)", "itq": "ITQ"}
METRICS = {"map": "mAP", "map_at_1000": "mAP@1000", "map_tie_aware": "tie-aware mAP",
           "precision_at_1000": "precision@1000", "p_r2": "precision within Hamming radius 2"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", default=["results/baselines.csv", "results/scae.csv"])
    parser.add_argument("--validation", default="results/validation.csv", help="the validation rows (default: %(default)s)")
    parser.add_argument("--comparison", default="results/comparison.csv",
                        help="the deep hashing vs deep metric rows (default: %(default)s)")
    parser.add_argument("--benchmarks", default="results/benchmarks",
                        help="folder of experiments/bench_fit.py's fit_<dataset>.json (default: %(default)s)")
    parser.add_argument("--out", default="results/tables")
    parser.add_argument("--plan", default=str(REPO / "experiments" / "plan.yaml"),
                        help="the plan whose stale cells the tables count (default: %(default)s)")
    args = parser.parse_args()
    frame = mark_stale(read_results(args.results), Path(args.plan))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    provenance = made_from(main_rows(frame), args.results)
    for metric, title in METRICS.items():
        markdown, latex = [], []
        for dataset in sorted(frame["dataset"].unique()):
            table = summary_table(frame, metric, dataset)
            caption = f"{title} on {dataset} (docs/protocol.md, split seed 0; mean ± std over training seeds)"
            markdown.append(f"### {caption}\n\n{to_markdown(table)}\n")
            latex.append(to_latex(table, caption))
        write_text(out / f"{metric}.md", "\n".join(markdown) + f"\n{provenance}\n")
        write_text(out / f"{metric}.tex", f"% {provenance}\n" + "\n\n".join(latex) + "\n")
        if metric == "map":
            print("\n".join(markdown))
    write_ablation_tables(frame, out, args.results)
    write_targets_table(frame, out, args.results)
    write_cost_table(frame, out, args.results)
    write_fit_cold_table(sorted(Path(args.benchmarks).glob("fit_*.json")), out)
    if Path(args.validation).is_file():
        write_validation_table(read_results([args.validation], latest=False), out, args.validation)
    if Path(args.comparison).is_file():
        from scae_hash.comparison.report import write_tables as write_comparison_tables

        write_comparison_tables(read_results([args.comparison]), out)
    print(f"tables written to {out}/")


def made_from(rows, paths: list[str]) -> str:
    """The provenance line of a table: the files and the commits of the rows it shows, and how
    many of those rows the plan calls stale, so that a table never passes an old number as current."""
    commits = ", ".join(sorted(rows["commit"].astype(str).str[:12].unique()))
    line = f"Made by experiments/make_tables.py from {', '.join(paths)} (rows of commits {commits})."
    stale = int(rows["stale"].sum()) if "stale" in rows else 0
    if stale:
        line += (f" **{stale} of its {len(rows)} rows are stale** (their code has changed since they ran;"
                 " `scae-hash reproduce --dry-run` lists them and why).")
    return line


def write_ablation_tables(frame, out: Path, paths: list[str]) -> None:
    """One table per method, data set, protocol and code length where config variants ran beside
    the data set's own config, with a column saying what each variant changes."""
    for method, (prefix, folder, full_folder) in ABLATED.items():
        for group in ablation_groups(frame, ablation_variants(method, REPO), method, prefix):
            dataset, protocol, bits, full = group.dataset, group.protocol, group.bits, group.full
            table = ablation_table(group.rows, dataset, protocol, bits, method=method, full=full)
            provenance = made_from(group.rows, paths)
            table.insert(0, "what changes", [
                f"full model ({full_folder}/{dataset}.yaml)" if variant == full
                else describe_variant(REPO / folder / f"{variant.removeprefix(prefix)}.yaml")
                for variant in table.index])
            label = METHOD_NAMES.get(method, method)
            caption = (f"{label} ablations on {protocol}, {bits} bits: mean ± std over training seeds "
                       f"(each variant is a config in {folder}/)")
            stem = "ablations_" + ("manifold_" if prefix else "")
            name = stem + re.sub(r"[^0-9a-zA-Z]+", "_", f"{protocol}_{bits}").strip("_")
            write_text(out / f"{name}.md", f"### {caption}\n\n{to_markdown(table)}\n\n{provenance}\n")
            write_text(out / f"{name}.tex", f"% {provenance}\n{to_latex(table, caption)}\n")
            print(f"### {caption}\n\n{to_markdown(table)}\n")


def write_targets_table(frame, out: Path, paths: list[str]) -> None:
    """How far the SCAE-hash rows (targets.md) and the SCAE-manifold rows (targets_manifold.md)
    are from the targets of experiments/targets.yaml."""
    every = load_targets(TARGETS)
    for name, targets in (("targets", every), ("targets_manifold", every.get("manifold"))):
        if not targets:
            continue
        table = targets_table(frame, targets)
        if table.empty:
            continue
        method = targets.get("method", "scae")
        rows = main_rows(frame)
        compared = [method, targets["reference"], targets.get("precision_reference", targets["reference"])]
        provenance = made_from(rows[rows["method"].isin(compared)], paths)
        caption = (f"{METHOD_NAMES.get(method, method)} against the targets of experiments/targets.yaml "
                   f"({targets['bits']} bits unless said; mean over training seeds; reference {targets['reference']})")
        write_text(out / f"{name}.md", f"### {caption}\n\n{to_markdown(table)}\n\n{provenance}\n")
        write_text(out / f"{name}.tex", f"% {provenance}\n{to_latex(table, caption)}\n")
        print(f"### {caption}\n\n{to_markdown(table)}\n")


COST_METHODS = ["itq", "scae", "imh", "scae-manifold"]
COST_COLUMNS = {"map": "mAP", "fit_seconds": "fit (s)", "encode_ms_per_image": "encode (ms/image)",
                "query_ms": "Hamming ranking (ms/query)"}


def write_cost_table(frame, out: Path, paths: list[str], bits: int = 64) -> None:
    """The thesis model, the manifold baseline and the SCAE-manifold side by side (ITQ for
    scale): mAP and what each costs to fit and to encode an image, at one code length."""
    rows = main_rows(frame)
    rows = rows[rows["method"].isin(COST_METHODS) & (rows["bits"] == bits)]
    if rows.empty:
        return
    grouped = rows.groupby(["dataset", "method"])
    table = grouped[list(COST_COLUMNS)].mean()
    table.insert(0, "seeds", grouped.size().astype(str))
    table = table.reset_index()
    table["method"] = table["method"].map(lambda m: METHOD_NAMES.get(m, m))
    table = table.rename(columns=COST_COLUMNS).rename(columns={"dataset": "data set"}).set_index(["data set", "method"])
    formats = {"mAP": "{:.4f}", "fit (s)": "{:.0f}", "encode (ms/image)": "{:.3f}", "Hamming ranking (ms/query)": "{:.3f}"}
    for column, fmt in formats.items():
        table[column] = table[column].map(fmt.format)
    table = table.reset_index().set_index("data set")
    caption = (f"What each method costs at {bits} bits on the 2 CPU cores (means over training seeds; fit is the "
               "reported run's wall clock, in which a stage cached by content counts only where it was computed: "
               "the UMAP layout that IMH and SCAE-manifold share across code lengths, the greedy pretraining, and "
               "SCAE-manifold's network of a seed, so a fit that found them cached is shorter than one from "
               "scratch; encode is per database image, in batches)")
    provenance = made_from(rows, paths)
    write_text(out / "cost.md", f"### {caption}\n\n{to_markdown(table)}\n\n{provenance}\n")
    write_text(out / "cost.tex", f"% {provenance}\n{to_latex(table, caption)}\n")


def write_fit_cold_table(files: list[Path], out: Path) -> None:
    """experiments/bench_fit.py's fits from empty caches beside the reported rows' fit times."""
    import json

    import pandas as pd

    if not files:
        return
    lines, sources = [], []
    for file in files:
        saved = json.loads(file.read_text())
        sources.append(f"{file.name} (commit {str(saved['commit'])[:12]}, {saved['created'][:10]})")
        for row in saved["rows"]:
            lines.append({"data set": saved["dataset"], "method": METHOD_NAMES.get(row["method"], row["method"]),
                          "bits": str(saved["bits"]), "seed": str(saved["seed"]),
                          "fit from scratch (s)": f"{row['fit_seconds_cold']:.0f}",
                          "reported fit (s)": _number(row["reported_fit_seconds"], "{:.0f}"),
                          "mAP": f"{row['map']:.4f}", "reported mAP": _number(row["reported_map"], "{:.4f}")})
    table = pd.DataFrame(lines).set_index("data set")
    caption = ("Fitting each method from empty caches (experiments/bench_fit.py: the plan cell's command in a "
               "scratch folder) beside the reported row of the same cell, whose fit may have found its UMAP "
               "layout, pretraining or network cached")
    provenance = f"Made by experiments/make_tables.py from results/benchmarks/{', '.join(sources)}."
    write_text(out / "fit_cold.md", f"### {caption}\n\n{to_markdown(table)}\n\n{provenance}\n")
    write_text(out / "fit_cold.tex", f"% {provenance}\n{to_latex(table, caption)}\n")


def _number(value, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def write_validation_table(frame, out: Path, path: str) -> None:
    """Every validation run and what it changes: the rows behind the configs' choices."""
    table = validation_table(frame)
    caption = ("Validation runs (docs/protocol.md validation split; never the test queries), latest row of each run "
               "and setting")
    note = (f"Made by experiments/make_tables.py from {path}; 'what it runs' is the config (under experiments/configs/) "
            "and each setting in which the run differs from that file as it is now (its --set overrides, and the "
            "values the file had then where it has changed since); a commit ending in -dirty ran uncommitted code.")
    write_text(out / "validation.md", f"### {caption}\n\n{to_markdown(table)}\n\n{note}\n")
    manifold = frame[frame["method"].str.removesuffix("-features").isin(["imh", "scae-manifold"])]
    if not manifold.empty:
        caption = "Validation runs of IMH and the SCAE-manifold (validation split), latest row of each run and setting"
        write_text(out / "validation_manifold.md", f"### {caption}\n\n{to_markdown(validation_table(manifold))}\n\n{note}\n")


def describe_variant(path: Path) -> str:
    """The first sentence of an ablation config's header comment."""
    if not path.is_file():
        return ""
    comment = " ".join(line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#"))
    return comment.split(": ", 1)[-1].split(". ")[0].rstrip(".")


if __name__ == "__main__":
    main()
