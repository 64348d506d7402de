"""``repro results merge DIR...``: combine results folders made on several machines.

Each DIR has the layout of ``results/`` (``<reproduction>/<preset>.json`` and the figures in
``<reproduction>/<preset>/``), as a CI shard or a cluster job downloads it. For every
reproduction and preset, the records that differ from the one already in the destination
are the candidates:

- none: nothing to do (a shard that did not re-run it carries the committed copy);
- one: it replaces the destination's record with its figures, provided it is a complete run
  of a named preset (status ok, no overrides), as ``repro run`` would promote it, and no
  older than the record it replaces;
- several that differ: a conflict. Nothing is written and the message names the folders.

Everything is checked before anything is written; each record is written atomically and its
figures are swapped in whole. Folders and files whose names start with ``_`` (logs, run
summaries, archives) are not merged.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.results import read_result, result_path, write_result


class MergeError(ValueError):
    """Why a merge was refused; nothing was written."""


@dataclass
class Plan:
    take: dict[tuple[str, str], Path] = field(default_factory=dict)  # (rep, preset) → source dir
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)


def _records(src: Path) -> dict[tuple[str, str], Path]:
    out = {}
    for f in sorted(src.glob("*/*.json")):
        if f.parent.name.startswith("_") or f.name.startswith((".", "_")):
            continue
        out[(f.parent.name, f.stem)] = f
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _when(d: dict[str, Any]) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(str(d.get("started")))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def plan(sources: list[Path], dest: Path) -> Plan:
    p = Plan()
    for s in sources:
        if not s.is_dir():
            p.problems.append(
                f"{s}: not a folder (expected a results/ folder: <reproduction>/<preset>.json)"
            )
    if p.problems:
        return p
    found: dict[tuple[str, str], list[tuple[Path, dict]]] = {}
    for s in sources:
        recs = _records(s)
        if not recs:
            p.problems.append(f"{s}: no <reproduction>/<preset>.json records in it")
        for key, f in recs.items():
            data, warn = read_result(f)
            if data is None:
                p.problems.append(warn or f"{f}: unreadable results file")
                continue
            if (data.get("reproduction"), data.get("preset")) != key:
                p.problems.append(
                    f"{f}: the record says {data.get('reproduction')}/{data.get('preset')}, "
                    f"its path says {key[0]}/{key[1]}"
                )
                continue
            found.setdefault(key, []).append((s, data))
    for key, cands in sorted(found.items()):
        current, _ = read_result(result_path(*key, dest))
        new = [(s, d) for s, d in cands if current is None or not _same(d, current)]
        distinct: list[tuple[Path, dict]] = []
        for s, d in new:
            if not any(_same(d, e) for _, e in distinct):
                distinct.append((s, d))
        if not distinct:
            p.unchanged += 1
            continue
        where = f"{key[0]}/{key[1]}"
        if len(distinct) > 1:
            desc = "; ".join(
                f"{s} (started {d.get('started')}, commit {str(d.get('commit'))[:9]})"
                for s, d in distinct
            )
            p.problems.append(
                f"{where}: conflicting records in {desc}; merge one of them, or delete the other"
            )
            continue
        s, d = distinct[0]
        if d.get("status") != "ok" or d.get("overrides"):
            why = f"status {d.get('status')}" if d.get("status") != "ok" else "a run with overrides"
            p.problems.append(
                f"{where} in {s}: {why}; only complete runs of a named preset are merged"
            )
            continue
        if current is not None and _when(d) < _when(current):
            p.problems.append(
                f"{where} in {s}: started {d.get('started')}, older than the destination's "
                f"{current.get('started')}; refusing to replace a newer record"
            )
            continue
        p.take[key] = s
    return p


def apply(p: Plan, dest: Path) -> list[str]:
    """Write what ``plan`` chose; returns one line per record written."""
    lines = []
    for (rid, preset), src in sorted(p.take.items()):
        data, _ = read_result(result_path(rid, preset, src))
        assert data is not None
        figs = src / rid / preset
        target = dest / rid / preset
        if figs.is_dir() or target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{preset}.", dir=target.parent))
            try:
                if figs.is_dir():
                    shutil.copytree(figs, tmp / "new")
                if target.exists():
                    target.rename(tmp / "old")
                if figs.is_dir():
                    (tmp / "new").rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        write_result(data, dest)
        lines.append(f"{rid}/{preset}: from {src} (started {data.get('started')})")
    return lines


def merge(sources: list[Path], dest: Path) -> list[str]:
    """Check everything, then write; raises MergeError (nothing written) on any problem."""
    p = plan(sources, dest)
    if p.problems:
        if len(p.problems) == 1:
            raise MergeError(f"repro results merge: refused, nothing written: {p.problems[0]}")
        head = f"repro results merge: refused, nothing written ({len(p.problems)} problems)"
        raise MergeError("\n".join([head, *(f"  {x}" for x in p.problems)]))
    lines = apply(p, dest)
    lines.append(f"{len(p.take)} record(s) merged into {dest}, {p.unchanged} already there")
    return lines
