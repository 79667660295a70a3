"""Golden codes: the shallow baselines are deterministic given their seed, so their codes on a
fixed small input are pinned bit for bit. A change to a baseline's maths, its PCA solver or its
random draws changes the reported baseline rows; this test names it before `scae-hash reproduce`
has to. After a deliberate change, regenerate the golden file and commit it with the change:

    PYTHONPATH=. python tests/test_golden_codes.py
"""

from pathlib import Path

import numpy as np
import pytest

from test_hashers import clustered_images

from scae_hash.hashers import BASELINES, make_baseline, method_class
from scae_hash.hashers.shallow import _PixelHasher

# The projection baselines: closed-form given the seed. IMH is left out: its UMAP layout goes
# through numba's floating point, which need not agree bit for bit across machines (its
# reproducibility is `reproduce --check`'s job, within the plan's tolerance).
GOLDEN_METHODS = sorted(name for name in BASELINES if issubclass(method_class(name), _PixelHasher))

GOLDEN = Path(__file__).with_name("golden") / "shallow_codes.npz"
BITS, SEED = 16, 1


def golden_input() -> np.ndarray:
    """200 small images (20 classes of 10, 6x6 pixels) from a fixed seed, chosen so that no
    projection lies within float rounding of a sign change (the smallest is about a thousandth
    of the median) and the top 17 PCA eigenvalues are well apart: BLAS differences between
    machines cannot flip a bit."""
    return clustered_images(n_per_class=10, n_classes=20, seed=38)[0]


def packed_codes(method: str) -> np.ndarray:
    x = golden_input()
    return np.packbits(make_baseline(method, BITS, seed=SEED).fit(x).encode(x), axis=1)


def test_golden_file_covers_every_projection_baseline():
    assert sorted(np.load(GOLDEN)) == GOLDEN_METHODS


@pytest.mark.parametrize("method", GOLDEN_METHODS)
def test_codes_match_the_golden_codes_bit_for_bit(method):
    expected = np.load(GOLDEN)[method]
    codes = packed_codes(method)
    assert codes.shape == expected.shape == (200, BITS // 8)
    differing = np.unpackbits(codes ^ expected, axis=1).sum()
    assert differing == 0, f"{method}: {differing} of {200 * BITS} bits differ from {GOLDEN.name}"


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **{method: packed_codes(method) for method in GOLDEN_METHODS})
    print(f"wrote {GOLDEN}")
