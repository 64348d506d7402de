"""Run reproductions: one in this process (``repro run``), or all, each in its own subprocess.

A run turns the entry point's measured values into a results file with a verdict per claim.
Failures are results too: a crash, a timeout, or NaN among the metrics is written down with
whatever was measured before it, and ``repro all`` carries on with the rest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from repro.claims import Reproduction, judge
from repro.paths import results_dir, runs_dir
from repro.results import atomic_write_text, build_record, jsonable, read_result, write_result

EXIT_OK, EXIT_CRASH, EXIT_NAN, EXIT_INTERRUPTED = 0, 1, 3, 130


class _Terminated(BaseException):
    """Raised in the child when ``repro all`` asks it to stop (timeout)."""


def git_commit(root: Path) -> tuple[str | None, bool]:
    try:
        sha = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
        dirty = bool(
            subprocess.run(
                # Dirty means the code that measures differs from the commit: the package
                # (untracked files in it included) and its dependencies. Cards, tests and
                # results/ (what runs write) do not change a measurement.
                ["git", "status", "--porcelain", "--", "repro", "pyproject.toml"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
        )
        return sha, dirty
    except (OSError, subprocess.SubprocessError):
        return None, False


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("torch", "triton", "numpy", "tokenizers", "transformers"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    return out


def _nonfinite(metrics: Mapping[str, Any]) -> list[str]:
    bad = []

    def walk(key: str, v: Any) -> None:
        if isinstance(v, float) and not math.isfinite(v):
            bad.append(key)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(f"{key}.{k}", x)
        elif isinstance(v, list | tuple):
            for i, x in enumerate(v):
                walk(f"{key}[{i}]", x)

    for k, v in metrics.items():
        walk(k, v)
    return bad


def evaluate(
    rep: Reproduction,
    metrics: Mapping[str, Any],
    skipped: Mapping[str, str],
    device: str | None,
    status: str,
    preset: str = "quick",
) -> list[dict[str, Any]]:
    return judge(rep.claims, metrics, skipped, preset=preset, device=device, status=status)


def run_one(
    rep: Reproduction,
    *,
    preset: str = "quick",
    overrides: Mapping[str, str] | None = None,
    device: str = "auto",
    seed: int = 0,
    root: Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run in this process; always writes a results file; returns the result dict.

    Raises ConfigError (bad preset/override) before anything runs.
    """
    from repro.context import RunContext
    from repro.paths import project_root

    cfg = rep.make_config(preset, overrides)
    root = root or project_root()
    base = results_dir(root)
    # What produces this run, read before it starts: the code it loads is what is on disk
    # now, and an edit made while it runs must not be credited to (or blamed on) it.
    from repro.results import code_fingerprint

    commit, dirty = git_commit(root)
    provenance = (commit, dirty, code_fingerprint(rep, preset, cfg))
    started = dt.datetime.now(dt.UTC)
    # Every run writes into its own folder of the local history first (figures in
    # <run>/<preset>/, the record in <run>/<preset>.json); `repro all` names the folder.
    run_dir = Path(os.environ.get("REPRO_RUN_DIR") or new_run_dir(rep.id, preset, root, started))
    out_dir = run_dir / preset
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    status, error = "ok", None
    ctx = RunContext(out_dir=out_dir, seed=seed, preset=preset, show_progress=show_progress)

    def on_term(signum, frame):  # noqa: ARG001
        raise _Terminated()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        from repro.common import pick_device, seed_everything

        ctx.device = pick_device(device)
        seed_everything(seed)
        mod_name, fn_name = rep.entry.split(":")
        fn = getattr(importlib.import_module(f"{rep.module}.{mod_name}"), fn_name)
        returned = fn(cfg, ctx)
        if returned:
            ctx.metrics.update(returned)
        bad = _nonfinite(ctx.metrics)
        if bad:
            status, error = "nan", f"non-finite values in metrics: {', '.join(bad[:5])}"
    except _Terminated:
        status, error = "timeout", "stopped by the runner's timeout; metrics are what was finished"
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted (Ctrl-C); metrics are what was finished"
    except Exception as e:  # noqa: BLE001 - recorded in the results file
        status = "crashed"
        error = f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exc(limit=8))
    finally:
        signal.signal(signal.SIGTERM, old)

    from repro.common import device_name

    try:
        dev_name = device_name(ctx.device)
    except Exception:  # noqa: BLE001
        dev_name = ctx.device
    result = build_record(
        rep,
        preset,
        status=status,
        error=error,
        config=cfg,
        overrides=overrides,
        seed=seed,
        device=ctx.device,
        device_name=dev_name,
        started=started.isoformat(timespec="microseconds"),
        duration_s=time.perf_counter() - t0,
        cpu_s=_cpu_seconds() - cpu0,
        metrics=ctx.metrics,
        skipped=ctx.skipped,
        figures=ctx.figures,
        notes=ctx.notes,
        root=root,
        threads=_threads(),
        provenance=provenance,
    )
    result["run_dir"] = str(run_dir)
    atomic_write_text(run_dir / f"{preset}.json", _dumps(result))
    result["promoted"] = promote(result, run_dir, base)
    return result


