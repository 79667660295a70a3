"""Encoding cost per image of SCAE-hash, SCAE-manifold and IMH, side by side in one run.

    python experiments/bench_encode.py                  # MNIST configs, 10,000 images
    python experiments/bench_encode.py --dataset fashion --images 20000

The networks are built from the committed configs with fresh weights (encoding time does not
depend on the weights); IMH is fitted on the images themselves. Each method encodes the same
images from pixels to bits, as its `encode` does on the evaluation road; the ratios to SCAE-hash
are what to read: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

CONFIGS = Path(__file__).resolve().parent / "configs"


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion", "cifar10"])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import keras

    from scae_hash.config import load_config
    from scae_hash.data import load_dataset
    from scae_hash.hashers import make_baseline
    from scae_hash.hashers.scae import INFERENCE_BATCH
    from scae_hash.manifold.binarize import FourierITQ
    from scae_hash.manifold.config import load_manifold_config
    from scae_hash.manifold.network import GraphAutoencoder, LayoutFrame
    from scae_hash.model.blocks import ConvAEBlocks
    from scae_hash.model.hashing_model import HashingModel

    dataset = load_dataset(args.dataset, progress=False)
    x = dataset.as_float(np.arange(min(args.images, len(dataset.labels))))

    thesis = load_config(CONFIGS / f"{args.dataset}.yaml")
    keras.utils.set_random_seed(0)
    hashing = HashingModel(64, seed=0, **thesis.model_hyperparameters())
    hashing.predict(x[:8], verbose=0)

    manifold = load_manifold_config(CONFIGS / "manifold" / f"{args.dataset}.yaml")
    blocks = ConvAEBlocks(manifold.image_shape, manifold.model.block_channels, manifold.model.kernel_size,
                          manifold.model.convs_per_block)
    unit = LayoutFrame(a=1.0, b=1.0, mean=np.zeros(manifold.graph.n_components),
                       scale=np.ones(manifold.graph.n_components))
    network = GraphAutoencoder(blocks, manifold, frame=unit, seed=0)
    layout = np.asarray(network.predict(x[:2000], batch_size=INFERENCE_BATCH, verbose=0)["layout"])
    binarizer = FourierITQ(64, 0).fit(layout)

    imh = make_baseline("imh", 64, 0).fit(x)

    def scae_hash() -> None:
        codes = hashing.predict(x, batch_size=INFERENCE_BATCH, verbose=0)["codes"]
        np.asarray(codes) > 0

    def scae_manifold() -> None:
        binarizer.bits(np.asarray(network.predict(x, batch_size=INFERENCE_BATCH, verbose=0)["layout"]))

    timings = {"scae (SCAE-hash)": best_of(args.repeats, scae_hash),
               "scae-manifold": best_of(args.repeats, scae_manifold),
               "imh": best_of(args.repeats, lambda: imh.encode(x))}
    reference = timings["scae (SCAE-hash)"]
    print(f"encoding {len(x)} {args.dataset} images, pixels to 64-bit codes (best of {args.repeats}):")
    for method, seconds in timings.items():
        print(f"  {method:18s} {1e3 * seconds / len(x):7.3f} ms/image   {seconds / reference:5.2f} x SCAE-hash")


if __name__ == "__main__":
    main()
