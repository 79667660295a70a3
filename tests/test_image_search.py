"""Index a folder of a user's images and query it: streaming, resuming, appending, bad files."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from scae_hash import indexer
from scae_hash.cli import main
from scae_hash.hashers import make_baseline
from scae_hash.image_search import load_index, search, search_images
from scae_hash.images import decode_image, load_image


def make_photos(folder: Path, count: int, start: int = 0) -> list[Path]:
    """Two kinds of 'photos' (dark and bright), of different sizes and formats, nested."""
    rng = np.random.default_rng(start)
    paths = []
    for i in range(start, start + count):
        sub = folder / ("dark" if i % 2 else "bright") / "sub"
        sub.mkdir(parents=True, exist_ok=True)
        level = 20 if i % 2 else 200
        pixels = np.clip(level + rng.integers(0, 40, (24 + i % 30, 30 - i % 15, 3)), 0, 255).astype(np.uint8)
        path = sub / (f"{i:03d}.png" if i % 3 else f"{i:03d}.jpg")
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def photo_folder(tmp_path):
    make_photos(tmp_path / "photos", 30)
    return tmp_path / "photos"


def index_args(folder, out, *extra):
    return ["index", str(folder), "--method", "pcah", "--bits", "8", "--size", "8", "8", "--out", str(out),
            "--quiet", *extra]


def stored(index_file):
    index = load_index(index_file)
    return index.paths, index.bits


def test_index_then_search_finds_images_of_the_same_kind(capsys, tmp_path, photo_folder):
    index_file = tmp_path / "index.h5"
    assert main(index_args(photo_folder, index_file)) == 0
    index = load_index(index_file)
    assert len(index.paths) == 30 and index.bits.shape == (30, 8)
    assert index.paths == sorted(str(p) for p in photo_folder.rglob("*.*"))
    query = next(photo_folder.glob("dark/sub/*.png"))
    capsys.readouterr()
    assert main(["search", str(index_file), str(query), "-k", "30", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"]
    assert hits[0] == {"path": str(query), "distance": 0.0}
    same = [hit["distance"] for hit in hits if "/dark/" in hit["path"]]
    other = [hit["distance"] for hit in hits if "/bright/" in hit["path"]]
    assert len(same) == len(other) == 15 and np.mean(same) + 1 <= np.mean(other)

    assert main(["search", str(index_file), str(query), "-k", "30", "--radius", "1", "--json", "--timings"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["results"] == [hit for hit in hits if hit["distance"] <= 1]
    assert "timings: start-up" in err and "search" in err


def test_search_equals_brute_force_with_the_tie_rule(tmp_path, photo_folder):
    """8-bit codes of 30 images: many ties, which must come in index (path) order."""
    index_file = tmp_path / "index.h5"
    main(index_args(photo_folder, index_file))
    index = load_index(index_file)
    queries = [Path(index.paths[i]) for i in (0, 7, 21)]
    codes = index.hasher.encode(np.stack([load_image(q, index.image_shape) for q in queries]))
    brute = (codes[:, None, :] != index.bits[None]).sum(axis=2)
    for row, hits in enumerate(search(index, queries, k=30)):
        order = np.lexsort((np.arange(30), brute[row]))
        assert hits == [(index.paths[i], float(brute[row, i])) for i in order]
    for row, hits in enumerate(search(index, queries, k=30, radius=2)):
        order = [i for i in np.lexsort((np.arange(30), brute[row])) if brute[row, i] <= 2]
        assert hits == [(index.paths[i], float(brute[row, i])) for i in order]
    pixels = [decode_image(q) for q in queries]
    assert search_images(index, pixels, k=5) == search(index, queries, k=5)


def test_search_errors_are_one_line(capsys, tmp_path, photo_folder):
    index_file = tmp_path / "index.h5"
    main(["index", str(photo_folder), "--method", "lsh", "--bits", "8", "--out", str(index_file), "--quiet"])
    capsys.readouterr()
    assert main(["search", str(index_file), str(tmp_path / "missing.png")]) == 1
    assert main(["search", str(index_file), str(next(photo_folder.rglob("*.png"))), "--rerank", "10"]) == 1
    assert main(["search", str(tmp_path / "none.h5"), "x.png"]) == 1
    assert main(["search", str(index_file), str(next(photo_folder.rglob("*.png"))), "--rerank-model", "m.keras"]) == 1
    (tmp_path / "not.png").write_bytes(b"text")
    assert main(["search", str(index_file), str(tmp_path / "not.png")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 5
    assert "query image not found" in lines[0] and "no continuous features" in lines[1]
    assert "not found" in lines[2] and "no re-rank model" in lines[3] and "cannot decode image" in lines[4]


def test_index_needs_a_hasher_unless_appending(capsys, tmp_path, photo_folder):
    assert main(["index", str(photo_folder), "--out", str(tmp_path / "i.h5")]) == 1
    assert main(["index", str(photo_folder), "--out", str(tmp_path / "i.h5"), "--append"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "--method or --model" in err[0] and "does not exist" in err[1]


def bad_folder(root: Path) -> dict:
    """Good images of every awkward kind beside corrupt, empty, non-image and oversized files."""
    root.mkdir()
    grey16 = np.full((10, 10), 65535 // 3, dtype=np.uint16)
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    rgba[..., 0], rgba[:5, :, 3] = 255, 255  # red on top, transparent below
    palette = Image.new("P", (10, 10))
    palette.putpalette([0, 0, 255] * 256)
    good = {
        "grey16.png": (Image.fromarray(grey16), np.full((10, 10, 3), 85)),
        "rgba.png": (Image.fromarray(rgba, "RGBA"), np.concatenate(
            [np.tile([255, 0, 0], (5, 10, 1)), np.full((5, 10, 3), 255)])),
        "palette.gif": (palette, np.tile([0, 0, 255], (10, 10, 1))),
        "grey.png": (Image.new("L", (10, 10), 60), np.full((10, 10, 3), 60)),
        "sp ace ünï.png": (Image.new("RGB", (10, 10), (1, 2, 3)), np.tile([1, 2, 3], (10, 10, 1))),
        "huge.jpg": (Image.new("RGB", (3000, 2000), (0, 128, 0)), np.tile([0, 128, 0], (10, 10, 1))),
    }
    for name, (image, _) in good.items():
        image.save(root / name)
    odd = os.path.join(os.fsencode(root), b"lat\xefn1.png")  # not UTF-8
    Image.new("RGB", (10, 10), (9, 9, 9)).save(open(odd, "wb"), format="PNG")
    good[os.fsdecode(b"lat\xefn1.png")] = (None, np.full((10, 10, 3), 9))
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("not an image")
    (root / "cut.png").write_bytes((root / "rgba.png").read_bytes()[:40])
    Image.new("L", (4000, 3000)).save(root / "bomb.png")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return {name: expected for name, (_, expected) in good.items()}


def test_bad_files_are_skipped_and_listed_and_good_pixels_are_right(capsys, tmp_path, monkeypatch):
    from PIL import Image as PILImage

    expected = bad_folder(tmp_path / "mixed")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 7_000_000)  # huge.jpg passes, bomb.png does not
    out = tmp_path / "mixed.h5"
    assert main(["index", str(tmp_path / "mixed"), "--method", "lsh", "--bits", "8", "--size", "10", "10",
                 "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning: skipped" in line]
    assert len(warnings) == 4 and "skipped 4 unreadable files" in captured.err
    listed = (tmp_path / "mixed.h5.skipped.txt").read_bytes().splitlines()
    assert sorted(Path(os.fsdecode(line.split(b"\t")[0])).name for line in listed) == [
        "bomb.png", "cut.png", "empty.jpg", "text.png"]
    index = load_index(out)
    assert sorted(Path(p).name for p in index.paths) == sorted(expected)
    for path in index.paths:
        pixels = load_image(path, (10, 10, 3)) * 255
        np.testing.assert_allclose(pixels, expected[Path(path).name], atol=2, err_msg=Path(path).name)
    np.testing.assert_array_equal(index.bits, index.hasher.encode(
        np.stack([np.asarray(expected[Path(p).name], np.float32) / 255 for p in index.paths])))
    assert main(["search", str(out), index.paths[0], "-k", "3"]) == 0  # odd names print

    assert main(["index", str(tmp_path / "mixed"), "--method", "lsh", "--bits", "8", "--out", str(tmp_path / "s.h5"),
                 "--quiet", "--strict"]) == 1
    assert "cannot decode image" in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "s.h5.partial").exists()


def test_interrupted_run_resumes_and_indexes_every_image_once(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    make_photos(photos, 50)
    main(index_args(photos, tmp_path / "whole.h5", "--batch-size", "8"))

    real_read, calls = indexer._read_batch, []

    def dies_on_the_fourth_batch(paths, *args, **kwargs):
        calls.append(len(paths))
        if len(calls) == 5:  # the fit sample, then three batches
            raise KeyboardInterrupt
        return real_read(paths, *args, **kwargs)

    monkeypatch.setattr(indexer, "_read_batch", dies_on_the_fourth_batch)
    out = tmp_path / "resumed.h5"
    assert main(index_args(photos, out, "--batch-size", "8")) == 130
    assert not out.exists() and len(list((tmp_path / "resumed.h5.partial").glob("part-*"))) == 3
    calls.clear()
    assert main(index_args(photos, out, "--batch-size", "8")) == 0
    assert calls == [8, 8, 8, 2]  # only the missing batches, no refit
    assert not (tmp_path / "resumed.h5.partial").exists()
    whole, resumed = stored(tmp_path / "whole.h5"), stored(out)
    assert resumed[0] == whole[0] and len(set(resumed[0])) == 50
    np.testing.assert_array_equal(resumed[1], whole[1])


def test_a_kill_9_in_the_middle_then_the_same_command(tmp_path):
    photos = tmp_path / "photos"
    make_photos(photos, 120)
    command = [sys.executable, "-m", "scae_hash.cli", *index_args(photos, tmp_path / "killed.h5", "--batch-size", "4")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tmp_path / "killed.h5.partial"
    deadline = time.monotonic() + 120
    while len(list(work.glob("part-*.npz"))) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if not work.is_dir():
        pytest.skip("the run finished before it could be killed")
    assert not (tmp_path / "killed.h5").exists()
    subprocess.run(command, check=True, capture_output=True)
    main(index_args(photos, tmp_path / "whole.h5", "--batch-size", "4"))
    killed, whole = stored(tmp_path / "killed.h5"), stored(tmp_path / "whole.h5")
    assert killed[0] == whole[0] and len(set(killed[0])) == 120
    np.testing.assert_array_equal(killed[1], whole[1])


def test_resuming_with_other_settings_is_refused(capsys, tmp_path, photo_folder, monkeypatch):
    monkeypatch.setattr(indexer, "_encode_parts", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
    out = tmp_path / "i.h5"
    assert main(index_args(photo_folder, out)) == 130
    assert main(["index", str(photo_folder), "--method", "lsh", "--out", str(out), "--quiet"]) == 1
    assert "interrupted run with other settings" in capsys.readouterr().err


def test_append_adds_only_new_images_with_the_same_hasher(capsys, tmp_path):
    photos = tmp_path / "photos"
    make_photos(photos, 20)
    out = tmp_path / "i.h5"
    main(index_args(photos, out))
    before = load_index(out)
    new = make_photos(photos, 12, start=20)
    (photos / "broken.png").write_bytes(b"")
    capsys.readouterr()
    assert main(["index", str(photos), "--append", "--out", str(out), "--quiet"]) == 0
    assert "added 12 images (32 in all)" in capsys.readouterr().out
    after = load_index(out)
    assert after.paths[:20] == before.paths and sorted(after.paths[20:]) == sorted(str(p) for p in new)
    np.testing.assert_array_equal(after.bits[:20], before.bits)
    for name, value in before.hasher.learned_state().items():
        np.testing.assert_array_equal(after.hasher.learned_state()[name], value)
    expected = before.hasher.encode(np.stack([load_image(p, before.image_shape) for p in after.paths[20:]]))
    np.testing.assert_array_equal(after.bits[20:], expected)
    assert main(["index", str(photos), "--append", "--out", str(out), "--quiet"]) == 0
    assert "added 0 images (32 in all)" in capsys.readouterr().out
    assert len(load_index(out).paths) == 32


def test_append_killed_after_replacing_the_index_adds_nothing_twice(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    make_photos(photos, 10)
    out = tmp_path / "i.h5"
    main(index_args(photos, out))
    make_photos(photos, 5, start=10)
    real_rmtree = indexer.shutil.rmtree

    def killed_before_cleaning_up(path, *args, **kwargs):
        if str(path).endswith(".partial") and not kwargs.get("ignore_errors"):
            raise KeyboardInterrupt
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(indexer.shutil, "rmtree", killed_before_cleaning_up)
    assert main(["index", str(photos), "--append", "--out", str(out), "--quiet"]) == 130
    assert len(load_index(out).paths) == 15 and (tmp_path / "i.h5.partial").is_dir()
    monkeypatch.undo()
    assert main(["index", str(photos), "--append", "--out", str(out), "--quiet"]) == 0
    paths = load_index(out).paths
    assert len(paths) == len(set(paths)) == 15 and not (tmp_path / "i.h5.partial").exists()


def test_fit_sample_bounds_the_images_a_baseline_is_fitted_on(tmp_path, monkeypatch, photo_folder):
    fitted = []
    real_make = indexer.make_baseline

    def recording_make(*args, **kwargs):
        hasher = real_make(*args, **kwargs)
        real_fit = hasher.fit
        hasher.fit = lambda x: (fitted.append(len(x)), real_fit(x))[1]
        return hasher

    monkeypatch.setattr(indexer, "make_baseline", recording_make)
    assert main(index_args(photo_folder, tmp_path / "i.h5", "--fit-sample", "12")) == 0
    assert fitted == [12] and len(load_index(tmp_path / "i.h5").paths) == 30
    with h5py.File(tmp_path / "i.h5") as f:
        assert f.attrs["pca_solver"] == "randomized" and f.attrs["fit_sample"] == 12


def tiny_model(path: Path, seed: int) -> Path:
    """An untrained tiny SCAE model (MNIST-shaped input): enough to test the plumbing."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_scae import tiny_config

    from scae_hash.hashers.scae import SCAEHasher
    from scae_hash.model.hashing_model import HashingModel

    import keras

    keras.utils.set_random_seed(seed)  # the untrained weights must not depend on the tests before
    config = tiny_config()
    hasher = SCAEHasher(16, seed, config=config, progress=False)
    hasher.model_ = HashingModel(16, seed=seed, **config.model_hyperparameters())
    hasher.save(path)
    return path


