"""The docs/protocol.md codes file: round trip and clear errors on a wrong layout."""

import h5py
import numpy as np
import pytest

from scae_hash.codes_file import CodeSet, CodesFile, load_codes, save_codes
from scae_hash.errors import CodesFileError

ATTRS = {"method": "itq", "dataset": "mnist", "protocol": "mnist", "nbits": 12, "seed": 0,
         "split_seed": 0, "commit": "abc", "created": "2026-01-01T00:00:00+00:00", "command": "test"}


def make_codes(rng, n_query=5, n_database=40, n_bits=12, features=True) -> CodesFile:
    def part(n, offset):
        return CodeSet(
            bits=rng.integers(0, 2, (n, n_bits), dtype=np.uint8),
            labels=rng.integers(0, 3, n).astype(np.int64),
            index=np.arange(offset, offset + n, dtype=np.int64),
            features=rng.standard_normal((n, 4)).astype(np.float32) if features else None,
        )

    return CodesFile(part(n_query, 0), part(n_database, n_query), dict(ATTRS))


def test_round_trip(tmp_path):
    codes = make_codes(np.random.default_rng(0))
    save_codes(tmp_path / "c.h5", codes)
    loaded = load_codes(tmp_path / "c.h5")
    for name in ("query", "database"):
        for key in ("bits", "labels", "index", "features"):
            np.testing.assert_array_equal(getattr(getattr(loaded, name), key), getattr(getattr(codes, name), key))
    assert loaded.attrs == ATTRS
    assert loaded.n_bits == 12
    with h5py.File(tmp_path / "c.h5") as f:
        assert f["query/bits"].dtype == np.uint8 and f["query/labels"].dtype == np.int64


def test_features_are_optional(tmp_path):
    save_codes(tmp_path / "c.h5", make_codes(np.random.default_rng(0), features=False))
    assert load_codes(tmp_path / "c.h5").query.features is None


def test_missing_attributes_refused(tmp_path):
    codes = make_codes(np.random.default_rng(0))
    del codes.attrs["commit"]
    with pytest.raises(CodesFileError, match="missing: commit"):
        save_codes(tmp_path / "c.h5", codes)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f["query"].pop("bits"), "/query/bits missing"),
        (lambda f: f.pop("database"), "group /database missing"),
        (lambda f: (f["query"].pop("bits"), f["query"].create_dataset("bits", data=np.full((5, 12), 2, np.uint8))),
         "/query/bits must hold only the values 0 and 1"),
        (lambda f: (f["query"].pop("bits"), f["query"].create_dataset("bits", data=np.zeros((5, 12), np.int8))),
         "/query/bits must be uint8"),
        (lambda f: (f["query"].pop("bits"), f["query"].create_dataset("bits", data=np.zeros((5, 8), np.uint8))),
         "differ in length"),
        (lambda f: (f["database"].pop("labels"), f["database"].create_dataset("labels", data=np.zeros(3))),
         "/database/labels must be integers"),
        (lambda f: (f["query"].pop("bits"), f["query"].create_dataset("bits", data=np.zeros(5, np.uint8))),
         "/query/bits must be a 2-D"),
    ],
)
def test_wrong_layout_is_one_clear_error(tmp_path, mutate, message):
    path = tmp_path / "c.h5"
    save_codes(path, make_codes(np.random.default_rng(0)))
    with h5py.File(path, "a") as f:
        mutate(f)
    with pytest.raises(CodesFileError, match=message):
        load_codes(path)


def test_not_hdf5_or_missing(tmp_path):
    (tmp_path / "x.h5").write_text("not hdf5")
    with pytest.raises(CodesFileError, match="not a readable HDF5 file"):
        load_codes(tmp_path / "x.h5")
    with pytest.raises(CodesFileError, match="not found"):
        load_codes(tmp_path / "missing.h5")
