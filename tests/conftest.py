"""Shared fixtures: no test may download, and real data comes from the shared folder."""

import os
from pathlib import Path

import pytest

from scae_hash.data import locate

REAL_DATA = Path(os.environ.get("SCAE_HASH_DATA") or Path(__file__).parents[1] / ".." / "shared" / "data")


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    def fail_download(name):
        pytest.fail(f"a test tried to download {name}")

    monkeypatch.setattr(locate, "_keras_load_data", fail_download)


@pytest.fixture
def real_data_dir() -> Path:
    if not (REAL_DATA / "mnist").is_dir():
        pytest.skip(f"real data not found at {REAL_DATA} (set SCAE_HASH_DATA to the shared data)")
    return REAL_DATA


@pytest.fixture(autouse=True)
def private_umap_cache(monkeypatch, tmp_path_factory):
    """UMAP layouts fitted by tests go to a temporary cache, never the user's (and a test's
    second fit really refits unless it shares the folder on purpose)."""
    monkeypatch.setenv("SCAE_HASH_UMAP_CACHE", str(tmp_path_factory.mktemp("umap-cache")))
