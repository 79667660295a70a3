"""The `scae-hash` command line, as a user meets it: results, codes files, and bad input."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from scae_hash.cli import main
from scae_hash.codes_file import load_codes


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_image_folder(root, n_per_class=110, size=8, n_classes=2):
    rng = np.random.default_rng(0)
    for label in range(n_classes):
        folder = root / "train" / f"class{label}"
        folder.mkdir(parents=True)
        for i in range(n_per_class):
            pixels = np.clip(label * 120 + rng.integers(0, 100, (size, size)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
    return root


def test_baseline_on_real_mnist_writes_rows_codes_and_scores_the_same(capsys, tmp_path, real_data_dir):
    codes = tmp_path / "codes.h5"
    code, out, _ = run_cli(capsys, "baseline", "--method", "pcah", "--dataset", "mnist", "--bits", "16",
                           "--data-dir", str(real_data_dir), "--results-dir", str(tmp_path / "results"),
                           "--codes-out", str(codes), "--json", "--quiet")
    assert code == 0
    row = json.loads(out.strip().splitlines()[-1])
    for key in ("method", "dataset", "bits", "seed", "map", "map_at_1000", "map_tie_aware", "precision_at_1000", "p_r2"):
        assert key in row
    assert row["method"] == "pcah" and row["bits"] == 16
    # PCAH is deterministic: the reported row of pcah/mnist/16/seed0 (results/baselines.csv), to the last digit
    assert row["map"] == pytest.approx(0.2748411744039938, abs=1e-12)
    assert row["map_at_1000"] == pytest.approx(0.6048726814993678, abs=1e-12)
    saved = pd.read_csv(tmp_path / "results" / "baselines.csv")
    assert saved["map"].iloc[0] == pytest.approx(row["map"])
    assert {"commit", "command", "created", "seed", "split_file"} <= set(saved.columns)
    loaded = load_codes(codes)
    assert loaded.query.bits.shape == (1000, 16) and loaded.database.bits.shape == (69000, 16)
    assert len(set(loaded.query.index) | set(loaded.database.index)) == 70000

    code, out, _ = run_cli(capsys, "evaluate", str(codes), "--json", "--quiet")
    assert code == 0
    assert json.loads(out)["map"] == pytest.approx(row["map"], abs=1e-12)


def test_own_image_folder_and_pca_bits_above_dimension(capsys, tmp_path):
    folder = write_image_folder(tmp_path / "pictures")  # 8x8 grey: 64 dimensions
    code, out, _ = run_cli(capsys, "baseline", "--method", "itq", "--dataset", str(folder), "--bits", "16",
                           "--results-dir", str(tmp_path / "results"), "--json", "--quiet")
    assert code == 0 and json.loads(out)["map"] > 0.9
    code, _, err = run_cli(capsys, "baseline", "--method", "pcah", "--dataset", str(folder), "--bits", "128",
                           "--no-save", "--quiet")
    assert code == 1
    assert err.strip().splitlines() == ["scae-hash: error: pcah: 128 bits exceed the feature dimension 64 "
                                        "(or the 20 training items); PCA-based methods need bits <= 20"]


@pytest.mark.parametrize(
    "argv, exit_code, message",
    [
        (["baseline", "--method", "foo", "--dataset", "mnist"], 2, "invalid choice: 'foo'"),
        (["baseline", "--method", "itq", "--dataset", "imagenet"], 1, "unknown data set 'imagenet'"),
        (["baseline", "--method", "itq", "--dataset", "mnist", "--bits", "4"], 2, "bits must be in 8..256, got 4"),
        (["baseline", "--method", "itq", "--dataset", "mnist", "--bits", "300"], 2, "bits must be in 8..256"),
        (["baseline", "--method", "itq", "--dataset", "mnist", "--data-dir", "/no/such/folder"], 1,
         "data folder /no/such/folder does not exist"),
        (["evaluate", "/no/such/codes.h5"], 1, "codes file not found"),
    ],
)
def test_bad_input_is_one_line_and_nonzero_exit(capsys, argv, exit_code, message):
    try:
        code = main(argv + ["--quiet"] if argv[0] == "baseline" else argv)
    except SystemExit as stop:
        code = stop.code
    _, err = capsys.readouterr()
    assert code == exit_code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_corrupt_and_truncated_data_files(capsys, tmp_path, real_data_dir):
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (mnist / name).write_bytes((real_data_dir / "mnist" / name).read_bytes())
    (mnist / "train-images-idx3-ubyte.gz").write_bytes((real_data_dir / "mnist" / "train-images-idx3-ubyte.gz").read_bytes()[:5000])
    cifar = tmp_path / "cifar10"
    cifar.mkdir()
    (cifar / "cifar10-jpg.zip").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    for dataset, message in (("mnist", "train-images-idx3-ubyte.gz: cannot read IDX file"), ("cifar10", "cannot read zip")):
        code, _, err = run_cli(capsys, "baseline", "--method", "lsh", "--dataset", dataset, "--data-dir", str(tmp_path),
                               "--no-save", "--quiet")
        assert code == 1
        assert len(err.strip().splitlines()) == 1 and message in err
