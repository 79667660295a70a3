"""Thesis figures (PDF + PNG) from the saved results and curves: no retraining.

    python experiments/make_figures.py
"""

import argparse

from scae_hash import plots
from scae_hash.results import main_rows, read_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", default=["results/baselines.csv", "results/scae.csv"])
    parser.add_argument("--out", default="thesis_figures")
    parser.add_argument("--curve-bits", type=int, default=64, help="code length of the curve figures")
    args = parser.parse_args()
    frame = main_rows(read_results(args.results))
    written = []
    written += plots.save_figure(plots.metric_vs_bits(frame, "map", "mAP"), args.out, "map_vs_bits")
    written += plots.save_figure(plots.metric_vs_bits(frame, "p_r2", "precision (Hamming radius ≤ 2)"),
                                 args.out, "p_r2_vs_bits")
    curves = plots.load_curves(frame)
    if curves:
        written += plots.save_figure(
            plots.curves_at_bits(curves, args.curve_bits, None, "precision_curve", "N (top retrieved)", "precision@N"),
            args.out, f"precision_at_n_{args.curve_bits}b")
        written += plots.save_figure(
            plots.curves_at_bits(curves, args.curve_bits, "radius_recall", "radius_precision", "recall", "precision"),
            args.out, f"hamming_pr_{args.curve_bits}b")
    print("\n".join(map(str, written)))


if __name__ == "__main__":
    main()
