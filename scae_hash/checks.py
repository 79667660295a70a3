"""Checks that turn bad input into one clear line, and run before any long fit.

A run that fails after an hour of training because of a typo in ``--codes-out`` or a
read-only results folder loses the hour: :func:`check_run_outputs` tries every output of a
run (template, folders, permissions) first. :func:`load_keras_file` and
:func:`check_neighbours` guard the model side; :func:`read_yaml_mapping` the YAML files.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from scae_hash.atomic import OutputError, check_folder, check_writable
from scae_hash.errors import ConfigError, ScaeHashError

CODES_FIELDS = ("method", "dataset", "bits", "seed")
#: An image side beyond this is a typo, not a wish: 4096 x 4096 x 3 floats is 200 MB per image.
MAX_IMAGE_SIDE = 4096


class ModelFileError(ScaeHashError):
    """A model file is missing or not a readable Keras model."""


def one_line(message: object) -> str:
    """A message as one printable line: file names that are not UTF-8 come back as the
    bytes they were, escaped, instead of failing the print."""
    text = " ".join(str(message).splitlines())
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_utf8(text: str) -> bool:
    """False for a command-line string holding bytes that are not UTF-8 (as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_keras_file(path: str | Path):
    """``keras.saving.load_model`` that reports a missing or damaged file in one line."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # a damaged zip, a foreign file, a missing class: all bad input
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(f"{path} is not a readable .keras model ({type(error).__name__}: {reason[:200]})") from None


def check_neighbours(config, n_images: int) -> None:
    """Each image needs ``loss.neighbours`` other images: refuse before any training."""
    if config.loss.neighbours > n_images - 1:
        raise ConfigError(
            f"'loss.neighbours' is {config.loss.neighbours} but the training set has only {n_images} images "
            f"(at most {n_images - 1} neighbours each)"
        )


def integer_option(what: str, low: int, high: int | None = None):
    """An argparse type for an integer in ``low..high`` (no upper bound when ``high`` is None);
    anything else is one line naming ``what``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"in {low}..{high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{what} must be {bound}, got {value}")
        return value

    return parse


#: ``--size`` side: an image side beyond MAX_IMAGE_SIDE is a typo, not a wish.
image_side = integer_option("image side", 1, MAX_IMAGE_SIDE)


def codes_paths(template: str, runs: list[dict]) -> list[Path]:
    """The codes file of each run (``runs``: dicts of :data:`CODES_FIELDS`), one line on a bad
    template or on two runs that would write the same file."""
    paths = [codes_path(template, len(runs), **fields) for fields in runs]
    if len(set(paths)) < len(paths):
        raise OutputError(
            f"--codes-out {template!r} gives the same file for several runs; add {{bits}}, {{method}} or {{dataset}}"
        )
    return paths


def codes_path(template: str, n_runs: int, **fields) -> Path:
    """Fill a ``--codes-out`` template; without fields and with several runs, add a suffix."""
    if "{" in template or "}" in template:
        try:
            return Path(template.format(**fields))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as error:
            raise OutputError(
                f"--codes-out {template!r} is not a valid template ({type(error).__name__}: {error}); "
                f"fields: {', '.join('{' + name + '}' for name in CODES_FIELDS)}"
            ) from None
    path = Path(template)
    if n_runs == 1:
        return path
    return path.with_name(f"{path.stem}-{fields['method']}-{fields['dataset']}-{fields['bits']}b{path.suffix}")


def check_run_outputs(results_dir: str | Path | None, codes_out: str | None, seed: int, datasets: Sequence[str],
                      runs: Sequence[tuple[str, int]], run_dir: str | Path | None = None) -> None:
    """Everything a run will write (``results_dir`` None: no rows), tried before it loads data or trains."""
    for option, value in (("--results-dir", results_dir), ("--run-dir", run_dir), ("--codes-out", codes_out)):
        if value is not None and not is_utf8(str(value)):  # its name would go into UTF-8 rows and files
            raise OutputError(f"{option} {one_line(value)}: the name is not valid UTF-8; choose another")
    for folder in (results_dir, run_dir):
        if folder is not None:
            check_folder(folder)
    if codes_out:
        fields = [{"method": method, "dataset": Path(name).name, "bits": bits, "seed": seed}
                  for name in datasets for method, bits in runs]
        paths = codes_paths(codes_out, fields)
        if "{dataset}" not in str(Path(codes_out).parent):  # else the folder is known only later
            for path in paths:
                check_writable(path)


def read_yaml_mapping(path: Path, what: str = "config file") -> dict[str, Any]:
    """A YAML file whose top level is a mapping (configs, plans, targets): a missing file, bad
    YAML or another top level is one ConfigError line naming the file, never a traceback."""
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        mapping = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(mapping, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return mapping
