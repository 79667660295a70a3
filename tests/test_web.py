"""`scae-hash serve`: the JSON API through Flask's test client, and the page in headless Chromium."""

import io
import json
import os
import shutil
import threading
import time
import tracemalloc
from pathlib import Path

import h5py

import numpy as np
import pytest
from PIL import Image

from large_images import flat_png
from scae_hash.cli import main
from scae_hash.image_search import load_index, search
from scae_hash.web import app as web_app
from scae_hash.web import queries
from scae_hash.web.app import MAX_UPLOAD_BYTES, create_app, is_loopback

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
KINDS = {"red": (220, 50, 50), "blue": (50, 110, 220), "green": (60, 180, 80)}


@pytest.fixture(scope="module")
def index_file(tmp_path_factory) -> Path:
    """An ITQ index of 24 generated PNGs (three colours, with stripes and noise)."""
    root = tmp_path_factory.mktemp("web")
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:40, 0:40]
    for i in range(24):
        name = list(KINDS)[i % 3]
        folder = root / "photos" / name
        folder.mkdir(parents=True, exist_ok=True)
        stripes = 40 * np.sin((columns + 3 * i) / 5.0 + rows / (4 + i % 5))[..., None]
        pixels = np.array(KINDS[name]) + stripes + rng.integers(0, 30, (40, 40, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{name}_{i:02d}.png")
    index_file = root / "photos.h5"
    assert main(["index", str(root / "photos"), "--method", "itq", "--bits", "16", "--size", "16", "16",
                 "--out", str(index_file), "--quiet"]) == 0
    return index_file


@pytest.fixture(scope="module")
def client(index_file):
    return create_app(index_file).test_client()


@pytest.fixture(scope="module")
def hostile_png(tmp_path_factory) -> Path:
    """88 megapixels (just under Pillow's own limit) in a few hundred KB."""
    return flat_png(tmp_path_factory.mktemp("hostile") / "huge.png", 10_000, 8_800)


@pytest.fixture
def odd_index(tmp_path) -> Path:
    """An index over a non-UTF-8 file name, a file to delete, and one to replace by text."""
    folder = tmp_path / "odd"
    folder.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (120, 120, 120)]):
        Image.new("RGB", (8, 8), colour).save(folder / f"plain{i}.png")
    with open(os.path.join(os.fsencode(folder), b"lat\xefn1.png"), "wb") as stream:
        Image.new("RGB", (8, 8), (9, 99, 199)).save(stream, format="PNG")
    out = tmp_path / "odd.h5"
    assert main(["index", str(folder), "--method", "lsh", "--bits", "16", "--size", "8", "8", "--out", str(out),
                 "--quiet"]) == 0
    return out


def upload(path: Path, name: str | None = None, **fields) -> dict:
    return {"image": (io.BytesIO(path.read_bytes()), name or path.name),
            **{key: str(value) for key, value in fields.items()}}


def test_info_names_method_bits_and_size(client):
    info = client.get("/api/info").get_json()
    assert (info["method"], info["bits"], info["images"], info["rerank"]) == ("itq", 16, 24, False)


def test_search_returns_k_nearest_with_distances_and_image_links(client, index_file):
    paths = load_index(index_file).paths
    query = Path(paths[5])
    response = client.post("/api/search", data=upload(query, k=6))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["method"], body["bits"], body["mode"], body["score"]) == ("itq", 16, "hamming", "distance")
    assert body["query_ms"] > 0 and len(body["results"]) == 6
    assert 0 < body["timings_ms"]["search"] <= body["query_ms"]
    hits = body["results"]
    assert [hit["rank"] for hit in hits] == list(range(1, 7))
    assert hits[0]["distance"] == 0 and any(hit["id"] == 5 for hit in hits if hit["distance"] == 0)
    assert [hit["distance"] for hit in hits] == sorted(hit["distance"] for hit in hits)
    assert all(hit["url"] == f"/image/{hit['id']}" and hit["name"] == str(Path(paths[hit["id"]]).relative_to(
        query.parents[1])) for hit in hits)
    served = client.get(hits[0]["url"])
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.data == Path(paths[hits[0]["id"]]).read_bytes()


