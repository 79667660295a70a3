"""Index a large generated folder: peak memory, images/s, and a `kill -9` in the middle.

Generates IMAGES small photos-like images (smooth random colour fields, JPEG and PNG, 64 x 64
to 96 x 80, in 100 sub-folders; kept in --folder between runs), then:
1. runs `scae-hash index FOLDER --method itq --bits 64` to the end in a child process and
   reports wall time, images/s and the child's peak resident memory (ru_maxrss);
2. runs the same command again into another file, kills it with SIGKILL once a share of the
   batches is written, runs the same command once more, and checks that the resumed index
   holds every image exactly once, with the same codes as the uninterrupted run.

    python experiments/bench_index_folder.py [--images 100000] [--folder /tmp/scae-hash-bench-folder] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

TARGET_MIB = 2048


def generate(folder: Path, count: int) -> None:
    """Smooth random colour fields: an 8 x 8 random grid upscaled, sizes and formats varied."""
    marker = folder / f".complete-{count}"
    if marker.is_file():
        return
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for i in range(count):
        sub = folder / f"{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        grid = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        image = grid.resize((64 + 32 * (i % 2), 64 + 16 * (i % 3)), Image.Resampling.BICUBIC)
        image.save(sub / (f"{i:06d}.jpg" if i % 4 else f"{i:06d}.png"), quality=90)
    marker.touch()
    print(f"generated {count:,} images in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def index_command(folder: Path, out: Path) -> list[str]:
    script = shutil.which("scae-hash")
    base = [script] if script else [sys.executable, "-m", "scae_hash.cli"]
    return [*base, "index", str(folder), "--method", "itq", "--bits", "64", "--out", str(out), "--quiet"]


def run_measured(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one child process run to the end."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed (exit {process.returncode})")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def stored(index_file: Path) -> tuple[list[str], np.ndarray]:
    from scae_hash.image_search import load_index

    index = load_index(index_file)
    return index.paths, index.codes.packed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--folder", default="/tmp/scae-hash-bench-folder", help="generated images (kept)")
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of the batches written before the kill")
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    folder = Path(args.folder)
    generate(folder, args.images)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        whole = scratch / "whole.h5"
        seconds, peak = run_measured(index_command(folder, whole))
        paths, codes = stored(whole)
        numbers = {"images": len(paths), "seconds": seconds, "images_per_second": len(paths) / seconds,
                   "peak_mib": peak}
        print(f"indexed {len(paths):,} images (ITQ, 64 bits, 32 x 32 RGB) in {seconds:.1f} s: "
              f"{len(paths) / seconds:,.0f} images/s, peak resident memory {peak:,.0f} MiB "
              f"(target <= {TARGET_MIB:,} MiB: {'met' if peak <= TARGET_MIB else 'NOT met'})")

        killed = scratch / "killed.h5"
        command = index_command(folder, killed)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        work, wanted = scratch / "killed.h5.partial", int(args.kill_at * args.images / 256)
        while process.poll() is None and len(list(work.glob("part-*.npz"))) < wanted:
            time.sleep(0.2)
        written = len(list(work.glob("part-*.npz")))
        process.send_signal(signal.SIGKILL)
        process.wait()
        seconds, peak = run_measured(command)
        resumed_paths, resumed_codes = stored(killed)
        once = len(resumed_paths) == len(set(resumed_paths)) == len(paths)
        same = resumed_paths == paths and np.array_equal(resumed_codes, codes)
        numbers.update(killed_after_batches=written, batches=-(-args.images // 256), resumed_seconds=seconds,
                       resumed_peak_mib=peak, every_image_once=once, same_as_uninterrupted=same)
        print(f"killed with SIGKILL after {written} of {-(-args.images // 256)} batches; the same command then "
              f"finished in {seconds:.1f} s (peak {peak:,.0f} MiB): every image once: {once}, "
              f"same paths and codes as the uninterrupted run: {same}")
    if args.out:
        from scae_hash.results import save_benchmark

        save_benchmark(args.out, numbers)


if __name__ == "__main__":
    main()
