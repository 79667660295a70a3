"""A battery of altered and damaged index files: each is refused in one line naming the file,
by the library, `scae-hash search` and `scae-hash serve`, never a traceback later on."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from scae_hash.cli import main
from scae_hash.errors import DataError
from scae_hash.image_search import load_index, search


@pytest.fixture(scope="module")
def good_index(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("index-file")
    rng = np.random.default_rng(0)
    (root / "images").mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / "images" / f"{i:02d}.png")
    out = root / "lsh.h5"
    assert main(["index", str(root / "images"), "--method", "lsh", "--bits", "16", "--size", "8", "8",
                 "--out", str(out), "--quiet"]) == 0
    return out


def set_attr(name, value):
    def alter(f):
        f.attrs[name] = value
    return alter


def del_attr(name):
    def alter(f):
        del f.attrs[name]
    return alter


def replace(name, make):
    def alter(f):
        data = make(f[name][()])
        del f[name]
        f.create_dataset(name, data=data)
    return alter


def delete(name):
    def alter(f):
        del f[name]
    return alter


def add(name, data):
    def alter(f):
        f.create_dataset(name, data=data)
    return alter


ALTERATIONS = {
    "method of another baseline": (set_attr("method", "itq"), "hasher_state"),
    "unknown method": (set_attr("method", "magic"), "method"),
    "method not a string": (set_attr("method", 5), "method"),
    "method missing": (del_attr("method"), "method"),
    "n_bits zero": (set_attr("n_bits", 0), "n_bits"),
    "n_bits of another code size": (set_attr("n_bits", 32), "packed_bits"),
    "n_bits of the same code size": (set_attr("n_bits", 12), "12"),
    "n_bits a string": (set_attr("n_bits", "16"), "n_bits"),
    "n_bits a float": (set_attr("n_bits", 16.0), "n_bits"),
    "seed negative": (set_attr("seed", -1), "seed"),
    "seed a string": (set_attr("seed", "zero"), "seed"),
    "image_shape two sides": (set_attr("image_shape", [8, 8]), "image_shape"),
    "image_shape zero side": (set_attr("image_shape", [0, 8, 3]), "image_shape"),
    "image_shape huge": (set_attr("image_shape", [100_000, 100_000, 3]), "image_shape"),
    "image_shape two channels": (set_attr("image_shape", [8, 8, 2]), "image_shape"),
    "image_shape of another size": (set_attr("image_shape", [9, 8, 3]), "hasher_state"),
    "image_shape strings": (set_attr("image_shape", ["8", "8", "3"]), "image_shape"),
    "format from the future": (set_attr("format_version", 99), "format_version"),
    "model_path a number": (set_attr("model_path", 5), "model_path"),
    "rerank sha without its model": (set_attr("rerank_model_sha256", "0" * 64), "rerank_model"),
    "rerank sha not hex": (lambda f: f.attrs.update(rerank_model_path="/m.keras", rerank_model_sha256="zz"),
                           "rerank_model"),
    "folders relative": (set_attr("folders", "photos"), "folders"),
    "folders a number": (set_attr("folders", 3), "folders"),
    "codes as floats": (replace("packed_bits", lambda codes: codes.astype(np.float32)), "packed_bits"),
    "codes one byte short": (replace("packed_bits", lambda codes: codes[:, :1]), "packed_bits"),
    "codes flat": (replace("packed_bits", lambda codes: codes.ravel()), "packed_bits"),
    "codes missing": (delete("packed_bits"), "packed_bits"),
    "a path too few": (replace("paths", lambda raw: raw[:int(np.flatnonzero(raw == 0)[-1])]), "paths"),
    "paths as floats": (replace("paths", lambda raw: raw.astype(np.float64)), "paths"),
    "paths missing": (delete("paths"), "paths"),
    "hasher state missing": (delete("hasher_state"), "hasher_state"),
    "a learned array missing": (delete("hasher_state/projection_"), "hasher_state"),
    "a learned array reshaped": (replace("hasher_state/projection_", lambda a: a[:, :8]), "hasher_state"),
    "a learned array not finite": (replace("hasher_state/projection_", lambda a: a * np.nan), "finite"),
    "a learned array as text": (replace("hasher_state/projection_", lambda a: np.array([b"x"])), "numeric"),
    "a state name that is not learned": (add("hasher_state/encode", np.zeros(3)), "encode"),
    "features of too few rows": (add("features", np.zeros((5, 4), np.float32)), "features"),
    "features as integers": (add("features", np.zeros((12, 4), np.int32)), "features"),
    "rerank features without their model": (add("rerank_features", np.zeros((12, 4), np.float32)),
                                            "rerank_features"),
}


@pytest.mark.parametrize("name", list(ALTERATIONS))
def test_an_altered_index_file_is_refused_in_one_line_naming_it(name, good_index, tmp_path, capsys):
    alter, said = ALTERATIONS[name]
    altered = tmp_path / "altered.h5"
    shutil.copy(good_index, altered)
    with h5py.File(altered, "r+") as f:
        alter(f)
    with pytest.raises(DataError) as refused:
        index = load_index(altered)
        search(index, [index.paths[0]], k=3)  # what failed later before the checks
    message = str(refused.value)
    assert message.startswith(str(altered)) and said in message and "\n" not in message
    query = sorted((good_index.parent / "images").iterdir())[0]
    capsys.readouterr()
    assert main(["search", str(altered), str(query)]) == 1
    assert main(["serve", str(altered), "--port", "0"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"scae-hash: error: {altered}") for line in lines)


def test_the_good_file_loads_and_searches(good_index):
    index = load_index(good_index)
    assert len(index.paths) == 12 and index.folders == [str(good_index.parent / "images")]
    assert search(index, [index.paths[3]], k=1)[0][0] == (index.paths[3], 0.0)
