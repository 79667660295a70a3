"""`scae-hash reproduce` on tiny plans: parsing, done/stale/missing, dry run, kill -9 and resume,
--check, the tables of README and docs/. The cells are tests/fake_cell.py: real processes that append real rows."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from scae_hash.errors import ConfigError
from scae_hash.code_identity import CodeVersions, semantic_digest
from scae_hash.cell_state import cell_states
from scae_hash.plan import load_plan
from scae_hash.reproduce import ReproduceError, check_cells, insert_tables, print_plan, reproduce_command
from scae_hash.results import REPO_ROOT, append_rows, git_commit

FAKE_CELL = Path(__file__).with_name("fake_cell.py")
FAKE_KIND = {
    "command": "python {script} --results-dir {results_dir} --method {method} --dataset {dataset} --bits {bits} "
               "--seed {seed} --split-seed {split_seed} --map {map} --sleep {sleep}",
    "results": "fake.csv",
    "name": "fake/{dataset}/{bits}/seed{seed}",
    "row": {"method": "{method}", "variant": "", "dataset": "{dataset}", "protocol": "{dataset}"},
    "estimate_seconds": 2,
}


def write_plan(folder: Path, grid: dict, **extra) -> Path:
    spec = {"results_dir": "results", "run_dir": "runs", "tables_dir": "tables", "kinds": {"fake": FAKE_KIND},
            "parts": {"tiny": {"kind": "fake", "grid": [{"script": str(FAKE_CELL), "method": "fake", "seed": 0,
                                                         "map": 0.5, "sleep": 0.0, **grid}]}}, **extra}
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def fake_row(dataset: str, bits: int, **values) -> dict:
    return {"method": "fake", "variant": "", "dataset": dataset, "protocol": dataset, "bits": bits, "seed": 0,
            "split_seed": 0, "map": 0.5, "fit_seconds": 3.0, "commit": git_commit(), "config": "{}", **values}


def test_plan_expands_grids_into_named_cells(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text("dataset: fashion\nbits: [16]\n")
    plan = load_plan(write_plan(tmp_path, {"dataset": ["mnist", "cifar10"], "bits": [16, 64]},
                                kinds={"fake": FAKE_KIND, "listed": {**FAKE_KIND, "name": "listed/{variant}/{bits}",
                                       "row": {**FAKE_KIND["row"], "method": ["a", "b"], "variant": "{variant}"}}},
                                parts={"tiny": {"kind": "fake", "grid": [{"script": "x", "method": "fake", "seed": 0,
                                                "map": 0.5, "sleep": 0, "dataset": ["mnist", "cifar10"],
                                                "bits": [16, 64]}]},
                                       "other": {"kind": "listed", "grid": [{"config": "tiny.*", "bits": 32,
                                                 "seed": 1, "script": "x", "method": "m", "map": 0, "sleep": 0}]}}))
    assert [cell.name for cell in plan.cells] == ["fake/mnist/16/seed0", "fake/mnist/64/seed0", "fake/cifar10/16/seed0",
                                                  "fake/cifar10/64/seed0", "listed/tiny/32"]
    listed = plan.cells[-1]
    assert listed.dataset == "fashion" and listed.config["dataset"] == "fashion"  # read from the config
    assert [row["method"] for row in listed.expected_rows] == ["a", "b"]
    assert listed.expected_rows[0] == {"method": "a", "variant": "tiny", "dataset": "fashion", "protocol": "fashion",
                                       "bits": 32, "seed": 1, "split_seed": 0, "split": "test"}
    command = plan.cells[0].command("PY", results_dir=Path("R"), run_dir=Path("U"), figures_dir=Path("F"))
    assert command[:2] == ["PY", "x"] and command[command.index("--results-dir") + 1] == "R"
    assert [c.name for c in plan.select(["cifar10"])] == ["fake/cifar10/16/seed0", "fake/cifar10/64/seed0"]
    assert [c.name for c in plan.select(["other", "fake/mnist/64"])] == ["fake/mnist/64/seed0", "listed/tiny/32"]
    with pytest.raises(ConfigError, match="matches no cell"):
        plan.select(["nothing"])
    with pytest.raises(ConfigError, match="matches no cell"):
        plan.select(["fake/mnist/6"])  # a prefix is whole name segments
    with pytest.raises(ConfigError, match="no cell named"):
        plan.find(["fake/mnist/99/seed0"])


def test_only_a_part_selects_that_part_and_not_the_others_of_its_kind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = {"script": "x", "method": "fake", "seed": 0, "map": 0.5, "sleep": 0, "dataset": "mnist"}
    plan = load_plan(write_plan(tmp_path, {}, kinds={"fake": {**FAKE_KIND, "name": "f/{dataset}/{bits}"}},
                                parts={"fake": {"kind": "fake", "grid": [{**grid, "bits": 16}]},
                                       "ablations": {"kind": "fake", "grid": [{**grid, "bits": 32}]}}))
    assert [cell.name for cell in plan.select(["fake"])] == ["f/mnist/16"]
    assert [cell.name for cell in plan.select(["ablations"])] == ["f/mnist/32"]


@pytest.mark.parametrize("change, message", [
    ({"parts": {"a": {"kind": "nope"}}}, "needs 'kind'"),
    ({"colour": 1}, "unknown key 'colour'"),
    ({"kinds": {"fake": {"command": "x"}}}, "kind 'fake' needs"),
])
def test_bad_plans_fail_in_one_line(tmp_path, change, message):
    path = write_plan(tmp_path, {"dataset": "mnist", "bits": 16}, **change)
    with pytest.raises(ConfigError, match=message):
        load_plan(path)


def test_a_cell_listed_twice_is_an_error(tmp_path):
    path = write_plan(tmp_path, {"dataset": ["mnist", "mnist"], "bits": 16})
    with pytest.raises(ConfigError, match="listed twice"):
        load_plan(path)


def test_done_stale_missing_from_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text("dataset: mnist\n")
    config_kind = {**FAKE_KIND, "name": "cfg/{variant}/{bits}", "row": {**FAKE_KIND["row"], "variant": "{variant}"},
                   "config_in_row": True}
    plan = load_plan(write_plan(tmp_path, {"dataset": "mnist", "bits": [16, 32, 48]},
                                kinds={"fake": FAKE_KIND, "cfg": config_kind},
                                parts={"tiny": {"kind": "fake", "grid": [{"script": "x", "method": "fake", "seed": 0,
                                                "map": 0.5, "sleep": 0, "dataset": "mnist", "bits": [16, 32, 48]}]},
                                       "cfg": {"kind": "cfg", "grid": [{"config": "tiny.yaml", "bits": [16, 64],
                                               "seed": 0, "script": "x", "method": "fake", "map": 0, "sleep": 0}]}}))
    predating = json.loads(json.dumps(plan.cells[-1].config))
    del predating["augment"]["horizontal_flip"]  # an option added later, left at its default
    config = json.dumps(predating, sort_keys=True)
    other = json.dumps({**plan.cells[-1].config, "bits": [99]}, sort_keys=True)
    append_rows([fake_row("mnist", 16, fit_seconds=100.0), fake_row("mnist", 32, map=0.1), fake_row("mnist", 32),
                 fake_row("mnist", 16, variant="tiny", config=config),
                 fake_row("mnist", 64, variant="tiny", config=other),
                 fake_row("mnist", 48, split="validation")], tmp_path / "results" / "fake.csv")
    states = {state.cell.name: state for state in cell_states(plan.cells, plan.results_dir)}
    assert {name: state.status for name, state in states.items()} == {  # a validation row is no cell's row
        "fake/mnist/16/seed0": "done", "fake/mnist/32/seed0": "done", "fake/mnist/48/seed0": "missing",
        "cfg/tiny/16": "done", "cfg/tiny/64": "stale"}
    assert states["fake/mnist/32/seed0"].rows[0]["map"] == 0.5  # the latest row of a run counts
    assert states["cfg/tiny/64"].reason == "config differs: bits [99] -> [16, 32, 48, 64]"
    assert states["fake/mnist/16/seed0"].estimate_seconds == 100.0  # earlier rows of the same run
    assert states["fake/mnist/48/seed0"].estimate_seconds == 3.0  # else the median of the same method and data set
    out = io.StringIO()
    print_plan(plan, list(states.values()), stream=out)
    text = out.getvalue()
    assert "fake/mnist/48/seed0" in text and "missing" in text and "config differs" in text
    assert "Total: 3 done, 1 stale, 1 missing; to run: 2 cells" in text


def test_a_row_from_uncommitted_code_is_stale(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "cell.py"  # outside the repository: the cell's code is its inputs only
    script.write_text(FAKE_CELL.read_text())
    plan = load_plan(write_plan(tmp_path, {"dataset": "mnist", "bits": [16, 32], "script": str(script)},
                                kinds={"fake": {**FAKE_KIND, "inputs": ["no/such/path.py"]}}))
    clean = git_commit().removesuffix("-dirty")
    append_rows([fake_row("mnist", 16, commit=clean), fake_row("mnist", 32, commit=clean + "-dirty")],
                tmp_path / "results" / "fake.csv")
    states = {state.cell.name: state for state in cell_states(plan.cells, plan.results_dir)}
    assert states["fake/mnist/16/seed0"].status == "done"
    assert states["fake/mnist/32/seed0"].status == "stale"
    assert states["fake/mnist/32/seed0"].reason == f"made from uncommitted code ({clean[:7]}-dirty)"


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


def test_checkpoints_are_keyed_by_the_last_code_commit_not_by_result_commits(tmp_path, monkeypatch):
    from scae_hash import results

    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "scae_hash").mkdir()
    (tmp_path / "scae_hash" / "code.py").write_text("A = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "code")
    code = git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "rows.csv").write_text("map\n0.5\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "rows")
    monkeypatch.setattr(results, "REPO_ROOT", tmp_path)
    assert results.git_commit() == git(tmp_path, "rev-parse", "HEAD") != code
    assert results.code_commit() == code
    (tmp_path / "scae_hash" / "code.py").write_text("A = 2\n")
    assert results.code_commit() == code + "-dirty"


def test_code_changes_make_rows_stale_but_comments_and_docstrings_do_not(tmp_path):
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "dep.py"
    source.write_text('"""Old docstring."""\n\ndef f(x):\n    return x + 1\n')
    (tmp_path / "other.py").write_text("A = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "a")
    first = git(tmp_path, "rev-parse", "HEAD")
    source.write_text('"""New docstring."""\n\n\ndef f(x):  # a comment\n    """Adds one."""\n    return x + 1\n')
    (tmp_path / "other.py").write_text("A = 2\n")
    assert CodeVersions(tmp_path).changed(first, ("pkg",)) == []
    assert CodeVersions(tmp_path).changed(first, ("pkg", "other.py")) == ["other.py"]
    source.write_text('"""New docstring."""\n\ndef f(x):\n    return x + 2\n')
    (tmp_path / "pkg" / "new.py").write_text("B = 1\n")
    assert CodeVersions(tmp_path).changed(first, ("pkg",)) == ["pkg/dep.py", "pkg/new.py"]
    assert CodeVersions(tmp_path).changed("0" * 40, ("pkg",)) is None
    assert semantic_digest("x = 1  # one\n") == semantic_digest("x = 1\n") != semantic_digest("x = 2\n")


def fake_rows(results: Path) -> list[tuple]:
    if not (results / "fake.csv").is_file():
        return []
    frame = pd.read_csv(results / "fake.csv")
    return list(zip(frame["dataset"], frame["bits"]))


def test_kill_9_mid_plan_then_rerun_leaves_every_row_once(tmp_path):
    plan = write_plan(tmp_path, {"dataset": ["mnist", "fashion"], "bits": [16, 32, 48], "sleep": 0.5})
    command = [sys.executable, "-m", "scae_hash", "reproduce", "--plan", str(plan)]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(fake_rows(tmp_path / "results")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)  # the third cell has started
    first.send_signal(signal.SIGKILL)
    first.wait()
    after_kill = fake_rows(tmp_path / "results")
    time.sleep(2.5)  # a cell orphaned by the kill would have written its row by now
    assert fake_rows(tmp_path / "results") == after_kill  # it died with the runner
    assert 2 <= len(after_kill) < 6 and len(set(after_kill)) == len(after_kill)

    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    rows = fake_rows(tmp_path / "results")
    expected = {(dataset, bits) for dataset in ("mnist", "fashion") for bits in (16, 32, 48)}
    assert sorted(rows) == sorted(expected)  # every cell's row exactly once
    assert rows[: len(after_kill)] == after_kill  # the first run's rows kept, the rest added
    assert f"[1/{6 - len(after_kill)}]" in second.stderr

    dry = subprocess.run([*command, "--dry-run"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "Total: 6 done, 0 stale, 0 missing; to run: 0 cells" in dry.stdout


def test_check_passes_within_the_tolerance_and_fails_beyond(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    plan = load_plan(write_plan(tmp_path, {"dataset": "mnist", "bits": [16, 32], "map": 0.505}))
    append_rows([fake_row("mnist", 16), fake_row("mnist", 32, map=0.52)], tmp_path / "results" / "fake.csv")
    check_cells(plan, ["fake/mnist/16/seed0"], 0.01, env=dict(os.environ))
    assert "0.5000     0.5050    +0.0050  ok" in capsys.readouterr().out
    with pytest.raises(ReproduceError, match=r"1 of 1 checked rows outside ±0.01 mAP or failed: fake/mnist/32/seed0"):
        check_cells(plan, ["fake/mnist/32/seed0"], 0.01, env=dict(os.environ))
    assert "OUTSIDE" in capsys.readouterr().out
    assert fake_rows(tmp_path / "results") == [("mnist", 16), ("mnist", 32)]  # the reported rows untouched


def test_readme_tables_are_inserted_between_markers_idempotently(tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "map.md").write_text("| method | 64 |\n|---|---|\n| itq | 0.45 |\n")
    readme = tmp_path / "README.md"
    readme.write_text("# T\n\n<!-- results:map -->\nold typed numbers\n<!-- /results -->\n\n"
                      "<!-- results:absent -->\n<!-- /results -->\nend\n")
    assert insert_tables(readme, tables) == ["map", "absent"]
    once = readme.read_text()
    assert "| itq | 0.45 |\n<!-- /results -->" in once and "old typed" not in once
    assert "*No table yet:" in once and once.endswith("<!-- /results -->\nend\n")
    insert_tables(readme, tables)
    assert readme.read_text() == once


def test_reproduce_runs_the_missing_cells_then_outputs_then_fills_readme_and_docs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tables").mkdir()
    (tmp_path / "README.md").write_text("<!-- results:done -->\n<!-- /results -->\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "account.md").write_text("# A\n\n<!-- results:done -->\nstale\n<!-- /results -->\n")
    make_table = "python -c \"open('tables/done.md', 'w').write('rows: ' + open('results/fake.csv').read())\""
    plan = write_plan(tmp_path, {"dataset": "mnist", "bits": [16, 32]}, readme="README.md", outputs=[make_table],
                      summary=["map"])
    reproduce_command(plan)
    assert fake_rows(tmp_path / "results") == [("mnist", 16), ("mnist", 32)]
    assert "rows: method,variant,dataset" in (tmp_path / "README.md").read_text()
    assert (tmp_path / "docs" / "account.md").read_text() == "# A\n\n<!-- results:done -->\n" + \
        (tmp_path / "tables" / "done.md").read_text().strip() + "\n<!-- /results -->\n"
    reproduce_command(plan)  # nothing left to run
    assert fake_rows(tmp_path / "results") == [("mnist", 16), ("mnist", 32)]


def test_the_shipped_plans_list_every_reported_cell(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    plan = load_plan("experiments/plan.yaml")
    parts = {part: [cell.name for cell in plan.cells if cell.part == part] for part in ("baselines", "scae", "ablations")}
    assert len(parts["baselines"]) == 4 * 3 * 4 and "itq/mnist/64/seed0" in parts["baselines"]
    assert len(parts["scae"]) == 12 + 12 + 3 + 3 and "scae/mnist/64/seed2" in parts["scae"]
    configs = REPO_ROOT / "experiments/configs/ablations"
    ablations = [*configs.glob("mnist_*.yaml"), *configs.glob("fashion_*.yaml")]
    assert len(parts["ablations"]) == 3 * len(ablations) and "scae/fashion_no_pretrain/64/seed2" in parts["ablations"]
    quick = load_plan("experiments/plan_quick.yaml")
    assert [cell.name for cell in quick.cells] == ["itq/mnist/64/seed0", "scae/mnist_quick/64/seed0"]
    assert quick.results_dir == Path("results/quick") and quick.readme is None


def test_a_worktree_run_writes_committed_code_rows_here_while_this_checkout_is_edited(tmp_path):
    repo, worktree = tmp_path / "repo", tmp_path / "worktree"
    for name in ("scae_hash", "experiments"):
        shutil.copytree(REPO_ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "tests").mkdir()
    shutil.copy(FAKE_CELL, repo / "tests" / "fake_cell.py")
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "code")
    head = git(repo, "rev-parse", "HEAD")
    write_plan(repo, {"dataset": "mnist", "bits": [16, 32], "script": "tests/fake_cell.py"})
    results_module = repo / "scae_hash" / "results.py"  # imported by every cell: an edit here would make rows -dirty
    results_module.write_text(results_module.read_text() + "\nEDITED_DURING_THE_RUN = 1\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-m", "scae_hash", "reproduce", "--plan", "plan.yaml",
                          "--worktree", str(worktree), "--commit-rows"],
                         cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = pd.read_csv(repo / "results" / "fake.csv")
    assert list(rows["bits"]) == [16, 32] and list(rows["commit"]) == [head, head]  # committed code, not -dirty
    assert not (worktree / "results").exists()  # the rows came here
    assert rows["command"].str.contains("--results-dir ../repo/results ", regex=False).all()  # no home folder named
    assert git(repo, "log", "--format=%s", "-3").splitlines() == [
        f"Rows of fake/mnist/32/seed0 (code at {head[:7]})", f"Rows of fake/mnist/16/seed0 (code at {head[:7]})", "code"]
    assert git(repo, "status", "--porcelain", "--", "scae_hash") == "M scae_hash/results.py"  # the edit stays here

    (worktree / "stray.txt").write_text("x")
    git(worktree, "add", "stray.txt")
    refused = subprocess.run([sys.executable, "-m", "scae_hash", "reproduce", "--plan", "plan.yaml",
                              "--worktree", str(worktree)], cwd=repo, env=env, capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1] == (
        f"scae-hash: error: --worktree {worktree} has uncommitted changes; commit or discard them there first")
