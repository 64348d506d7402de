"""``repro verify``: re-run reproductions and compare with their committed results.

CI cannot re-run every preset on every push, so it re-runs a few drawn at random (seeded by
the commit, so a re-run of the same CI job draws the same ones) and fails, naming the claim
and metric, when a verdict or a per-seed value differs from what is committed beyond the
claim's declared ``verify_rtol``. Claims measured in wall-clock time declare ``None`` and are
not compared. Runs are seeded and use the thread count the committed run recorded.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from repro.claims import Reproduction
from repro.paths import project_root, results_dir
from repro.results import read_result, result_path


def draw(
    reps: Mapping[str, Reproduction], n: int, preset: str, seed: str | None = None
) -> list[Reproduction]:
    """``n`` reproductions with a committed, successful ``preset`` result, drawn at random."""
    from repro.runner import git_commit

    have = []
    for rid in sorted(reps):
        data, _ = read_result(result_path(rid, preset))
        if data is not None and data.get("status") == "ok":
            have.append(rid)
    key = seed if seed is not None else (git_commit(project_root())[0] or "0")
    rng = random.Random(key)
    return [reps[r] for r in sorted(rng.sample(have, min(n, len(have))))]


def compare(rep: Reproduction, committed: dict, fresh: dict) -> list[str]:
    """Differences that matter, one line each, naming the claim and its metric."""
    where = f"{rep.id}/{committed.get('preset')}"
    if fresh.get("status") != "ok":
        err = (fresh.get("error") or "").strip().splitlines()[:1]
        return [f"{where}: the re-run ended {fresh.get('status')}: {' '.join(err)}"]
    out: list[str] = []
    old = {c["id"]: c for c in committed.get("claims", [])}
    new = {c["id"]: c for c in fresh.get("claims", [])}
    for claim in rep.claims:
        if claim.verify_rtol is None:
            continue
        a, b = old.get(claim.id), new.get(claim.id)
        if a is None or b is None:
            out.append(
                f"{where}: claim {claim.id!r} is missing from the {'committed' if a is None else 're-run'} result"
            )
            continue
        if a.get("verdict") != b.get("verdict"):
            out.append(
                f"{where}: claim {claim.id!r} ({claim.metric}): verdict {a.get('verdict')!r} "
                f"committed, {b.get('verdict')!r} re-run"
            )
        va, vb = _values(a), _values(b)
        if not _close(va, vb, claim.verify_rtol):
            out.append(
                f"{where}: claim {claim.id!r} metric {claim.metric!r}: committed {_short(va)}, "
                f"re-run {_short(vb)} (beyond rtol {claim.verify_rtol:g})"
            )
    return out


def _values(row: Mapping[str, Any]) -> Any:
    if row.get("values"):
        return list(row["values"])
    return row.get("measured")


def _close(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= rtol * max(abs(a), abs(b)) + 1e-12
    if isinstance(a, Sequence) and isinstance(b, Sequence) and not isinstance(a, str):
        return len(a) == len(b) and all(_close(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rtol) for k in a)
    return a == b


def _short(v: Any) -> str:
    from repro.format import fmt_value

    return fmt_value(v, limit=6)


def _rerun(rep: Reproduction, preset: str, committed: dict, out_base: Path) -> dict:
    env = {
        **os.environ,
        "REPRO_RESULTS": str(out_base),
        "REPRO_RUNS": str(out_base / "runs"),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(committed.get("threads") or 1),
    }
    from repro.runner import child_command

    device, seed = committed.get("device") or "cpu", committed.get("seed") or 0
    cmd = child_command(rep.id, preset, device, int(seed))
    log = out_base / f"{rep.id}.log"
    with open(log, "w", encoding="utf-8") as f:
        try:
            subprocess.run(
                cmd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=rep.timeout_s * 2
            )
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "error": f"no result within {rep.timeout_s * 2:.0f} s"}
    data, warn = read_result(result_path(rep.id, preset, out_base))
    if data is None:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        return {"status": "crashed", "error": warn or " | ".join(tail)}
    return data


def verify(reps: Sequence[Reproduction], preset: str = "quick", jobs: int = 2) -> list[str]:
    """Re-run each reproduction into a scratch folder; every difference found, one line each."""
    from repro.results import load_result

    with tempfile.TemporaryDirectory(prefix="repro-verify-") as tmp:
        out_base = Path(tmp)

        def one(rep: Reproduction) -> list[str]:
            committed = load_result(rep.id, preset, results_dir())
            if committed is None:
                return [f"{rep.id}/{preset}: no committed result to compare with"]
            fresh = _rerun(rep, preset, committed, out_base)
            return compare(rep, committed, fresh)

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            found = list(pool.map(one, reps))
    return [line for lines in found for line in lines]