def test_dual_model_search_reranks_by_the_second_models_features(capsys, tmp_path, photo_folder):
    first, second = tiny_model(tmp_path / "first.keras", 0), tiny_model(tmp_path / "second.keras", 1)
    out = tmp_path / "i.h5"
    assert main(["index", str(photo_folder), "--model", str(first), "--rerank-model", str(second), "--out", str(out),
                 "--quiet"]) == 0
    index = load_index(out)
    query = Path(index.paths[3])
    same = search(index, [query], k=5, rerank=20)[0]
    dual = search(index, [query], k=5, rerank=20, rerank_model=second)[0]
    assert dual[0] == (str(query), pytest.approx(1.0, abs=1e-5)) and same[0][0] == str(query)

    other = index.rerank_model(second)
    _, shortlist = index.codes.search(index.hasher.encode(load_image(query, index.image_shape)[None]), 20)
    candidates = [index.paths[i] for i in shortlist[0]]
    features = other.features(np.stack([load_image(p, other.config.image_shape) for p in [str(query)] + candidates]))
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    cosine = unit[1:] @ unit[0]
    order = np.argsort(-cosine, kind="stable")[:5]
    assert [path for path, _ in dual] == [candidates[i] for i in order]
    np.testing.assert_allclose([score for _, score in dual], cosine[order], atol=1e-5)

    capsys.readouterr()
    assert main(["search", str(out), str(query), "--rerank-model", str(second), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["path"] == str(query)
    assert main(["search", str(out), str(query), "--rerank-model", str(first)]) == 1
    assert "is not the model whose features" in capsys.readouterr().err

    make_photos(photo_folder, 4, start=30)  # appending keeps both feature sets complete
    assert main(["index", str(photo_folder), "--append", "--out", str(out), "--quiet"]) == 0
    with h5py.File(out) as f:
        assert f["features"].shape[0] == f["rerank_features"].shape[0] == f["packed_bits"].shape[0] == 34


def test_ctrl_c_while_indexing_with_a_baseline_exits_at_once_without_keras(tmp_path):
    """SIGINT in the middle of a baseline run: exit 130 with one line, and the import log shows
    that neither Keras nor TensorFlow was imported to get there."""
    photos = tmp_path / "photos"
    make_photos(photos, 120)
    command = [sys.executable, "-X", "importtime", "-m", "scae_hash.cli",
               *index_args(photos, tmp_path / "i.h5", "--batch-size", "4")]
    log = tmp_path / "stderr.txt"  # a file, not a pipe: the import log would fill a pipe and stall the run
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    work = tmp_path / "i.h5.partial"
    deadline = time.monotonic() + 120
    while not list(work.glob("part-*.npz")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    if process.returncode == 0:
        pytest.skip("the run finished before it could be interrupted")
    err = log.read_text()
    imported = [line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if line.startswith("import time:")]
    said = [line for line in err.splitlines() if not line.startswith("import time:")]
    assert process.returncode == 130 and said == ["scae-hash: interrupted"]
    assert not [name for name in imported if name.split(".")[0] in ("keras", "tensorflow")]


def test_a_search_with_an_scae_model_prints_no_tensorflow_lines(tmp_path, photo_folder):
    model = tiny_model(tmp_path / "tiny.keras", 0)
    out = tmp_path / "i.h5"
    assert main(["index", str(photo_folder), "--model", str(model), "--out", str(out), "--quiet"]) == 0
    query = next(photo_folder.rglob("*.png"))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TF_CPP")}
    done = subprocess.run([sys.executable, "-m", "scae_hash.cli", "search", str(out), str(query), "-k", "3"],
                          capture_output=True, text=True, env=environment, check=True)
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == ["timings"]


def test_a_search_process_ends_without_teardown_and_loses_no_output(tmp_path, photo_folder):
    """`search` writes nothing, so its process skips the libraries' teardown: everything it
    printed still arrives through a pipe, with the exit status."""
    index_file = tmp_path / "index.h5"
    assert main(index_args(photo_folder, index_file)) == 0
    query = str(next(photo_folder.rglob("*.png")))
    command = [sys.executable, "-m", "scae_hash.cli", "search", str(index_file)]
    done = subprocess.run([*command, query, query, "-k", "30", "--json"], capture_output=True, text=True)
    assert done.returncode == 0 and [len(json.loads(line)["results"]) for line in done.stdout.splitlines()] == [30, 30]
    failed = subprocess.run([*command, str(tmp_path / "missing.png")], capture_output=True, text=True)
    assert failed.returncode == 1 and failed.stderr.startswith("scae-hash: error: query image not found")
