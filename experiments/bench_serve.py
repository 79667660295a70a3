"""`scae-hash serve` at a million images, and under hostile uploads: start time, memory, queries/s.

1. Start: builds an ITQ 64-bit index of generated images and grows it to --size entries with
   distinct paths (photos/<year>/album_<n>/IMG_<n>.jpg under one folder, as a photo library
   is laid out: the paths need not exist, nothing reads them at start), then starts
   `scae-hash serve INDEX --port 0` in a child process and reports the seconds until it
   answers /api/info, its resident memory then (VmRSS) and its peak (VmHWM), beside the
   targets: ready within TARGET_START_SECONDS, resident memory within TARGET_MEMORY_RATIO
   times (codes + raw path bytes). The same is measured for a server over a 1-image index
   (interpreter and libraries), so what the index itself adds is shown too.
2. Load: against that server, one client sends normal queries (a 32 x 32 PNG, k = 10) one
   after another for --seconds and counts queries/s and latencies; then again while
   HOSTILE_CLIENTS clients keep uploading large PNGs (an 88-megapixel one of a few hundred KB,
   which the server refuses from its header, and a 16-megapixel one, the largest it decodes).
   Printed side by side: queries/s and the 95th-percentile latency without and with them.

    python experiments/bench_serve.py [--size 1000000] [--seconds 10] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from large_images import flat_png  # noqa: E402  (tests' helper: large images small on disk)

TARGET_START_SECONDS = 3.0
TARGET_MEMORY_RATIO = 2.0
HOSTILE_CLIENTS = 2
LIBRARY = "/data/photos"


def build_index(folder: Path, size: int) -> Path:
    """An ITQ index of 300 generated images, grown to `size` entries with distinct paths."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir()
    for i in range(300):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "images" / f"{i:03d}.png")
    index = folder / "index.h5"
    subprocess.run([sys.executable, "-m", "scae_hash.cli", "index", str(folder / "images"), "--method", "itq",
                    "--bits", "64", "--out", str(index), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    grown = folder / f"index-{size}.h5"
    with h5py.File(index, "r") as source, h5py.File(grown, "w") as f:
        for key, value in source.attrs.items():
            f.attrs[key] = value
        f.attrs["folders"] = np.array([LIBRARY.encode()], dtype=h5py.string_dtype("ascii"))
        source.copy("hasher_state", f)
        f.create_dataset("packed_bits", data=np.resize(source["packed_bits"][()], (size, 8)))
        names = b"\0".join(b"%s/%d/album_%04d/IMG_%07d.jpg" % (LIBRARY.encode(), 2000 + i % 25, i // 500, i)
                           for i in range(size))
        f.create_dataset("paths", data=np.frombuffer(names, np.uint8))
    return grown


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def start_server(index: Path) -> tuple[subprocess.Popen, int, float]:
    """(process, port, seconds until it answered /api/info)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "scae_hash.cli", "serve", str(index), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line.startswith("serving"):
        process.kill()
        raise RuntimeError(f"serve did not start: {line}{process.stderr.read()}")
    port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/api/info")
            if connection.getresponse().status == 200:
                return process, port, time.perf_counter() - start
        except OSError:
            time.sleep(0.005)


def multipart(path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(port: int, body: bytes, content_type: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("POST", "/api/search", body, {"Content-Type": content_type})
    response = connection.getresponse()
    response.read()
    return response.status


def normal_queries(port: int, query: tuple[bytes, str], seconds: float) -> dict:
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        if post(port, *query) != 200:
            raise RuntimeError("a normal query failed")
        latencies.append(time.perf_counter() - start)
    return {"qps": len(latencies) / sum(latencies), "p95_ms": 1000 * float(np.percentile(latencies, 95)),
            "queries": len(latencies)}


def load_test(port: int, folder: Path, seconds: float) -> dict:
    query = folder / "query.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(query)
    hostile = [multipart(flat_png(folder / "huge.png", 10_000, 8_800)),
               multipart(flat_png(folder / "large.png", 4_900, 3_260))]
    quiet = normal_queries(port, multipart(query), seconds)
    stop, answers = threading.Event(), []

    def attack(which: int) -> None:
        while not stop.is_set():
            answers.append(post(port, *hostile[which % 2]))

    attackers = [threading.Thread(target=attack, args=(i,)) for i in range(HOSTILE_CLIENTS)]
    for thread in attackers:
        thread.start()
    try:
        busy = normal_queries(port, multipart(query), seconds)
    finally:
        stop.set()
        for thread in attackers:
            thread.join()
    return {"quiet": quiet, "hostile": busy, "hostile_answers": {str(code): answers.count(code)
                                                                   for code in sorted(set(answers))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per load-test phase")
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        index = build_index(scratch, args.size)
        with h5py.File(index) as f:
            codes_mib, paths_mib = f["packed_bits"].size / 2**20, f["paths"].size / 2**20
        (scratch / "tiny").mkdir()
        floor, _, _ = start_server(build_index(scratch / "tiny", 1))
        floor_mib = status_mib(floor.pid, "VmRSS")
        floor.kill()
        process, port, seconds = start_server(index)
        try:
            rss, peak = status_mib(process.pid, "VmRSS"), status_mib(process.pid, "VmHWM")
            budget = TARGET_MEMORY_RATIO * (codes_mib + paths_mib)
            numbers = {"size": args.size, "start_seconds": seconds, "rss_mib": rss, "peak_mib": peak,
                       "one_image_server_rss_mib": floor_mib, "codes_mib": codes_mib, "path_bytes_mib": paths_mib}
            print(f"serve over {args.size:,} images ({codes_mib:.1f} MiB of codes, {paths_mib:.1f} MiB of path bytes):")
            print(f"  ready (answering /api/info) after {seconds:.2f} s "
                  f"(target <= {TARGET_START_SECONDS:.0f} s: {'met' if seconds <= TARGET_START_SECONDS else 'NOT met'})")
            print(f"  resident memory {rss:.0f} MiB, peak {peak:.0f} MiB; a 1-image server holds {floor_mib:.0f} MiB, so "
                  f"the index adds {rss - floor_mib:.0f} MiB (peak {peak - floor_mib:.0f} MiB)")
            print(f"  target {TARGET_MEMORY_RATIO:.0f} x (codes + path bytes) = {budget:.0f} MiB: whole process "
                  f"{rss / budget:.2f} x ({'met' if rss <= budget else 'NOT met'}), added by the index "
                  f"{(rss - floor_mib) / budget:.2f} x ({'met' if rss - floor_mib <= budget else 'NOT met'})")
            load = load_test(port, scratch, args.seconds)
            numbers.update(load)
            quiet, busy = load["quiet"], load["hostile"]
            print(f"normal queries (32 x 32 PNG, k = 10), one client, {args.seconds:.0f} s each, without / with "
                  f"{HOSTILE_CLIENTS} clients uploading 88- and 16-megapixel PNGs (answers: {load['hostile_answers']}):")
            print(f"  queries/s {quiet['qps']:8.1f} / {busy['qps']:8.1f}  ({busy['qps'] / quiet['qps']:.2f} x)")
            print(f"  p95 ms    {quiet['p95_ms']:8.1f} / {busy['p95_ms']:8.1f}  ({busy['p95_ms'] / quiet['p95_ms']:.2f} x)")
        finally:
            process.kill()
    if args.out:
        from scae_hash.results import save_benchmark

        save_benchmark(args.out, numbers)


if __name__ == "__main__":
    main()
