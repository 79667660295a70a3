"""Retrieval metrics against textbook per-query loops (docs/protocol.md conventions)."""

import itertools

import numpy as np
import pytest

from scae_hash.errors import CodesFileError, ConfigError
from scae_hash.metrics import RetrievalMetrics, evaluate_codes, evaluate_features

MAP_AT = (1, 7, 50, 10_000)  # 10,000 is beyond every database here: the whole ranking
PRECISION_AT = (1, 5, 20, 10_000)
CURVE_MAX_N = 40


def textbook_ap(relevant_in_order: np.ndarray, k: int) -> float:
    """(1/R_k) sum_{i <= k} P@i rel(i), 0 when the top k holds no relevant item."""
    hits, total = 0, 0.0
    for position, relevant in enumerate(relevant_in_order[:k], start=1):
        if relevant:
            hits += 1
            total += hits / position
    return total / hits if hits else 0.0


def textbook_tie_aware_ap(distance: np.ndarray, relevant: np.ndarray) -> float:
    """He et al.'s per-bucket sum, term by term: sum_j (R + 1 + (j-1)(r-1)/(n-1)) / (N + j)."""
    total, before, relevant_before = 0.0, 0, 0
    for value in np.unique(distance):
        in_bucket = distance == value
        n, r = int(in_bucket.sum()), int((in_bucket & relevant).sum())
        for j in range(1, n + 1):
            total += r / n * (relevant_before + 1 + (j - 1) * (r - 1) / max(n - 1, 1)) / (before + j)
        before, relevant_before = before + n, relevant_before + r
    return total / relevant.sum() if relevant.any() else 0.0


def reference_metrics(query_bits, database_bits, query_labels, database_labels) -> dict:
    """Per query: brute-force distances, a stable lexsort, then loops."""
    n_database, n_bits = database_bits.shape
    distances = (query_bits[:, None, :] != database_bits[None, :, :]).sum(axis=-1)
    per_query = []
    for distance, label in zip(distances, query_labels):
        order = np.lexsort((np.arange(n_database), distance))
        ranked = database_labels[order] == label
        is_relevant = database_labels == label

        def within(r: int) -> tuple[float, float, float]:
            """Precision, recall and emptiness of the items at distance <= r."""
            retrieved = distance <= r
            hits = int((retrieved & is_relevant).sum())
            precision = hits / retrieved.sum() if retrieved.any() else 0.0
            return precision, hits / is_relevant.sum() if is_relevant.any() else 0.0, float(not retrieved.any())

        per_query.append(
            {
                "map": textbook_ap(ranked, n_database),
                "map_tie_aware": textbook_tie_aware_ap(distance, is_relevant),
                "p_r2": within(2)[0],
                "r2_empty_share": within(2)[2],
                **{f"map_at_{k}": textbook_ap(ranked, k) for k in MAP_AT},
                **{f"precision_at_{n}": ranked[:n].sum() / min(n, n_database) for n in PRECISION_AT},
                "curve": [ranked[:n].sum() / min(n, n_database) for n in range(1, CURVE_MAX_N + 1)],
                "radius": [within(r) for r in range(n_bits + 1)],
            }
        )
    mean = {key: np.mean([query[key] for query in per_query], axis=0) for key in per_query[0]}
    radius = mean.pop("radius")
    return {**mean, "radius_precision": radius[:, 0], "radius_recall": radius[:, 1], "radius_empty": radius[:, 2]}


def evaluate(query_bits, database_bits, query_labels, database_labels, **options) -> RetrievalMetrics:
    return evaluate_codes(
        query_bits, database_bits, query_labels, database_labels,
        map_at=MAP_AT, precision_at=PRECISION_AT, curve_max_n=CURVE_MAX_N, **options,
    )


def assert_matches_reference(metrics: RetrievalMetrics, query_bits, database_bits, query_labels, database_labels):
    expected = reference_metrics(query_bits, database_bits, query_labels, database_labels)
    summary = metrics.summary()
    scalar_keys = ["map", "map_tie_aware", "p_r2", "r2_empty_share"]
    for key in [*scalar_keys, *(f"map_at_{k}" for k in MAP_AT), *(f"precision_at_{n}" for n in PRECISION_AT)]:
        assert summary[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-12), key
    assert metrics.precision_curve == pytest.approx(expected["curve"], rel=1e-12)
    assert metrics.radius_precision == pytest.approx(expected["radius_precision"], rel=1e-12)
    assert metrics.radius_recall == pytest.approx(expected["radius_recall"], rel=1e-12)
    assert metrics.radius_empty_share == pytest.approx(expected["radius_empty"])
    assert metrics.n_queries == len(query_bits) and metrics.n_bits == query_bits.shape[1]


