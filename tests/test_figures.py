"""Figures and tables are made from saved rows alone."""

import json

import numpy as np
import pandas as pd
import pytest

from scae_hash import plots
from scae_hash.tables import (ablation_groups, ablation_table, load_curves, mean_std, read_results, summary_table,
                               to_latex, to_markdown)


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


def test_figures_plot_the_mean_over_seeds_and_are_written_as_pdf_and_png(tmp_path):
    frame = read_results([saved_rows(tmp_path)])
    by_bits = plots.metric_vs_bits(frame, "map", "mAP")
    drawn = {bars.get_label(): bars for bars in by_bits.axes[0].containers}
    assert sorted(drawn) == ["ITQ", "SCAE-hash"]
    for label, mean in (("ITQ", 0.45), ("SCAE-hash", 0.65)):  # seeds 0 and 1 of each method, the repeat once
        np.testing.assert_allclose(drawn[label].lines[0].get_xydata(), [[16, mean], [32, mean]])
        (low, high), = [segments.get_segments()[0][:, 1] for segments in drawn[label].lines[2]]
        assert high - low == pytest.approx(2 * np.std([0.4, 0.5], ddof=1))  # ± the std over seeds
    curves = plots.curves_at_bits(load_curves(frame), 16, None, "precision_curve", "N", "P@N")
    assert [(line.get_label(), line.get_xydata().tolist()) for line in curves.axes[0].lines] == [
        ("ITQ", [[1, 0.9], [2, 0.8]]), ("SCAE-hash", [[1, 0.9], [2, 0.8]])]
    written = plots.save_figure(by_bits, tmp_path / "figs", "map") + plots.save_figure(curves, tmp_path / "figs", "pn")
    assert [p.name for p in written] == ["map.pdf", "map.png", "pn.pdf", "pn.png"]
    assert all(p.stat().st_size > 1000 for p in written)


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
    table = ablation_table(frame, "mnist", "mnist", 32)
    assert list(table.index) == ["mnist", "mnist_no_pretrain"]
    assert table.loc["mnist_no_pretrain", "mAP"] == "0.1000 ± 0.0000" and table.loc["mnist", "Δ mAP (paired seeds)"] == "–"
    assert to_markdown(table).startswith("| variant |")


def test_ablation_table_pairs_each_variant_with_the_full_model_of_the_same_seed():
    rows = [{"method": "scae", "variant": variant, "dataset": "mnist", "protocol": "mnist", "bits": 64, "seed": seed,
             "map": base + 0.1 * seed, "precision_at_100": 0.5}
            for variant, base, seeds in (("mnist", 0.6, (0, 1, 2)), ("mnist_a", 0.5, (0, 1)), ("mnist_b", 0.65, (2,)))
            for seed in seeds]
    table = ablation_table(pd.DataFrame(rows), "mnist", "mnist", 64)
    assert list(table.index) == ["mnist", "mnist_b", "mnist_a"]  # the full model first, then best to worst
    # seed-to-seed spread (0.1 per seed) is large, the paired change is exact
    assert table.loc["mnist_a", "mAP"] == "0.5500 ± 0.0707"
    assert table.loc["mnist_a", "Δ mAP (paired seeds)"] == "-0.1000 ± 0.0000"
    assert table.loc["mnist_b", "Δ mAP (paired seeds)"] == "+0.0500" and table.loc["mnist_b", "seeds"] == "1"
    latex = to_latex(table, "ablations")
    assert r"mnist\_a" in latex and r"$\Delta$ mAP" in latex and r"0.5500 $\pm$ 0.0707" in latex


def test_ablation_table_says_when_a_change_pairs_stale_rows_with_current_ones():
    """A rerun under way leaves a variant's old rows beside the full model's new ones: the change
    between them spans two versions of the code, and the table says so."""
    rows = [{"method": "scae", "variant": variant, "dataset": "mnist", "protocol": "mnist", "bits": 64, "seed": seed,
             "map": value, "stale": stale}
            for variant, value, stale in (("mnist", 0.7, False), ("mnist_a", 0.6, True), ("mnist_b", 0.65, False))
            for seed in (0, 1)]
    table = ablation_table(pd.DataFrame(rows), "mnist", "mnist", 64)
    assert table.loc["mnist_a", "seeds"] == "2 (2 stale)" and table.loc["mnist_b", "seeds"] == "2"
    assert table.loc["mnist_a", "Δ mAP (paired seeds)"] == "-0.1000 ± 0.0000 (stale pairs)"
    assert table.loc["mnist_b", "Δ mAP (paired seeds)"] == "-0.0500 ± 0.0000"



