"""Deep metric vs deep hashing comparison: the ranking scorer and the two-stage ranking against
brute force, the cost model, the table and figure, and that labels reach supervised hashers only."""

import numpy as np
import pandas as pd
import pytest

from scae_hash.codes_file import CodeSet, CodesFile
from scae_hash.comparison.costs import QueryCost, bytes_per_item, measure_query_costs
from scae_hash.comparison.ranking import ENTRIES, Entry, score_entry, supervision, two_stage_ranking
from scae_hash.comparison.report import write_figures, write_tables
from scae_hash.comparison.runner import entry_row
from scae_hash.data import MNIST_CLASSES, Dataset
from scae_hash.errors import ConfigError
from scae_hash.evaluation import run_hasher
from scae_hash.hashers.base import Hasher
from scae_hash.index import HammingIndex, two_stage_search
from scae_hash.metrics import evaluate_codes, evaluate_ranking
from scae_hash.protocol import Split
from scae_hash.rerank import unit_rows


def brute_force_scores(ranking: np.ndarray, query_labels, database_labels, k: int, n: int) -> tuple[float, float, float]:
    """mAP, mAP@k and precision@n of a given ranking, one query and one position at a time."""
    aps, aps_k, precisions = [], [], []
    for query, order in enumerate(ranking):
        relevant = [database_labels[item] == query_labels[query] for item in order]

        def ap(depth):
            hits, total = 0, 0.0
            for position in range(depth):
                if relevant[position]:
                    hits += 1
                    total += hits / (position + 1)
            return total / hits if hits else 0.0

        aps.append(ap(len(order)))
        aps_k.append(ap(min(k, len(order))))
        precisions.append(sum(relevant[:n]) / n)
    return float(np.mean(aps)), float(np.mean(aps_k)), float(np.mean(precisions))


def brute_force_two_stage(query_bits, database_bits, query_features, database_features, shortlist):
    rankings = []
    query_unit, database_unit = unit_rows(query_features), unit_rows(database_features)
    for q in range(len(query_bits)):
        distance = (query_bits[q] != database_bits).sum(axis=1)
        hamming_order = sorted(range(len(database_bits)), key=lambda j: (distance[j], j))
        head = hamming_order[:shortlist]
        similarity = {j: float(database_unit[j] @ query_unit[q]) for j in head}
        head = sorted(head, key=lambda j: (-similarity[j], head.index(j)))
        rankings.append(head + hamming_order[shortlist:])
    return np.array(rankings)


