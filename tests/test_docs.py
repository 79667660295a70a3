"""The documentation stays true to the tree: README short and linking every page, links that
resolve, a layout that lists every module, and inserted tables equal to results/tables/."""

import re
import shutil
from pathlib import Path

import pytest

from scae_hash.reproduce import TABLE_MARKER, documents_with_tables, insert_tables
from scae_hash.results import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")
TEST_COMMAND = "SCAE_HASH_DATA=../shared/data python -m pytest -q"


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(page.read_text(encoding="utf-8")) if "://" not in target]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_readme_is_short_and_links_every_docs_page():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200
    linked = {(README.parent / target.split("#")[0]).resolve() for target in links(README)}
    assert [page.name for page in DOCS if page.resolve() not in linked] == []


def test_ci_runs_the_readme_test_command():
    assert f"   {TEST_COMMAND}\n" in README.read_text(encoding="utf-8")
    assert (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == TEST_COMMAND


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.name)
def test_every_relative_link_and_anchor_resolves(page):
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: link to {target}: no such file"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: link to {target}: no such heading"


def test_layout_lists_every_module_once():
    listed = re.findall(r"^\| `(scae_hash/[\w/]+\.py)` \| \S", (REPO_ROOT / "docs" / "layout.md").read_text(), re.M)
    modules = sorted(path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "scae_hash").rglob("*.py"))
    assert sorted(set(listed)) == sorted(listed), "docs/layout.md lists a module twice"
    assert sorted(listed) == modules, (f"docs/layout.md misses {sorted(set(modules) - set(listed))}, "
                                       f"lists gone {sorted(set(listed) - set(modules))}")


def test_the_inserted_tables_are_the_tables_in_results(tmp_path):
    """`scae-hash reproduce` fills README and docs/*.md; here on copies: nothing may change."""
    (tmp_path / "docs").mkdir()
    pages = documents_with_tables(README)
    assert pages == [README, *DOCS]
    inserted = []
    for page in pages:
        copy = tmp_path / page.relative_to(REPO_ROOT)
        shutil.copy(page, copy)
        inserted += insert_tables(copy, REPO_ROOT / "results" / "tables")
        assert copy.read_text(encoding="utf-8") == page.read_text(encoding="utf-8"), (
            f"{page.name}: an inserted table differs from results/tables/ (run `scae-hash reproduce`)")
    assert {"map", "targets", "ablations_mnist_64", "ablations_fashion_64"} <= set(inserted)
    # a table not made yet (its cells still to run) shows a placeholder; only ablation tables may wait
    missing = [name for name in inserted if not (REPO_ROOT / "results" / "tables" / f"{name}.md").is_file()]
    assert all(name.startswith("ablations_") for name in missing), missing
    assert TABLE_MARKER.search(README.read_text(encoding="utf-8"))
