"""SCAEHasher end to end on tiny models: pretraining, caching, saving, resuming."""

import csv
from pathlib import Path

import keras
import numpy as np
import pytest

from scae_hash.config import SCAEConfig
from scae_hash.errors import ConfigError, DataError
from scae_hash.hashers.scae import SCAEHasher
from scae_hash.model.hashing_model import HashingModel
from scae_hash.model.pretrain import pretrain_blocks

TINY = {
    "dataset": "mnist",
    "model": {"block_channels": [4, 8], "scales": [1.0, 0.5], "fused_depths": [1, 2], "feature_dim": 16},
    "pretrain": {"epochs_per_block": 1, "batch_size": 128},
    "finetune": {"epochs": 1, "batch_size": 128},
    "augment": {"max_shift": 2.0, "pixel_drop": 0.1},
    "loss": {"decorrelation": 0.1},
}


def tiny_config(**sections) -> SCAEConfig:
    mapping = {**TINY, **{name: {**TINY.get(name, {}), **values} for name, values in sections.items()}}
    return SCAEConfig.from_dict(mapping)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((2000, 28, 28, 1), dtype=np.float32)


class StageRecorder(keras.callbacks.Callback):
    """Remembers each stage's block weights at its start and end, and the epochs it ran."""

    def __init__(self, blocks=None) -> None:
        super().__init__()
        self.blocks, self.weights, self.epochs = blocks, {}, []

    def snapshot(self):
        return [[w.copy() for w in encoder.get_weights()] for encoder in self.blocks.encoders]

    def on_train_begin(self, logs=None):
        if self.blocks is not None:
            self.weights[self.model.name] = [self.snapshot()]

    def on_train_end(self, logs=None):
        if self.blocks is not None:
            self.weights[self.model.name].append(self.snapshot())

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_end_to_end_cache_and_keras_round_trip(images: np.ndarray, tmp_path: Path):
    hasher = SCAEHasher(16, seed=0, config=tiny_config(), run_dir=tmp_path, progress=False)
    assert hasher.fit(images) is hasher
    codes = hasher.encode(images[:300])
    assert codes.shape == (300, 16) and codes.dtype == np.uint8 and set(np.unique(codes)) <= {0, 1}
    assert hasher.features(images[:5]).dtype == np.float32
    assert {"pretrain_block1", "pretrain_block2", "finetune"} <= set(hasher.timings_)
    for stage in ("pretrain_block1", "pretrain_block2", "finetune_16"):
        assert (tmp_path / f"history_{stage}.csv").is_file()

    loaded = SCAEHasher.load(tmp_path / "model_16.keras")
    assert (loaded.n_bits, loaded.config) == (16, hasher.config)
    np.testing.assert_array_equal(loaded.encode(images[:300]), codes)
    np.testing.assert_array_equal(loaded.features(images[:20]), hasher.features(images[:20]))

    second = SCAEHasher(8, seed=0, config=tiny_config(), run_dir=tmp_path, progress=False).fit(images)
    assert "pretrain_block1" not in second.timings_, "pretrained blocks should come from the cache"
    assert second.encode(images[:10]).shape == (10, 8)


def test_greedy_pretraining_freezes_earlier_blocks(images: np.ndarray, tmp_path: Path):
    config = tiny_config()
    blocks = HashingModel(16, **config.model_hyperparameters()).blocks
    recorder = StageRecorder(blocks)
    cache_dir = tmp_path / "cache"
    pretrain_blocks(blocks, images[:512], config, seed=0, cache_dir=cache_dir, progress=False, callbacks=(recorder,))
    (block1_before, block2_before), (block1_after, block2_after) = recorder.weights["pretrain_block2"]
    for before, after in zip(block1_before, block1_after):
        np.testing.assert_array_equal(before, after)
    assert any(not np.array_equal(b, a) for b, a in zip(block2_before, block2_after))
    first_before, first_after = recorder.weights["pretrain_block1"]
    assert any(not np.array_equal(b, a) for b, a in zip(first_before[0], first_after[0]))


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt("simulated kill after epoch 1")


