"""`scae-hash train` as a user runs it: a tiny real run on each installed Keras backend.

Each backend runs in its own process, since Keras fixes its backend at import.
"""

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from test_scae import TINY

from scae_hash.codes_file import load_codes
from scae_hash.evaluation import score_codes
from scae_hash.metrics import evaluate_codes

TINY_CONFIG = {**TINY, "loss": {"neighbours": 3, "remine_every": 1}}
BACKENDS = [
    pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"{name} not installed"))
    for name in ("tensorflow", "jax")
]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_train_run_end_to_end(tmp_path, real_data_dir, backend):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_CONFIG))
    codes = tmp_path / "codes.h5"
    argv = [sys.executable, "-m", "scae_hash", "train", "--config", str(config), "--bits", "16",
            "--subset", "2000", "--data-dir", str(real_data_dir), "--codes-out", str(codes),
            "--results-dir", str(tmp_path / "results"), "--run-dir", str(tmp_path / "runs"), "--json", "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": backend})
    print(f"{backend}: tiny train run took {time.perf_counter() - started:.1f} s")
    assert done.returncode == 0, done.stderr[-2000:]

    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["method"], row["bits"]) for row in rows] == [("scae", 16), ("scae-features", 16)]
    loaded = load_codes(codes)
    rng = np.random.default_rng(0)
    chance = evaluate_codes(rng.integers(0, 2, loaded.query.bits.shape), rng.integers(0, 2, loaded.database.bits.shape),
                            loaded.query.labels, loaded.database.labels).map
    print(f"{backend}: mAP {rows[0]['map']:.4f}, features {rows[1]['map']:.4f}, random codes {chance:.4f}")
    # One epoch on 2,000 images lifts mAP clearly above random codes of the same split (whose
    # mAP varies by about 0.001 between draws); codes that ignore the image (constant, or
    # mixed up with another image's) score at chance and fail here.
    assert rows[0]["map"] > chance + 0.03 and rows[1]["map"] > chance + 0.03
    assert rows[0]["map"] == pytest.approx(score_codes(loaded, progress=False)["map"], abs=1e-12)
    assert Path(rows[0]["curves_file"]).name == "scae-tiny-16b-seed0-subset2000.json"  # never the full run's
    assert loaded.query.bits.shape == (1000, 16) and loaded.database.bits.shape == (69000, 16)
    assert any((tmp_path / "runs").rglob("model_16.keras"))
