"""Thesis tables (Markdown and LaTeX) from the saved result rows: no retraining.

    python experiments/make_tables.py            # all metrics, all data sets in results/
"""

import argparse
from pathlib import Path

from scae_hash.atomic import write_text
from scae_hash.results import ablation_table, read_results, summary_table, to_latex, to_markdown

METRICS = {"map": "mAP", "map_at_1000": "mAP@1000", "map_tie_aware": "tie-aware mAP",
           "precision_at_1000": "precision@1000", "p_r2": "precision within Hamming radius 2"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", default=["results/baselines.csv", "results/scae.csv"])
    parser.add_argument("--out", default="results/tables")
    args = parser.parse_args()
    frame = read_results(args.results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commits = ", ".join(sorted(frame["commit"].astype(str).str[:12].unique()))
    provenance = f"Made by experiments/make_tables.py from {', '.join(args.results)} (commits {commits})."
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
    write_ablation_tables(frame, out, provenance)
    print(f"tables written to {out}/")


def write_ablation_tables(frame, out: Path, provenance: str) -> None:
    """One table per data set and protocol with SCAE config variants beyond its own config."""
    scae = frame[frame["method"] == "scae"]
    for (dataset, protocol), rows in scae.groupby(["dataset", "protocol"]):
        if rows["variant"].nunique() < 2:
            continue
        table = ablation_table(frame, "map", dataset, protocol)
        caption = f"SCAE-hash ablations, mAP on {protocol} (each variant is a config in experiments/configs/)"
        name = "ablations_" + "".join(c if c.isalnum() else "_" for c in protocol).strip("_")
        write_text(out / f"{name}.md", f"### {caption}\n\n{to_markdown(table)}\n\n{provenance}\n")
        write_text(out / f"{name}.tex", f"% {provenance}\n{to_latex(table, caption)}\n")
        print(f"### {caption}\n\n{to_markdown(table)}\n")

if __name__ == "__main__":
    main()
