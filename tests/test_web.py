"""`scae-hash serve`: the JSON API through Flask's test client, and the page in headless Chromium."""

import io
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scae_hash.cli import main
from scae_hash.image_search import load_index
from scae_hash.web.app import MAX_UPLOAD_BYTES, create_app

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


def upload(path: Path, **fields) -> dict:
    return {"image": (io.BytesIO(path.read_bytes()), path.name), **{key: str(value) for key, value in fields.items()}}


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


@pytest.mark.slow
def test_page_end_to_end_in_headless_chromium(index_file, tmp_path):
    """Load the page, pick a query through the file input, see k result images that loaded."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, create_app(index_file, trusted_hosts=["127.0.0.1", "localhost"]),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,900"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    url = f"http://127.0.0.1:{server.port}"
    loaded_images = ("return [...document.querySelectorAll('#results img')]"
                     ".map(img => img.complete && img.naturalWidth > 0)")
    try:
        driver.set_page_load_timeout(30)
        driver.get(url + "/")
        assert "itq" in driver.find_element(By.TAG_NAME, "header").text
        k = driver.find_element(By.ID, "k")
        k.clear()
        k.send_keys("7")
        query = Path(load_index(index_file).paths[4])
        driver.find_element(By.ID, "file").send_keys(str(query))
        wait = WebDriverWait(driver, 30)  # returns as soon as the page is ready; the margin is for a busy machine
        wait.until(lambda d: (lambda ok: len(ok) == 7 and all(ok))(d.execute_script(loaded_images)),
                   "7 loaded result images")
        status = driver.find_element(By.ID, "status").text
        assert "7 results" in status and "itq 16 bits" in status and " ms" in status
        ranks = [element.text for element in driver.find_elements(By.CSS_SELECTOR, "#results .rank")]
        assert ranks == [f"#{rank}" for rank in range(1, 8)]
        assert driver.find_element(By.CSS_SELECTOR, "#results figcaption").text.startswith("distance 0")

        driver.find_element(By.CSS_SELECTOR, "input[value=radius]").click()
        wait.until(lambda d: "radius lookup 2" in d.find_element(By.ID, "status").text, "radius results")
        wait.until(lambda d: all(d.execute_script(loaded_images)), "radius result images loaded")

        fetch_status = ("const done = arguments[arguments.length - 1];"
                        "fetch(arguments[0]).then(r => r.text().then(t => done([r.status, t])));")
        for path in ["/image/..%2F..%2Fetc%2Fpasswd", "/image/24", "/static/..%2F..%2Fetc%2Fpasswd"]:
            status_code, text = driver.execute_async_script(fetch_status, path)
            assert status_code == 404 and "root:" not in text
        driver.get(url + "/image/../../etc/passwd")  # the browser folds the dots; still not a file of the machine
        assert "root:" not in driver.page_source
    finally:
        driver.quit()
        server.shutdown()
        thread.join(5)