def test_a_change_that_rounds_to_zero_has_no_minus_sign():
    assert mean_std(pd.Series([-1e-6, -2e-6]), "+.4f") == "+0.0000 ± 0.0000"
    assert mean_std(pd.Series([-0.0002]), "+.4f") == "-0.0002"

# --- the figure set drawn from run artifacts ---------------------------------------------------

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from scae_hash import artifacts, figures  # noqa: E402
from scae_hash.data import Dataset  # noqa: E402
from scae_hash.evaluation import run_hasher  # noqa: E402
from scae_hash.hashers.shallow import ITQ  # noqa: E402
from scae_hash.protocol import protocol_split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def toy_dataset(n_per_class: int = 60, classes: int = 3) -> Dataset:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(classes), n_per_class)
    centres = rng.integers(0, 256, (classes, 8, 8, 1))
    images = np.clip(centres[labels] + rng.normal(0, 40, (len(labels), 8, 8, 1)), 0, 255).astype(np.uint8)
    return Dataset("toy", images, labels.astype(np.int64), tuple(f"class {c}" for c in range(classes)), "test")


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    dataset = toy_dataset()
    split = protocol_split(dataset.labels, seed=0, per_class=5)
    hasher = ITQ(16, seed=0)
    outcome = run_hasher(hasher, dataset, split, method="itq", protocol="toy", split_seed=0, progress=False)
    folder = tmp_path_factory.mktemp("results")
    path = artifacts.save_run_artifacts(folder, "itq-toy-16b-seed0", hasher, outcome, dataset, split)
    return dataset, split, outcome, path


def test_copied_histories_say_which_run_made_them(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("history_pretrain_block1.csv", "history_finetune_16.csv", "history_finetune_32.csv"):
        (run_dir / name).write_text("epoch,loss\n0,1.0\n")
    row = {"method": "scae", "variant": "toy", "dataset": "toy", "bits": 16, "seed": 0, "commit": "abc",
           "command": "scae-hash train --config toy.yaml", "map": 0.5}
    copied = artifacts.copy_histories(run_dir, tmp_path / "histories", n_bits=16,
                                      provenance=artifacts.run_provenance(row))
    assert sorted(path.name for path in copied) == ["history_finetune_16.csv", "history_pretrain_block1.csv",
                                                     "provenance.json"]
    provenance = json.loads((tmp_path / "histories" / "provenance.json").read_text())
    assert provenance["commit"] == "abc" and provenance["command"] == row["command"] and "map" not in provenance


def test_run_artifacts_hold_the_sample_rates_and_the_ranked_results(toy_run):
    dataset, split, outcome, path = toy_run
    saved = artifacts.load_artifacts(path)
    database = outcome.codes.database
    assert saved["meta"]["method"] == "itq" and saved["meta"]["bits"] == 16
    assert np.allclose(saved["bit_rates"], database.bits.mean(axis=0))
    position = np.searchsorted(database.index, saved["sample_index"])
    assert np.array_equal(saved["sample_codes"], database.bits[position])
    assert np.array_equal(saved["sample_labels"], dataset.labels[saved["sample_index"]])
    assert saved["feature_kind"] == "pixels (first principal components)"
    chosen = artifacts.spread_positions(len(split.query), artifacts.N_QUERIES)
    assert len(chosen) == artifacts.N_QUERIES and np.array_equal(saved["query_index"], split.query[chosen])
    assert len(np.unique(saved["query_labels"])) == 3  # spread over the class-ordered toy pool
    # the protocol's ranking: Hamming distance, ties by database index
    distances = (outcome.codes.query.bits[:, None, :] != database.bits[None]).sum(-1)[chosen]
    expected = database.index[np.argsort(distances, axis=1, kind="stable")[:, :artifacts.TOP_K]]
    assert np.array_equal(saved["top_index"], expected)
    assert np.array_equal(saved["top_images"], dataset.images[expected])
    assert "originals" not in saved  # a baseline has no decoder
    assert path.stat().st_size < 5_000_000


def test_block_reconstructions_use_the_given_weights_and_give_the_blocks_theirs_back():
    from scae_hash.model.blocks import ConvAEBlocks
    from scae_hash.model.reconstruct import block_reconstructions

    blocks = ConvAEBlocks((8, 8, 1), [2, 4])
    layers = [*blocks.encoders, *blocks.decoders]
    own = [layer.get_weights() for layer in layers]
    zeroed = [[np.zeros_like(w) for w in weights] for weights in own]
    images = np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)
    out = block_reconstructions(blocks, zeroed, images)
    assert out.shape == (2, 3, 8, 8, 1)
    assert np.allclose(out, 0.5)  # zero weights: the sigmoid of block 1's decoder gives 0.5
    assert all(np.array_equal(a, b) for weights, mine in zip(own, layers) for a, b in zip(weights, mine.get_weights()))