@pytest.mark.parametrize("neighbours", [0, 3], ids=["augmented-views", "neighbour-positives"])
def test_resume_continues_from_saved_epoch(images: np.ndarray, tmp_path: Path, neighbours: int):
    config = tiny_config(pretrain={"enabled": False}, finetune={"epochs": 3}, loss={"neighbours": neighbours})
    with pytest.raises(KeyboardInterrupt):
        SCAEHasher(16, config=config, run_dir=tmp_path, progress=False).fit(images[:512], callbacks=[Interrupt()])
    assert not (tmp_path / "model_16.keras").exists()

    recorder = StageRecorder()
    resumed = SCAEHasher(16, config=config, run_dir=tmp_path, resume=True, progress=False)
    resumed.fit(images[:512], callbacks=[recorder])
    assert recorder.epochs == [1, 2]
    with open(tmp_path / "history_finetune_16.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1, 2]
    assert (tmp_path / "model_16.keras").is_file()


def test_same_seed_same_codes(images: np.ndarray):
    config = tiny_config(pretrain={"enabled": False}, loss={"neighbours": 3})
    runs = [SCAEHasher(16, seed=3, config=config, progress=False).fit(images[:512]) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].encode(images[:200]), runs[1].encode(images[:200]))


def test_rejects_images_of_the_wrong_shape(images: np.ndarray):
    with pytest.raises(DataError, match="28, 28, 1"):
        SCAEHasher(16, config=tiny_config(), progress=False).fit(np.zeros((4, 32, 32, 3), np.float32))


def test_itq_hash_head_gives_the_codes_of_itq_on_the_learned_features(images: np.ndarray):
    from scae_hash.hashers.shallow import ITQ

    config = tiny_config(pretrain={"enabled": False}, finetune={"hash_head": "itq"}, loss={"neighbours": 3})
    hasher = SCAEHasher(16, seed=0, config=config, progress=False).fit(images[:512])
    bits, features = hasher.encode_with_features(images[:300])
    expected = ITQ(16, seed=0).fit(hasher.features(images[:512])).encode(features)
    assert (bits == expected).mean() > 0.999
    assert 0.2 < bits.mean() < 0.8


def test_hidden_representation_exports_the_layer_before_the_projection(images: np.ndarray):
    config = tiny_config(
        pretrain={"enabled": False},
        finetune={"hash_head": "itq"},
        model={"representation": "hidden"},
        loss={"neighbours": 3},
    )
    hasher = SCAEHasher(16, seed=0, config=config, progress=False).fit(images[:512])
    model = hasher.model_
    hidden_layer, _ = model.feature_head.layers
    expected = keras.ops.convert_to_numpy(hidden_layer(model.encoder(images[:64])))
    np.testing.assert_allclose(hasher.features(images[:64]), expected, rtol=1e-5, atol=1e-6)
    assert 0.2 < hasher.encode(images[:300]).mean() < 0.8


def test_saved_model_loads_after_the_config_schema_renamed_and_gained_keys(images, tmp_path, monkeypatch):
    import dataclasses

    from scae_hash import config as config_module

    config = tiny_config(pretrain={"enabled": False})
    hasher = SCAEHasher(16, seed=0, config=config, progress=False).fit(images[:256])
    hasher.save(tmp_path / "model.keras")
    fields = [
        ("nt_xent_temperature" if f.name == "temperature" else f.name, f.type, dataclasses.field(default=f.default))
        for f in dataclasses.fields(config_module.LossConfig)
    ]
    renamed = dataclasses.make_dataclass("LossConfig", [*fields, ("a_new_weight", float, dataclasses.field(default=0.0))])
    monkeypatch.setattr(config_module, "LossConfig", renamed)
    with pytest.raises(ConfigError, match="unknown key 'loss.temperature'"):
        SCAEConfig.from_dict(config.to_dict())

    loaded = SCAEHasher.load(tmp_path / "model.keras", progress=False)
    assert loaded.config is None  # the old experiment config no longer parses: provenance only
    assert loaded.image_shape == (28, 28, 1)
    np.testing.assert_array_equal(loaded.encode(images[:100]), hasher.encode(images[:100]))


