"""The Keras internals this project leans on, each exercised on its own, so that a Keras release
that changes one fails here by name instead of making resumed runs silently differ.

requirements.txt pins Keras below the next minor release; raising the pin means running this
file first. What is private, and who uses it:
- ``BackupAndRestore._save_model`` and ``._current_epoch`` (overridden and read by
  ``scae_hash.model.resume.AtomicBackupAndRestore``), and the trainers reading
  ``model._initial_epoch`` when ``fit`` starts (set by it on resume);
- the name ``seed_generator_state`` of a ``SeedGenerator``'s variable (found by
  ``EpochSeeds``, which reseeds augmentation at every epoch);
- ``keras.src.backend.jax.distribution_lib.distribute_data_input``, which
  ``scae_hash.devices`` wraps so that an uneven last batch is replicated, not split.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from scae_hash.model.augment import ViewAugmenter
from scae_hash.model.resume import AtomicBackupAndRestore, EpochSeeds


def small_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


class EpochsRun(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_backup_saves_through_the_private_hook_and_fit_starts_at_the_restored_epoch(tmp_path):
    x, y = np.random.default_rng(0).random((32, 4)), np.zeros((32, 2))
    first = small_model()
    first.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[AtomicBackupAndRestore(tmp_path)])
    # Keras called the overridden _save_model after setting _current_epoch: our file layout, not Keras' own
    assert json.loads((tmp_path / "training_metadata.json").read_text()) == {"epoch": 2, "weights": "epoch2.weights.h5"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["epoch2.weights.h5", "training_metadata.json"]

    resumed, run = small_model(), EpochsRun()
    resumed.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[AtomicBackupAndRestore(tmp_path), run])
    assert run.epochs == [2]  # fit honoured model._initial_epoch, set on restore


def test_seed_generator_state_is_found_by_name_and_reseeded_per_epoch():
    def views(epoch: int) -> np.ndarray:
        augmenter = ViewAugmenter(max_shift=2.0, pixel_drop=0.2, seed=0)
        model = keras.Sequential([keras.Input((8, 8, 1)), augmenter])
        seeds = EpochSeeds(seed=5)
        seeds.set_model(model)
        assert [v.name for v in model.variables].count("seed_generator_state") == 1
        model.predict(np.ones((2, 8, 8, 1), np.float32), verbose=0)  # advance the state before reseeding
        seeds.on_epoch_begin(epoch)
        return keras.ops.convert_to_numpy(augmenter(np.ones((2, 8, 8, 1), np.float32), training=True))

    np.testing.assert_array_equal(views(3), views(3))
    assert not np.array_equal(views(3), views(4))


UNEVEN_BATCH = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    from keras.src.backend.jax import trainer
    sys.path.insert(0, sys.argv[1])
    from scae_hash import devices

    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))
    layout = keras.distribution.distribution().get_data_layout((4, 2)).backend_layout  # the first batch's
    def place(batch):
        try:
            placed, = trainer._distribute_data((batch,), layouts=(layout,))
            return np.asarray(placed).tolist()
        except Exception as error:
            return type(error).__name__
    batch = np.arange(6.0).reshape(3, 2)  # the last batch: 3 rows on 2 devices
    before = place(batch)
    devices._replicate_uneven_batches()
    print(json.dumps({"before": before, "after": place(batch), "even": place(np.ones((4, 2)))}))
""")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_the_jax_trainer_places_batches_through_the_patched_function():
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", UNEVEN_BATCH, root], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["after"] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]] and result["even"] == [[1.0, 1.0]] * 4
    # If this Keras splits an uneven batch by itself, devices._replicate_uneven_batches can go.
    assert isinstance(result["before"], str), "Keras now places uneven batches itself: drop the patch"
