"""Names and ranges that every layer of the package shares, kept in one module that imports
nothing of the package, so that the CLI, configs, hashers and data loaders agree on them."""

from __future__ import annotations

#: Code lengths a hasher accepts.
MIN_BITS, MAX_BITS = 8, 256

#: The docs/protocol.md data sets.
DATASETS: tuple[str, ...] = ("mnist", "fashion", "cifar10")

#: (height, width, channels) of each docs/protocol.md data set.
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    "mnist": (28, 28, 1),
    "fashion": (28, 28, 1),
    "cifar10": (32, 32, 3),
}

#: Which queries a run scores: the docs/protocol.md test queries, or the validation queries drawn
#: from the training set (for choosing configs; their rows go to a results file of their own).
SPLITS: tuple[str, ...] = ("test", "validation")

#: What tells one run's result row from another's: the latest row of each counts (tables, the
#: plan's cells). ``variant`` names the config a SCAE row came from (its file stem, plus a hash
#: of any --set overrides); ``split`` tells a validation row from the test row of the same run
#: (a row without it is a test row).
RUN_KEYS: tuple[str, ...] = ("method", "variant", "dataset", "protocol", "bits", "seed", "split_seed", "split")

#: The run whose artifacts (code samples, examples, reconstructions) the thesis figures draw:
#: other code lengths and seeds keep only their rows and curves, so results/ stays small.
FIGURE_BITS, FIGURE_SEED = 64, 0
