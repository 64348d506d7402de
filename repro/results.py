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

SCHEMA_VERSION = 2
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
            rep = _rep_for(rep_id)
            if rep is not None:
                from repro.provenance import staleness

                if needs_rejudge(rep, data):
                    data = rejudge(rep, data)
                # In memory only, for readers: why this result no longer describes the code.
                data["stale"] = staleness(rep, data)
            out[p.stem] = data
    return out, warnings


def best_result(results: dict[str, dict]) -> dict | None:
    """The result a reader should see first: the largest preset that ran to completion on
    the current code; a stale one only when nothing current ran."""
    for current in (True, False):
        for preset in ("full", "quick"):
            r = results.get(preset)
            if r and r.get("status") == "ok" and (not r.get("stale")) == current:
                return r
    for preset in ("full", "quick", *sorted(results)):
        if preset in results:
            return results[preset]
    return None


def verdict_counts(result: dict | None) -> dict[str, dict[str, int]]:
    """{"finding": {verdict: n}, "check": {verdict: n}} of one result (kinds never summed)."""
    from repro.claims import count_verdicts

    return count_verdicts((result or {}).get("claims", []))


# --------------------------------------------------------------------------- one record
def build_record(
    rep,
    preset: str,
    *,
    status: str,
    error: str | None,
    config: Any,
    overrides: dict[str, str] | None,
    seed: int | None,
    device: str | None,
    device_name: str | None,
    started: str,
    duration_s: float,
    metrics: dict[str, Any],
    skipped: dict[str, str],
    figures: list[str],
    notes: list[str],
    root: Path,
    threads: int | None = None,
    provenance: tuple[str | None, bool, str | None] | None = None,
    cpu_s: float | None = None,
) -> dict[str, Any]:
    """The one place a results record is made (a finished run and a child that died alike).

    Records what produced it (commit, whether the tree was dirty, the code hash) and the
    metrics; the claims' verdicts are judged from those metrics by the current declaration."""
    import dataclasses

    from repro.claims import judge
    from repro.runner import git_commit, library_versions

    cfg = dataclasses.asdict(config) if config is not None else None
    if provenance is not None:
        commit, dirty, chash = provenance
    else:
        commit, dirty = git_commit(root)
        chash = code_fingerprint(rep, preset, config)
    claims = judge(rep.claims, metrics, skipped, preset=preset, device=device, status=status)
    return jsonable(
        {
            "schema": SCHEMA_VERSION,
            "reproduction": rep.id,
            "papers": list(rep.papers),
            "title": rep.title,
            "preset": preset,
            "status": status,
            "error": error,
            "config": cfg,
            "overrides": dict(overrides or {}),
            "seed": seed,
            "device": device,
            "device_name": device_name,
            "threads": threads,
            "started": started,
            "duration_s": round(duration_s, 2),
            # CPU time of the run's process, all its threads together (presets are budgeted in
            # CPU-minutes on one thread; wall time on a shared machine says less). None when
            # the record was made for a child that died.
            "cpu_s": None if cpu_s is None else round(cpu_s, 2),
            "commit": commit,
            "dirty": dirty,
            "code_hash": chash,
            "versions": library_versions(),
            "metrics": metrics,
            "skipped": dict(skipped),
            "claims": claims,
            "figures": figures,
            "notes": notes,
        }
    )


def code_fingerprint(rep, preset: str, config: Any) -> str | None:
    from repro.provenance import code_hash

    if config is None:
        return None
    try:
        return code_hash(rep, preset, config)
    except (LookupError, ValueError):
        return None


# --------------------------------------------------------------------------- re-judging
def stored_skips(result: dict) -> dict[str, str]:
    """The claims a run said it could not check (older files kept them only in the rows)."""
    if isinstance(result.get("skipped"), dict):
        return dict(result["skipped"])
    out = {}
    for c in result.get("claims", []):
        reason = c.get("reason") or ""
        if (
            c.get("verdict") == "not checked at this scale"
            and reason
            and "was not measured" not in reason
        ):
            if not reason.startswith("run ") and not reason.startswith("needs a GPU"):
                out[c["id"]] = reason
    return out


def needs_rejudge(rep, result: dict) -> bool:
    """True when a stored verdict was made under another declaration than the current one."""
    rows = {c.get("id"): c for c in result.get("claims", [])}
    if set(rows) != {c.id for c in rep.claims}:
        return True
    return any(rows[c.id].get("fingerprint") != c.fingerprint() for c in rep.claims)


def rejudge(rep, result: dict) -> dict:
    """The same result with every claim judged again from its stored metrics."""
    from repro.claims import judge

    claims = judge(
        rep.claims,
        result.get("metrics") or {},
        stored_skips(result),
        preset=result.get("preset", "quick"),
        device=result.get("device"),
        status=result.get("status", "ok"),
    )
    return jsonable({**result, "claims": claims, "skipped": stored_skips(result)})


def _rep_for(rep_id: str):
    from repro.registry import all_reproductions

    return all_reproductions().get(rep_id)


def load_result(rep_id: str, preset: str, base: Path | None = None) -> dict | None:
    """One stored result, re-judged in memory if its declaration has changed since."""
    data, _warn = read_result(result_path(rep_id, preset, base))
    if data is None:
        return None
    rep = _rep_for(rep_id)
    if rep is not None and needs_rejudge(rep, data):
        data = rejudge(rep, data)
    return data


def latest_local_run(rep_id: str, preset: str, root: Path | None = None) -> dict | None:
    """The newest record of this reproduction and preset in the local run history."""
    from repro.paths import runs_dir

    folder = runs_dir(root) / rep_id
    if not folder.is_dir():
        return None
    for run in sorted(folder.glob(f"*-{preset}"), reverse=True):
        data, _ = read_result(run / f"{preset}.json")
        if data is not None:
            return data
    return None
