"""Deep metric learning vs deep hashing on one data set and code length: quality, query time and
memory of each way to rank the database, from the same models (experiments/compare_retrieval.py).

By job: `ranking` (the rows and how each ranks and is scored), `costs` (query time and memory),
`report` (table and figure from saved rows), `runner` (models, caching, the run itself).
"""

from scae_hash.comparison.runner import ComparisonSetup, run_comparison

__all__ = ["ComparisonSetup", "run_comparison"]
