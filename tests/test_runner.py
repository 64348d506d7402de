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
    hang = json.loads((results / "fake-hang" / "quick.json").read_text())
    assert hang["status"] == "timeout"
    assert hang["metrics"] == {"value": 5.0}  # what it finished before the timeout is kept
    nan = json.loads((results / "fake-nan-metrics" / "quick.json").read_text())
    assert nan["status"] == "nan" and "value" in nan["error"]
    crash = json.loads((results / "fake-crash" / "quick.json").read_text())
    assert "deliberate failure" in crash["error"]
    assert (results / "_all-quick.json").exists()


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