def test_radius_mode_keeps_only_hits_within_the_radius(client, index_file):
    query = Path(load_index(index_file).paths[0])
    ranked = client.post("/api/search", data=upload(query, k=24)).get_json()["results"]
    body = client.post("/api/search", data=upload(query, k=24, mode="radius", radius=1)).get_json()
    assert body["mode"] == "radius" and body["radius"] == 1
    assert sorted(hit["id"] for hit in body["results"]) == sorted(hit["id"] for hit in ranked if hit["distance"] <= 1)


def test_rerank_mode_scores_by_feature_similarity(index_file, monkeypatch):
    index = load_index(index_file)
    monkeypatch.setattr(index.hasher, "features", lambda images: images.reshape(len(images), -1))
    from scae_hash.image_search import read_images

    index.features = read_images([Path(path) for path in index.paths], index.image_shape)
    index.features = index.features.reshape(len(index.paths), -1)
    client = create_app(index).test_client()
    assert client.get("/api/info").get_json()["rerank"] is True
    body = client.post("/api/search", data=upload(Path(index.paths[3]), k=4, mode="rerank", rerank=12)).get_json()
    assert (body["mode"], body["score"], body["rerank"], len(body["results"])) == ("rerank", "similarity", 12, 4)
    assert body["results"][0]["id"] == 3 and body["results"][0]["similarity"] == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("fields, message", [
    ({"mode": "rerank"}, "no continuous features"),
    ({"mode": "sideways"}, "mode must be one of"),
    ({"k": "0"}, "k must be in 1..100"),
    ({"k": "ten"}, "k must be an integer"),
    ({"mode": "radius", "radius": "9"}, "radius must be in 0..3"),
])
def test_bad_fields_are_refused_with_a_json_message(client, index_file, fields, message):
    response = client.post("/api/search", data=upload(Path(load_index(index_file).paths[0]), **fields))
    assert response.status_code == 400 and message in response.get_json()["error"]


@pytest.mark.parametrize("data, message", [
    (b"just some text, not pixels", "'notes.txt' is not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "'notes.txt' is not"),
])
def test_a_non_image_upload_is_a_400_with_a_clear_error(client, data, message):
    response = client.post("/api/search", data={"image": (io.BytesIO(data), "notes.txt")})
    assert response.status_code == 400 and response.is_json
    assert response.get_json()["error"].startswith(message)


def test_missing_and_oversized_uploads_are_refused(client):
    response = client.post("/api/search", data={"k": "3"})
    assert response.status_code == 400 and "'image'" in response.get_json()["error"]
    big = {"image": (io.BytesIO(b"\0" * (MAX_UPLOAD_BYTES + 1)), "big.png")}
    response = client.post("/api/search", data=big)
    assert response.status_code == 413 and "larger than" in response.get_json()["error"]


@pytest.mark.parametrize("url", [
    "/image/24", "/image/-1", "/image/99999999999999999999", "/image/../../etc/passwd",
    "/image/%2e%2e/%2e%2e/etc/passwd", "/image/..%2F..%2Fetc%2Fpasswd", "/image//etc/passwd",
    "/image/red_00.png", "/image/photos/red/red_00.png", "/static/../../etc/passwd", "/etc/passwd",
])
def test_only_indexed_images_are_served(client, url):
    response = client.get(url)
    assert response.status_code == 404 and b"root:" not in response.data


def test_a_file_beside_the_indexed_ones_is_not_reachable(index_file, client):
    paths = load_index(index_file).paths
    extra = Path(paths[0]).with_name("added_later.png")
    shutil.copy(paths[0], extra)
    try:
        served = [client.get(f"/image/{i}") for i in range(len(paths) + 1)]
        assert [r.status_code for r in served] == [200] * len(paths) + [404]
        assert [r.data for r in served[:-1]] == [Path(p).read_bytes() for p in paths]  # each id: its indexed file
        assert client.get(f"/image/{extra.name}").status_code == 404
    finally:
        extra.unlink()


def test_a_loopback_server_refuses_other_host_names(index_file):
    client = create_app(index_file, trusted_hosts=["127.0.0.1", "localhost"]).test_client()
    assert client.get("/api/info", headers={"Host": "127.0.0.1:5000"}).status_code == 200
    assert client.get("/api/info", headers={"Host": "attacker.example:5000"}).status_code == 400


def test_page_shows_method_bits_and_the_controls(client):
    html = client.get("/").get_data(as_text=True)
    assert "<b>itq</b>" in html and "<b>16</b> bits" in html and "24 indexed images" in html
    assert 'type="file"' in html and 'value="radius"' in html and 'value="rerank" disabled' in html


def test_serve_errors_are_one_line(capsys, tmp_path, index_file):
    assert main(["serve", str(tmp_path / "missing.h5")]) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(index_file), "--port", "70000"])
    assert exit_info.value.code == 2
    busy = __import__("socket").socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        assert main(["serve", str(index_file), "--port", str(busy.getsockname()[1])]) == 1
    finally:
        busy.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3
    assert "index file not found" in lines[0] and "port must be in 0..65535" in lines[1]
    assert "cannot listen on 127.0.0.1" in lines[2]


