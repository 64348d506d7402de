"""`repro all` beyond one machine: the Slurm path through submitit, shards, and merging.

The Slurm executor is exercised through submitit's local executor (``--executor
submitit-local``): the same job objects, pickled, run by submitit's controller as separate
processes with its own time limit, so a crash, a hang and a job the scheduler kills are seen
as they would be on a cluster, without one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("submitit")


def repro(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "repro", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def last_run(root: Path, rep_id: str, preset: str = "quick") -> dict:
    runs = sorted((root / "runs" / rep_id).glob(f"*-{preset}"))
    assert runs, f"no local run of {rep_id}"
    return json.loads((runs[-1] / f"{preset}.json").read_text())


def test_slurm_path_keeps_results_when_one_job_crashes_and_one_hangs(fake_repros):
    proc = repro(
        "all",
        "--executor",
        "submitit-local",
        "--only",
        "fake-good,fake-crash,fake-hang",
        "--cpus",
        "1",
        cwd=fake_repros,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "3 reproductions: 1 ran, 2 failed" in proc.stdout, out
    assert "fake-crash: crashed" in proc.stdout and "fake-hang: timeout" in proc.stdout, out
    assert out.count("submitted fake-") == 3
    good = json.loads((fake_repros / "results" / "fake-good" / "quick.json").read_text())
    assert good["status"] == "ok" and good["claims"][0]["verdict"] == "reproduced"
    assert not (fake_repros / "results" / "fake-crash").exists()
    assert not (fake_repros / "results" / "fake-hang").exists()
    hang = last_run(fake_repros, "fake-hang")
    assert hang["status"] == "timeout" and hang["metrics"] == {"value": 5.0}
    assert "deliberate failure" in last_run(fake_repros, "fake-crash")["error"]
    summary = json.loads((fake_repros / "results" / "_all-quick.json").read_text())
    assert {o["id"]: o["status"] for o in summary["outcomes"]} == {
        "fake-good": "ok",
        "fake-crash": "crashed",
        "fake-hang": "timeout",
    }


def test_a_job_the_scheduler_kills_is_recorded_and_others_land(fake_repros, monkeypatch):
    """No hang guard in the child: submitit's own time limit ends the job, as Slurm would."""
    from repro import cluster
    from repro.registry import all_reproductions

    monkeypatch.setattr(cluster, "child_limit", lambda opts, limit: None)
    reps = all_reproductions()
    opts = cluster.ClusterOptions(cpus=1, time_min=0.5)
    done = []
    outcomes = cluster.run_on_cluster(
        [reps["fake-hang"], reps["fake-good"]],
        kind="submitit-local",
        opts=opts,
        preset="quick",
        timeout=None,
        device="cpu",
        seed=0,
        root=fake_repros,
        on_done=done.append,
    )
    by_id = {o.id: o for o in outcomes}
    assert [o.id for o in outcomes] == ["fake-hang", "fake-good"] and len(done) == 2
    assert by_id["fake-good"].status == "ok"
    assert by_id["fake-hang"].status in ("timeout", "interrupted", "crashed")
    assert "job" in by_id["fake-hang"].message
    rec = last_run(fake_repros, "fake-hang")  # a record of the killed job, in its run folder
    assert rec["status"] == by_id["fake-hang"].status
    assert (fake_repros / "results" / "fake-good" / "quick.json").exists()
    assert not (fake_repros / "results" / "fake-hang").exists()


def test_submit_passes_the_distributed_environment(fake_repros, tmp_path):
    """Two tasks of one job form a torch.distributed group through env:// (gloo)."""
    script = tmp_path / "ddp.py"
    script.write_text(
        "import os, torch, torch.distributed as dist\n"
        "dist.init_process_group('gloo')\n"
        "t = torch.tensor([float(dist.get_rank() + 1)])\n"
        "dist.all_reduce(t)\n"
        "keys = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')\n"
        "out = {k: os.environ[k] for k in keys}\n"
        "out['sum'] = t.item()\n"
        f"open(os.path.join({str(tmp_path)!r}, 'rank%s.json' % dist.get_rank()), 'w').write(__import__('json').dumps(out))\n"
        "dist.destroy_process_group()\n"
    )
    proc = repro(
        "submit",
        "--executor",
        "submitit-local",
        "--tasks-per-node",
        "2",
        "--cpus",
        "1",
        "--time-min",
        "3",
        "--",
        sys.executable,
        str(script),
        cwd=fake_repros,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["RANK"] for r in ranks] == ["0", "1"]
    assert {r["WORLD_SIZE"] for r in ranks} == {"2"} and {r["LOCAL_RANK"] for r in ranks} == {
        "0",
        "1",
    }
    assert ranks[0]["MASTER_PORT"] == ranks[1]["MASTER_PORT"]
    assert all(r["sum"] == 3.0 for r in ranks)  # 1 + 2: the group really formed