def synthetic_scae_run(itq_run: dict, n_blocks: int = 2) -> dict:
    run = dict(itq_run, meta={**itq_run["meta"], "method": "scae"}, feature_kind=np.array("learned features"))
    rng = np.random.default_rng(1)
    run["sample_features"] = rng.normal(size=(len(run["sample_labels"]), 12)).astype(np.float16)
    originals = run["query_images"][:4]
    run["originals"] = originals
    run["block_reconstructions"] = np.stack([originals] * n_blocks)
    run["decoder_reconstruction"] = originals
    run["path"] = str(Path(itq_run["path"]).with_name("scae-toy-16b-seed0.npz"))
    return run


def write_history(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in (1, 2):
        (folder / f"history_pretrain_block{k}.csv").write_text(f"epoch,loss,val_loss\n0,{0.1 / k},NA\n")
    (folder / "history_finetune_16.csv").write_text(
        "epoch,loss,reconstruction_loss,contrastive_loss,val_loss\n0,3.0,0.2,2.5,NA\n1,2.0,0.1,1.8,NA\n")


def test_every_artifact_figure_draws_from_small_saved_results(toy_run, tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "MAP_ITERATIONS", 250)  # sklearn's least: the maps' look is not under test
    *_, path = toy_run
    itq = artifacts.load_artifacts(path)
    scae = synthetic_scae_run(itq)
    runs = {"scae": scae, "itq": itq}
    write_history(tmp_path / "histories")
    out = tmp_path / "figs"
    written = plots.save_figure(figures.retrieval_examples(runs), out, "retrieval")
    started = time.perf_counter()
    written += plots.save_figure(figures.code_maps(runs, tmp_path / "maps"), out, "tsne")
    first = time.perf_counter() - started
    assert len(list((tmp_path / "maps").glob("*.npz"))) == 4  # codes and features of each run
    started = time.perf_counter()
    written += plots.save_figure(figures.code_maps(runs, tmp_path / "maps"), out, "tsne_again")
    assert time.perf_counter() - started < first  # the second draw reads the cached maps
    written += plots.save_figure(figures.reconstructions(scae), out, "reconstructions")
    histories = {"toy": figures.read_histories(tmp_path / "histories")}
    assert list(histories["toy"]) == ["finetune_16", "pretrain_block1", "pretrain_block2"]
    assert "val_loss" not in histories["toy"]["finetune_16"]  # empty columns dropped
    written += plots.save_figure(figures.training_curves(histories), out, "curves")
    written += plots.save_figure(figures.bit_rates({"toy": runs}), out, "rates")
    assert all(p.stat().st_size > 1000 for p in written) and len(written) == 12


def test_ablation_bars_take_ablation_configs_beside_the_own_config_only():
    rows = []
    for variant, base in (("mnist", 0.6), ("mnist_no_pretrain", 0.5), ("mnist-1a2b3c4d", 0.1)):
        for seed in (0, 1, 2):
            rows.append({"method": "scae", "variant": variant, "dataset": "mnist", "protocol": "mnist", "bits": 64,
                         "seed": seed, "map": base + 0.01 * seed})
    rows.append({"method": "scae", "variant": "mnist_no_pretrain", "dataset": "mnist", "protocol": "mnist",
                 "bits": 32, "seed": 0, "map": 0.4})  # no own-config row at 32 bits: no panel
    frame = pd.DataFrame(rows)
    groups = ablation_groups(frame, {"mnist_no_pretrain"})
    assert [(g.dataset, g.protocol, g.bits, sorted(g.rows["variant"].unique())) for g in groups] == [
        ("mnist", "mnist", 64, ["mnist", "mnist_no_pretrain"])]
    fig = figures.ablations(groups)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["no pretrain  (n=3)", "full model  (n=3)"]
    plots.plt.close(fig)


def test_ablation_bars_name_the_method_and_find_its_full_model_by_its_prefix():
    """The SCAE-manifold's variants are run names with the method's prefix; its panel sits
    beside SCAE-hash's and says which method it ablates."""
    rows = [{"method": method, "variant": variant, "dataset": "mnist", "protocol": "mnist", "bits": 64,
             "seed": seed, "map": base + 0.01 * seed}
            for method, variant, base in (("scae", "mnist", 0.6), ("scae", "mnist_no_pretrain", 0.5),
                                          ("scae-manifold", "scae-manifold-mnist", 0.9),
                                          ("scae-manifold", "scae-manifold-mnist_no_layout", 0.8))
            for seed in (0, 1, 2)]
    frame = pd.DataFrame(rows)
    groups = (ablation_groups(frame, {"mnist_no_pretrain"})
              + ablation_groups(frame, {"scae-manifold-mnist_no_layout"}, "scae-manifold", "scae-manifold-"))
    assert [(g.method, g.full) for g in groups] == [("scae", "mnist"), ("scae-manifold", "scae-manifold-mnist")]
    fig = figures.ablations(groups)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["no layout  (n=3)", "full model  (n=3)"]
    assert fig.axes[0].get_title().startswith("SCAE-hash ablations")
    assert fig.axes[1].get_title().startswith("SCAE-manifold ablations")
    plots.plt.close(fig)


@pytest.mark.slow
def test_make_figures_redraws_everything_from_the_committed_results(tmp_path):
    """Every figure from saved results alone (no training). Its time is printed, not bounded:
    on these shared machines a wall-clock bound fails for the neighbours' load, not the code."""
    if not (REPO / "results" / "artifacts").is_dir():
        pytest.skip("no run artifacts committed")
    maps = tmp_path / "maps"  # a copy of the committed t-SNE cache: the test writes nothing into the repository
    shutil.copytree(REPO / "results" / "maps", maps) if (REPO / "results" / "maps").is_dir() else maps.mkdir()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "experiments/make_figures.py", "--out", str(tmp_path), "--maps", str(maps)],
                          cwd=REPO, capture_output=True, text=True, timeout=1200)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    names = {p.name for p in tmp_path.glob("*.png")}
    assert {"map_vs_bits.png", "bit_rates_64b.png", "training_curves_64b.png"} <= names
    assert any(name.startswith("retrieval_") for name in names) and any(name.startswith("tsne_") for name in names)
    print(f"make_figures took {seconds:.0f} s")


