"""Training on every local accelerator, and a record of where a run trained.

On the JAX backend with several local devices (GPUs, or simulated CPU devices via
``XLA_FLAGS=--xla_force_host_platform_device_count=N``), :func:`use_local_devices` installs
Keras' data-parallel distribution: the model is replicated and every batch is split across the
devices. Keras' distribution API is implemented for JAX only, so on TensorFlow (or with one
device) it leaves Keras alone. :func:`describe_devices` gives the provenance fields
``backend``, ``device_kind`` and ``device_count`` of a result row.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Sequence

_CPU_ONLY = {"backend": "numpy", "device_kind": "cpu", "device_count": 1}
_trained_on: dict | None = None


def use_local_devices(batch_sizes: Sequence[int] = ()) -> dict:
    """Spread training over the local devices where Keras can (JAX); returns where it runs.

    Only as many devices as divide every one of ``batch_sizes`` are used, so that each full
    batch splits evenly; a smaller batch (an epoch's last one, a prediction's last one) that
    they do not divide is replicated on every device instead of failing.
    """
    global _trained_on
    import keras

    backend = keras.backend.backend()
    devices = keras.distribution.list_devices()
    distribution = keras.distribution.distribution()
    if backend == "jax" and distribution is None:
        count = len(devices)
        while count > 1 and any(size % count for size in batch_sizes):
            count -= 1
        if count > 1:
            _replicate_uneven_batches()
            distribution = keras.distribution.DataParallel(devices=devices[:count])
            keras.distribution.set_distribution(distribution)
    used = int(distribution.device_mesh.devices.size) if distribution is not None else 1
    _trained_on = {"backend": backend, "device_kind": _device_kind(backend, devices), "device_count": used}
    return dict(_trained_on)


def describe_devices() -> dict:
    """Where this process trained (after :func:`use_local_devices`); numpy on the CPU otherwise."""
    return dict(_trained_on or _CPU_ONLY)


def _device_kind(backend: str, devices: list[str]) -> str:
    if backend == "jax" and "jax" in sys.modules:
        import jax

        return str(jax.local_devices()[0].device_kind)
    return devices[0].split(":")[0] if devices else "cpu"


@functools.cache
def _replicate_uneven_batches() -> None:
    """Keras' JAX trainer shards every batch with the layout of the first one, so a last batch
    of 135 images on 2 devices fails; such a batch is placed whole on every device instead.
    This wraps Keras' own data placement function: there is no public hook for it (a
    ``Distribution.get_data_layout`` override would not do: the trainer reuses the first
    batch's layout). tests/test_keras_private_apis.py checks it against the pinned Keras."""
    from jax.sharding import NamedSharding, PartitionSpec
    from keras.src.backend.jax import distribution_lib

    place = distribution_lib.distribute_data_input

    def place_evenly_or_replicate(batch, layout, *args, **kwargs):
        sharding = getattr(layout, "backend_layout", layout)
        if getattr(batch, "ndim", 0) and batch.shape[0] % sharding.mesh.size:
            sharding = NamedSharding(sharding.mesh, PartitionSpec())
        return place(batch, sharding, *args, **kwargs)

    distribution_lib.distribute_data_input = place_evenly_or_replicate
