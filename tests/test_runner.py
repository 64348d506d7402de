"""`repro all`: each reproduction in its own process; failures recorded, the rest still run."""

from __future__ import annotations

import json
import subprocess
import sys

from repro.claims import AtLeast, AtMost, Between, Claim, IsTrue, Near


def test_all_survives_crash_hang_and_nan(fake_repros):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "repro",
            "all",
            "--only",
            "fake-good,fake-crash,fake-hang,fake-nan-metrics",
            "-j",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=fake_repros,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    summary = proc.stdout
    assert "4 reproductions: 1 ran, 3 failed" in summary
    for name, status in (
        ("fake-crash", "crashed"),
        ("fake-hang", "timeout"),
        ("fake-nan-metrics", "nan"),
    ):
        assert f"{name}: {status}" in summary
    results = fake_repros / "results"
    good = json.loads((results / "fake-good" / "quick.json").read_text())
    assert good["status"] == "ok" and good["claims"][0]["verdict"] == "reproduced"
    # failed runs are kept in the local run history, never in results/
    for name in ("fake-hang", "fake-nan-metrics", "fake-crash"):
        assert not (results / name).exists()
    hang = last_run(fake_repros, "fake-hang")
    assert hang["status"] == "timeout"
    assert hang["metrics"] == {"value": 5.0}  # what it finished before the timeout is kept
    nan = last_run(fake_repros, "fake-nan-metrics")
    assert nan["status"] == "nan" and "value" in nan["error"]
    crash = last_run(fake_repros, "fake-crash")
    assert "deliberate failure" in crash["error"]
    assert (results / "_all-quick.json").exists()


def last_run(root, rep_id: str, preset: str = "quick") -> dict:
    runs = sorted((root / "runs" / rep_id).glob(f"*-{preset}"))
    assert runs, f"no local run of {rep_id}"
    return json.loads((runs[-1] / f"{preset}.json").read_text())


def test_rules_decide_verdicts():
    assert AtMost(0.1).holds(0.1) and not AtMost(0.1).holds(0.11)
    assert AtLeast(2).holds(3) and not AtLeast(2).holds(1.99)
    assert Between(1, 2).holds(1.5) and not Between(1, 2).holds(2.5)
    assert Near(0.5, atol=0.05).holds(0.54) and not Near(0.5, atol=0.05).holds(0.56)
    assert Near(100, rtol=0.1).holds(109) and not Near(100, rtol=0.1).holds(111)
    assert IsTrue().holds(True) and not IsTrue().holds(False)


def test_claim_evaluation_paths():
    c = Claim("x", "s", "§1", "1", "m", AtMost(1.0), kind="finding")
    assert c.evaluate({"m": [0.5, 0.6, 0.4]}, {})["verdict"] == "reproduced"
    assert c.evaluate({"m": [2.0, 2.1, 1.9]}, {})["verdict"] == "not reproduced"
    assert c.evaluate({"m": 0.5}, {})["verdict"] == "inconclusive"  # one seed
    assert c.evaluate({}, {})["verdict"] == "not checked at this scale"
    skipped = c.evaluate({"m": 0.5}, {"x": "needs a GPU"})
    assert skipped["verdict"] == "not checked at this scale" and skipped["reason"] == "needs a GPU"
    nan = float("nan")
    assert c.evaluate({"m": [nan, nan, nan]}, {})["verdict"] == "not reproduced"  # diverged


def test_gpu_only_claim_not_checked_on_cpu():
    from repro.claims import Reproduction
    from repro.runner import evaluate

    rep = Reproduction(
        id="r",
        papers=("r",),
        title="t",
        config=object,
        claims=(
            Claim(
                "speed",
                "fast",
                "Fig. 1",
                "2x",
                "speedup",
                AtLeast(2),
                gpu_only=True,
                kind="finding",
            ),
        ),
    )
    (row,) = evaluate(rep, {"speedup": [3.0, 3.1, 2.9]}, {}, "cpu", "ok")
    assert row["verdict"] == "not checked at this scale" and "GPU" in row["reason"]
    (row,) = evaluate(rep, {"speedup": [3.0, 3.1, 2.9]}, {}, "cuda", "ok")
    assert row["verdict"] == "reproduced"


def test_time_limit_guards_quick_and_leaves_full_presets_alone(fake_repros):
    from repro.registry import resolve
    from repro.runner import time_limit

    rep = resolve("fake-hang")
    assert time_limit(rep, "quick", None) == rep.timeout_s
    assert time_limit(rep, "full", None) is None  # sized for quick; full may take an hour
    assert time_limit(rep, "full", 30.0) == 30.0  # an explicit --timeout always wins


# --------------------------------------------------------------------------- results safety
def _committed(fake_repros):
    """Commit a good result of fake-good, and return (path, its bytes)."""
    from repro import cli

    assert cli.main(["run", "fake-good", "--no-progress", "--quiet"]) == 0
    path = fake_repros / "results" / "fake-good" / "quick.json"
    return path, path.read_bytes()


def test_a_run_with_overrides_leaves_the_committed_result_alone(fake_repros, capsys):
    from repro import cli

    path, before = _committed(fake_repros)
    assert cli.main(["run", "fake-good", "--steps=7", "--no-progress"]) == 0
    assert path.read_bytes() == before
    out = capsys.readouterr().out
    assert "local run only (run with overrides)" in out and "is unchanged" in out
    assert last_run(fake_repros, "fake-good")["overrides"] == {"steps": "7"}
    # list and show say that a newer local run differs from the committed result
    assert cli.main(["list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["fake-good"]["status"] == "quick (newer local run)"
    assert cli.main(["show", "fake-good"]) == 0
    assert "a newer local run differs from these results" in capsys.readouterr().out


def test_a_crash_leaves_the_committed_result_alone(fake_repros, monkeypatch):
    from repro import cli, runner

    path, before = _committed(fake_repros)

    def boom(*a, **k):
        raise RuntimeError("the device fell over")

    monkeypatch.setattr("repro.common.pick_device", boom)
    assert cli.main(["run", "fake-good", "--no-progress", "--quiet"]) == 1
    assert path.read_bytes() == before
    assert "the device fell over" in last_run(fake_repros, "fake-good")["error"]
    del runner


def test_an_interrupt_keeps_what_it_finished_locally(fake_repros, monkeypatch):
    import fakepapers.good.run as good_run

    from repro import cli

    path, before = _committed(fake_repros)

    def interrupted(cfg, ctx):
        ctx.metrics["value"] = [3.0]
        raise KeyboardInterrupt

    monkeypatch.setattr(good_run, "main", interrupted)
    assert cli.main(["run", "fake-good", "--no-progress", "--quiet"]) == 130
    assert path.read_bytes() == before
    rec = last_run(fake_repros, "fake-good")
    assert rec["status"] == "interrupted" and rec["metrics"] == {"value": [3.0]}


def test_nan_leaves_the_committed_result_alone(fake_repros, monkeypatch):
    import fakepapers.good.run as good_run

    from repro import cli

    path, before = _committed(fake_repros)
    monkeypatch.setattr(good_run, "main", lambda cfg, ctx: {"value": [float("nan")] * 3})
    assert cli.main(["run", "fake-good", "--no-progress", "--quiet"]) == 3
    assert path.read_bytes() == before
    assert last_run(fake_repros, "fake-good")["status"] == "nan"
