"""Run reproductions as cluster jobs through ``submitit`` (``repro all --executor slurm``).

Each reproduction and preset becomes one job. The job runs on its node exactly what a local
``repro all`` worker runs: ``repro run <id> --preset P`` in a fresh interpreter, with its own
run folder, its own hang guard (SIGTERM, then the partial record), and promotion to
``results/`` by the child itself, atomically. So the project folder must be on a file system
the nodes share (as a home or project directory on a cluster is).

A job that the scheduler ends before the child could write (time limit, pre-emption, node
failure, out of memory, cancellation) is recorded like a local crash: a record with the
scheduler's state goes into that run's folder, and no other job's results are touched.

The same code path runs through submitit's ``local`` executor (``--executor submitit-local``:
jobs are processes on this machine, with submitit's own time limit and signals), which is how
the tests exercise it without a cluster.

For multi-task jobs (``tasks_per_node`` or ``nodes`` above one) each task receives the
variables of torch.distributed's ``env://`` initialisation (MASTER_ADDR, MASTER_PORT, RANK,
WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE), computed by submitit from the allocation:
``repro submit`` uses that to start a DDP training command, one process per GPU.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import subprocess
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

EXECUTORS = ("local", "slurm", "submitit-local")
# submitit's cluster for each executor name (``local`` is ours: a subprocess pool).
_CLUSTER = ("slurm", "submitit-local")
# Seconds between the child's own hang guard and the scheduler's kill, so that the child
# is stopped first and writes what it finished.
_MARGIN_S = 90
_DEFAULT_TIME_MIN = 120


class ClusterError(ValueError):
    """A bad cluster setting (flag or config file); the message is one line for the user."""


@dataclasses.dataclass
class ClusterOptions:
    """What each job asks the scheduler for. Flags override the config file's values."""

    partition: str | None = None
    time_min: float | None = None  # None: the reproduction's own limit, else 120 minutes
    cpus: int = 2
    gpus: int | None = None  # None: one GPU when the run's device is cuda, else none
    mem_gb: float | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    nodes: int = 1
    tasks_per_node: int = 1
    folder: str | None = None  # submitit's logs and pickles; default runs/_submitit
    setup: tuple[str, ...] = ()  # shell lines run before the job (module load ..., source ...)

    @classmethod
    def fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]


_CONFIG_HELP = (
    "a TOML file with a [slurm] table of: "
    + ", ".join(ClusterOptions.fields())
    + ' (e.g. partition = "cpu", time_min = 90, cpus = 4, setup = ["module load cuda"])'
)


