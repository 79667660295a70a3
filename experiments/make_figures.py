"""Thesis figures (PDF + PNG) from the saved results, curves, run artifacts and histories: no retraining.

    python experiments/make_figures.py
"""

import argparse
import time
from pathlib import Path

import numpy as np

from scae_hash import figures, plots
from scae_hash.artifacts import load_artifacts
from scae_hash.cell_state import mark_stale
from scae_hash.constants import FIGURE_BITS
from scae_hash.results import REPO_ROOT
from scae_hash.tables import ABLATED, ablation_groups, ablation_variants, load_curves, main_rows, read_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", default=["results/baselines.csv", "results/scae.csv"])
    parser.add_argument("--comparison", default="results/comparison.csv",
                        help="the deep hashing vs deep metric rows (default: %(default)s)")
    parser.add_argument("--out", default="thesis_figures")
    parser.add_argument("--plan", default=str(REPO_ROOT / "experiments" / "plan.yaml"),
                        help="the plan whose stale cells the ablation figure marks (default: %(default)s)")
    parser.add_argument("--curve-bits", type=int, default=FIGURE_BITS, help="code length of the curve and artifact figures")
    parser.add_argument("--maps", default="results/maps", help="cache of the t-SNE maps (default: %(default)s)")
    args = parser.parse_args()
    started = time.perf_counter()
    everything = mark_stale(read_results(args.results), Path(args.plan))
    frame = main_rows(everything)
    written = []
    written += plots.save_figure(plots.metric_vs_bits(frame, "map", "mAP"), args.out, "map_vs_bits")
    written += plots.save_figure(plots.metric_vs_bits(frame, "p_r2", "precision (Hamming radius ≤ 2)"),
                                 args.out, "p_r2_vs_bits")
    curves = load_curves(frame)
    if curves:
        written += plots.save_figure(
            plots.curves_at_bits(curves, args.curve_bits, None, "precision_curve", "N (top retrieved)", "precision@N"),
            args.out, f"precision_at_n_{args.curve_bits}b")
        written += plots.save_figure(
            plots.curves_at_bits(curves, args.curve_bits, "radius_recall", "radius_precision", "recall", "precision",
                                 "Hamming radius 0, 1, ..., bits: precision against recall "
                                 "(a query with an empty Hamming ball counts as precision 0)"),
            args.out, f"hamming_pr_{args.curve_bits}b")
    written += artifact_figures(everything, args.out, args.curve_bits, Path(args.maps))
    groups = [group for method, (prefix, *_) in ABLATED.items()
              for group in ablation_groups(everything, ablation_variants(method, REPO_ROOT), method, prefix)
              if group.protocol == group.dataset]  # the full training set (the plan's ablations)
    if groups:
        written += plots.save_figure(figures.ablations(groups), args.out, "ablations")
    else:
        print("skipped ablations: no ablation rows beside their data set's own config")
    if Path(args.comparison).is_file():
        from scae_hash.comparison.report import write_figures as write_comparison_figures

        written += write_comparison_figures(read_results([args.comparison]), Path(args.out))
    print("\n".join(map(str, written)))
    print(f"{len(written)} files in {time.perf_counter() - started:.1f} s")


def artifact_figures(frame, out: str, bits: int, maps: Path) -> list[Path]:
    """The figures drawn from run artifacts: SCAE-hash beside ITQ at one code length, seed 0."""
    written, histories, rates = [], {}, {}
    datasets = sorted(frame["dataset"].unique(), key=lambda d: list(plots.DATASET_LABELS).index(d)
                      if d in plots.DATASET_LABELS else len(plots.DATASET_LABELS))
    for dataset in datasets:
        paths = {method: figures.artifact_file(frame, method, dataset, bits) for method in ("scae", "itq")}
        runs = {method: load_artifacts(path) for method, path in paths.items() if path is not None}
        missing = sorted(set(paths) - set(runs))
        if missing:
            print(f"{dataset}: no {bits}-bit seed-0 artifacts of {', '.join(missing)} (run it to draw them)")
        if not runs:
            continue
        rates[dataset] = runs
        same_queries = {method: run for method, run in runs.items()
                        if np.array_equal(run["query_index"], next(iter(runs.values()))["query_index"])}
        if len(same_queries) < len(runs):
            print(f"{dataset}: the runs' example queries differ (artifacts of older code); showing "
                  f"{', '.join(same_queries)} only")
        written += plots.save_figure(figures.retrieval_examples(same_queries), out, f"retrieval_{dataset}_{bits}b")
        written += plots.save_figure(figures.code_maps(runs, maps), out, f"tsne_{dataset}_{bits}b")
        if "scae" in runs and "originals" in runs["scae"]:
            written += plots.save_figure(figures.reconstructions(runs["scae"]), out, f"reconstructions_{dataset}")
        if paths["scae"] is not None and figures.history_folder(paths["scae"]).is_dir():
            histories[dataset] = figures.read_histories(figures.history_folder(paths["scae"]))
    if histories:
        title = f"SCAE-hash, {bits} bits, seed 0: every loss term per epoch (unweighted; the total is their weighted sum)"
        written += plots.save_figure(figures.training_curves(histories, title), out, f"training_curves_{bits}b")
    if rates:
        written += plots.save_figure(figures.bit_rates(rates), out, f"bit_rates_{bits}b")
    return written


if __name__ == "__main__":
    main()
