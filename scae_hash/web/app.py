"""A local web page and JSON API over one image index (`scae-hash serve`).

The index is loaded once at start-up and every request goes through
`scae_hash.image_search.find`, so the page shows what `scae-hash search` prints. Images are
served only by their position in the index, never by a path taken from a request, and only
from the indexed folders (`web.files`); the server binds to the loopback interface unless
told otherwise. Start-up reads the codes and the paths' bytes, nothing per image, so a
million-image index is ready in seconds.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from flask import Flask, jsonify, render_template, request, send_file, url_for
from werkzeug.exceptions import BadRequest, HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.serving import WSGIRequestHandler, make_server, select_address_family

from scae_hash.errors import ScaeHashError
from scae_hash.image_search import ImageIndex, find, load_index
from scae_hash.web.files import IndexedFiles, NotServed
from scae_hash.web.queries import MAX_QUERY_PIXELS, QueryDecoder

MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_K = 100  # results per page
MAX_RANK = 10_000  # the deepest result a page may reach (offset + k)
MAX_RADIUS = 3  # as `scae-hash search --radius`: bucket lookup grows as bits**radius
DEFAULT_RADIUS = 2
DEFAULT_SHORTLIST = 100
MAX_SHORTLIST = 100_000
MODES = ("hamming", "radius", "rerank")
LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"]


class ServeError(ScaeHashError):
    """The server cannot start (address in use, no permission, unknown host)."""


def create_app(index: str | os.PathLike | ImageIndex, *, trusted_hosts: list[str] | None = None) -> Flask:
    """The Flask app over an index file (or an index already loaded). `trusted_hosts` makes
    requests for any other Host header fail, which stops DNS-rebinding pages from reading a
    loopback server."""
    if not isinstance(index, ImageIndex):
        index = load_index(index)
    app = Flask(__name__, static_folder=None)  # no route serves files other than the indexed images
    app.config.update(MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES)
    app.json.sort_keys = False  # results keep their rank order of fields
    files = IndexedFiles(index)
    decode = app.extensions["scae_hash.decoder"] = QueryDecoder(index.image_shape)
    # Every search runs on one long-lived thread: a hasher (a Keras model) is not promised to be
    # thread-safe, and the server starts a thread per request. Decoding happens before, elsewhere.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scae-hash-search")

    def timed_find(pixels: np.ndarray, **settings):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        hits = find(index, [pixels], timings=timings, **settings)[0]
        return hits, time.perf_counter() - start, timings

    # A model's first call traces its graph: done now on the worker, not in the first person's query.
    worker.submit(index.hasher.encode, np.zeros((1, *index.image_shape), np.float32)).result()
    info = {"method": index.hasher.name, "bits": int(index.hasher.n_bits), "images": len(files),
            "rerank": index.has_features, "max_k": MAX_K, "max_rank": MAX_RANK, "max_radius": MAX_RADIUS,
            "max_upload_bytes": MAX_UPLOAD_BYTES, "max_query_pixels": MAX_QUERY_PIXELS}

    if trusted_hosts is not None:
        trusted = {name.lower() for name in trusted_hosts}

        # Checked here rather than by werkzeug's TRUSTED_HOSTS, whose releases differ on IPv6 names.
        @app.before_request
        def only_trusted_hosts():
            if host_name(request.headers.get("Host", "")) not in trusted:
                raise BadRequest("this server answers only to its own host names")

    @app.errorhandler(HTTPException)
    def error_response(error: HTTPException):
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
            return render_template("error.html", info=info, code=error.code, message=error.description), error.code
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
        try:
            served = files.open(image_id)
        except NotServed as reason:
            raise NotFound(f"image {image_id} cannot be shown: {reason}") from None
        # Revalidated by modification time: ids change when an index is rebuilt.
        return send_file(served.stream, mimetype=served.mimetype, conditional=True, max_age=0,
                         etag=f"{image_id}-{served.size}-{served.modified}", last_modified=served.modified)

    @app.post("/api/search")
    def api_search():
        mode = request.form.get("mode", "hamming")
        if mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        k = min(int_field("k", 10, 1, MAX_K), max(len(files), 1))
        offset = int_field("offset", 0, 0, MAX_RANK - k)
        settings = {"k": k, "offset": offset,
                    "radius": int_field("radius", DEFAULT_RADIUS, 0, MAX_RADIUS) if mode == "radius" else None}
        if mode == "rerank":
            if not index.has_features:
                raise BadRequest(f"this index ({info['method']}) has no continuous features to re-rank with; "
                                 "index with an SCAE model (--model) for two-stage search")
            settings["rerank"] = int_field("rerank", DEFAULT_SHORTLIST, 1, MAX_SHORTLIST)
        query_id, source, name = read_query(files)
        pixels, decode_seconds = decode(source, name)
        try:
            hits, elapsed, timings = worker.submit(timed_find, pixels, **settings).result()
        except ScaeHashError as error:
            raise BadRequest(str(error)) from None
        score = "similarity" if mode == "rerank" else "distance"
        results = [{"rank": offset + rank, "id": int(position), "name": files.name(position),
                    "url": url_for("image", image_id=int(position)), score: float(value),
                    **({"missing": True} if not files.exists(position) else {})}
                   for rank, (position, value) in enumerate(zip(hits.ids, hits.scores), 1)]
        timings = {"decode": decode_seconds, **timings}
        return jsonify(method=info["method"], bits=info["bits"], mode=mode, k=k, offset=offset, total=hits.total,
                       radius=settings["radius"], rerank=hits.shortlist, score=score,
                       query={"id": query_id, "name": files.name(query_id) if query_id is not None else name},
                       query_ms=round((decode_seconds + elapsed) * 1000, 3),
                       timings_ms={step: round(seconds * 1000, 3) for step, seconds in timings.items()},
                       results=results)

    return app


def read_query(files: IndexedFiles) -> tuple[int | None, bytes | str, str]:
    """(indexed id or None, what to decode, its name) of a search: an upload in the file field
    'image', or 'id', an indexed image (search from a result)."""
    if request.form.get("id", "").strip():
        query_id = int_field("id", 0, 0, max(len(files) - 1, 0))
        try:
            files.open(query_id).stream.close()  # the checks of serving it
        except NotServed as reason:
            raise BadRequest(f"image {query_id} cannot be a query: {reason}") from None
        return query_id, files.paths[query_id], files.name(query_id)
    upload = request.files.get("image")
    if upload is None or not upload.filename:
        raise BadRequest("send the query as a multipart file field named 'image' (or the 'id' of an indexed image)")
    return None, upload.read(), upload.filename


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


def host_name(header: str) -> str:
    """The name in a Host header without its port: '[::1]:5000' -> '[::1]', 'Localhost:80' ->
    'localhost'; '' when the header is malformed."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1]
    return header.partition(":")[0]


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only: localhost, 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ErrorsOnlyLog(WSGIRequestHandler):
    """A page view fetches an image per result: log only the requests that failed."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not (str(code).isdigit() and int(code) < 400):
            super().log_request(code, size)


def serve(index_path: str | os.PathLike, host: str = "127.0.0.1", port: int = 5000) -> None:
    """Load the index, then serve until Ctrl+C."""
    index = load_index(index_path)
    loopback = is_loopback(host)
    trusted = LOOPBACK_NAMES + ([host] if ":" not in host else [f"[{host}]"]) if loopback else None
    app = create_app(index, trusted_hosts=trusted)
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
