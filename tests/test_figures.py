"""Figures and tables are made from saved rows alone."""

import json

import numpy as np
import pandas as pd

from scae_hash import plots
from scae_hash.results import ablation_table, read_results, summary_table, to_latex, to_markdown


def saved_rows(tmp_path):
    rows = []
    for method in ("itq", "scae"):
        for bits in (16, 32):
            for seed in (0, 1):
                curve = tmp_path / f"{method}-{bits}-{seed}.json"
                curve.write_text(json.dumps({"method": method, "dataset": "mnist", "bits": bits, "seed": seed,
                                             "precision_curve": [0.9, 0.8], "radius_precision": [0.0, 0.5],
                                             "radius_recall": [0.0, 0.1]}))
                rows.append({"method": method, "dataset": "mnist", "protocol": "mnist", "bits": bits, "seed": seed,
                             "split_seed": 0, "map": 0.4 + 0.1 * seed + (method == "scae") * 0.2, "p_r2": 0.3,
                             "curves_file": str(curve), "commit": "abc"})
    path = tmp_path / "rows.csv"
    pd.DataFrame(rows + rows[:1]).to_csv(path, index=False)  # a repeated run counts once
    return path


def test_tables_average_seeds_and_keep_each_run_once(tmp_path):
    frame = read_results([saved_rows(tmp_path)])
    assert len(frame) == 8
    table = summary_table(frame, "map", "mnist")
    assert table.loc["scae", 16] == "0.6500 ± 0.0707"
    assert "| scae | 0.6500 ± 0.0707 |" in to_markdown(table)
    assert r"0.6500 $\pm$ 0.0707" in to_latex(table, "mAP")


def test_figures_written_as_pdf_and_png(tmp_path):
    frame = read_results([saved_rows(tmp_path)])
    written = plots.save_figure(plots.metric_vs_bits(frame, "map", "mAP"), tmp_path / "figs", "map")
    curves = plots.load_curves(frame)
    written += plots.save_figure(plots.curves_at_bits(curves, 16, None, "precision_curve", "N", "P@N"),
                                 tmp_path / "figs", "pn")
    assert [p.name for p in written] == ["map.pdf", "map.png", "pn.pdf", "pn.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    assert np.isclose(frame["map"].max(), 0.7)


def test_ablation_variants_get_their_own_table_and_stay_out_of_the_main_one(tmp_path):
    rows = pd.read_csv(saved_rows(tmp_path))
    ablation = rows[rows["method"] == "scae"].assign(variant="mnist_no_pretrain", map=0.1)
    main = rows.assign(variant=np.where(rows["method"] == "scae", "mnist", ""))
    path = tmp_path / "with_ablations.csv"
    pd.concat([main, ablation]).to_csv(path, index=False)
    frame = read_results([path])
    assert summary_table(frame, "map", "mnist").loc["scae", 16] == "0.6500 ± 0.0707"
    smoke = rows.assign(protocol="mnist (train subset 2000)", map=0.0)
    pd.concat([main, ablation, smoke]).to_csv(path, index=False)
    assert summary_table(read_results([path]), "map", "mnist").loc["scae", 16] == "0.6500 ± 0.0707"
    table = ablation_table(frame, "map", "mnist", "mnist")
    assert list(table.index) == ["mnist", "mnist_no_pretrain"] and table.loc["mnist_no_pretrain", 32] == "0.1000 ± 0.0000"
    assert to_markdown(table).startswith("| variant |")