def _cpu_seconds() -> float:
    """CPU time of this process (every thread) and of the children it has waited for
    (reproductions that start worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def new_run_dir(rep_id: str, preset: str, root: Path, when: dt.datetime) -> Path:
    stamp = when.strftime("%Y%m%dT%H%M%S%fZ")
    return runs_dir(root) / rep_id / f"{stamp}-{preset}"


def _dumps(result: dict) -> str:
    return json.dumps(jsonable(result), indent=2, ensure_ascii=False) + "\n"


def promote(result: dict, run_dir: Path, base: Path) -> bool:
    """Copy a run to ``results/`` only if it is a complete, clean run of a named preset:
    status ok and no overrides. A crash, an interrupt, a timeout, NaN or a run with
    ``--key=value`` overrides stays in the local history and leaves the committed results
    byte for byte as they were."""
    if result.get("status") != "ok" or result.get("overrides"):
        return False
    preset = result["preset"]
    figs_src = run_dir / preset
    figs_dst = base / result["reproduction"] / preset
    if figs_dst.exists():
        shutil.rmtree(figs_dst)
    if figs_src.is_dir():
        shutil.copytree(figs_src, figs_dst)
    record = {k: v for k, v in result.items() if k not in ("run_dir", "promoted")}
    write_result(record, base)
    return True


def _threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return None


def exit_code_for(status: str) -> int:
    return {"ok": EXIT_OK, "nan": EXIT_NAN, "interrupted": EXIT_INTERRUPTED}.get(status, EXIT_CRASH)


# --------------------------------------------------------------------------- repro all
@dataclasses.dataclass
class Outcome:
    id: str
    status: str
    duration_s: float
    message: str = ""
    counts: dict[str, int] = dataclasses.field(default_factory=dict)


def child_command(rep_id: str, preset: str, device: str, seed: int) -> list[str]:
    """``repro run`` of one reproduction in a fresh interpreter (``repro all``, ``verify``)."""
    cmd = [sys.executable, "-m", "repro", "run", rep_id, "--preset", preset]
    return [*cmd, "--device", device, "--seed", str(seed), "--no-progress", "--quiet"]


def _run_child(
    rep: Reproduction,
    preset: str,
    timeout: float | None,
    device: str,
    seed: int,
    root: Path,
    log_dir: Path,
    threads: int = 1,
    run_dir: Path | None = None,
    env_extra: Mapping[str, str] | None = None,
) -> Outcome:
    cmd = child_command(rep.id, preset, device, seed)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{rep.id}.{preset}.log"
    run_dir = run_dir or new_run_dir(rep.id, preset, root, dt.datetime.now(dt.UTC))
    path = run_dir / f"{preset}.json"  # the child's record; results/ only if promoted
    t0 = time.perf_counter()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "REPRO_ROOT": str(root),
        "REPRO_RUN_DIR": str(run_dir),
        **(env_extra or {}),
    }
    # Parallel children share the cores: give each its slice so they do not oversubscribe.
    env.setdefault("OMP_NUM_THREADS", str(threads))
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True
        )
        timed_out = False
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            code = _stop(proc)
        except BaseException:
            # This runner is being stopped (Ctrl-C, or a cluster job's time limit): the child
            # runs in its own session, so stop it too; it writes what it finished.
            _stop(proc)
            raise
    dur = time.perf_counter() - t0
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    data, _warn = read_result(path)
    fresh = data is not None
    if timed_out:
        status = "timeout"
        if not (fresh and data.get("status") == "timeout"):
            _write_failure(rep, preset, "timeout", f"killed after {timeout:.0f} s", root, dur, path)
        msg = f"no result within {timeout:.0f} s (log: {log_path}; run: {run_dir})"
    elif not fresh:
        status = "crashed"
        _write_failure(rep, preset, "crashed", "\n".join(tail), root, dur, path)
        msg = f"exit code {code}, no results file written; log: {log_path}"
    else:
        status = data.get("status", "crashed")
        err = (data.get("error") or "").strip().splitlines()
        msg = err[0] if err and status != "ok" else ""
    from repro.results import verdict_counts

    final, _ = read_result(path)
    return Outcome(rep.id, status, dur, msg, verdict_counts(final))


def _stop(proc: subprocess.Popen) -> int:
    """SIGTERM to the child's process group (it writes its partial record), SIGKILL after 20 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait()
    except ProcessLookupError:
        return proc.wait()