def test_an_upload_over_the_pixel_budget_is_refused_from_its_header(client, hostile_png, tmp_path):
    for path in (hostile_png, flat_png(tmp_path / "deep.png", 5_000, 4_000, depth=16)):
        response = client.post("/api/search", data=upload(path))
        error = response.get_json()["error"]
        assert response.status_code == 400 and error.startswith(f"{path.name!r} is too large to search with")
        assert "megapixels" in error and "\n" not in error


def test_large_uploads_do_not_hold_up_small_queries_and_their_queue_is_bounded(index_file, monkeypatch, tmp_path):
    """Large uploads block in decoding until released: a small query is answered meanwhile, and
    once every decoder and waiting place is taken a further large upload is told to retry."""
    release, entered = threading.Event(), threading.Semaphore(0)
    real_decode = queries.decode_image

    def decode(source, name, **kwargs):
        if name.startswith("'large"):
            entered.release()
            release.wait(60)
        return real_decode(source, name, **kwargs)

    monkeypatch.setattr(queries, "decode_image", decode)
    app = create_app(index_file)
    large = flat_png(tmp_path / "large.png", 2_000, 1_500).read_bytes()  # 3 megapixels: the large lane
    places = queries.DECODE_WORKERS + queries.MAX_WAITING
    answers = []

    def post_large(i):
        answers.append(app.test_client().post("/api/search", data={"image": (io.BytesIO(large), f"large{i}.png")}))

    threads = [threading.Thread(target=post_large, args=(i,)) for i in range(places)]
    slots = app.extensions["scae_hash.decoder"].slots
    try:
        for thread in threads:
            thread.start()
        assert entered.acquire(timeout=30)
        deadline = time.monotonic() + 30
        while slots._value and time.monotonic() < deadline:
            time.sleep(0.01)  # the large uploads take every place
        client = app.test_client()
        query = Path(load_index(index_file).paths[2])
        normal = client.post("/api/search", data=upload(query, k=3))
        assert normal.status_code == 200 and normal.get_json()["results"][0]["distance"] == 0
        busy = post_large(99) or answers.pop()
        assert busy.status_code == 503 and "try again" in busy.get_json()["error"]
        assert not answers  # the large ones are still decoding or waiting
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
    assert [answer.status_code for answer in answers] == [200] * places


