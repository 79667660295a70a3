"""The validation road: the same runner on the validation split, rows in a file of their own."""

import json

import pandas as pd

from scae_hash.protocol import protocol_split
from scae_hash.tables import main_rows, read_results
from test_cli import run_cli, write_image_folder


def test_baseline_on_the_validation_split_never_touches_the_test_queries(capsys, tmp_path):
    folder = write_image_folder(tmp_path / "pictures", n_per_class=230)
    results = tmp_path / "results"
    code, out, _ = run_cli(capsys, "baseline", "--method", "itq", "--dataset", str(folder), "--bits", "8",
                           "--split", "validation", "--results-dir", str(results), "--json", "--quiet")
    assert code == 0
    row = json.loads(out)
    assert (row["split"], row["n_query"], row["n_database"]) == ("validation", 200, 60)
    assert not (results / "baselines.csv").exists() and not (results / "curves").exists()
    saved = pd.read_csv(results / "validation.csv")
    assert list(saved["split"]) == ["validation"]

    validation_queries = json.loads((results / "splits" / "pictures-seed0-validation.json").read_text())["query_index"]
    labels = [0] * 230 + [1] * 230
    assert not set(validation_queries) & set(protocol_split(labels).query.tolist())

    code, _, _ = run_cli(capsys, "baseline", "--method", "itq", "--dataset", str(folder), "--bits", "8",
                         "--results-dir", str(results), "--quiet")
    assert code == 0
    frame = read_results([results / "baselines.csv", results / "validation.csv"])
    assert list(main_rows(frame)["split"]) == ["test"], "validation rows must never reach a thesis table"