def random_case(seed: int, n_bits: int, n_queries: int = 12, n_database: int = 150, n_classes: int = 4):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 2, size=(n_queries, n_bits), dtype=np.uint8),
        rng.integers(0, 2, size=(n_database, n_bits), dtype=np.uint8),
        rng.integers(0, n_classes, size=n_queries),
        rng.integers(0, n_classes, size=n_database),
    )


def random_tie_order_map(query_bits, database_bits, query_labels, database_labels, n_orders, seed) -> float:
    """Mean AP over random orders of the items at equal distance (Monte Carlo)."""
    rng = np.random.default_rng(seed)
    distances = (query_bits[:, None, :] != database_bits[None, :, :]).sum(axis=-1)
    aps = [
        textbook_ap(database_labels[np.lexsort((rng.random(len(distance)), distance))] == label, len(distance))
        for _ in range(n_orders)
        for distance, label in zip(distances, query_labels)
    ]
    return float(np.mean(aps))


@pytest.mark.parametrize("n_bits", [1, 2, 8, 13, 63, 64, 65])
def test_matches_reference_on_random_codes(n_bits):
    case = random_case(seed=n_bits, n_bits=n_bits)
    assert_matches_reference(evaluate(*case), *case)


@pytest.mark.parametrize("n_bits", [127, 128, 256])
def test_matches_reference_where_keys_or_distances_need_uint16(n_bits):
    case = random_case(seed=n_bits, n_bits=n_bits, n_database=60)
    assert_matches_reference(evaluate(*case), *case)


def test_all_items_tied_rank_in_database_order():
    _, _, query_labels, database_labels = random_case(seed=1, n_bits=8)
    query_bits, database_bits = np.zeros((12, 16), dtype=np.uint8), np.zeros((150, 16), dtype=np.uint8)
    metrics = evaluate(query_bits, database_bits, query_labels, database_labels)
    assert_matches_reference(metrics, query_bits, database_bits, query_labels, database_labels)
    assert metrics.radius_empty_share == pytest.approx(np.zeros(17))


def test_query_without_any_relevant_item_scores_zero_and_still_counts():
    query_bits, database_bits, query_labels, database_labels = random_case(seed=2, n_bits=16)
    query_labels[0] = 99  # no database item has this class
    metrics = evaluate(query_bits, database_bits, query_labels, database_labels)
    assert_matches_reference(metrics, query_bits, database_bits, query_labels, database_labels)
    alone = evaluate(query_bits[:1], database_bits, query_labels[:1], database_labels)
    assert (alone.map, alone.map_tie_aware, alone.map_at[7], alone.radius_recall.max()) == (0.0, 0.0, 0.0, 0.0)
    rest = evaluate(query_bits[1:], database_bits, query_labels[1:], database_labels)
    assert metrics.map == pytest.approx(rest.map * 11 / 12)


def test_depths_beyond_the_database_mean_the_whole_ranking():
    case = random_case(seed=3, n_bits=8, n_database=30)
    metrics = evaluate(*case)
    assert metrics.map_at[10_000] == metrics.map
    assert metrics.precision_at[10_000] == pytest.approx(np.mean([(case[3] == label).mean() for label in case[2]]))


def test_chunking_and_threads_do_not_change_any_result():
    case = random_case(seed=4, n_bits=24, n_queries=23)
    reference = evaluate(*case, chunk_size=None, n_threads=1)
    for chunk_size, n_threads, progress in [(1, 1, False), (5, 2, True), (23, 2, False), (100, 3, False)]:
        metrics = evaluate(*case, chunk_size=chunk_size, n_threads=n_threads, progress=progress)
        assert metrics.summary() == reference.summary()
        for field in ("precision_curve", "radius_precision", "radius_recall", "radius_empty_share"):
            np.testing.assert_array_equal(getattr(metrics, field), getattr(reference, field))


@pytest.mark.parametrize("n_bits", [4, 8])
def test_tie_aware_map_is_the_mean_over_random_tie_orders(n_bits):
    query_bits, database_bits, _, database_labels = random_case(
        seed=10 + n_bits, n_bits=n_bits, n_queries=6, n_database=40, n_classes=3
    )
    # Class-0 queries against a database sorted by class: index order puts relevant items
    # first within every tie, so the stable mAP clearly exceeds the tie-aware one.
    case = query_bits, database_bits, np.zeros(6, dtype=int), np.sort(database_labels)
    sampled = random_tie_order_map(*case, n_orders=2000, seed=n_bits)
    metrics = evaluate(*case)
    assert metrics.map_tie_aware == pytest.approx(sampled, abs=3e-3)
    assert abs(metrics.map_tie_aware - metrics.map) > 0.02, "the case must have ties that matter"