@pytest.mark.parametrize("kind", ["trained", "itq_finetuned"])
def test_head_stage_trains_the_hash_head_on_frozen_features(images, tmp_path, kind):
    from scae_hash.hashers.shallow import ITQ

    head = {"epochs": 2, **({"neighbour": 1.0, "neighbours": 3} if kind == "itq_finetuned" else {})}
    config = tiny_config(pretrain={"enabled": False}, model={"representation": "hidden"},
                         finetune={"hash_head": kind}, head=head, loss={"neighbours": 3})
    hasher = SCAEHasher(16, seed=0, config=config, run_dir=tmp_path, progress=False).fit(images[:512])
    assert "head" in hasher.timings_ and (tmp_path / "history_head_16.csv").is_file()
    bits, features = hasher.encode_with_features(images[:512])
    assert 0.2 < bits.mean() < 0.8
    itq_bits = ITQ(16, seed=0).fit(features).encode(features)
    with open(tmp_path / "history_head_16.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]
    agreement = (bits == itq_bits).mean()
    if kind == "itq_finetuned":
        assert agreement > 0.9, "a few steps from ITQ should stay near ITQ's codes"
    else:
        assert agreement < 0.99, "a head trained from scratch is not ITQ"


def test_cluster_head_exports_assignments_beside_the_features(images):
    config = tiny_config(
        pretrain={"enabled": False}, finetune={"hash_head": "itq"},
        model={"cluster_export": 1.0, "decoder_input": "features"},
        loss={"neighbours": 3, "cluster": 1.0, "clusters": 5, "self_label": 1.0, "cluster_confidence": 0.5,
              "quantization": 0, "balance": 0, "similarity": 0, "decorrelation": 0},
    )
    hasher = SCAEHasher(16, seed=0, config=config, progress=False).fit(images[:512])
    features = hasher.features(images[:64])
    assert features.shape == (64, 16 + 5)
    np.testing.assert_allclose(np.linalg.norm(features[:, :16], axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(features[:, 16:].sum(axis=1), 1.0, rtol=1e-4)
    assert 0.2 < hasher.encode(images[:300]).mean() < 0.8


def test_a_model_saved_with_the_whole_experiment_config_still_loads():
    """Files written before the model had its own hyperparameters carry ``scae_config``."""
    legacy = {"scae_config": tiny_config().to_dict(), "n_bits": 16, "seed": 0, "name": "hashing_model", "trainable": True}
    model = HashingModel.from_config(legacy)
    assert model.image_shape == (28, 28, 1) and model.hyperparameters["block_channels"] == [4, 8]
    assert model.metadata["dataset"] == "mnist"
    assert model.hyperparameters["loss_weights"]["decorrelation"] == 0.1


def test_a_detached_cluster_head_leaves_the_representation_alone(images):
    config = tiny_config(
        pretrain={"enabled": False}, finetune={"hash_head": "itq"},
        loss={"neighbours": 3, "cluster": 1.0, "clusters": 4, "cluster_detach": True, "reconstruction": 0,
              "quantization": 0, "balance": 0, "similarity": 0, "decorrelation": 0, "contrastive": 0},
    )
    model = HashingModel(16, **config.model_hyperparameters())
    before = [w.copy() for w in model.encoder.get_weights()]
    head_before = [w.copy() for w in model.cluster_head.get_weights()]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(images[:256], batch_size=128, epochs=1, verbose=0)
    for b, a in zip(before, model.encoder.get_weights()):
        np.testing.assert_array_equal(b, a)
    assert any(not np.array_equal(b, a) for b, a in zip(head_before, model.cluster_head.get_weights()))