def random_models(n_query=7, n_database=60, bits=16, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    query_labels, database_labels = rng.integers(0, 3, n_query), rng.integers(0, 3, n_database)

    def codes(method, features=True):
        def part(n, labels):
            return CodeSet(rng.integers(0, 2, (n, bits)).astype(np.uint8), labels, np.arange(n),
                           rng.standard_normal((n, dim)).astype(np.float32) if features else None)
        return CodesFile(part(n_query, query_labels), part(n_database, database_labels),
                         attrs={"method": method, "seed": 0, "dataset": "toy", "protocol": "toy", "split_seed": 0})

    return {"scae": codes("scae"), "scae-dual": codes("scae"), "itq": codes("itq", features=False)}


def test_evaluate_ranking_matches_brute_force():
    rng = np.random.default_rng(1)
    query_labels, database_labels = rng.integers(0, 4, 9), rng.integers(0, 4, 50)
    ranking = np.array([rng.permutation(50) for _ in range(9)])
    metrics = evaluate_ranking(lambda rows: ranking[rows], query_labels, database_labels, map_at=(7,),
                               precision_at=(5,), curve_max_n=0, chunk_size=4)
    expected = brute_force_scores(ranking, query_labels, database_labels, k=7, n=5)
    assert (metrics.map, metrics.map_at[7], metrics.precision_at[5]) == pytest.approx(expected)


def test_evaluate_ranking_of_the_hamming_order_equals_evaluate_codes():
    models = random_models()
    codes = models["scae"]
    distances = (codes.query.bits[:, None, :] != codes.database.bits[None, :, :]).sum(axis=2)
    order = np.argsort(distances, axis=1, kind="stable")
    labels = codes.query.labels, codes.database.labels
    given = evaluate_ranking(lambda rows: order[rows], *labels, map_at=(10,))
    hamming = evaluate_codes(codes.query.bits, codes.database.bits, *labels, map_at=(10,))
    assert given.map == pytest.approx(hamming.map) and given.map_at == pytest.approx(hamming.map_at)
    np.testing.assert_allclose(given.precision_curve, hamming.precision_curve)


def test_evaluate_ranking_rejects_a_ranking_of_the_wrong_shape():
    with pytest.raises(ConfigError, match="shape"):
        evaluate_ranking(lambda rows: np.zeros((rows.stop - rows.start, 3), dtype=int), np.zeros(2, int),
                         np.zeros(4, int))


@pytest.mark.parametrize("shortlist", [1, 10, 60, 100])
def test_two_stage_ranking_matches_brute_force(shortlist):
    codes = random_models()["scae"]
    # Duplicated feature rows make equal similarities: they must keep their Hamming order.
    codes.database.features[5:10] = codes.database.features[0]
    args = (codes.query.bits, codes.database.bits, codes.query.features, codes.database.features)
    got = np.concatenate([two_stage_ranking(*args, shortlist)(slice(start, min(start + 3, 7)))
                          for start in range(0, 7, 3)])
    np.testing.assert_array_equal(got, brute_force_two_stage(*args, shortlist))


@pytest.mark.parametrize("shortlist", [5, 40])
def test_the_comparisons_two_stage_head_is_what_the_index_returns(shortlist):
    """One re-ranker: the comparison's ranking starts with the index's two-stage answer, ties and
    all (8-bit codes and duplicated features make many), also with a second model's features."""
    models = random_models(n_query=9, n_database=80, bits=8)
    codes, other = models["scae"], models["scae-dual"]
    for features in (codes, other):
        features.database.features[10:20] = features.database.features[0]
        args = (codes.query.bits, codes.database.bits, features.query.features, features.database.features)
        ranking = two_stage_ranking(*args, shortlist)(slice(0, 9))
        index = HammingIndex(8).add(codes.database.bits)
        _, ids = two_stage_search(index, codes.query.bits, features.query.features, features.database.features,
                                  k=shortlist, shortlist=shortlist)
        np.testing.assert_array_equal(ranking[:, :shortlist], ids)


def test_two_stage_entry_scores_its_full_ranking():
    models = random_models()
    entry = Entry("dual", codes="scae", features="scae-dual", shortlist=20)
    metrics = score_entry(entry, models)
    codes, features = models["scae"], models["scae-dual"]
    ranking = brute_force_two_stage(codes.query.bits, codes.database.bits, features.query.features,
                                     features.database.features, 20)
    expected = brute_force_scores(ranking, codes.query.labels, codes.database.labels, k=1000, n=10)
    assert (metrics.map, metrics.map_at[1000], metrics.precision_at[10]) == pytest.approx(expected)


def test_costs_bytes_and_linear_extrapolation():
    models = random_models(bits=64, dim=256)
    assert bytes_per_item(Entry("a", codes="scae"), models) == 8
    assert bytes_per_item(Entry("b", features="scae"), models) == 1024
    assert bytes_per_item(Entry("c", codes="scae", features="scae-dual", shortlist=5), models) == 1032
    cost = QueryCost(scan_ms=2.0, rerank_ms=0.5, n_database=1000)
    assert cost.total_ms == 2.5
    assert cost.extrapolated_ms(1_000_000) == pytest.approx(2000.5)
    assert cost.extrapolated_ms(100_000_000) == pytest.approx(200_000.5)


def test_measured_rows_and_supervision_marks():
    models = random_models(bits=64, dim=8)
    models["siamese-supervised"] = models["scae-dual"]
    entries = (Entry("x", codes="scae"), Entry("y", features="scae"),
               Entry("z", codes="scae", features="scae-dual", shortlist=10))
    costs = measure_query_costs(entries, models, repeats=2, n_queries=3, k=5)
    for entry in entries:
        cost = costs[entry.method]
        assert cost.scan_ms > 0 and (cost.rerank_ms > 0) == (entry.ranking == "two-stage")
        row = entry_row(entry, models, score_entry(entry, models), cost, seed=0, threads=1, n_timing_queries=3,
                        repeats=1)
        assert row["query_ms_1m"] > row["query_ms"] and row["memory_bytes_100m"] == 100 * row["memory_bytes_1m"]
    assert {supervision(entry) for entry in ENTRIES if "siamese" in entry.method} == {"supervised"}
    assert {supervision(entry) for entry in ENTRIES if "siamese" not in entry.method} == {"unsupervised"}


def test_table_and_figure_from_saved_rows(tmp_path):
    rows = []
    for position, entry in enumerate(ENTRIES):
        rows.append({"method": entry.method, "ranking": entry.ranking, "shortlist": entry.shortlist,
                     "supervision": supervision(entry), "dataset": "mnist", "bits": 64, "map": 0.5 + position / 50,
                     "map_at_1000": 0.8, "precision_at_10": 0.9, "query_ms": 0.05 * (position + 1),
                     "bytes_per_item": 8 + 1024 * bool(entry.features), "query_ms_1m": 1.0, "query_ms_100m": 100.0,
                     "memory_bytes_1m": 8e6, "memory_bytes_100m": 8e8, "n_query": 1000, "n_database": 69000,
                     "split_seed": 0, "timing_k": 100, "query_threads": 1, "timing_queries": 200,
                     "timing_repeats": 5, "encode_ms_per_image": 0.04})
    frame = pd.DataFrame(rows)
    written = write_tables(frame, tmp_path / "tables") + write_figures(frame, tmp_path / "figures")
    assert [path.suffix for path in written] == [".md", ".tex", ".pdf", ".png"]
    markdown = written[0].read_text()
    assert "extrap." in markdown and "[supervised]" in markdown and "8 MB" in markdown
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == len(ENTRIES) + 1  # header + rows


class _RecordingHasher(Hasher):
    """Records what fit received; an unsupervised fit has no labels parameter at all."""

    name = "recording"

    def fit(self, x):
        self.fitted_on_ = len(x)
        return self

    def encode(self, x):
        return np.zeros((len(x), self.n_bits), dtype=np.uint8)


class _SupervisedRecordingHasher(_RecordingHasher):
    supervised = True

    def fit(self, x, labels=None):
        self.labels_ = labels
        return super().fit(x)


def _tiny_dataset():
    labels = np.arange(40, dtype=np.int64) % 10
    return Dataset("mnist", np.zeros((40, 4, 4, 1), dtype=np.uint8), labels, MNIST_CLASSES, "test"), \
        Split(query=np.arange(10), database=np.arange(10, 40), train=np.arange(20, 40))


def test_unsupervised_hashers_never_receive_labels():
    dataset, split = _tiny_dataset()
    outcome = run_hasher(_RecordingHasher(8), dataset, split, method="recording", protocol="mnist", split_seed=0,
                         progress=False)
    assert outcome.row["supervision"] == "unsupervised"
    supervised = _SupervisedRecordingHasher(8)
    outcome = run_hasher(supervised, dataset, split, method="recording", protocol="mnist", split_seed=0,
                         progress=False)
    np.testing.assert_array_equal(supervised.labels_, dataset.labels[split.train])
    assert outcome.row["supervision"] == "supervised"


@pytest.mark.slow
def test_siamese_hasher_learns_the_classes_of_a_tiny_set():
    from scae_hash.hashers.siamese import SiameseHasher

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 60)
    centres = rng.random((4, 8, 8, 1))
    images = np.clip(centres[labels] + 0.15 * rng.standard_normal((len(labels), 8, 8, 1)), 0, 1).astype(np.float32)
    hasher = SiameseHasher(16, seed=0, channels=(8, 16), embedding_dim=16, epochs=8, batch_size=64,
                           learning_rate=3e-3)
    with pytest.raises(ConfigError, match="labels"):
        hasher.fit(images)
    codes, features = hasher.fit(images, labels=labels).encode_with_features(images)
    assert codes.shape == (240, 16) and set(np.unique(codes)) <= {0, 1}
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1, atol=1e-4)
    similarity = features @ features.T
    same = labels[:, None] == labels[None, :]
    assert similarity[same].mean() > similarity[~same].mean() + 0.3
    assert SiameseHasher.supervised and SiameseHasher.name == "siamese-supervised"