def test_cluster_options_from_file_and_flags(tmp_path):
    from repro.cluster import ClusterError, load_options

    cfg = tmp_path / "cluster.toml"
    cfg.write_text(
        '[slurm]\npartition = "cpu"\ncpus = 4\ntime_min = 90\nsetup = ["module load x"]\n'
    )
    o = load_options(cfg, {"cpus": 8, "partition": None})
    assert (o.partition, o.cpus, o.time_min, o.setup) == ("cpu", 8, 90, ("module load x",))
    cfg.write_text('[slurm]\npartiton = "cpu"\n')
    with pytest.raises(ClusterError, match="unknown key.*partiton"):
        load_options(cfg, {})
    with pytest.raises(ClusterError, match="no such file"):
        load_options(tmp_path / "missing.toml", {})
    with pytest.raises(ClusterError, match="cpus: 0 is not"):
        load_options(None, {"cpus": 0})


def test_slurm_executor_asks_for_what_the_run_needs(tmp_path, monkeypatch):
    """The sbatch script submitit would submit (a stand-in `srun` on PATH; no cluster)."""
    from repro.cluster import ClusterError, ClusterOptions, make_executor

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ClusterError, match="Slurm login node.*submitit-local"):
        make_executor("slurm", ClusterOptions(), tmp_path, name="r", time_min=5, device="cpu")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    opts = ClusterOptions(
        partition="gpu", cpus=8, mem_gb=32, account="lab", setup=("module load cuda",)
    )
    ex = make_executor("slurm", opts, tmp_path, name="repro-x", time_min=61.5, device="cuda")
    script = ex._executor._make_submission_file_text("python -m x", "uid")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --time=62",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --mem=32GB",
        "#SBATCH --signal=USR2@90",
        "#SBATCH --job-name=repro-x",
        "module load cuda",
    ):
        assert line in script, script
    cpu = make_executor("slurm", ClusterOptions(), tmp_path, name="r", time_min=5, device="cpu")
    assert "--gpus-per-node" not in cpu._executor._make_submission_file_text("python -m x", "u")


def test_local_executor_refuses_cluster_flags(fake_repros):
    proc = repro("all", "--partition", "cpu", "--only", "fake-good", cwd=fake_repros)
    assert proc.returncode == 2 and "need --executor slurm" in proc.stderr


# ------------------------------------------------------------------------------ shards
def test_shards_are_disjoint_cover_everything_and_balance():
    from repro.shard import assign, parse_shard

    costs = {
        f"r{i}": float(c) for i, c in enumerate([300, 250, 120, 90, 90, 60, 45, 30, 20, 10, 5])
    }
    for n in (1, 2, 3, 4, 11, 15):
        shards = assign(costs, n)
        flat = [r for s in shards for r in s]
        assert sorted(flat) == sorted(costs) and len(flat) == len(set(flat))
    loads = [sum(costs[r] for r in s) for s in assign(costs, 3)]
    assert max(loads) - min(loads) <= max(costs.values())  # greedy bound
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/3", "4/3", "x", "1/0", ""):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_dry_run_shards_of_the_real_project_cover_every_reproduction_once():
    from repro.registry import all_reproductions

    repo = Path(__file__).resolve().parent.parent
    seen: list[str] = []
    for i in (1, 2, 3):
        proc = repro("all", "--dry-run", "--shard", f"{i}/3", cwd=repo, timeout=120)
        assert proc.returncode == 0, proc.stderr
        seen += [line.split("\t")[0] for line in proc.stdout.splitlines() if line.strip()]
        assert f"--shard {i}/3" in proc.stderr
    assert sorted(seen) == sorted(all_reproductions())
    assert len(seen) == len(set(seen))
    bad = repro("all", "--dry-run", "--shard", "4/3", cwd=repo, timeout=120)
    assert bad.returncode == 2 and "--shard 4/3" in bad.stderr


