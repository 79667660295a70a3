"""Ctrl-C during training stops at the end of the running batch, never in the middle of one.

Python raises ``KeyboardInterrupt`` at whichever bytecode runs when the signal lands: inside
Keras' or TensorFlow's own ``except`` clauses, a finalizer (where it is printed and dropped,
and training goes on) or the input pipeline. Inside :func:`interrupt_at_batch_end` the first
Ctrl-C only asks to stop; :class:`StopOnInterrupt` raises ``KeyboardInterrupt`` at the next
batch end, from Keras' own callback loop, so the stage ends the way a failing callback ends
it. The epoch backup on disk is the last finished epoch's: ``--resume`` starts from it. A
second Ctrl-C does not wait, nor does one outside a fit (loading data, encoding, scoring).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import keras

_requested = threading.Event()
_fitting = threading.Event()


@contextlib.contextmanager
def interrupt_at_batch_end() -> Iterator[None]:
    """Within the block, Ctrl-C during a fit with :class:`StopOnInterrupt` waits for the fit's
    next batch end; anywhere else it raises at once. Where Ctrl-C is not Python's default
    (ignored in a background job, another handler installed) or off the main thread, it is
    left alone."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def request(signum, frame) -> None:
        if not _fitting.is_set() or _requested.is_set():
            raise KeyboardInterrupt
        _requested.set()

    _requested.clear()
    previous = signal.signal(signal.SIGINT, request)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()
        _fitting.clear()


class StopOnInterrupt(keras.callbacks.Callback):
    """Marks a fit for :func:`interrupt_at_batch_end` and raises its deferred Ctrl-C at a batch
    end (or at the fit's end, for one that came after the last batch)."""

    def on_train_begin(self, logs=None) -> None:
        _fitting.set()

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if _requested.is_set():
            self.on_train_end()

    def on_train_end(self, logs=None) -> None:
        _fitting.clear()
        if _requested.is_set():
            _requested.clear()
            raise KeyboardInterrupt
