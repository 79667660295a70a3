"""The one evaluation road: fit a Hasher on the protocol's training set, encode queries and
database, score the codes, and measure cost. Every experiment and CLI command goes through here."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from scae_hash.codes import iter_hamming_distances, pack_bits
from scae_hash.codes_file import CodeSet, CodesFile
from scae_hash.data import Dataset
from scae_hash.hashers.base import Hasher
from scae_hash.metrics import RetrievalMetrics, evaluate_codes, evaluate_features
from scae_hash.protocol import Split
from scae_hash.results import provenance


@dataclass
class RunOutcome:
    row: dict
    codes: CodesFile
    metrics: RetrievalMetrics
    feature_row: dict | None = None  # the continuous-feature ("deep metric") baseline, if any


def run_hasher(
    hasher: Hasher,
    dataset: Dataset,
    split: Split,
    *,
    method: str,
    protocol: str,
    split_seed: int,
    config: dict | None = None,
    progress: bool = True,
) -> RunOutcome:
    """Fit, encode and score one method at one bit length under one protocol split."""
    x_database = dataset.as_float(split.database)
    same_train = np.array_equal(split.train, split.database)
    x_train = x_database if same_train else dataset.as_float(split.train)

    start = time.perf_counter()
    if hasher.supervised:
        hasher.fit(x_train, labels=dataset.labels[split.train])
    else:
        hasher.fit(x_train)
    fit_seconds = time.perf_counter() - start
    del x_train

    start = time.perf_counter()
    database_bits, database_features = hasher.encode_with_features(x_database)
    encode_seconds = time.perf_counter() - start
    del x_database
    query_bits, query_features = hasher.encode_with_features(dataset.as_float(split.query))

    query_labels, database_labels = dataset.labels[split.query], dataset.labels[split.database]
    metrics = evaluate_codes(query_bits, database_bits, query_labels, database_labels, progress=progress)
    info = provenance(config)
    codes = CodesFile(
        query=CodeSet(query_bits, query_labels, split.query, query_features),
        database=CodeSet(database_bits, database_labels, split.database, database_features),
        attrs={
            "method": method,
            "dataset": dataset.name,
            "protocol": protocol,
            "nbits": hasher.n_bits,
            "seed": hasher.seed,
            "split_seed": split_seed,
            **{key: info[key] for key in ("commit", "created", "command", "config")},
        },
    )
    row = {
        "method": method,
        "dataset": dataset.name,
        "protocol": protocol,
        "bits": hasher.n_bits,
        "seed": hasher.seed,
        "split_seed": split_seed,
        "supervision": "supervised" if hasher.supervised else "unsupervised",
        **metrics.summary(),
        **bit_usage(database_bits),
        "n_query": len(split.query),
        "n_database": len(split.database),
        "n_train": len(split.train),
        "fit_seconds": round(fit_seconds, 3),
        "encode_ms_per_image": 1e3 * encode_seconds / len(split.database),
        "query_ms": query_milliseconds(query_bits, database_bits),
        "code_bytes": int(pack_bits(database_bits).nbytes),
        "data_source": dataset.source,
        **info,
    }
    feature_row = None
    if query_features is not None and database_features is not None:
        feature_row = continuous_feature_row(row, query_features, database_features, query_labels,
                                             database_labels, progress=progress)
    return RunOutcome(row=row, codes=codes, metrics=metrics, feature_row=feature_row)


def continuous_feature_row(code_row: dict, query_features: np.ndarray, database_features: np.ndarray,
                           query_labels: np.ndarray, database_labels: np.ndarray, *, progress: bool) -> dict:
    """The same run scored by cosine ranking of its continuous features instead of codes:
    the "deep metric" baseline that shows what binarisation costs (in accuracy and memory)."""
    metrics = evaluate_features(query_features, database_features, query_labels, database_labels,
                                progress=progress)
    start = time.perf_counter()
    evaluate_features(query_features[:100], database_features, query_labels[:100], database_labels,
                      map_at=(), precision_at=(), curve_max_n=0)
    query_ms = 1e3 * (time.perf_counter() - start) / min(100, len(query_features))
    summary = {key: value for key, value in metrics.summary().items() if key not in ("p_r2", "r2_empty_share")}
    return {
        **code_row,
        "method": f"{code_row['method']}-features",
        **{key: None for key in ("map_tie_aware", "p_r2", "r2_empty_share", "bit_rate_min", "bit_rate_max")},
        **summary,
        "feature_dim": int(database_features.shape[1]),
        "query_ms": query_ms,
        "code_bytes": int(database_features.astype(np.float32).nbytes),
    }


def score_codes(codes: CodesFile, *, progress: bool = True) -> dict:
    """Score a saved codes file with the same metrics as a fresh run."""
    metrics = evaluate_codes(
        codes.query.bits, codes.database.bits, codes.query.labels, codes.database.labels, progress=progress
    )
    keys = ("method", "dataset", "protocol", "seed", "split_seed")
    return {
        **{key: codes.attrs.get(key) for key in keys},
        "bits": codes.n_bits,
        **metrics.summary(),
        **bit_usage(codes.database.bits),
    }


def bit_usage(bits: np.ndarray) -> dict:
    """How often the least and most used bit fires on the database: a dead bit shows as 0 or 1."""
    rates = bits.mean(axis=0)
    return {"bit_rate_min": float(rates.min()), "bit_rate_max": float(rates.max())}


def query_milliseconds(query_bits: np.ndarray, database_bits: np.ndarray, n_queries: int = 200) -> float:
    """Wall time of a full Hamming ranking (distances + stable sort) per query."""
    queries = query_bits[:n_queries]
    start = time.perf_counter()
    for _, distances in iter_hamming_distances(queries, database_bits):
        np.argsort(distances, axis=1, kind="stable")
    return 1e3 * (time.perf_counter() - start) / len(queries)
