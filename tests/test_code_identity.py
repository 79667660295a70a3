"""A cell's code is what its command imports: edits there make its rows stale (and a run -dirty),
edits elsewhere do not."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from scae_hash.code_identity import CodeVersions, command_dependencies, semantic_digest
from scae_hash.plan import load_plan
from scae_hash.results import REPO_ROOT

SCAE_KINDS = ("scae", "scae_manifold", "scae_manifold_patches")


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The package and experiments as they are now, committed in a repository of their own to edit freely."""
    folder = tmp_path_factory.mktemp("clone")
    for name in ("scae_hash", "experiments"):
        shutil.copytree(REPO_ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "code")
    return folder


@pytest.fixture(scope="module")
def kinds(clone) -> dict[str, tuple[str, ...]]:
    """Each kind of the real plan and the code its first cell's command depends on, read in the clone."""
    plan = load_plan(REPO_ROOT / "experiments" / "plan.yaml")
    first = {cell.kind.name: cell for cell in reversed(plan.cells)}
    return {name: command_dependencies(cell.argv, clone) for name, cell in first.items()}


@contextmanager
def edited(path: Path, text: str = "\nEDITED_BY_A_TEST = 2\n"):
    """``path`` with a line of code added, restored afterwards."""
    original = path.read_text()
    try:
        path.write_text(original + text)
        yield
    finally:
        path.write_text(original)


@pytest.mark.parametrize("name", ["scae_hash/images.py", "scae_hash/config.py", "scae_hash/constants.py"])
def test_an_edit_the_scae_cells_import_makes_them_stale(clone, kinds, name):
    with edited(clone / name):
        versions = CodeVersions(clone)
        for kind in SCAE_KINDS:
            assert name in versions.changed("HEAD", kinds[kind]), kind
            assert versions.dirty(kinds[kind])  # a run now would be -dirty


@pytest.mark.parametrize("name", ["scae_hash/web/app.py", "scae_hash/plots.py"])
def test_an_edit_no_cell_imports_makes_none_stale(clone, kinds, name):
    with edited(clone / name):
        versions = CodeVersions(clone)
        for kind, dependencies in kinds.items():
            assert versions.changed("HEAD", dependencies) == [], kind
            assert not versions.dirty(dependencies)


def test_a_command_depends_on_its_own_handler_in_the_cli_not_on_the_others(clone, kinds):
    train = kinds["scae"]
    assert "scae_hash/cli.py::run_train_command" in train and "scae_hash/experiment.py" in train
    assert not any(item.endswith("run_serve_command") or item == "scae_hash/cli.py" for item in train)
    path = clone / "scae_hash" / "cli.py"
    original = path.read_text()
    try:  # a new option of another command
        path.write_text(original.replace('help="TCP port, 0', 'help="The TCP port, 0'))
        assert path.read_text() != original
        assert CodeVersions(clone).changed("HEAD", train) == []
        path.write_text(original.replace("validate_each_epoch=args.validate_each_epoch",
                                         "validate_each_epoch=not args.validate_each_epoch"))
        assert CodeVersions(clone).changed("HEAD", train) == ["scae_hash/cli.py::run_train_command"]
    finally:
        path.write_text(original)


def test_a_row_depends_on_the_method_it_ran_not_on_the_others(clone, kinds):
    itq = command_dependencies(["scae-hash", "baseline", "--method", "itq", "--dataset", "mnist"], clone)
    imh = command_dependencies(["scae-hash", "baseline", "--method", "imh", "--dataset", "mnist"], clone)
    assert "scae_hash/hashers/shallow.py" in itq and "scae_hash/hashers/manifold.py" not in itq
    assert "scae_hash/hashers/manifold.py" in imh and "scae_hash/manifold/embedding.py" in imh
    thesis, manifold = kinds["scae"], kinds["scae_manifold"]
    assert "scae_hash/hashers/scae.py" in thesis and "scae_hash/hashers/scae_manifold.py" not in thesis
    assert "scae_hash/manifold/network.py" not in thesis
    assert {"scae_hash/hashers/scae_manifold.py", "scae_hash/manifold/network.py"} <= set(manifold)
    assert "scae_hash/model/pretrain.py" in manifold  # the thesis' autoencoder, which it trains


def test_entry_points_read_from_command_lines(clone):
    assert command_dependencies(["pytest", "-q"], clone) is None
    assert command_dependencies(["scae-hash", "--help"], clone) is None
    module_form = command_dependencies(["python", "-m", "scae_hash", "baseline", "--method", "itq"], clone)
    assert module_form == command_dependencies(["scae-hash", "baseline"], clone)
    script = command_dependencies(["python", "experiments/hash_heads.py", "--config", "x"], clone)
    assert "experiments/hash_heads.py" in script and "scae_hash/experiment.py" in script


def test_a_function_digest_ignores_the_rest_of_its_file():
    source = "def f(x):\n    return x\n\n\ndef g():\n    return 1\n"
    assert semantic_digest(source, "f") == semantic_digest(source.replace("return 1", "return 2"), "f")
    assert semantic_digest(source, "f") != semantic_digest(source.replace("return x", "return -x"), "f")
    assert semantic_digest(source, "h") != semantic_digest(source, "f")  # a function the file lacks