def load_options(path: str | Path | None, overrides: Mapping[str, Any]) -> ClusterOptions:
    """The options of ``path`` (TOML, table ``[slurm]``), then the non-None ``overrides``."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ClusterError(
                f"--cluster-config {p}: no such file; expected {_CONFIG_HELP}"
            ) from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ClusterError(f"--cluster-config {p}: not valid TOML ({e})") from None
        table = data.get("slurm", None)
        if not isinstance(table, dict):
            raise ClusterError(f"--cluster-config {p}: no [slurm] table; expected {_CONFIG_HELP}")
        values.update(table)
    values.update({k: v for k, v in overrides.items() if v is not None})
    names = ClusterOptions.fields()
    unknown = sorted(set(values) - set(names))
    if unknown:
        where = f"--cluster-config {path}" if path else "cluster options"
        raise ClusterError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}"
        )
    opts = ClusterOptions(**{k: v for k, v in values.items() if k != "setup"})
    setup = values.get("setup", ())
    if isinstance(setup, str) or not all(isinstance(x, str) for x in setup):
        raise ClusterError(
            'setup: expected a list of shell lines, e.g. setup = ["module load cuda"]'
        )
    opts.setup = tuple(setup)
    _check(opts)
    return opts


def _check(o: ClusterOptions) -> None:
    def positive(name: str, v: Any, integer: bool = False) -> None:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        if ok and integer:
            ok = float(v).is_integer()
        if not ok:
            kind = "a positive whole number" if integer else "a positive number"
            raise ClusterError(f"{name}: {v!r} is not {kind}")

    positive("cpus", o.cpus, True)
    positive("nodes", o.nodes, True)
    positive("tasks_per_node", o.tasks_per_node, True)
    if o.time_min is not None:
        positive("time_min", o.time_min)
    if o.mem_gb is not None:
        positive("mem_gb", o.mem_gb)
    if o.gpus is not None and (
        not isinstance(o.gpus, int) or isinstance(o.gpus, bool) or o.gpus < 0
    ):
        raise ClusterError(f"gpus: {o.gpus!r} is not a whole number ≥ 0")
    for name in ("partition", "account", "qos", "constraint", "folder"):
        v = getattr(o, name)
        if v is not None and (not isinstance(v, str) or not v.strip()):
            raise ClusterError(f"{name}: {v!r} is not a non-empty string")


def make_executor(
    kind: str, opts: ClusterOptions, root: Path, *, name: str, time_min: float, device: str
):
    """A configured ``submitit.AutoExecutor`` for one job (``kind``: slurm or submitit-local)."""
    try:
        import submitit
    except ImportError:
        raise ClusterError(
            f"--executor {kind} needs submitit: pip install 'repro-papers[cluster]'"
        ) from None
    if kind not in _CLUSTER:
        raise ClusterError(f"--executor {kind}: expected one of {', '.join(EXECUTORS)}")
    folder = (Path(opts.folder) if opts.folder else root / "runs" / "_submitit") / "%j"
    gpus = opts.gpus if opts.gpus is not None else (1 if device == "cuda" else 0)
    if kind == "submitit-local":
        # submitit's local executor: the job pickling, controller, time limit and signals of
        # the cluster path, with processes on this machine (seconds-resolution limits).
        ex = submitit.LocalExecutor(folder=folder)
        local: dict[str, Any] = {
            "timeout_min": float(time_min),
            "tasks_per_node": int(opts.tasks_per_node),
            "gpus_per_node": int(gpus),
            "signal_delay_s": max(1, int(min(_MARGIN_S, time_min * 60 / 4))),
        }
        if opts.setup:
            local["setup"] = list(opts.setup)
        ex.update_parameters(**local)
        return ex
    try:
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    except RuntimeError as e:  # submitit looks for srun
        raise ClusterError(
            f"--executor slurm: {e} Run from a Slurm login node, or try the same path here "
            "with --executor submitit-local"
        ) from None
    params: dict[str, Any] = {
        "name": name,
        "timeout_min": max(1, math.ceil(time_min)),
        "cpus_per_task": int(opts.cpus),
        "nodes": int(opts.nodes),
        "tasks_per_node": int(opts.tasks_per_node),
        "stderr_to_stdout": True,
    }
    if gpus:  # `--gpus-per-node=0` is refused by some clusters: ask only when needed
        params["gpus_per_node"] = int(gpus)
    if opts.mem_gb is not None:
        params["mem_gb"] = opts.mem_gb
    slurm = {
        "slurm_partition": opts.partition,
        "slurm_account": opts.account,
        "slurm_qos": opts.qos,
        "slurm_constraint": opts.constraint,
        "slurm_setup": list(opts.setup) or None,
        # The scheduler's warning signal comes as early as the child's own guard, so a
        # run stopped by either still writes what it finished.
        "slurm_signal_delay_s": _MARGIN_S,
    }
    params.update({k: v for k, v in slurm.items() if v is not None})
    ex.update_parameters(**params)
    return ex


def distributed_env() -> dict[str, str]:
    """torch.distributed's ``env://`` variables for this task, from the job's allocation.

    Empty for a one-task job (the command then runs as a single process, as locally)."""
    import submitit

    job = submitit.JobEnvironment()
    if job.num_tasks <= 1:
        return {}
    dist = submitit.helpers.TorchDistributedEnvironment()
    return {
        "MASTER_ADDR": str(dist.master_addr),
        "MASTER_PORT": str(dist.master_port),
        "RANK": str(dist.rank),
        "WORLD_SIZE": str(dist.world_size),
        "LOCAL_RANK": str(dist.local_rank),
        "LOCAL_WORLD_SIZE": str(dist.local_world_size),
    }


def _task_threads(default: int) -> int:
    for var in ("SLURM_CPUS_PER_TASK", "SUBMITIT_CPUS_PER_TASK"):
        v = os.environ.get(var, "")
        if v.isdigit() and int(v) > 0:
            return int(v)
    return default


# ------------------------------------------------------------------ what runs on the node
@dataclasses.dataclass(frozen=True)
class ReproductionJob:
    """One ``repro run`` in a job; what a local ``repro all`` worker does, on the node."""

    rep_id: str
    preset: str
    device: str
    seed: int
    root: str
    run_dir: str
    limit_s: float | None
    threads: int

    def __call__(self):
        from repro.paths import results_dir
        from repro.registry import all_reproductions
        from repro.runner import _run_child

        os.environ["REPRO_ROOT"] = self.root
        rep = all_reproductions()[self.rep_id]
        root = Path(self.root)
        return _run_child(
            rep,
            self.preset,
            self.limit_s,
            self.device,
            self.seed,
            root,
            results_dir(root) / "_logs",
            threads=_task_threads(self.threads),
            run_dir=Path(self.run_dir),
            env_extra=distributed_env(),
        )


@dataclasses.dataclass(frozen=True)
class CommandJob:
    """Any command (``repro submit``), one process per task, with torch.distributed's variables."""

    argv: tuple[str, ...]
    cwd: str

    def __call__(self) -> int:
        env = {**os.environ, **distributed_env(), "PYTHONUNBUFFERED": "1"}
        return subprocess.run(list(self.argv), cwd=self.cwd, env=env, check=False).returncode


# ------------------------------------------------------------------ what the submitter does
_SCHEDULER_STATUS = {
    # Slurm's end states (and submitit's local ones) for a job that left no record behind.
    "TIMEOUT": "timeout",
    "PREEMPTED": "interrupted",
    "CANCELLED": "interrupted",
    "INTERRUPTED": "interrupted",
}