def test_tie_aware_map_equals_the_exact_mean_over_all_tie_orders():
    database_bits = np.array([[0, 0], [0, 1], [0, 0], [1, 0], [0, 1], [1, 1], [0, 0]], dtype=np.uint8)
    database_labels = np.array([1, 0, 0, 1, 1, 0, 1])
    query_bits, query_labels = np.zeros((1, 2), dtype=np.uint8), np.array([1])
    distances = database_bits.sum(axis=1)
    buckets = [np.flatnonzero(distances == d) for d in range(3)]
    aps = [
        textbook_ap(database_labels[np.concatenate(orders)] == 1, 7)
        for orders in itertools.product(*(itertools.permutations(bucket) for bucket in buckets))
    ]
    metrics = evaluate(query_bits, database_bits, query_labels, database_labels)
    assert metrics.map_tie_aware == pytest.approx(np.mean(aps), rel=1e-12)


def test_tie_aware_map_equals_stable_map_without_ties():
    n_bits = 40
    weights = np.random.default_rng(6).permutation(n_bits + 1)
    database_bits = (np.arange(n_bits)[None, :] < weights[:, None]).astype(np.uint8)  # distinct distances
    database_labels = np.random.default_rng(7).integers(0, 3, size=n_bits + 1)
    query_bits = np.vstack([np.zeros(n_bits, dtype=np.uint8), np.ones(n_bits, dtype=np.uint8)])
    metrics = evaluate(query_bits, database_bits, np.array([0, 2]), database_labels)
    assert metrics.map_tie_aware == pytest.approx(metrics.map, rel=1e-12)


def test_summary_has_flat_scalar_keys():
    metrics = evaluate_codes(*random_case(seed=8, n_bits=16))
    assert list(metrics.summary()) == [
        "map", "map_at_1000", "map_tie_aware", "precision_at_1", "precision_at_10", "precision_at_50",
        "precision_at_100", "precision_at_500", "precision_at_1000", "p_r2", "r2_empty_share",
    ]
    assert all(isinstance(value, float) for value in metrics.summary().values())
    assert metrics.precision_curve.shape == (1000,) and metrics.radius_precision.shape == (17,)


def reference_feature_map(query_features, database_features, query_labels, database_labels, metric) -> float:
    aps = []
    for query, label in zip(query_features.astype(np.float64), query_labels):
        if metric == "cosine":
            unit = database_features / np.linalg.norm(database_features, axis=1, keepdims=True)
            distance = -(unit @ (query / np.linalg.norm(query)))
        else:
            distance = ((database_features - query) ** 2).sum(axis=1)
        order = np.lexsort((np.arange(len(distance)), distance))
        aps.append(textbook_ap(database_labels[order] == label, len(distance)))
    return float(np.mean(aps))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_feature_ranking_matches_reference(metric):
    rng = np.random.default_rng(9)
    query_features, database_features = rng.normal(size=(10, 5)), rng.normal(size=(80, 5))
    query_labels, database_labels = rng.integers(0, 3, size=10), rng.integers(0, 3, size=80)
    metrics = evaluate_features(query_features, database_features, query_labels, database_labels, metric=metric)
    expected = reference_feature_map(query_features, database_features, query_labels, database_labels, metric)
    assert metrics.map == pytest.approx(expected, rel=1e-12)
    assert np.isnan(metrics.map_tie_aware) and np.isnan(metrics.p_r2) and metrics.n_bits is None
    assert metrics.radius_precision.size == 0


def test_feature_ties_are_broken_by_database_index():
    database_features = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 2)
    database_labels = np.array([0, 1, 1, 0, 1, 0])
    metrics = evaluate_features(np.array([[2.0, 0.0]]), database_features, np.array([1]), database_labels)
    assert metrics.map == pytest.approx(textbook_ap(np.array([0, 1, 1, 0, 1, 0]) == 1, 6))
    assert metrics.precision_at[1] == 0.0


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: evaluate_codes(np.zeros((2, 8)), np.zeros((3, 9)), [0, 1], [0, 1, 2]), CodesFileError),
        (lambda: evaluate_codes(np.zeros((2, 8)), np.zeros((3, 8)), [0], [0, 1, 2]), CodesFileError),
        (lambda: evaluate_codes(np.full((2, 8), 2), np.zeros((3, 8)), [0, 1], [0, 1, 2]), CodesFileError),
        (lambda: evaluate_codes(np.zeros((2, 8)), np.zeros((3, 8)), [0, 1], [0, 1, 2], map_at=(0,)), ConfigError),
        (lambda: evaluate_features(np.ones((2, 3)), np.ones((3, 3)), [0, 1], [0, 1, 2], metric="l1"), ConfigError),
    ],
    ids=["bit-mismatch", "label-length", "not-binary", "bad-depth", "bad-metric"],
)
def test_bad_inputs_raise_clear_errors(call, error):
    with pytest.raises(error):
        call()
