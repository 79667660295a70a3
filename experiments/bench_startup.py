"""Start-up cost of `scae-hash search`: wall time of one search beside Python's own start.

Builds a baseline (ITQ, 64 bits) index of generated images, grows it to DATABASE entries
(codes and paths repeated: the start-up cost depends on the file's size, not its content),
then times, interleaved and best of REPEATS, `python -c pass`, `python -c "import numpy,
faiss, h5py, PIL.Image"` (the libraries a search cannot do without) and `scae-hash search
INDEX QUERY -k 10`, and prints the search's time beyond Python's start, and that time over the
target (TARGET_SECONDS: a ratio of 1.00 or less meets it). The command is the entry point
installed beside this Python, started by this Python's interpreter like `python -c pass`; a
version manager's shim (pyenv) in front of it would add its own start to one side only. The
package's bytecode is compiled first, as installing it compiles it: under
PYTHONDONTWRITEBYTECODE (set on some machines) every run would compile the package's sources
again, which no installed copy does.

With `--model MODEL.keras` it also indexes the images with that SCAE model and prints a
search's time split (start-up, index load, model load, decoding, encoding, search), as
`scae-hash search --timings` reports it, and the model load's own split: importing Keras (and
its backend), reading the model file, and its first call.

    python experiments/bench_startup.py [--model runs/mnist-seed0/model_64.keras] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import os
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
    script = Path(sys.executable).with_name("scae-hash")
    return [sys.executable, str(script)] if script.is_file() else [sys.executable, "-m", "scae_hash.cli"]


def best_wall_times(commands: dict[str, list[str]]) -> dict[str, float]:
    """Best wall time of each command, run in turn REPEATS times (interleaved, so that a busy
    spell of the machine falls on all of them)."""
    best = dict.fromkeys(commands, float("inf"))
    # The libraries as `search` loads them: one BLAS thread (see cli.run_search_command).
    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    for _ in range(REPEATS):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=environment if name == "imports" else None)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


MODEL_SPLIT = """
import sys, time
start = time.perf_counter()
import keras
imported = time.perf_counter()
from scae_hash.image_search import load_scae
hasher = load_scae(sys.argv[1])
loaded = time.perf_counter()
import numpy as np
hasher.encode(np.zeros((1, *hasher.image_shape), np.float32))
called = time.perf_counter()
hasher.encode(np.zeros((1, *hasher.image_shape), np.float32))
print(f"import Keras {1000 * (imported - start):.0f} ms, read the model {1000 * (loaded - imported):.0f} ms, "
      f"first call {1000 * (called - loaded):.0f} ms (a later one {1000 * (time.perf_counter() - called):.0f} ms)")
"""


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
    import compileall

    import scae_hash

    compileall.compile_dir(Path(scae_hash.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        queries = make_folder(scratch / "images")
        index_file = scratch / "itq.h5"
        subprocess.run([*command, "index", str(scratch / "images"), "--method", "itq", "--bits", "64",
                        "--out", str(index_file), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        grow(index_file, DATABASE)
        best = best_wall_times({
            "python": [sys.executable, "-c", "pass"],
            "imports": [sys.executable, "-c", "import numpy, faiss, h5py, PIL.Image"],
            "search": [*command, "search", str(index_file), str(queries[0]), "-k", "10"]})
        python, imports, search = best["python"], best["imports"], best["search"]
        beyond = search - python
        print(f"best of {REPEATS} wall times, interleaved, on this machine ({' '.join(Path(p).name for p in command)}):")
        print(f"  python -c pass                                   {1000 * python:7.0f} ms")
        print(f"  python -c 'import numpy, faiss, h5py, PIL.Image' {1000 * imports:7.0f} ms "
              f"({1000 * (imports - python):.0f} ms beyond Python)")
        print(f"  scae-hash search ITQ-64 index ({DATABASE:,} images)  {1000 * search:7.0f} ms")
        numbers.update(python_ms=1000 * python, imports_ms=1000 * imports, search_ms=1000 * search,
                       beyond_python_ms=1000 * beyond, ratio_to_target=beyond / TARGET_SECONDS)
        verdict = "met" if beyond <= TARGET_SECONDS else "NOT met"
        print(f"  beyond Python's start                            {1000 * beyond:7.0f} ms = "
              f"{beyond / TARGET_SECONDS:.2f} x the target of {1000 * TARGET_SECONDS:.0f} ms ({verdict})")
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
            model_split = subprocess.run([sys.executable, "-c", MODEL_SPLIT, args.model], check=True,
                                         capture_output=True, text=True).stdout.strip()
            print(f"  the model load, split: {model_split}")
            numbers.update(model=args.model, scae_timings=split.removeprefix("timings: "), model_split=model_split)
    if args.out:
        from scae_hash.results import save_benchmark

        save_benchmark(args.out, numbers)


if __name__ == "__main__":
    main()