def job_time_min(opts: ClusterOptions, limit_s: float | None) -> float:
    """The scheduler's limit: the configured one, else the reproduction's limit plus a margin."""
    if opts.time_min is not None:
        return float(opts.time_min)
    if limit_s is not None:
        return (limit_s + _MARGIN_S) / 60
    return float(_DEFAULT_TIME_MIN)


def child_limit(opts: ClusterOptions, limit_s: float | None) -> float | None:
    """The child's own hang guard, always inside the scheduler's limit by a margin."""
    if opts.time_min is None:
        return limit_s
    budget = opts.time_min * 60
    inside = budget - _MARGIN_S if budget > 2 * _MARGIN_S else budget / 2
    return inside if limit_s is None else min(limit_s, inside)


def run_on_cluster(
    reps: Sequence[Any],
    *,
    kind: str,
    opts: ClusterOptions,
    preset: str,
    timeout: float | None,
    device: str,
    seed: int,
    root: Path,
    on_done: Callable[[Any], None] | None = None,
    wait: bool = True,
    on_submit: Callable[[str, str], None] | None = None,
) -> list[Any]:
    """Submit one job per reproduction; wait for all (unless ``wait`` is false) and return
    their outcomes. A job the scheduler ended without a record gets one, like a local crash."""
    import submitit

    from repro.runner import Outcome, _write_failure, new_run_dir, time_limit

    jobs = []
    for rep in reps:
        limit = time_limit(rep, preset, timeout)
        run_dir = new_run_dir(rep.id, preset, root, dt.datetime.now(dt.UTC))
        ex = make_executor(
            kind,
            opts,
            root,
            name=f"repro-{rep.id}-{preset}",
            time_min=job_time_min(opts, limit),
            device=device,
        )
        task = ReproductionJob(
            rep.id,
            preset,
            device,
            seed,
            str(root),
            str(run_dir),
            child_limit(opts, limit),
            opts.cpus,
        )
        job = ex.submit(task)
        if on_submit:
            on_submit(rep.id, str(job.job_id))
        jobs.append((rep, run_dir, job))
    if not wait:
        return []
    outcomes: dict[str, Any] = {}
    by_job = {id(j): (rep, run_dir) for rep, run_dir, j in jobs}
    for job in submitit.helpers.as_completed([j for _, _, j in jobs], poll_frequency=2):
        rep, run_dir = by_job[id(job)]
        try:
            result = job.results()[0]  # every task returns; the first task's outcome speaks
            out = (
                result
                if isinstance(result, Outcome)
                else Outcome(rep.id, "crashed", 0.0, str(result))
            )
        except Exception as e:  # noqa: BLE001 - the scheduler ended the job: record it, go on
            state = _state(job)
            status = _SCHEDULER_STATUS.get(state.split()[0] if state else "", "crashed")
            first = str(e).strip().splitlines()
            msg = f"job {job.job_id} ended {state or 'without a result'}: {first[-1] if first else type(e).__name__}"
            path = run_dir / f"{preset}.json"
            from repro.results import read_result

            have, _ = read_result(path)
            if have is None:  # the child wrote nothing: keep a record of what happened
                _write_failure(rep, preset, status, msg, root, 0.0, path)
            else:  # the child was stopped in time and wrote its own record: it says best
                status = str(have.get("status") or status)
            out = Outcome(rep.id, status, 0.0, msg)
        if on_done:
            on_done(out)
        outcomes[rep.id] = out
    ordered = [outcomes[rep.id] for rep, _, _ in jobs]
    from repro.runner import write_summary

    write_summary(ordered, preset, root)
    return ordered


def _state(job) -> str:
    try:
        return str(job.state or "").upper()
    except Exception:  # noqa: BLE001
        return ""


def submit_command(
    argv: Sequence[str], *, kind: str, opts: ClusterOptions, root: Path, wait: bool
) -> tuple[str, int | None]:
    """``repro submit``: run ``argv`` as one job (one process per task). Returns (job id,
    exit code of the first task, or None when not waiting)."""
    if not argv:
        raise ClusterError(
            "repro submit: give the command after --, e.g. -- python -m repro.papers.cramming.train"
        )
    ex = make_executor(
        kind,
        opts,
        root,
        name="repro-submit",
        time_min=opts.time_min or _DEFAULT_TIME_MIN,
        device="cuda" if (opts.gpus or 0) > 0 else "cpu",
    )
    job = ex.submit(CommandJob(tuple(argv), str(Path.cwd())))
    if not wait:
        return str(job.job_id), None
    try:
        codes = job.results()
    except Exception as e:  # noqa: BLE001 - the scheduler ended it; say so in one line
        last = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        raise ClusterError(
            f"job {job.job_id} ended {_state(job) or 'without a result'}: {last}"
        ) from None
    return str(job.job_id), int(max(codes, key=lambda c: abs(int(c))))