def test_targets_table_reports_the_distance_and_where_precision_falls_below_the_reference(tmp_path):
    from scae_hash.targets import targets_table

    frame = read_results([saved_rows(tmp_path)])
    for path in frame.loc[frame["method"] == "scae", "curves_file"]:  # SCAE-hash below ITQ at N = 2 only
        curve = json.loads(open(path).read())
        open(path, "w").write(json.dumps({**curve, "precision_curve": [0.95, 0.7, 0.9]}))
    targets = {"bits": 32, "map": {"mnist": 0.85, "cifar10": 0.25}, "above_reference_at_bits": [16, 32],
               "precision_at_n": [1, 1000], "reference": "itq"}
    table = targets_table(frame, targets)
    assert list(table.index) == ["mnist"]  # no cifar10 rows: no line
    row = table.loc["mnist"]
    assert row["reached (seeds)"] == "0.6500 ± 0.0707 (2)"
    assert row["distance"] == "-0.2000"
    assert row["bits above itq"] == "all (16, 32)"
    assert row["P@N below itq's"] == "N = 2 (1 of 2)"


def test_validation_table_says_what_each_run_changes_from_its_command(tmp_path):
    from scae_hash.tables import validation_table

    base = {"dataset": "mnist", "protocol": "mnist", "bits": 64, "seed": 0, "split_seed": 0, "split": "validation"}
    command = "scae-hash train --config experiments/configs/mnist.yaml --bits 64 --split validation"
    rows = [
        {**base, "method": "scae", "variant": "mnist", "map": 0.7, "command": command, "commit": "a" * 40},
        {**base, "method": "scae-features", "variant": "mnist", "map": 0.6, "command": command, "commit": "a" * 40},
        {**base, "method": "scae", "variant": "mnist-1234", "map": 0.5, "commit": "b" * 40 + "-dirty",
         "command": command + " --set loss.temperature=0.2 --set 'augment.max_shift=3.0'"},
        {**base, "method": "scae", "variant": "mnist-head-itq", "map": 0.71, "commit": "c" * 40,
         "command": "hash_heads.py --config experiments/configs/candidates/mnist_x.yaml --split validation"},
        {**base, "method": "itq", "variant": "", "map": 0.45, "command": "scae-hash baseline", "commit": "d" * 40},
        {**base, "method": "scae", "variant": "mnist", "map": 0.1, "split": "test", "command": command, "commit": "e"},
    ]
    path = tmp_path / "validation.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    table = validation_table(read_results([path])).set_index("run")
    assert list(table.index) == ["itq", "mnist", "mnist-1234", "mnist-head-itq"]  # no test row
    assert table.loc["mnist", "what it runs"] == "mnist"
    assert table.loc["mnist", "features mAP"] == "0.6000"
    assert table.loc["mnist-1234", "what it runs"] == "mnist loss.temperature=0.2 augment.max_shift=3.0"
    assert table.loc["mnist-1234", "commit"] == "bbbbbbb-dirty"
    assert table.loc["mnist-head-itq", "what it runs"] == "candidates/mnist_x head itq"
    assert table.loc["itq", "what it runs"] == "ITQ on pixels"