def _write_failure(
    rep: Reproduction,
    preset: str,
    status: str,
    error: str,
    root: Path,
    duration: float,
    path: Path,
) -> None:
    """A record, in the child's run folder, for a child that died before writing its own."""
    atomic_write_text(
        path,
        _dumps(
            build_record(
                rep,
                preset,
                status=status,
                error=error,
                config=None,
                overrides={},
                seed=None,
                device=None,
                device_name=None,
                started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                duration_s=duration,
                metrics={},
                skipped={c.id: f"run {status}" for c in rep.claims},
                figures=[],
                notes=[],
                root=root,
            )
        ),
    )


def time_limit(rep: Reproduction, preset: str, timeout: float | None) -> float | None:
    """Seconds ``repro all`` gives one reproduction: ``--timeout`` if given, else the
    declaration's ``timeout_s`` for the quick preset (a hang guard sized for it), else none:
    a full preset may legitimately run for an hour."""
    if timeout is not None:
        return timeout
    return rep.timeout_s if preset == "quick" else None


def run_all(
    reps: list[Reproduction],
    *,
    preset: str = "quick",
    timeout: float | None = None,
    jobs: int = 2,
    device: str = "cpu",
    seed: int = 0,
    root: Path,
    on_done=None,
) -> list[Outcome]:
    """Each reproduction in its own subprocess, ``jobs`` at a time. Never raises for one failure."""
    log_dir = results_dir(root) / "_logs"

    def one(rep: Reproduction) -> Outcome:
        limit = time_limit(rep, preset, timeout)
        try:
            out = _run_child(
                rep,
                preset,
                limit,
                device,
                seed,
                root,
                log_dir,
                threads=max(1, (os.cpu_count() or 1) // max(1, jobs)),
            )
        except Exception as e:  # noqa: BLE001 - the runner itself must go on
            out = Outcome(rep.id, "crashed", 0.0, f"runner error: {type(e).__name__}: {e}")
        if on_done:
            on_done(out)
        return out

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes = list(pool.map(one, reps))
    write_summary(outcomes, preset, root)
    return outcomes


def write_summary(outcomes: list[Outcome], preset: str, root: Path) -> None:
    """``results/_all-<preset>.json``: what the last ``repro all`` ran and how each ended."""
    summary = {
        "preset": preset,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(root)[0],
        "outcomes": [dataclasses.asdict(o) for o in outcomes],
    }
    from repro.results import atomic_write_text

    atomic_write_text(
        results_dir(root) / f"_all-{preset}.json", json.dumps(summary, indent=2) + "\n"
    )
