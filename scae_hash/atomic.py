"""Atomic files and locked appends: a killed run leaves the previous file intact.

Every file the project writes goes through :func:`atomic_path` (for writers that want a path:
h5py, Keras, matplotlib) or :func:`atomic_write` (for text and bytes): the content goes to a
temporary file in the same folder, is flushed to disk and only then renamed over the target,
which POSIX makes atomic. :func:`locked` serialises read-modify-write cycles (result rows)
between processes with a lock file beside the target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator

from scae_hash.errors import ScaeHashError

if TYPE_CHECKING:  # filelock is imported where a lock is taken: not on every command's start
    import h5py
    from filelock import FileLock


_OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM, errno.EFBIG)


class OutputError(ScaeHashError):
    """An output file or folder cannot be written (missing folder, no permission, full disk)."""


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, in one line, when ``path`` could not be written: before a long run."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"output {path} is a folder, expected a file name")
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} is a file")
    if not folder.exists():
        raise OutputError(f"output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable")
    return path


def check_folder(folder: str | os.PathLike) -> Path:
    """Make sure ``folder`` exists (creating it) and can be written, or fail in one line."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create output folder {folder} ({error.strerror or error})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable")
    return folder


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, make_parents: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is synced and renamed onto ``path``.

    On any exception (or a kill) the temporary file is removed or left as ``.<name>.tmp*``,
    and ``path`` keeps its previous content. The temporary name keeps the suffix, so writers
    that infer the format from it (``.keras``, ``.png``) still work.
    """
    path = Path(path)
    if make_parents:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"cannot create folder {path.parent} ({error.strerror or error})") from None
    try:
        # the suffixes stay (".weights.h5", ".keras", ".png"): writers infer the format from them
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp" + "".join(path.suffixes[-2:]))
    except OSError as error:
        raise OutputError(f"cannot write {path} ({error.strerror or error})") from None
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        _fsync(temporary)
        os.chmod(temporary, _FILE_MODE)  # mkstemp's 0600 would make every result private
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno in _OUTPUT_ERRNOS:
            raise OutputError(f"cannot write {path} ({error.strerror})") from None
        if "errno = 28" in str(error):  # HDF5 reports a full disk without setting errno
            raise OutputError(f"cannot write {path} ({os.strerror(errno.ENOSPC)})") from None
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """``open(path, mode)`` that replaces ``path`` only once the whole content is written."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files ('w' or 'wb'), not {mode!r}")
    with atomic_path(path) as temporary:
        with open(temporary, mode, **open_kwargs) as stream:
            yield stream


@contextlib.contextmanager
def atomic_hdf5(path: str | os.PathLike) -> Iterator["h5py.File"]:
    """A new HDF5 file, built in memory and then written atomically.

    HDF5 writing straight to a full disk raised, then crashed the process (segmentation fault)
    once the half-closed file was touched again; from memory, a full disk is a plain OSError.
    """
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        yield file
    with atomic_write(path, "wb") as stream:
        stream.write(buffer.getbuffer())


@contextlib.contextmanager
def atomic_path_staged(path: str | os.PathLike) -> Iterator[Path]:
    """:func:`atomic_path` for writers that open HDF5 by name themselves (Keras' ``save_weights``):
    they write to a staging folder in memory (``/dev/shm``, else the temporary folder), and
    plain Python writes copy the file beside ``path``, so a full disk there is a plain OSError."""
    path = Path(path)
    memory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=memory, prefix="scae-hash-") as folder:
        staged = Path(folder) / path.name
        yield staged
        with atomic_write(path, "wb") as stream, open(staged, "rb") as source:
            shutil.copyfileobj(source, stream)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically replace a text file."""
    with atomic_write(path, "w", encoding="utf-8") as stream:
        stream.write(text)
    return Path(path)


def locked(path: str | os.PathLike, timeout: float = 600) -> FileLock:
    """An inter-process lock for ``path`` (held in ``<path>.lock``), for read-modify-write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import h5py
    from filelock import FileLock

    return FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout)


def _fsync(path: Path) -> None:
    if path.is_dir():
        return
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())
