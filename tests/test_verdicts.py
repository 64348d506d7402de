"""The verdicts framework: findings judged on intervals over seeds, checks pass/fail, gates,
re-judging stored metrics, provenance and staleness, ``repro verify``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import TESTS
from scipy import stats

from repro.claims import (
    AtLeast,
    AtMost,
    Claim,
    Equivalent,
    IsTrue,
    Reproduction,
    Verdict,
    count_verdicts,
    estimate_of,
    learned_gate,
    own_interval,
    summarize_counts,
)


def finding(rule, **kw) -> Claim:
    return Claim("c", "s", "§1", "x", "m", rule, kind="finding", **kw)


def verdict(claim: Claim, metrics: dict, preset: str = "quick") -> dict:
    return claim.evaluate(metrics, {}, preset)


# --------------------------------------------------------------------------- intervals
def test_interval_is_scipys_t_interval():
    xs = [0.31, 0.35, 0.29, 0.4, 0.33]
    est = estimate_of(xs)
    lo, hi = stats.t.interval(0.95, 4, loc=sum(xs) / 5, scale=stats.sem(xs))
    assert (est.n, est.method) == (5, "t-interval")
    assert est.low == pytest.approx(lo) and est.high == pytest.approx(hi)
    boot = estimate_of(xs, method="bootstrap")
    assert boot.method == "bootstrap (BCa)" and boot.low < est.estimate < boot.high


def test_at_least_judges_the_whole_interval():
    c = finding(AtLeast(0.5))
    assert verdict(c, {"m": [0.8, 0.9, 0.85]})["verdict"] == Verdict.REPRODUCED
    assert verdict(c, {"m": [0.1, 0.2, 0.15]})["verdict"] == Verdict.NOT_REPRODUCED
    # the mean is above the limit but a seed disagrees: the interval straddles it
    row = verdict(c, {"m": [0.4, 0.9, 0.7]})
    assert row["verdict"] == Verdict.INCONCLUSIVE and "straddles" in row["reason"]
    assert row["n"] == 3 and row["values"] == [0.4, 0.9, 0.7] and row["interval"][0] < 0.5


def test_a_finding_needs_three_seeds_and_five_in_full():
    c = finding(AtMost(1.0))
    row = verdict(c, {"m": 0.1})
    assert row["verdict"] == Verdict.INCONCLUSIVE and row["reason"].startswith("n = 1 < 3")
    assert verdict(c, {"m": [0.1, 0.2]})["verdict"] == Verdict.INCONCLUSIVE
    assert verdict(c, {"m": [0.1, 0.2, 0.1]})["verdict"] == Verdict.REPRODUCED
    row = verdict(c, {"m": [0.1, 0.2, 0.1]}, "full")
    assert row["verdict"] == Verdict.INCONCLUSIVE and "n = 3 < 5" in row["reason"]


def test_a_metric_may_carry_its_own_interval():
    c = finding(AtLeast(0.05))
    row = verdict(c, {"m": own_interval(0.07, 0.06, 0.08, "fit, 95% CI of the slope", n=7)})
    assert row["verdict"] == Verdict.REPRODUCED and row["method"].startswith("own: fit")
    row = verdict(c, {"m": own_interval(0.07, 0.04, 0.1, "fit")})
    assert row["verdict"] == Verdict.INCONCLUSIVE


def test_equivalence_needs_the_interval_inside_the_margin():
    c = finding(Equivalent(0.1))
    assert verdict(c, {"m": [0.01, -0.02, 0.03, 0.0]})["verdict"] == Verdict.REPRODUCED
    # a large harm: a one-sided "no worse than" rule would have passed it
    assert verdict(c, {"m": [-0.9, -0.8, -0.85]})["verdict"] == Verdict.NOT_REPRODUCED
    assert verdict(c, {"m": [0.0, 0.15, 0.05]})["verdict"] == Verdict.INCONCLUSIVE
    assert Equivalent(0.1).describe() == "within ± 0.1 (equivalence)"


def test_boolean_finding_per_seed():
    c = finding(IsTrue())
    assert verdict(c, {"m": [True, True, True]})["verdict"] == Verdict.REPRODUCED
    assert verdict(c, {"m": [False, False, False]})["verdict"] == Verdict.NOT_REPRODUCED
    assert verdict(c, {"m": [True, False, True]})["verdict"] == Verdict.INCONCLUSIVE


# --------------------------------------------------------------------------- gates
def test_a_failed_gate_makes_the_finding_inconclusive_and_is_named():
    c = finding(AtLeast(0.0), gates=(learned_gate("transformer"), learned_gate("rwkv")))
    ok = {"m": [0.3, 0.4, 0.5], "transformer_below_unigram": [1.1, 1.0, 1.2]}
    row = verdict(c, {**ok, "rwkv_below_unigram": [0.9, 0.7, 0.6]})
    assert row["verdict"] == Verdict.REPRODUCED
    assert [g["holds"] for g in row["gates"]] == [True, True]
    # one seed of the baseline stayed on the unigram plateau
    row = verdict(c, {**ok, "rwkv_below_unigram": [0.9, 0.1, 0.6]})
    assert row["verdict"] == Verdict.INCONCLUSIVE
    assert row["reason"] == "gate learned (rwkv): rwkv_below_unigram ≥ 0.5 does not hold"
    row = verdict(c, ok)
    assert "gate learned (rwkv): rwkv_below_unigram not measured" == row["reason"]
    # the full preset asks for 1.0 nats below unigram
    five = {"m": [0.3] * 5, "transformer_below_unigram": [0.8] * 5, "rwkv_below_unigram": [2] * 5}
    assert verdict(c, five, "full")["verdict"] == Verdict.INCONCLUSIVE


def test_checks_pass_or_fail_and_are_counted_apart():
    chk = Claim("k", "s", "§1", "x", "m", AtMost(1e-6), kind="check")
    assert chk.evaluate({"m": 1e-9}, {})["verdict"] == Verdict.PASS
    assert chk.evaluate({"m": [1e-9, 1e-3]}, {})["verdict"] == Verdict.FAIL
    assert chk.evaluate({"m": float("nan")}, {})["verdict"] == Verdict.FAIL
    rows = [
        {"kind": "finding", "verdict": "reproduced"},
        {"kind": "finding", "verdict": "inconclusive"},
        {"kind": "check", "verdict": "pass"},
        {"kind": "check", "verdict": "pass"},
    ]
    counts = count_verdicts(rows)
    assert counts["finding"]["reproduced"] == 1 and counts["check"]["pass"] == 2
    assert summarize_counts(counts) == (
        "2 findings: 1 reproduced, 0 not, 1 inconclusive · 2 implementation checks: 2 pass"
    )


def test_declaration_problems_name_the_claim():
    rep = Reproduction(
        id="r",
        papers=("r",),
        title="t",
        config=type("C", (), {"__dataclass_fields__": {}}),
        presets={"quick": {}, "full": {}},
        claims=(
            Claim("a", "s", "§1", "x", "m", AtLeast(1)),
            Claim("b", "s", "§1", "x", "m", AtLeast(1), kind="check", gates=(learned_gate("x"),)),
        ),
    )
    problems = rep.problems()
    assert any(
        p.startswith("claims.a: kind: '' is not a kind; declare kind='finding'") for p in problems
    )
    assert "claims.b: gates: only a finding has validity gates" in problems


# --------------------------------------------------------------------------- re-judging
def _fake(rep_id: str = "fake-good") -> Reproduction:
    from repro.registry import resolve

    return resolve(rep_id)


def test_rejudge_applies_a_changed_rule_without_rerunning(fake_repros):
    from repro import cli, registry
    from repro.results import needs_rejudge, read_result, rejudge

    assert cli.main(["run", "fake-good", "--no-progress", "--quiet"]) == 0
    path = fake_repros / "results" / "fake-good" / "quick.json"
    stored, _ = read_result(path)
    rep = _fake()
    assert not needs_rejudge(rep, stored)
    assert stored["claims"][0]["verdict"] == "reproduced"
    stricter = replace(rep, claims=(replace(rep.claims[0], rule=AtLeast(10.0)), rep.claims[1]))
    assert needs_rejudge(stricter, stored)
    again = rejudge(stricter, stored)
    assert again["claims"][0]["verdict"] == "not reproduced"
    assert again["metrics"] == stored["metrics"]  # measurements untouched
    registry.discover.cache_clear()


# --------------------------------------------------------------------------- provenance
@pytest.fixture
def two_repros(kb_root: Path, monkeypatch, tmp_path_factory):
    """A package of two fake reproductions in a temp folder, so that their source can be edited."""
    from conftest import write_card

    from repro import registry

    pkg_root = tmp_path_factory.mktemp("pkgs")
    pkg = pkg_root / "editable_papers"
    shutil.copytree(TESTS / "fakepapers", pkg)
    shutil.copytree(pkg / "good", pkg / "other")
    (pkg / "other" / "__init__.py").write_text(
        'from editable_papers._decl import declare\n\nREPRO = declare("fake-other")\n'
    )
    (pkg / "good" / "__init__.py").write_text(
        'from editable_papers._decl import declare\n\nREPRO = declare("fake-good")\n'
    )
    for sub in ("crash", "hang", "nan_metrics"):
        shutil.rmtree(pkg / sub)
    for name in ("fake-good", "fake-other"):
        write_card(kb_root, name, year=2021, extra=f"repro: {name}\n")
    monkeypatch.syspath_prepend(str(pkg_root))
    monkeypatch.setenv("REPRO_PAPERS", "editable_papers")
    monkeypatch.setenv("REPRO_ROOT", str(kb_root))
    monkeypatch.delenv("REPRO_RESULTS", raising=False)
    import os

    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(
            [str(pkg_root), str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]
        ),
    )
    registry.discover.cache_clear()
    yield kb_root, pkg
    registry.discover.cache_clear()


def _repro(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "repro", *args],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )


def test_editing_one_reproduction_marks_exactly_it_stale(two_repros):
    from repro.provenance import staleness
    from repro.registry import all_reproductions, discover
    from repro.results import read_result

    root, pkg = two_repros
    proc = _repro(root, "all", "--only", "fake-good,fake-other", "-j", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reps = all_reproductions()

    def stale() -> set[str]:
        out = set()
        for rid in ("fake-good", "fake-other"):
            data, _ = read_result(root / "results" / rid / "quick.json")
            if staleness(reps[rid], data):
                out.add(rid)
        return out

    assert stale() == set()
    run_py = pkg / "other" / "run.py"
    run_py.write_text(run_py.read_text() + "\n# an edit\n")
    assert stale() == {"fake-other"}
    # `repro all --stale` re-runs it alone
    proc = _repro(root, "all", "--stale", "--only", "fake-good,fake-other")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--stale: 1 reproduction(s)" in proc.stderr and ": fake-other" in proc.stderr
    assert "fake-good" not in proc.stdout
    discover.cache_clear()
    assert stale() == set()


def test_common_modules_are_followed(tmp_path):
    from repro.provenance import common_modules

    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "run.py").write_text(
        "from repro.common.tinylm import TinyLM\nfrom repro.common import stats\n"
    )
    mods = common_modules(folder)
    assert {"__init__", "tinylm", "stats"} <= set(mods)
    assert "data" in mods  # tinylm imports repro.common.data
    assert "memory" not in mods


def test_check_refuses_dirty_results_and_warns_on_stale(fake_repros, capsys):
    from repro import cli

    cli.main(["run", "fake-good", "--no-progress", "--quiet"])
    path = fake_repros / "results" / "fake-good" / "quick.json"
    data = json.loads(path.read_text())
    capsys.readouterr()
    from repro.consistency import committed_results
    from repro.registry import all_reproductions

    data["dirty"] = True
    data["code_hash"] = "0000"
    path.write_text(json.dumps(data))
    problems, warnings = committed_results(all_reproductions(), fake_repros / "results")
    assert any("results/fake-good/quick.json: dirty: true" in p for p in problems)
    assert any("results/fake-good/quick.json: stale (the code" in w for w in warnings)


# --------------------------------------------------------------------------- verify
def test_verify_catches_a_planted_difference(fake_repros):
    from repro.results import read_result, write_result

    proc = _repro(fake_repros, "run", "fake-good", "--no-progress", "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _repro(fake_repros, "verify", "fake-good")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 reproduction(s) match" in proc.stdout
    # plant a difference: the committed per-seed values are not what the code produces
    path = fake_repros / "results" / "fake-good" / "quick.json"
    data, _ = read_result(path)
    data["metrics"]["value"] = [3.0, 3.5, 3.02]
    data["claims"][0]["values"] = [3.0, 3.5, 3.02]
    write_result(data, fake_repros / "results")
    proc = _repro(fake_repros, "verify", "fake-good")
    assert proc.returncode == 1
    assert "fake-good/quick: claim 'value' metric 'value': committed 3, 3.5, 3.02" in proc.stdout


def test_verify_draw_is_seeded(fake_repros):
    from repro.registry import all_reproductions
    from repro.verify import draw

    for rid in ("fake-good", "fake-crash"):
        p = fake_repros / "results" / rid / "quick.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"status": "ok", "claims": [], "preset": "quick"}))
    reps = all_reproductions()
    a = [r.id for r in draw(reps, 1, "quick", "abc")]
    assert a == [r.id for r in draw(reps, 1, "quick", "abc")]
    assert len(draw(reps, 5, "quick", "abc")) == 2  # only those with committed results


def test_a_seed_not_measured_is_left_out_and_said():
    c = finding(AtMost(0.2))
    row = verdict(c, {"m": [0.01, None, 0.03, 0.02]})
    assert row["verdict"] == Verdict.REPRODUCED and row["n"] == 3
    assert row["method"].endswith("1 seed(s) not measured")
    row = verdict(c, {"m": [0.01, None, 0.03]})
    assert row["verdict"] == Verdict.INCONCLUSIVE and row["reason"].startswith("n = 2 < 3")
