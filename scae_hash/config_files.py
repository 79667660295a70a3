"""Config files as plain mappings, before any schema: ``extends`` followed, ``key.path=value``
overrides applied.

Ablations are configs too: a file may start with ``extends: base.yaml`` (a path relative to
itself) and then override only what differs, and overrides such as ``pretrain.enabled=false``
patch a loaded file the same way (for a command line). Every method's config reads its file
here; each checks the mapping against its own schema. Every problem is one ConfigError line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scae_hash.checks import read_yaml_mapping
from scae_hash.errors import ConfigError


def read_mapping(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """A config file as a plain mapping: ``extends`` followed, overrides applied, not validated."""
    path = Path(path)
    mapping = _read_with_bases(path, seen=())
    for override in overrides or []:
        _apply_override(mapping, override, str(path))
    return mapping


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'extends' forms a cycle")
    mapping = read_yaml_mapping(path)
    base = mapping.pop("extends", None)
    if base is None:
        return mapping
    if not isinstance(base, str):
        raise ConfigError(f"{path}: 'extends' must be a file path, got {base!r}")
    base_mapping = _read_with_bases(path.parent / base, seen + (path.resolve(),))
    return _deep_merge(base_mapping, mapping)


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_override(mapping: dict[str, Any], override: str, source: str) -> None:
    key_path, sep, raw_value = override.partition("=")
    if not sep or not key_path:
        raise ConfigError(f"{source}: override {override!r} is not of the form key.path=value")
    *sections, key = key_path.strip().split(".")
    node = mapping
    for section in sections:
        node = node.setdefault(section, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: override {override!r}: '{section}' is not a section")
    try:
        node[key] = yaml.safe_load(raw_value)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: override {override!r}: the value is not valid YAML ({str(error).splitlines()[0]})") from None
