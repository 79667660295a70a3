"""Training on every local device (Keras data parallel on JAX), tested on two simulated CPU devices."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from scae_hash import devices

TWO_DEVICE_RUN = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from test_scae import tiny_config
    from scae_hash.hashers.scae import SCAEHasher
    from scae_hash.results import provenance

    # 301 images in batches of 128: the last batch (45) cannot be split over 2 devices.
    images = np.random.default_rng(0).random((301, 28, 28, 1), dtype=np.float32)
    hasher = SCAEHasher(16, 0, config=tiny_config(), run_dir=None, progress=False).fit(images)
    codes = hasher.encode(images)
    row = provenance()
    print(json.dumps({"shape": list(codes.shape), "values": sorted(set(codes.ravel().tolist())),
                      **{key: row[key] for key in ("backend", "device_kind", "device_count")}}))
""")


def test_a_row_without_training_ran_on_numpy():
    assert devices.describe_devices() in (
        {"backend": "numpy", "device_kind": "cpu", "device_count": 1},
        devices._trained_on,  # another test in this process trained a model
    )


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_tiny_training_uses_two_simulated_devices(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run([sys.executable, "-c", TWO_DEVICE_RUN, os.path.dirname(__file__)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["backend"] == "jax" and result["device_kind"] == "cpu" and result["device_count"] == 2
    assert result["shape"] == [301, 16] and result["values"] == [0, 1]
