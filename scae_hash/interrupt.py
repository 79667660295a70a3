"""Ctrl-C during training stops at the end of the running batch, never in the middle of one.

Python raises ``KeyboardInterrupt`` at whichever bytecode runs when the signal lands: inside
Keras' or TensorFlow's own ``except`` clauses, a finalizer (where it is printed and dropped,
and training goes on) or the input pipeline. Inside :func:`interrupt_at_batch_end` the first
Ctrl-C only asks to stop; :class:`StopOnInterrupt` raises ``KeyboardInterrupt`` at the next
batch end, from Keras' own callback loop, so the stage ends the way a failing callback ends
it. The epoch backup on disk is the last finished epoch's: ``--resume`` starts from it. A
second Ctrl-C does not wait.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import keras

_requested = threading.Event()


@contextlib.contextmanager
def interrupt_at_batch_end() -> Iterator[None]:
    """Defer Ctrl-C to the next batch end of a fit with :class:`StopOnInterrupt` (or to the end
    of the block). Where Ctrl-C is not Python's default (ignored in a background job, another
    handler installed) or off the main thread, it is left alone."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def request(signum, frame) -> None:
        if _requested.is_set():
            raise KeyboardInterrupt
        _requested.set()

    _requested.clear()
    previous = signal.signal(signal.SIGINT, request)
    try:
        yield
        if _requested.is_set():  # it came between the last batch and the end of the block
            raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()


class StopOnInterrupt(keras.callbacks.Callback):
    """Raise the deferred Ctrl-C of :func:`interrupt_at_batch_end` at a batch end."""

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if _requested.is_set():
            raise KeyboardInterrupt
