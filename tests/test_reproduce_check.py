"""`scae-hash reproduce --check` on reported cells of the shipped plan: the row in results/ is
what the code computes now. A baseline cell takes seconds; the smoke part's SCAE-hash cell
(2,000 training images, one fine-tuning epoch) about two minutes."""

import os

import pytest

from scae_hash.plan import load_plan
from scae_hash.reproduce import check_cells
from scae_hash.results import REPO_ROOT


@pytest.mark.slow
def test_a_reported_baseline_cell_reproduces_from_scratch(monkeypatch, real_data_dir, capsys):
    monkeypatch.chdir(REPO_ROOT)
    plan = load_plan("experiments/plan.yaml")
    # LSH is deterministic given its seed: the fresh row must match the reported one, not just
    # fall within the plan's tolerance (ReproduceError otherwise)
    check_cells(plan, ["lsh/mnist/16/seed0"], 1e-6, env={**os.environ, "SCAE_HASH_DATA": str(real_data_dir)})
    out = capsys.readouterr().out
    assert "lsh/mnist/16/seed0" in out and "+0.0000  ok" in out


@pytest.mark.slow
def test_a_reported_short_scae_cell_reproduces_from_scratch(monkeypatch, real_data_dir, capsys):
    monkeypatch.chdir(REPO_ROOT)
    plan = load_plan("experiments/plan.yaml")
    check_cells(plan, ["scae-smoke/mnist_smoke/64/seed0"], plan.tolerance,
                env={**os.environ, "SCAE_HASH_DATA": str(real_data_dir)})
    out = capsys.readouterr().out
    assert "scae-smoke/mnist_smoke/64/seed0" in out and "ok" in out
