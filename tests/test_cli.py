"""The command line: resolving papers, overrides, and the messages a user sees."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from repro import cli
from repro.claims import Reproduction
from repro.registry import UnknownReproduction, resolve


def run_cli(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_paper_suggests(fake_repros, capsys):
    code, _, err = run_cli(["run", "fake-god"], capsys)
    assert code == 2
    assert "no reproduction called 'fake-god'; did you mean 'fake-good'?" in err


def test_shorthand_and_prefix(fake_repros):
    assert resolve("fake-go").id == "fake-good"
    assert resolve("FAKE_GOOD").id == "fake-good"
    with pytest.raises(UnknownReproduction, match="matches several"):
        resolve("fake-")


def test_resolve_by_arxiv_id(fake_repros):
    rep = resolve("2001.00001", {"2001.00001": "fake-good"})
    assert rep.id == "fake-good"


def test_unknown_key_lists_valid_keys(fake_repros, capsys):
    code, _, err = run_cli(["fake-good", "--stepz=4"], capsys)
    assert code == 2
    assert (
        "unknown key --stepz (did you mean --steps?); valid keys: steps, seeds, scale, label, flag"
        in err
    )


def test_badly_typed_value(fake_repros, capsys):
    code, _, err = run_cli(["fake-good", "--steps=many"], capsys)
    assert code == 2
    assert "--steps=many: expected an integer" in err
    code, _, err = run_cli(["fake-good", "--flag=maybe"], capsys)
    assert "--flag=maybe: expected a boolean" in err


def test_bare_flag_means_true(fake_repros, capsys):
    code, out, _ = run_cli(["run", "fake-good", "--dry-run", "--flag", "--steps", "5"], capsys)
    assert code == 0 and "--flag=True" in out and "--steps=5" in out
    code, _, err = run_cli(["fake-good", "--dry-run", "--steps"], capsys)
    assert code == 2 and "--steps=true: expected an integer" in err


def test_unknown_preset(fake_repros, capsys):
    code, _, err = run_cli(["fake-good", "--preset", "huge"], capsys)
    assert code == 2 and "unknown preset 'huge'" in err and "full, quick" in err


def test_run_writes_results_with_verdicts(fake_repros, capsys):
    code, out, _ = run_cli(
        ["run", "fake-good", "--steps=2", "--flag=true", "--no-progress"], capsys
    )
    assert code == 0
    # a run with overrides is kept in the local history, not in results/
    assert not (fake_repros / "results" / "fake-good").exists()
    (run,) = (fake_repros / "runs" / "fake-good").glob("*-quick")
    data = json.loads((run / "quick.json").read_text())
    assert data["status"] == "ok"
    assert data["config"] == {"steps": 2, "seeds": 3, "scale": 1.0, "label": "x", "flag": True}
    verdicts = {c["id"]: c["verdict"] for c in data["claims"]}
    assert verdicts == {"value": "reproduced", "small": "fail"}
    value = data["claims"][0]
    assert value["kind"] == "finding" and value["n"] == 3 and len(value["interval"]) == 2
    assert "local run only (run with overrides)" in out
    for key in ("device", "versions", "commit", "seed", "duration_s", "started", "code_hash"):
        assert key in data
    # CPU time is recorded beside wall time: a non-negative number of seconds
    assert isinstance(data["cpu_s"], int | float) and data["cpu_s"] >= 0


def test_dry_run_prints_config(fake_repros, capsys):
    code, out, _ = run_cli(["run", "fake-good", "--dry-run", "--scale=2.5"], capsys)
    assert code == 0 and "--scale=2.5" in out
    assert not (fake_repros / "results" / "fake-good").exists()


def test_crash_in_process_is_recorded(fake_repros, capsys):
    code, out, _ = run_cli(["run", "fake-crash", "--no-progress"], capsys)
    assert code == 1
    assert not (fake_repros / "results" / "fake-crash").exists()
    (run,) = (fake_repros / "runs" / "fake-crash").glob("*-quick")
    data = json.loads((run / "quick.json").read_text())
    assert data["status"] == "crashed"
    assert "deliberate failure" in data["error"]
    assert data["metrics"] == {"value": 2.0}  # kept, but it decides nothing:
    assert {c["verdict"] for c in data["claims"]} == {"not checked at this scale"}


def test_list_and_show(fake_repros, capsys):
    run_cli(["run", "fake-good", "--no-progress"], capsys)
    code, out, _ = run_cli(["list", "--json"], capsys)
    assert code == 0
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows["fake-good"]["reproduction"] == "fake-good"
    assert rows["fake-good"]["findings"]["reproduced"] == 1
    assert rows["fake-good"]["checks"]["pass"] == 1
    assert rows["fake-good"]["stale"] is None
    assert rows["bert"]["reproduction"] is None
    code, out, _ = run_cli(["show", "fake-good", "--json"], capsys)
    shown = json.loads(out)
    assert code == 0 and shown["reproduction"] == "fake-good"
    assert shown["results"]["quick"]["claims"][0]["statement"] == "the value is at least one"


def test_show_unknown(fake_repros, capsys):
    code, _, err = run_cli(["show", "bertt"], capsys)
    assert code == 2 and "did you mean 'bert'" in err


def test_malformed_results_file_is_a_warning(fake_repros, capsys):
    path = fake_repros / "results" / "fake-good" / "quick.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"claims": [ {"id": "value", "verd')  # truncated
    code, out, err = run_cli(["list"], capsys)
    assert code == 0
    assert "unreadable results file" in err


def test_check_reports_and_fails(fake_repros, capsys):
    code, out, err = run_cli(["check"], capsys)
    assert code == 0, out + err
    (fake_repros / "notes" / "papers" / "bert.md").write_text("---\nid: bert\n")
    code, out, _ = run_cli(["check"], capsys)
    assert code == 1 and "front matter is not closed" in out


def test_check_and_list_do_not_import_torch():
    """`repro list` / `repro check` must stay fast: no torch on those paths."""
    code = (
        "import sys; from repro import cli; cli.main(['list']); cli.main(['check']); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_every_declaration_is_valid(monkeypatch):
    from repro.registry import discover

    monkeypatch.delenv("REPRO_PAPERS", raising=False)
    discover.cache_clear()
    reps, problems = discover()
    assert problems == ()
    assert all(isinstance(r, Reproduction) for r in reps.values())
    assert "attention-is-all-you-need" in reps


@pytest.mark.parametrize("width", [80, 160])
def test_show_and_list_fit_the_terminal(fake_repros, capsys, monkeypatch, width):
    run_cli(["run", "fake-good", "--no-progress", "--quiet"], capsys)
    monkeypatch.setenv("COLUMNS", str(width))
    for argv in (["show", "fake-good"], ["list"]):
        code, out, _ = run_cli(argv, capsys)
        assert code == 0
        assert max(len(line) for line in out.splitlines()) <= width, argv
    code, out, _ = run_cli(["show", "fake-good"], capsys)
    if width < 120:  # stacked blocks: the verdict heads each claim
        assert "✔ reproduced  value  (finding)" in out and "✔ pass  small  (check)" in out
    else:
        assert "┃ claim" in out