def test_start_up_does_nothing_per_image(index_file, tmp_path):
    """200,000 indexed paths (that need not exist): the server holds their bytes, not a string,
    a resolved path or a display name per image."""
    big = tmp_path / "big.h5"
    shutil.copy(index_file, big)
    n = 200_000
    with h5py.File(big, "r+") as f:
        codes = np.resize(f["packed_bits"][()], (n, 2))
        names = b"\0".join(b"/photos/holiday %06d/IMG_%06d.jpg" % (i // 100, i) for i in range(n))
        for name, data in (("packed_bits", codes), ("paths", np.frombuffer(names, np.uint8))):
            del f[name]
            f.create_dataset(name, data=data)
        f.attrs["folders"] = "/photos"
    tracemalloc.start()
    try:
        client = create_app(big).test_client()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * (codes.nbytes + len(names))
    assert client.get("/api/info").get_json()["images"] == n
    body = client.post("/api/search", data=upload(Path(load_index(index_file).paths[0]), k=2)).get_json()
    assert body["results"][0]["name"].startswith("holiday 0") and body["results"][0]["missing"] is True


def test_a_name_that_is_not_utf8_is_served_and_named_printably(odd_index):
    index = load_index(odd_index)
    client = create_app(index).test_client()
    position = next(i for i, path in enumerate(index.paths) if os.fsencode(path).endswith(b"lat\xefn1.png"))
    served = client.get(f"/image/{position}")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.data == Path(index.paths[position]).read_bytes()
    response = client.post("/api/search", data=upload(Path(index.paths[position]), "query.png", k=5))
    text = response.get_data().decode("utf-8")  # strict: no lone surrogates
    assert "\\udc" not in text
    hit = response.get_json()["results"][0]
    assert hit["id"] == position and hit["name"] == "lat\\xefn1.png"


def test_only_images_inside_the_indexed_folder_are_served(odd_index, tmp_path):
    index = load_index(odd_index)
    position = {Path(path).name: i for i, path in enumerate(index.paths)}
    (tmp_path / "odd" / "plain1.png").write_text("root:x:0:0:root:/root:/bin/bash\n")  # no longer an image
    shutil.copy(tmp_path / "odd" / "plain3.png", tmp_path / "secret.png")
    with h5py.File(odd_index, "r+") as f:  # paths rewritten to files elsewhere on the machine
        paths = bytes(f["paths"][()]).split(b"\0")
        paths[position["plain0.png"]] = b"/etc/passwd"
        paths[position["plain2.png"]] = os.fsencode(tmp_path / "odd" / ".." / "secret.png")
        del f["paths"]
        f.create_dataset("paths", data=np.frombuffer(b"\0".join(paths), np.uint8))
    client = create_app(odd_index).test_client()
    for name, reason in (("plain0.png", "outside the indexed folder"), ("plain1.png", "is not an image"),
                         ("plain2.png", "outside the indexed folder")):
        response = client.get(f"/image/{position[name]}")
        assert response.status_code == 404 and b"root:" not in response.data
        assert reason in response.get_json()["error"]
    assert client.get(f"/image/{position['plain3.png']}").status_code == 200


def test_an_index_from_before_folders_were_recorded_serves_by_the_common_folder(odd_index):
    """Without the 'folders' attribute the folder holding every path stands in; a path
    rewritten to /etc/passwd then makes that folder '/', and the image check still refuses it."""
    index = load_index(odd_index)
    with h5py.File(odd_index, "r+") as f:
        del f.attrs["folders"]
    client = create_app(odd_index).test_client()
    hits = client.post("/api/search", data=upload(Path(index.paths[1]), k=5)).get_json()["results"]
    assert sorted(hit["name"] for hit in hits)[-1] == "plain3.png"
    assert client.get("/image/1").status_code == 200
    with h5py.File(odd_index, "r+") as f:
        paths = bytes(f["paths"][()]).split(b"\0")
        paths[0] = b"/etc/passwd"
        del f["paths"]
        f.create_dataset("paths", data=np.frombuffer(b"\0".join(paths), np.uint8))
    response = create_app(odd_index).test_client().get("/image/0")
    assert response.status_code == 404 and "/etc/passwd is not an image" in response.get_json()["error"]


def test_a_missing_file_is_marked_and_its_404_is_a_page(odd_index, tmp_path):
    index = load_index(odd_index)
    gone = next(i for i, path in enumerate(index.paths) if path.endswith("plain2.png"))
    query = tmp_path / "query.png"
    shutil.copy(index.paths[gone], query)
    Path(index.paths[gone]).unlink()
    client = create_app(index).test_client()
    hits = client.post("/api/search", data=upload(query, k=5)).get_json()["results"]
    assert [hit.get("missing", False) for hit in hits] == [hit["id"] == gone for hit in hits]
    assert client.get(f"/image/{gone}").get_json()["error"].endswith("missing: moved or deleted since it was indexed")
    page = client.get(f"/image/{gone}", headers={"Accept": "text/html,*/*;q=0.8"})
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "scae-hash image search" in html and "moved or deleted" in html and "--accent" in html


def test_radius_mode_counts_everything_within_the_radius_and_pages_through_it(client, index_file):
    query = Path(load_index(index_file).paths[0])
    ranked = client.post("/api/search", data=upload(query, k=24)).get_json()
    within = [hit["id"] for hit in ranked["results"] if hit["distance"] <= 2]
    assert ranked["total"] == 24 and len(within) > 4
    pages = [client.post("/api/search", data=upload(query, k=3, offset=offset, mode="radius", radius=2)).get_json()
             for offset in range(0, len(within) + 3, 3)]
    assert all(page["total"] == len(within) for page in pages)
    assert [hit["id"] for page in pages for hit in page["results"]] == within
    assert [hit["rank"] for page in pages for hit in page["results"]] == list(range(1, len(within) + 1))


def test_hamming_pages_reach_beyond_the_first_k(client, index_file):
    query = Path(load_index(index_file).paths[1])
    whole = [hit["id"] for hit in client.post("/api/search", data=upload(query, k=24)).get_json()["results"]]
    paged = [hit["id"] for offset in (0, 10, 20)
             for hit in client.post("/api/search", data=upload(query, k=10, offset=offset)).get_json()["results"]]
    assert paged == whole
    response = client.post("/api/search", data=upload(query, k=10, offset=9_995))
    assert response.status_code == 400 and "offset must be in 0..9990" in response.get_json()["error"]


def test_search_by_an_indexed_image(client, index_file):
    paths = load_index(index_file).paths
    body = client.post("/api/search", data={"id": "7", "k": "24"}).get_json()
    assert body["query"] == {"id": 7, "name": str(Path(paths[7]).relative_to(Path(paths[7]).parents[1]))}
    assert 7 in [hit["id"] for hit in body["results"] if hit["distance"] == 0]
    for value, message in (("24", "id must be in 0..23"), ("x", "id must be an integer")):
        response = client.post("/api/search", data={"id": value})
        assert response.status_code == 400 and message in response.get_json()["error"]


def test_a_shortlist_shorter_than_k_is_refused_as_the_library_refuses_it(index_file, monkeypatch, capsys):
    from scae_hash.image_search import find

    index = load_index(index_file)
    index.features = np.ones((24, 4), np.float32)
    monkeypatch.setattr(index.hasher, "encode_with_features", lambda x: (index.hasher.encode(x), np.ones((1, 4))))
    response = create_app(index).test_client().post(
        "/api/search", data=upload(Path(index.paths[0]), k=10, mode="rerank", rerank=5))
    assert response.status_code == 400 and response.get_json()["error"] == "the shortlist (5) must be at least k (10)"
    with pytest.raises(Exception, match=r"the shortlist \(5\) must be at least k \(10\)"):
        find(index, [np.zeros((16, 16, 3), np.uint8)], k=10, rerank=5)
    assert main(["search", str(index_file), index.paths[0], "-k", "10", "--rerank", "5"]) == 1
    assert capsys.readouterr().err == "scae-hash: error: the shortlist (5) must be at least k (10)\n"


def test_the_cli_says_how_many_lie_within_the_radius(index_file, capsys):
    query = load_index(index_file).paths[0]
    assert main(["search", str(index_file), query, "-k", "24", "--json"]) == 0
    within = [hit for hit in json.loads(capsys.readouterr().out)["results"] if hit["distance"] <= 2]
    assert main(["search", str(index_file), query, "-k", "2", "--radius", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["within_radius"] == len(within)
    assert main(["search", str(index_file), query, "-k", "2", "--radius", "2"]) == 0
    assert f": {len(within)} within radius 2, showing the first 2 (-k)" in capsys.readouterr().out


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                            ("::1", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.5", False), ("example.com", False)])
def test_loopback_addresses_are_treated_alike(host, loopback):
    assert is_loopback(host) == loopback


def test_serving_on_ipv6_loopback_checks_host_names(index_file, monkeypatch, capsys):
    served = {}

    class Server:
        port = 5000

        def serve_forever(self):
            pass

    def fake_make_server(host, port, app, **kwargs):
        served["app"] = app
        return Server()

    monkeypatch.setattr(web_app, "make_server", fake_make_server)
    web_app.serve(index_file, host="::1", port=0)
    assert "reachable from other machines" not in capsys.readouterr().out
    client = served["app"].test_client()
    assert client.get("/api/info", headers={"Host": "[::1]:5000"}).status_code == 200
    assert client.get("/api/info", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/api/info", headers={"Host": "[::2]:5000"}).status_code == 400  # another IPv6 name


@pytest.fixture
def browser(tmp_path):
    """Headless Debian Chromium through selenium; skipped where it is not installed."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,900"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def served(index_file, tmp_path):
    """The web photos plus a non-UTF-8 name, indexed and served on a free loopback port."""
    from werkzeug.serving import make_server

    folder = tmp_path / "photos"
    shutil.copytree(Path(load_index(index_file).paths[0]).parents[1], folder)
    source = Image.open(sorted((folder / "red").iterdir())[0])
    with open(os.path.join(os.fsencode(folder / "red"), b"lat\xefn1.png"), "wb") as stream:
        source.save(stream, format="PNG")
    out = tmp_path / "photos.h5"
    assert main(["index", str(folder), "--method", "itq", "--bits", "16", "--size", "16", "16", "--out", str(out),
                 "--quiet"]) == 0
    server = make_server("127.0.0.1", 0, create_app(out, trusted_hosts=["127.0.0.1", "localhost"]), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}", load_index(out)
    server.shutdown()
    thread.join(5)


LOADED_IMAGES = "return [...document.querySelectorAll('#results img')].map(img => img.complete && img.naturalWidth > 0)"


def all_loaded(count: int | None = None):
    return lambda driver: (lambda ok: len(ok) > 0 and all(ok) and (count is None or len(ok) == count))(
        driver.execute_script(LOADED_IMAGES))


@pytest.mark.slow
def test_page_end_to_end_in_headless_chromium(browser, served, hostile_png):
    """Search by upload, page, radius counts, a non-UTF-8 name, a result opened large, search
    from a result (its id in the URL), path traversal, and an 88-megapixel upload beside a
    normal query: every step as a user sees it, in a real browser."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, index = served
    driver = browser
    status = lambda: driver.find_element(By.ID, "status").text  # noqa: E731
    wait = WebDriverWait(driver, 30)  # returns as soon as the page is ready; the margin is for a busy machine
    driver.get(url + "/")
    assert "itq" in driver.find_element(By.TAG_NAME, "header").text
    k = driver.find_element(By.ID, "k")
    k.clear()
    k.send_keys("7")
    query = Path(index.paths[4])
    driver.find_element(By.ID, "file").send_keys(str(query))
    wait.until(all_loaded(7), "7 loaded result images")
    assert "results 1–7 of 25 ranked by Hamming distance" in status() and "itq 16 bits" in status()
    assert [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#results .rank")] == [f"#{r}" for r in range(1, 8)]
    assert driver.find_element(By.CSS_SELECTOR, "#results figcaption").text.startswith("distance 0")
    driver.find_element(By.ID, "next").click()
    wait.until(lambda d: "results 8–14 of 25" in status(), "the second page")
    assert "page=2" in driver.current_url and "mode=hamming" in driver.current_url

    driver.find_element(By.CSS_SELECTOR, "input[value=radius]").click()
    wait.until(lambda d: "within Hamming radius 2" in status(), "radius results")
    wait.until(all_loaded(), "radius result images loaded")
    within = sum(1 for path, distance in search(index, [query], k=25)[0] if distance <= 2)
    assert status().startswith(f"{within} within Hamming radius 2 · showing 1–{min(within, 7)}")

    odd = next(i for i, path in enumerate(index.paths) if os.fsencode(path).endswith(b"lat\xefn1.png"))
    driver.get(f"{url}/?id={odd}&k=25&mode=hamming")
    wait.until(all_loaded(25), "25 loaded result images, the query an indexed image with a non-UTF-8 name")
    names = [e.get_attribute("title") for e in driver.find_elements(By.CSS_SELECTOR, "#results .name")]
    assert "red/lat\\xefn1.png" in names and "query: indexed image red/lat\\xefn1.png" in status()

    first = driver.find_elements(By.CSS_SELECTOR, "#results .hit")[3]
    chosen = first.find_element(By.CSS_SELECTOR, ".name").get_attribute("title")
    first.find_element(By.CSS_SELECTOR, "button.open").click()
    viewer = driver.find_element(By.ID, "viewer-img")
    wait.until(lambda d: viewer.get_property("naturalWidth") == 40 and viewer.size["width"] >= 256,
               "the result opened large")
    assert viewer.value_of_css_property("image-rendering") == "pixelated"
    driver.find_element(By.ID, "viewer-search").click()
    wait.until(lambda d: f"query: indexed image {chosen}" in status(), "a search from the opened result")
    wait.until(all_loaded(25), "its results loaded")
    position = index.paths.to_list().index(str(served_path(index, chosen)))
    assert f"id={position}" in driver.current_url and not driver.find_element(By.ID, "viewer").get_property("open")

    fetch_status = ("const done = arguments[arguments.length - 1];"
                    "fetch(arguments[0]).then(r => r.text().then(t => done([r.status, t])));")
    for path in ["/image/..%2F..%2Fetc%2Fpasswd", "/image/25", "/static/..%2F..%2Fetc%2Fpasswd"]:
        status_code, text = driver.execute_async_script(fetch_status, path)
        assert status_code == 404 and "root:" not in text
    driver.get(url + "/image/../../etc/passwd")  # the browser folds the dots; still not a file of the machine
    assert "root:" not in driver.page_source

    # An 88-megapixel PNG and, 50 ms later, a normal query, sent at once by the browser.
    driver.get(url + "/")
    driver.execute_script("const i = document.createElement('input'); i.type = 'file'; i.multiple = true;"
                          "i.id = 'two'; document.body.append(i);")
    driver.find_element(By.ID, "two").send_keys(f"{hostile_png}\n{query}")
    timed = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const [hostile, normal] = document.getElementById('two').files;
        const post = (file) => { const form = new FormData(); form.append('image', file); const t = performance.now();
          return fetch('/api/search', {method: 'POST', body: form}).then(r => r.json().then(
            body => [r.status, performance.now() - t, body.error || body.results.length])); };
        const first = post(hostile);
        new Promise(r => setTimeout(r, 50)).then(() => post(normal)).then(n => first.then(h => done([h, n])));""")
    (hostile_status, hostile_ms, hostile_said), (normal_status, normal_ms, normal_results) = timed
    assert hostile_status in (200, 400) and hostile_ms < 1000, (hostile_status, hostile_ms, hostile_said)
    assert normal_status == 200 and normal_results == 10 and normal_ms < 500, (normal_status, normal_ms)


def served_path(index, name: str) -> str:
    return next(path for path in index.paths if path.endswith("/" + name))
