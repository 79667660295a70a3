"""How a `scae-hash` process starts and ends: TensorFlow's log level before anything imports it,
and an exit that an interrupted run cannot crash. Imports nothing heavy: every command uses it."""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from typing import NoReturn


def quiet_tensorflow() -> None:
    """TensorFlow's C++ log lines (CPU features, oneDNN, CUDA probing) say nothing about the
    run: silenced unless --verbose, before anything imports it (a user's own setting stays).
    Some builds print a few of them while loading whatever the log level, on CPUs with oneDNN
    kernels: stderr is closed for the import of TensorFlow alone (its Python errors still show)."""
    if os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3") == "3" and "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowImport())


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Loads the `tensorflow` package, once, with file descriptor 2 pointing at /dev/null."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader.exec_module = _with_stderr_closed(spec.loader.exec_module)
        return spec


def _with_stderr_closed(function):
    def quietly(*args):
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        try:
            return function(*args)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)

    return quietly


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
