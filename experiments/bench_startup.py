"""Start-up cost of `scae-hash search`: wall time of one search beside Python's own start.

Builds a baseline (ITQ, 64 bits) index of generated images, grows it to DATABASE entries
(codes and paths repeated: the start-up cost depends on the file's size, not its content),
then times, best of REPEATS, `python -c pass` and `scae-hash search INDEX QUERY -k 10`, and
prints the difference (target: under 0.3 s). With `--model MODEL.keras` it also indexes the
images with that SCAE model and prints a search's time split (start-up, index load, model
load, decoding, encoding, search), as `scae-hash search --timings` reports it.

    python experiments/bench_startup.py [--model runs/mnist-seed0/model_64.keras] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

DATABASE = 69_000
N_IMAGES = 200
REPEATS = 10
TARGET_SECONDS = 0.3


def scae_hash_command() -> list[str]:
    script = shutil.which("scae-hash")
    return [script] if script else [sys.executable, "-m", "scae_hash.cli"]


def best_wall_time(command: list[str]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def make_folder(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir()
    paths = []
    for i in range(N_IMAGES):
        pixels = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        paths.append(folder / f"{i:04d}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


def grow(index_file: Path, size: int) -> None:
    """Repeat the index' codes and paths up to `size` entries (features too, if any)."""
    with h5py.File(index_file, "r+") as f:
        for name in ("packed_bits", "features", "rerank_features"):
            if name in f:
                rows = f[name][()]
                del f[name]
                f.create_dataset(name, data=np.resize(rows, (size, rows.shape[1])))
        paths = f["paths"][()].tobytes().split(b"\0")
        del f["paths"]
        f.create_dataset("paths", data=np.frombuffer(b"\0".join((paths * (size // len(paths) + 1))[:size]), np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="also report the time split of a search with this SCAE model's index")
    parser.add_argument("--out", help="also write the numbers to this JSON file")
    args = parser.parse_args()
    numbers: dict = {"database": DATABASE, "repeats": REPEATS}
    command = scae_hash_command()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        queries = make_folder(scratch / "images")
        index_file = scratch / "itq.h5"
        subprocess.run([*command, "index", str(scratch / "images"), "--method", "itq", "--bits", "64",
                        "--out", str(index_file), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        grow(index_file, DATABASE)
        python = best_wall_time([sys.executable, "-c", "pass"])
        search = best_wall_time([*command, "search", str(index_file), str(queries[0]), "-k", "10"])
        print(f"best of {REPEATS} wall times on this machine ({' '.join(Path(part).name for part in command)}):")
        print(f"  python -c pass                                   {1000 * python:7.0f} ms")
        print(f"  scae-hash search ITQ-64 index ({DATABASE:,} images)  {1000 * search:7.0f} ms")
        numbers.update(python_ms=1000 * python, search_ms=1000 * search, beyond_python_ms=1000 * (search - python))
        verdict = "met" if search - python < TARGET_SECONDS else "NOT met"
        print(f"  beyond Python's start                            {1000 * (search - python):7.0f} ms "
              f"(target < {1000 * TARGET_SECONDS:.0f} ms: {verdict})")
        if args.model:
            model_index = scratch / "scae.h5"
            subprocess.run([*command, "index", str(scratch / "images"), "--model", args.model, "--out",
                            str(model_index), "--quiet"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            grow(model_index, DATABASE)
            done = subprocess.run([*command, "search", str(model_index), str(queries[0]), "-k", "10", "--timings"],
                                  check=True, capture_output=True, text=True)
            split = next(line for line in done.stderr.splitlines() if line.startswith("timings:"))
            print(f"  SCAE index ({Path(args.model).name}, {DATABASE:,} images): {split}")
            numbers.update(model=args.model, scae_timings=split.removeprefix("timings: "))
    if args.out:
        from scae_hash.results import save_benchmark

        save_benchmark(args.out, numbers)


if __name__ == "__main__":
    main()
