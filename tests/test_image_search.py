"""Index a folder of a user's images and query it through the CLI."""

import json

import numpy as np
import pytest
from PIL import Image

from scae_hash.cli import main
from scae_hash.image_search import load_index


@pytest.fixture
def photo_folder(tmp_path):
    """Two kinds of 'photos' (dark and bright), of different sizes and formats, nested."""
    rng = np.random.default_rng(0)
    for i in range(30):
        folder = tmp_path / "photos" / ("dark" if i % 2 else "bright") / "sub"
        folder.mkdir(parents=True, exist_ok=True)
        level = 20 if i % 2 else 200
        pixels = np.clip(level + rng.integers(0, 40, (24 + i, 30 - i // 2, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / (f"{i:02d}.png" if i % 3 else f"{i:02d}.jpg"))
    return tmp_path / "photos"


def test_index_then_search_finds_images_of_the_same_kind(capsys, tmp_path, photo_folder):
    index_file = tmp_path / "index.h5"
    assert main(["index", str(photo_folder), "--method", "pcah", "--bits", "8", "--size", "8", "8",
                 "--out", str(index_file), "--quiet"]) == 0
    index = load_index(index_file)
    assert len(index.paths) == 30 and index.bits.shape == (30, 8)
    query = next(photo_folder.glob("dark/sub/*.png"))
    capsys.readouterr()
    assert main(["search", str(index_file), str(query), "-k", "30", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"]
    assert hits[0] == {"path": str(query), "distance": 0.0}
    same = [hit["distance"] for hit in hits if "/dark/" in hit["path"]]
    other = [hit["distance"] for hit in hits if "/bright/" in hit["path"]]
    assert len(same) == len(other) == 15 and np.mean(same) + 1 <= np.mean(other)

    assert main(["search", str(index_file), str(query), "-k", "30", "--radius", "1", "--json"]) == 0
    within = json.loads(capsys.readouterr().out)["results"]
    assert within == [hit for hit in hits if hit["distance"] <= 1]


def test_search_errors_are_one_line(capsys, tmp_path, photo_folder):
    index_file = tmp_path / "index.h5"
    main(["index", str(photo_folder), "--method", "lsh", "--bits", "8", "--out", str(index_file), "--quiet"])
    capsys.readouterr()
    assert main(["search", str(index_file), str(tmp_path / "missing.png")]) == 1
    assert main(["search", str(index_file), str(next(photo_folder.rglob("*.png"))), "--rerank", "10"]) == 1
    assert main(["search", str(tmp_path / "none.h5"), "x.png"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert "cannot read image" in lines[0] and "no continuous features" in lines[1] and "not found" in lines[2]