# ------------------------------------------------------------------------------ merge
def _record(rid: str, started: str, value: float, status: str = "ok") -> dict:
    return {
        "reproduction": rid,
        "preset": "quick",
        "status": status,
        "started": started,
        "overrides": {},
        "commit": "abc",
        "claims": [{"id": "value", "values": [value], "verdict": "reproduced"}],
    }


def _put(base: Path, rec: dict, fig: str | None = None) -> None:
    d = base / rec["reproduction"]
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{rec['preset']}.json").write_text(json.dumps(rec))
    if fig:
        (d / rec["preset"]).mkdir(exist_ok=True)
        (d / rec["preset"] / "fig.png").write_text(fig)


def test_merge_takes_new_records_and_refuses_conflicts(tmp_path):
    from repro.merge import MergeError, merge

    dest, a, b = tmp_path / "results", tmp_path / "a", tmp_path / "b"
    old = _record("x", "2026-11-01T00:00:00+00:00", 1.0)
    _put(dest, old, fig="old")
    y = _record("y", "2026-11-01T00:00:00+00:00", 2.0)
    _put(dest, y)
    # shard a re-ran x; shard b carries x and y unchanged and re-ran z
    _put(a, _record("x", "2026-12-01T00:00:00+00:00", 1.5), fig="new")
    _put(b, old)
    _put(b, y)
    _put(b, _record("z", "2026-12-01T00:00:00+00:00", 3.0))
    lines = merge([a, b], dest)
    assert lines[-1].startswith("2 record(s) merged") and "1 already there" in lines[-1]
    assert json.loads((dest / "x" / "quick.json").read_text())["claims"][0]["values"] == [1.5]
    assert (dest / "x" / "quick" / "fig.png").read_text() == "new"
    assert (dest / "z" / "quick.json").exists()

    # two shards with different records for the same reproduction: refused, nothing written
    c, d = tmp_path / "c", tmp_path / "d"
    _put(c, _record("y", "2026-12-02T00:00:00+00:00", 2.1))
    _put(d, _record("y", "2026-12-03T00:00:00+00:00", 2.2))
    _put(d, _record("w", "2026-12-03T00:00:00+00:00", 9.0))
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    with pytest.raises(MergeError, match=r"y/quick: conflicting records in .*c .*d "):
        merge([c, d], dest)
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before
    assert not (dest / "w").exists()


def test_merge_refuses_failed_older_and_mislabelled_records(tmp_path):
    from repro.merge import MergeError, merge

    dest = tmp_path / "results"
    _put(dest, _record("x", "2026-12-05T00:00:00+00:00", 1.0))
    cases = {
        "status crashed": _record("x", "2026-12-06T00:00:00+00:00", 1.0, status="crashed"),
        "older than the destination": _record("x", "2026-12-01T00:00:00+00:00", 1.1),
    }
    for i, (msg, rec) in enumerate(cases.items()):
        src = tmp_path / f"s{i}"
        _put(src, rec)
        with pytest.raises(MergeError, match=msg):
            merge([src], dest)
    wrong = tmp_path / "wrong"
    _put(wrong, _record("x", "2026-12-06T00:00:00+00:00", 1.0))
    shutil.move(wrong / "x", wrong / "q")
    with pytest.raises(MergeError, match="the record says x/quick, its path says q/quick"):
        merge([wrong], dest)
    with pytest.raises(MergeError, match="not a folder"):
        merge([tmp_path / "nope"], dest)


def test_merge_command_line(tmp_path):
    repo = Path(__file__).resolve().parent.parent
    src, dest = tmp_path / "shard", tmp_path / "into"
    _put(src, _record("x", "2026-12-06T00:00:00+00:00", 1.0))
    ok = repro("results", "merge", str(src), "--into", str(dest), cwd=repo)
    assert ok.returncode == 0 and "1 record(s) merged" in ok.stdout, ok.stderr
    again = repro("results", "merge", str(src), "--into", str(dest), cwd=repo)
    assert again.returncode == 0 and "0 record(s) merged into" in again.stdout
    bad = repro("results", "merge", str(tmp_path / "missing"), "--into", str(dest), cwd=repo)
    assert bad.returncode == 2 and "not a folder" in bad.stderr