def test_validation_table_keeps_a_run_repeated_after_its_config_changed_and_says_how_it_differed(tmp_path):
    """A run name is its config file and overrides; when the file changes and the run is
    repeated, both rows stay, the older one listing the settings the file had then."""
    from scae_hash.experiment import load_method_config
    from scae_hash.tables import validation_table

    path = "experiments/configs/manifold/mnist.yaml"
    now = load_method_config(path).to_dict()
    then = {**now, "model": {**now["model"], "pool_grid": now["model"]["pool_grid"] + 1}}
    base = {"dataset": "mnist", "protocol": "mnist", "bits": 64, "seed": 0, "split_seed": 0, "split": "validation",
            "method": "scae-manifold", "variant": "scae-manifold-mnist-1bb4ba51",
            "command": f"scae-hash train --config {path} --bits 64 --split validation --set train.epochs=3"}
    rows = [
        {**base, "map": 0.80, "commit": "a" * 40, "config": json.dumps({**then, "train": {**then["train"], "epochs": 3}})},
        {**base, "map": 0.85, "commit": "b" * 40, "config": json.dumps({**now, "train": {**now["train"], "epochs": 3}})},
        {**base, "map": 0.86, "commit": "c" * 40, "config": json.dumps({**now, "train": {**now["train"], "epochs": 3}})},
    ]
    csv = tmp_path / "validation.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    table = validation_table(read_results([csv], latest=False)).set_index("what it runs")
    pool_grid = then["model"]["pool_grid"]
    assert table["mAP"].to_dict() == {  # the rerun of an unchanged setting replaces its row
        f"manifold/mnist model.pool_grid={pool_grid} train.epochs=3": "0.8000",
        "manifold/mnist train.epochs=3": "0.8600",
    }


def test_a_table_counts_the_stale_rows_it_shows_and_not_their_reruns(monkeypatch):
    """A table built while a rerun is under way says how many of its numbers are stale: the very
    rows the plan calls stale, not a later row of the same run."""
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    from scae_hash import cell_state
    from scae_hash.results import REPO_ROOT

    spec = importlib.util.spec_from_file_location("make_tables", REPO_ROOT / "experiments" / "make_tables.py")
    make_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_tables)
    run = {"method": "scae", "variant": "mnist", "dataset": "mnist", "protocol": "mnist", "bits": 64, "seed": 0,
           "split_seed": 0, "split": "test"}
    old, new = {**run, "commit": "aaa", "created": "t0"}, {**run, "commit": "bbb", "created": "t1"}
    other = {**run, "seed": 1, "commit": "bbb", "created": "t1"}
    state = SimpleNamespace(status="stale", rows=(old,))
    monkeypatch.setattr(cell_state, "load_plan", lambda path: SimpleNamespace(cells=[], results_dir=path))
    monkeypatch.setattr(cell_state, "cell_states", lambda cells, results_dir: [state])
    frame = cell_state.mark_stale(pd.DataFrame([old, new, other]), Path("plan.yaml"))
    assert "1 of its 2 rows are stale" in make_tables.made_from(frame.iloc[[0, 2]], ["rows.csv"])
    assert "stale" not in make_tables.made_from(frame.iloc[[1, 2]], ["rows.csv"])
