"""A local web page and JSON API over one image index (`scae-hash serve`).

The index is loaded once at start-up and every request goes through
`scae_hash.image_search.search`, so the page shows what `scae-hash search` prints. Images are
served only by their position in the index, never by a path taken from a request, and the
server binds to the loopback interface unless told otherwise.
"""

from __future__ import annotations

import io
import os
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from flask import Flask, jsonify, render_template, request, send_file, url_for
from PIL import Image, UnidentifiedImageError
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.serving import WSGIRequestHandler, make_server, select_address_family

from scae_hash.errors import ScaeHashError
from scae_hash.image_search import ImageIndex, load_index, search

MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_K = 100
MAX_RADIUS = 3  # as `scae-hash search --radius`: bucket lookup grows as bits**radius
DEFAULT_RADIUS = 2
DEFAULT_SHORTLIST = 100
MODES = ("hamming", "radius", "rerank")
LOOPBACK_NAMES = ["127.0.0.1", "localhost"]


class ServeError(ScaeHashError):
    """The server cannot start (address in use, no permission, unknown host)."""


def create_app(index: str | os.PathLike | ImageIndex, *, trusted_hosts: list[str] | None = None) -> Flask:
    """The Flask app over an index file (or an index already loaded). `trusted_hosts` makes
    requests for any other Host header fail, which stops DNS-rebinding pages from reading a
    loopback server."""
    if not isinstance(index, ImageIndex):
        index = load_index(index)
    app = Flask(__name__, static_folder=None)  # no route serves files other than the indexed images
    app.config.update(MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES, TRUSTED_HOSTS=trusted_hosts)
    app.json.sort_keys = False  # results keep their rank order of fields
    # Served files are resolved now: Flask would read a relative path against its package folder.
    files = [Path(path).resolve() for path in index.paths]
    ids = {path: position for position, path in enumerate(index.paths)}
    names = display_names(files)
    # Every search runs on one long-lived thread: a hasher (a Keras model) is not promised to be
    # thread-safe, and the server starts a thread per request.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scae-hash-search")

    def timed_search(query: Path, k: int, radius: int | None, rerank: int | None):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        hits = search(index, [query], k=k, radius=radius, rerank=rerank, timings=timings)[0]
        return hits, time.perf_counter() - start, timings

    # A model's first call traces its graph: done now on the worker, not in the first person's query.
    worker.submit(index.hasher.encode, np.zeros((1, *index.image_shape), np.float32)).result()
    info = {"method": index.hasher.name, "bits": int(index.hasher.n_bits), "images": len(index.paths),
            "rerank": index.has_features, "max_k": MAX_K, "max_radius": MAX_RADIUS,
            "max_upload_bytes": MAX_UPLOAD_BYTES}

    @app.errorhandler(HTTPException)
    def json_error(error: HTTPException):
        return jsonify(error=error.description), error.code

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge):
        return jsonify(error=f"the upload is larger than {MAX_UPLOAD_BYTES // 2**20} MiB"), error.code

    @app.get("/")
    def page():
        return render_template("index.html", info=info, default_radius=DEFAULT_RADIUS,
                               default_shortlist=DEFAULT_SHORTLIST)

    @app.get("/api/info")
    def api_info():
        return jsonify(info)

    @app.get("/image/<int:image_id>")
    def image(image_id: int):
        if image_id >= len(files) or not files[image_id].is_file():
            raise NotFound(f"no indexed image {image_id}")
        return send_file(files[image_id])  # revalidated by ETag: ids change when an index is rebuilt

    @app.post("/api/search")
    def api_search():
        upload = request.files.get("image")
        if upload is None or not upload.filename:
            raise BadRequest("send the query as a multipart file field named 'image'")
        data = upload.read()
        check_image(data, upload.filename)
        mode = request.form.get("mode", "hamming")
        if mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        k = min(int_field("k", 10, 1, MAX_K), len(files))
        radius = int_field("radius", DEFAULT_RADIUS, 0, MAX_RADIUS) if mode == "radius" else None
        rerank = None
        if mode == "rerank":
            if not index.has_features:
                raise BadRequest(f"this index ({info['method']}) has no continuous features to re-rank with; "
                                 "index with an SCAE model (--model) for two-stage search")
            rerank = min(int_field("rerank", DEFAULT_SHORTLIST, 1, 100_000), len(files))
        with tempfile.TemporaryDirectory(prefix="scae-hash-query-") as folder:
            # A scratch copy for search(), removed with the request: not an output of the project.
            query = Path(folder) / "query"
            query.write_bytes(data)
            try:
                hits, elapsed, timings = worker.submit(timed_search, query, k, radius, rerank).result()
            except ScaeHashError as error:
                raise BadRequest(str(error).replace(str(query), repr(upload.filename))) from None
        score = "similarity" if rerank is not None else "distance"
        results = []
        for rank, (path, value) in enumerate(hits, 1):
            position = ids[path]
            results.append({"rank": rank, "id": position, "name": names[position],
                            "url": url_for("image", image_id=position), score: value})
        return jsonify(method=info["method"], bits=info["bits"], mode=mode, k=k, radius=radius, rerank=rerank,
                       score=score, query_ms=round(elapsed * 1000, 3),
                       timings_ms={step: round(seconds * 1000, 3) for step, seconds in timings.items()},
                       results=results)

    return app


def check_image(data: bytes, filename: str) -> None:
    """Refuse what Pillow cannot open, or too many pixels to decode, as a 400 before search."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.verify()
    except UnidentifiedImageError:
        raise BadRequest(f"{filename!r} is not an image (not a format Pillow can read)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise BadRequest(f"{filename!r} is not a readable image ({error})") from None
    if width * height > Image.MAX_IMAGE_PIXELS:
        raise BadRequest(f"{filename!r} has {width} x {height} pixels, more than {Image.MAX_IMAGE_PIXELS}")


def int_field(name: str, default: int, low: int, high: int) -> int:
    text = request.form.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {text!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be in {low}..{high}, got {value}")
    return value


def display_names(files: list[Path]) -> list[str]:
    """Each path relative to the folder all indexed images share: short, and still unique."""
    if not files:
        return []
    root = Path(os.path.commonpath(files))
    if len(files) == 1:
        root = root.parent
    return [str(path.relative_to(root)) for path in files]


class ErrorsOnlyLog(WSGIRequestHandler):
    """A page view fetches an image per result: log only the requests that failed."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not (str(code).isdigit() and int(code) < 400):
            super().log_request(code, size)


def serve(index_path: str | os.PathLike, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Load the index, then serve until Ctrl+C."""
    index = load_index(index_path)
    loopback = host in LOOPBACK_NAMES
    app = create_app(index, trusted_hosts=LOOPBACK_NAMES if loopback else None)
    # Bound here, not by werkzeug, which prints its own lines and exits when the port is taken.
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        listener = socket.create_server((host, port), family=select_address_family(host, port))
    except socket.gaierror as error:
        raise ServeError(f"cannot listen on {host}:{port} (unknown host: {error.strerror})") from None
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise ServeError(f"cannot listen on {host}:{port} ({reason})") from None
    with listener:
        server = make_server(host, port, app, threaded=True, request_handler=ErrorsOnlyLog, fd=listener.fileno())
    url = f"http://{'[' + host + ']' if ':' in host else host}:{server.port}/"
    print(f"serving {len(index.paths)} images ({index.hasher.name}, {index.hasher.n_bits} bits) at {url}"
          + ("" if loopback else "  - reachable from other machines") + "  (Ctrl+C to stop)", flush=True)
    server.serve_forever()  # werkzeug's: returns on Ctrl+C and closes the socket
