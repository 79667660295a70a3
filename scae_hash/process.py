"""How a `scae-hash` process starts and ends: TensorFlow's log level before anything imports it,
and an exit that an interrupted run cannot crash. Imports nothing heavy: every command uses it."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def quiet_tensorflow() -> None:
    """TensorFlow's C++ log lines (CPU features, oneDNN, CUDA probing) say nothing about the
    run: silenced unless --verbose, before anything imports it (a user's own setting stays)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def exit_without_finalizing(code: int = 130) -> NoReturn:
    """Exit without finalizing the interpreter: after an interrupt, or after a command that
    writes nothing.

    After Ctrl-C, TensorFlow's input threads may still be running Python; finalizing the
    interpreter under them can end in a segmentation fault instead of the exit status. What is
    worth keeping is on disk already (every file is written atomically). A read-only command
    has nothing to keep and saves the tens of milliseconds its libraries spend tearing down.
    Kept apart from scae_hash.interrupt, which imports Keras: a run that never loaded it must
    not import it to exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
