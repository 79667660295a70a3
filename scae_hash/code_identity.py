"""The code a reported number depends on, and whether it is the committed code.

A result row is the output of one command (``scae-hash train ...``, ``python experiments/x.py``).
Its code is the command's entry point and every module of the repository the entry point
imports, followed through the import graph as the source shows it (imports inside functions
included): a change there can change the number, a change elsewhere (the web page, the figures)
cannot. For ``scae-hash COMMAND`` the entry point is the command's handler in ``cli.py`` and the
helpers it calls, as functions ("scae_hash/cli.py::run_train_command"), so editing another
command's options leaves these rows alone. Methods are imported by name
(``scae_hash.hashers.METHODS``): the methods a command line names (``--method``, or the
``method`` of its ``--config``) add their own modules, so an ITQ row does not depend on the
manifold code, nor a SCAE-hash row on SCAE-manifold's.

One rule serves both ends: a row is ``-dirty`` when this code differed from its commit when it
ran, and `reproduce` calls it stale when this code differs between its commit and the working
tree. Both compare Python without comments, docstrings and formatting (:func:`semantic_digest`).
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import subprocess
import sys
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "scae_hash"
CLI_FILE = f"{PACKAGE}/cli.py"
METHODS_FILE = f"{PACKAGE}/hashers/__init__.py"
#: How the package's command line is started: the console script or ``python -m scae_hash``.
CLI_PROGRAMS = ("scae-hash", "__main__.py")
#: A file and, after ``::``, one of its top-level functions.
FUNCTION_MARK = "::"


def command_dependencies(argv: Sequence[str], root: Path = REPO_ROOT) -> tuple[str, ...] | None:
    """The code of a command line, as repository-relative files and ``file::function`` items;
    None when it starts no entry point of this repository (e.g. pytest)."""
    tokens = list(argv)
    if tokens and Path(tokens[0]).name.startswith("python"):
        tokens = tokens[2:] if tokens[1:2] == ["-m"] and tokens[2:3] == [PACKAGE] else tokens[1:]
        tokens = ["scae-hash", *tokens[1:]] if tokens and tokens[0] == PACKAGE else tokens
    if not tokens:
        return None
    program = Path(tokens[0]).name
    if program in CLI_PROGRAMS:
        command = next((token for token in tokens[1:] if not token.startswith("-")), None)
        handler = _cli_dependencies(command, root) if command else None
        if handler is None:
            return None
        methods = _methods_named(tokens, root)
        return tuple(sorted({*handler, *(path for method in methods for path in _method_files(method, root))}))
    script = (root / tokens[0]).resolve() if not Path(tokens[0]).is_absolute() else Path(tokens[0]).resolve()
    if script.suffix == ".py" and script.is_file() and script.is_relative_to(root.resolve()):
        relative = script.relative_to(root.resolve()).as_posix()
        return tuple(sorted(_closure([relative], root)))
    return None


def running_dependencies() -> tuple[str, ...] | None:
    """The code of the command this process runs (``sys.argv``)."""
    return command_dependencies([sys.argv[0], *sys.argv[1:]])


@lru_cache(maxsize=None)
def _cli_dependencies(command: str, root: Path) -> tuple[str, ...] | None:
    tree = ast.parse((root / CLI_FILE).read_text(encoding="utf-8"))
    handler = _handler_name(tree, command)
    if handler is None:
        return None
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    reached, todo = set(), [handler]
    while todo:  # the handler and the functions of cli.py it calls, by name
        name = todo.pop()
        if name in reached or name not in functions:
            continue
        reached.add(name)
        todo += [node.id for node in ast.walk(functions[name]) if isinstance(node, ast.Name)]
    module_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    imported = _imported_modules([*module_level, *(functions[name] for name in reached)], PACKAGE)
    files = _closure([path for module in imported for path in _module_files(module, root)], root)
    return tuple(sorted(files | {f"{CLI_FILE}{FUNCTION_MARK}{name}" for name in reached}))


def _methods_named(tokens: Sequence[str], root: Path) -> set[str]:
    """The methods a command line runs: the values of ``--method``, and the ``method`` of the
    config file ``--config`` names (SCAE-hash when it names none)."""
    methods: set[str] = set()
    for position, token in enumerate(tokens):
        if token == "--method":
            methods.update(value for value in itertools.takewhile(lambda t: not t.startswith("-"),
                                                                   tokens[position + 1:]))
        elif token == "--config" and position + 1 < len(tokens):
            from scae_hash.config import config_method
            from scae_hash.errors import ConfigError

            path = Path(tokens[position + 1])
            try:
                methods.add(config_method(path if path.is_absolute() else root / path))
            except ConfigError:
                pass  # the command itself reports a bad config in one line
    return methods


@lru_cache(maxsize=None)
def _method_files(method: str, root: Path) -> frozenset[str]:
    """A method's module (:data:`scae_hash.hashers.METHODS`, read from its source) and what it imports."""
    tree = ast.parse((root / METHODS_FILE).read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "METHODS" for t in targets) and isinstance(node.value, ast.Dict):
            for key, value in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and key.value == method and isinstance(value, ast.Constant):
                    return frozenset(_closure(_module_files(value.value.split(":")[0], root), root))
    return frozenset()


