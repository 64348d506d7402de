"""Results files: ``results/<reproduction>/<preset>.json`` plus figures beside them.

Written atomically (temp file + rename), so a crash never leaves half a file. Read
defensively: a malformed or truncated file is reported as a warning and treated as absent,
never as a crash of ``repro list`` or of the site build.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from repro.paths import results_dir

SCHEMA_VERSION = 1
STATUSES = ("ok", "crashed", "timeout", "nan", "interrupted")


def jsonable(x: Any) -> Any:
    """Turn numpy/torch scalars and arrays, tuples and paths into JSON values.

    Non-finite floats become the strings "nan"/"inf"/"-inf" (JSON has no NaN).
    """
    if isinstance(x, bool) or x is None or isinstance(x, str | int):
        return x
    if isinstance(x, float):
        if math.isfinite(x):
            return x
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set):
        return [jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):  # numpy arrays/scalars, torch tensors
        return jsonable(x.tolist())
    if hasattr(x, "item"):
        return jsonable(x.item())
    return str(x)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def result_path(rep_id: str, preset: str, base: Path | None = None) -> Path:
    """``base`` is the results folder (default: the project's ``results/``)."""
    return (base or results_dir()) / rep_id / f"{preset}.json"


def write_result(result: dict[str, Any], base: Path | None = None) -> Path:
    path = result_path(result["reproduction"], result["preset"], base)
    atomic_write_text(path, json.dumps(jsonable(result), indent=2, ensure_ascii=False) + "\n")
    return path


def read_result(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(result, warning). A bad file gives (None, a message naming the file and the fault)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"{path}: unreadable results file ({e}); showing no result"
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        return None, f"{path}: not a results file (no 'claims' list); showing no result"
    for c in data["claims"]:
        if not isinstance(c, dict) or "id" not in c or "verdict" not in c:
            return None, f"{path}: a claim entry lacks 'id' or 'verdict'; showing no result"
    return data, None


def latest_results(rep_id: str, base: Path | None = None) -> tuple[dict[str, dict], list[str]]:
    """All presets' results for one reproduction: ({preset: result}, warnings)."""
    base = (base or results_dir()) / rep_id
    out: dict[str, dict] = {}
    warnings: list[str] = []
    if not base.is_dir():
        return out, warnings
    for p in sorted(base.glob("*.json")):
        data, warn = read_result(p)
        if warn:
            warnings.append(warn)
        if data is not None:
            out[p.stem] = data
    return out, warnings


def best_result(results: dict[str, dict]) -> dict | None:
    """The result a reader should see first: the largest preset that ran to completion."""
    for preset in ("full", "quick"):
        r = results.get(preset)
        if r and r.get("status") == "ok":
            return r
    for preset in ("full", "quick", *sorted(results)):
        if preset in results:
            return results[preset]
    return None


def verdict_counts(result: dict | None) -> dict[str, int]:
    from repro.claims import VERDICTS

    counts = {v: 0 for v in VERDICTS}
    if result:
        for c in result.get("claims", []):
            if c.get("verdict") in counts:
                counts[c["verdict"]] += 1
    return counts
