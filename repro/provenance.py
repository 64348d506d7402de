"""What produced a result, as a hash, and whether the code has moved on since (stale).

A results file records ``code_hash``: SHA-256 over

* every file of the reproduction's folder (``repro/papers/<module>/``, caches excluded),
* the ``repro/common`` modules it imports, followed transitively (found by reading the
  imports with ``ast``, so nothing is imported),
* the preset's config (the values, not the names of the overrides),
* the torch version (read from the installed package's metadata; torch is not imported).

Editing one reproduction's folder changes that reproduction's hash and no other; editing a
``repro/common`` module changes the hash of the reproductions that use it. The framework
itself (runner, claims) is not hashed: a change of a rule re-judges stored metrics
(``repro rejudge``) instead of making them stale.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
COMMON_DIR = PACKAGE_DIR / "common"
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}


def _folder_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not (_SKIP_DIRS & set(p.relative_to(folder).parts))
        and p.suffix not in (".pyc", ".pyo")
    )


def _imported_common(py: Path) -> set[str]:
    """Names of ``repro.common`` modules a file imports (``"tinylm"``, ``"__init__"``)."""
    try:
        tree = ast.parse(py.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return set()
    mods: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif py.parent == COMMON_DIR:  # relative import inside repro/common
                names = [f"repro.common.{node.module}"]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name == "repro.common":
                mods.add("__init__")
            elif name.startswith("repro.common."):
                part = name.split(".")[2]
                if (COMMON_DIR / f"{part}.py").is_file():
                    mods.add(part)
                else:  # ``from repro.common import seed_everything``: a name in __init__
                    mods.add("__init__")
    return mods


@cache
def common_modules(folder: Path) -> tuple[str, ...]:
    """The ``repro/common`` modules a reproduction folder uses, transitively, plus
    ``__init__`` (the runner seeds and picks the device through it for every run)."""
    todo = {"__init__"}
    for py in folder.rglob("*.py"):
        todo |= _imported_common(py)
    seen: set[str] = set()
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo |= _imported_common(COMMON_DIR / f"{mod}.py") - seen
    return tuple(sorted(seen))


def torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "not installed"


def _rep_folder(rep) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(rep.module)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"{rep.module}: cannot find the reproduction's folder")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def code_hash(rep, preset: str, config: Any | None = None) -> str:
    """The hash a fresh run of ``rep`` at ``preset`` would record (``config`` when given:
    a run with overrides hashes its own config)."""
    folder = _rep_folder(rep)
    h = hashlib.sha256()
    for p in _folder_files(folder):
        h.update(b"file\0" + p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    for mod in common_modules(folder):
        h.update(b"common\0" + mod.encode() + b"\0")
        h.update(hashlib.sha256((COMMON_DIR / f"{mod}.py").read_bytes()).digest())
    cfg = config if config is not None else rep.make_config(preset)
    h.update(b"config\0" + json.dumps(_plain(dataclasses.asdict(cfg)), sort_keys=True).encode())
    h.update(b"torch\0" + torch_version().encode())
    return h.hexdigest()[:16]


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def staleness(rep, result: dict) -> str | None:
    """Why a stored result no longer describes the code, or None when it is current."""
    if result.get("overrides"):
        return "made with overrides, not the preset"
    recorded = result.get("code_hash")
    if not recorded:
        return "made before results recorded a code hash"
    try:
        now = code_hash(rep, result.get("preset", "quick"))
    except (LookupError, ValueError) as e:
        return f"cannot hash the current code: {e}"
    if now != recorded:
        return "the code, config or torch version changed since it was measured"
    return None