def _handler_name(tree: ast.Module, command: str) -> str | None:
    """The function cli.py's ``HANDLERS`` mapping names for ``command`` (read from the source, so
    that this module imports no command)."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "HANDLERS" for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            for key, value in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and key.value == command and isinstance(value, ast.Name):
                    return value.id
    return None


def _closure(files: Iterable[str], root: Path) -> set[str]:
    """``files`` and every repository file they import, transitively."""
    seen: set[str] = set()
    todo = list(files)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = root / name
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = ".".join(Path(name).parts[:-1])
        for module in _imported_modules([tree], package):
            todo += _module_files(module, root, script_dir=path.parent if not package.startswith(PACKAGE) else None)
    return seen


def _imported_modules(nodes: Iterable[ast.AST], package: str) -> set[str]:
    """Dotted names that ``import`` statements under ``nodes`` load (``from a import b``: a and a.b)."""
    names: set[str] = set()
    for node in (inner for outer in nodes for inner in ast.walk(outer)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _module_files(module: str, root: Path, script_dir: Path | None = None) -> list[str]:
    """The repository files that importing ``module`` runs: its packages' ``__init__.py`` and
    itself; a top-level name may also be a script beside an experiment script."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        if script_dir is not None and len(parts) == 1 and (script_dir / f"{module}.py").is_file():
            return [(script_dir / f"{module}.py").relative_to(root).as_posix()]
        return []
    files = []
    for depth in range(1, len(parts) + 1):
        base = Path(*parts[:depth])
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if (root / candidate).is_file():
                files.append(candidate.as_posix())
                break
    return files


# ---------------------------------------------------------------------------- comparing versions


class CodeVersions:
    """Which dependencies differ between a commit and the working tree, ignoring docstrings,
    comments and formatting in Python. Trees and digests are cached per process."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else REPO_ROOT
        self._trees: dict[str, dict[str, str] | None] = {}
        self._current: dict[tuple[str, ...], dict[str, str]] = {}
        self._digests: dict[tuple[str, str], str] = {}

    def changed(self, commit: str, paths: Sequence[str]) -> list[str] | None:
        """Items of ``paths`` (files, folders, ``file::function``) that differ; None when
        ``commit`` is not in the history."""
        tree = self._tree(commit)
        if tree is None:
            return None
        files = tuple(sorted({path.split(FUNCTION_MARK)[0] for path in paths}))
        current = self._working_tree(files)
        whole = tuple(path for path in paths if FUNCTION_MARK not in path)
        names = sorted(name for name in set(tree) | set(current) if _under(name, whole))
        changed = [name for name in names if not self._same(name, tree.get(name), current.get(name))]
        for item in sorted(path for path in paths if FUNCTION_MARK in path):
            name, function = item.split(FUNCTION_MARK)
            if not self._same(name, tree.get(name), current.get(name), function):
                changed.append(item)
        return changed

    def dirty(self, paths: Sequence[str]) -> bool:
        """Whether the working tree's ``paths`` differ from HEAD's."""
        return bool(self.changed("HEAD", paths))

    def _same(self, name: str, old_blob: str | None, new_blob: str | None, function: str = "") -> bool:
        if old_blob is None or new_blob is None:
            return old_blob == new_blob
        if old_blob == new_blob:
            return True
        if not name.endswith(".py"):
            return False
        old = self._digest(old_blob, function, lambda: self._git("cat-file", "blob", old_blob))
        new = self._digest(new_blob, function,
                           lambda: (self.root / name).read_text(encoding="utf-8", errors="replace"))
        return old == new

    def _digest(self, blob: str, function: str, read) -> str:
        if (blob, function) not in self._digests:
            self._digests[blob, function] = semantic_digest(read(), function)
        return self._digests[blob, function]

    def _tree(self, commit: str) -> dict[str, str] | None:
        if commit not in self._trees:
            try:
                listing = self._git("ls-tree", "-r", "--full-tree", commit)
            except (OSError, subprocess.CalledProcessError):
                self._trees[commit] = None
            else:
                self._trees[commit] = {line.split("\t", 1)[1]: line.split()[2]
                                       for line in listing.splitlines() if line.split()[1] == "blob"}
        return self._trees[commit]

    def _working_tree(self, paths: tuple[str, ...]) -> dict[str, str]:
        """Blob ids of the files on disk under ``paths``: tracked and untracked, not ignored."""
        if paths not in self._current:
            listed = self._git("ls-files", "--cached", "--others", "--exclude-standard", "--", *paths).splitlines()
            names = sorted({name for name in listed if (self.root / name).is_file()})
            blobs = self._git("hash-object", "--stdin-paths", stdin="\n".join(names) + "\n").split() if names else []
            self._current[paths] = dict(zip(names, blobs))
        return self._current[paths]

    def _git(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=self.root, input=stdin, capture_output=True, text=True,
                              check=True).stdout


def _under(name: str, paths: tuple[str, ...]) -> bool:
    return any(name == path.rstrip("/") or name.startswith(path.rstrip("/") + "/") for path in paths)


def semantic_digest(source: str, function: str = "") -> str:
    """A digest of Python source (or of one top-level function of it) that ignores comments,
    docstrings and formatting; a function the source lacks has a digest of its own."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return hashlib.sha1(source.encode()).hexdigest()
    if function:
        found = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function]
        tree = ast.Module(body=found, type_ignores=[])
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha1(ast.dump(tree).encode()).hexdigest()
