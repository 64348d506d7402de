"""tools/gpu-evidence.sh: the prepared GPU run's dry run passes through every step on the CPU,
stays inside its window on paper, and only a GPU run's files are filed under results/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_evidence  # noqa: E402


def test_plan_fits_the_window_and_the_run_takes_what_is_left():
    for window in (540.0, 700.0):
        plan = gpu_evidence.planned_steps(window)
        total = gpu_evidence.SETUP_S + sum(s.estimate_s for s in plan if not s.optional)
        assert total <= window + 1e-6
        assert all(s.limit_s >= s.estimate_s for s in plan)
    short = gpu_evidence.planned_steps(540.0)[3]
    long = gpu_evidence.planned_steps(900.0)[3]
    assert "--budget=90s" in short.gpu_cmd and "--budget=150s" in long.gpu_cmd
    # at most 8 files come back from a device session
    names = {"summary.json", "log.txt", "pytest-gpu.xml", "pytest-api.xml", "cramming-run-gpu.json"}
    for s in plan:
        names |= {n for n in s.produces.values() if "cpu" not in n}
    assert len(names) <= 8


def test_dry_run_passes_through_every_step(tmp_path):
    out = tmp_path / "evidence"
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        OMP_NUM_THREADS="1",
        REPRO_RESULTS=str(tmp_path / "unused"),
    )
    r = subprocess.run(
        ["bash", str(ROOT / "tools" / "gpu-evidence.sh"), str(out), "--dry-run"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=380,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "plan for one GPU" in r.stdout and "estimate" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] and summary["status"] == "ok"
    assert [s["step"] for s in summary["steps"]] == [s.name for s in gpu_evidence.steps()]
    assert all(s["status"] == "ok" for s in summary["steps"]), summary["steps"]
    run = json.loads((out / "cramming-run-cpu.json").read_text())
    assert run["curve"] and run["held_out"]["loss"] > 0
    for name in (
        "flash-attention-cpu.json",
        "cramming-bench-cpu.json",
        "pytest-gpu.xml",
        "log.txt",
    ):
        assert (out / name).stat().st_size > 0, name
    # nothing was written into a results/ tree by the dry run
    assert not (tmp_path / "unused").exists()
    # a dry run's files are never filed as GPU results
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gpu_evidence.py"), "--collect", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2 and "dry-run" in r.stderr


def test_collect_files_a_gpu_runs_results(tmp_path, monkeypatch):
    out = tmp_path / "evidence"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"dry_run": False, "steps": []}))
    (out / "flash-attention-gpu.json").write_text('{"device": "H100"}')
    (out / "cramming-bench-gpu.json").write_text('{"device": "H100"}')
    monkeypatch.setenv("REPRO_RESULTS", str(tmp_path / "results"))
    assert gpu_evidence.main(["--collect", str(out)]) == 0
    got = json.loads((tmp_path / "results/flash-attention/bench/gpu.json").read_text())
    assert got == {"device": "H100"}
    assert (tmp_path / "results/cramming/bench/gpu.json").exists()
    assert not (tmp_path / "results/cramming/bench/gpu-run.json").exists()
    with pytest.raises(SystemExit):
        gpu_evidence.main([str(out), "--window", "10"])
