"""GPU evidence in one prepared run: FlashAttention's speed claim and Cramming's one-GPU throughput.

Run through ``tools/gpu-evidence.sh OUTDIR`` (which first installs carried wheels), or directly::

    python tools/gpu_evidence.py OUTDIR             # on a machine with one NVIDIA GPU
    python tools/gpu_evidence.py OUTDIR --dry-run   # anywhere: the GPU plan, then a tiny CPU pass
    python tools/gpu_evidence.py --collect OUTDIR   # back home: file the results under results/

The steps, in order (each with its own time limit; a step that would not fit in what is left of
the window is skipped and recorded as such, so the run always ends inside the window):

1. ``tests``: the FlashAttention kernel's GPU tests (``pytest -m gpu``: bf16, D = 64/128, causal
   and not, and the linear-memory test).
2. ``flash-attention``: ``repro bench flash-attention --preset device`` with all four peers
   (SDPA's flash, cuDNN and memory-efficient back-ends, naive attention), N = 1k, 4k, 16k, D = 64/128,
   causal and not, forward and forward + backward; peak memory after the autotuner has run.
3. ``cramming-bench``: ``repro bench cramming --model=paper``: training tokens/s of our encoder
   in bf16 against ``transformers``' ``BertForMaskedLM`` of the same size.
4. ``cramming-run``: a short budgeted pretraining run of the paper-size model (its budget is what
   is left of the window, between 1 and 2.5 minutes), with its loss curve.
5. ``api-grid``: with any time left, the flash-attn API test grid (GQA, varlen, windows, head dims
   to 256, three dtypes) on the GPU, across processes.

Everything lands flat in OUTDIR (at most 8 files, as a device session returns them):
``summary.json`` (machine, driver, versions, commit, each step's status and time),
``log.txt``, ``pytest-gpu.xml``, ``pytest-api.xml``, ``flash-attention-gpu.json`` and ``.png``,
``cramming-bench-gpu.json``, ``cramming-run-gpu.json``. ``--collect`` copies the result files to
``results/flash-attention/bench/gpu.{json,png}``, ``results/cramming/bench/gpu.json`` and
``results/cramming/bench/gpu-run.json``.

Standard library only: this runs before anything else is known to import.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINDOW_S = 540.0  # the whole run: 9 minutes, inside a 10-minute device command
SETUP_S = 15.0  # versions, nvidia-smi, imports
PEERS = "ours,sdpa-flash,sdpa-cudnn,sdpa-efficient,naive"
MEM_LENGTHS = "1024,2048,4096,8192,16384"  # the peak-memory table, up to 16k as the issue asks

# where each step's files land under results/ (for --collect) and flat in OUTDIR
COLLECT = {
    "flash-attention-gpu.json": "flash-attention/bench/gpu.json",
    "flash-attention-gpu.png": "flash-attention/bench/gpu.png",
    "cramming-bench-gpu.json": "cramming/bench/gpu.json",
    "cramming-run-gpu.json": "cramming/bench/gpu-run.json",
}


@dataclass
class Step:
    name: str
    what: str
    gpu_cmd: list[str]
    cpu_cmd: list[str]  # the tiny CPU pass of --dry-run
    estimate_s: float  # on an H100 host, compile and start-up included
    limit_s: float  # killed after this
    produces: dict[str, str] = field(default_factory=dict)  # results-relative path -> OUTDIR name
    optional: bool = False  # runs only in time left over


def steps(run_budget_s: float | None = None) -> list[Step]:
    py = sys.executable
    budget = int(run_budget_s or 150)
    tests = "-m pytest -q -rs -p no:cacheprovider tests/papers/test_flash_attention.py -m gpu"
    fa = f"-m repro bench flash-attention --preset=device --providers={PEERS}"
    api = "-m pytest -q -p no:cacheprovider tests/papers/test_flash_attention_api.py"
    train = "-m repro.papers.cramming.train --no_progress"

    def cmd(args: str) -> list[str]:
        return [py, *args.split()]

    return [
        Step(
            "tests",
            "FlashAttention kernel GPU tests (pytest -m gpu)",
            cmd(f"{tests} -n 4 --junitxml {{out}}/pytest-gpu.xml"),
            cmd(f"{tests} --junitxml {{out}}/pytest-gpu.xml"),
            estimate_s=45,
            limit_s=90,
        ),
        Step(
            "flash-attention",
            "repro bench flash-attention --preset device (N = 1k, 4k, 16k), all peers",
            cmd(f"{fa} --device cuda --mem_lengths={MEM_LENGTHS}"),
            cmd(f"{fa} --device cpu --mem_lengths=128,256 --mem_block=64"),
            estimate_s=300,  # the benchmark's own estimate of this selection: 298 s
            limit_s=400,
            produces={
                "flash-attention/bench/gpu.json": "flash-attention-gpu.json",
                "flash-attention/bench/gpu.png": "flash-attention-gpu.png",
                "flash-attention/bench/cpu.json": "flash-attention-cpu.json",
            },
        ),
        Step(
            "cramming-bench",
            "repro bench cramming --model=paper (bf16) vs BertForMaskedLM",
            cmd(
                "-m repro bench cramming --device cuda --model=paper --micro_batch=128 --rounds=3 --steps=5"
            ),
            cmd(
                "-m repro bench cramming --device cpu --model=micro --micro_batch=4 --rounds=1 --steps=1"
            ),
            estimate_s=45,
            limit_s=120,
            produces={
                "cramming/bench/gpu.json": "cramming-bench-gpu.json",
                "cramming/bench/cpu.json": "cramming-bench-cpu.json",
            },
        ),
        Step(
            "cramming-run",
            f"crammed paper-size model pretrained for {budget} s of wall clock, loss curve",
            cmd(
                f"{train} --model=paper --device=cuda --budget={budget}s --batch_size=4096 "
                "--micro_batch=128 --out {out}/cramming-run-gpu.json"
            ),
            cmd(
                f"{train} --model=micro --device=cpu --budget=10s --batch_size=16 --micro_batch=8 "
                "--eval_sequences=32 --out {out}/cramming-run-cpu.json"
            ),
            estimate_s=budget + 45,
            limit_s=budget + 90,
        ),
        Step(
            "api-grid",
            "flash-attn API test grid on the GPU (time left over)",
            cmd(f"{api} -x -n 8 --junitxml {{out}}/pytest-api.xml"),
            cmd(f"{api} -k varlen_equals_each --junitxml {{out}}/pytest-api.xml"),
            estimate_s=60,
            limit_s=120,
            optional=True,
        ),
    ]


def run_budget_for(seconds: float) -> float:
    """The budgeted run's clock: what the window leaves it (less 45 s of data preparation and
    evaluation), between one and two and a half minutes."""
    return max(60.0, min(150.0, seconds - 45.0))


def planned_steps(window_s: float) -> list[Step]:
    before = SETUP_S + sum(
        s.estimate_s for s in steps() if s.name not in ("cramming-run", "api-grid")
    )
    return steps(run_budget_for(window_s - before))


def machine(gpu: bool) -> dict:
    info = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()  # fmt: skip
        info["commit"], info["dirty"] = rev or None, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        info["commit"], info["dirty"] = None, None
    if gpu:
        q = "name,driver_version,memory.total,clocks.max.sm,power.limit"
        try:
            out = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30).stdout  # fmt: skip
            info["nvidia_smi"] = [line.strip() for line in out.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError) as e:
            info["nvidia_smi"] = f"unavailable: {e}"
    code = (
        "import json, torch\n"
        "d = {'torch': torch.__version__, 'cuda': torch.version.cuda,"
        " 'cuda_available': torch.cuda.is_available()}\n"
        "for m in ('triton', 'transformers', 'scipy', 'pydantic', 'tokenizers'):\n"
        "    try: d[m] = __import__(m).__version__\n"
        "    except Exception as e: d[m] = f'missing ({type(e).__name__})'\n"
        "if torch.cuda.is_available():\n"
        "    p = torch.cuda.get_device_properties(0)\n"
        "    d['gpu'] = {'name': p.name, 'memory_gib': round(p.total_memory / 2**30, 1),"
        " 'sms': p.multi_processor_count, 'capability': list(torch.cuda.get_device_capability())}\n"
        "print(json.dumps(d))\n"
    )
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, cwd=ROOT)  # fmt: skip
        info["versions"] = json.loads(r.stdout) if r.returncode == 0 else r.stderr[-500:]
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        info["versions"] = f"unavailable: {e}"
    return info


def write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def plan_lines(plan: list[Step], window_s: float) -> list[str]:
    lines = [f"plan for one GPU, window {window_s:.0f} s:"]
    total = SETUP_S
    for s in plan:
        if not s.optional:
            total += s.estimate_s
        extra = " (if time is left)" if s.optional else ""
        lines.append(
            f"  {s.name:<16} ~{s.estimate_s:>4.0f} s (limit {s.limit_s:.0f} s){extra}: {s.what}"
        )
    lines.append(f"  estimate {total:.0f} s ({total / 60:.1f} min) of a {window_s:.0f}-s window")
    return lines


def run(out: Path, dry_run: bool, window_s: float) -> int:
    t_start = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    log_f = open(out / "log.txt", "a", buffering=1)

    def log(msg: str) -> None:
        line = f"[{time.monotonic() - t_start:6.1f}s] {msg}"
        print(line, flush=True)
        log_f.write(line + "\n")

    gpu = not dry_run
    log(f"gpu-evidence {'dry run (tiny CPU pass)' if dry_run else 'on the GPU'} -> {out}")
    for line in plan_lines(planned_steps(window_s), window_s):
        log(line)
    info = machine(gpu)
    log(f"machine: {json.dumps(info)}")
    if gpu and not (
        isinstance(info.get("versions"), dict) and info["versions"].get("cuda_available")
    ):
        log("error: torch sees no CUDA device; use --dry-run on a machine without one")
        write_json(out / "summary.json", {"machine": info, "steps": [], "status": "no GPU"})
        return 2
    # results are written to a scratch results/ tree, then copied flat into OUTDIR
    scratch = Path(tempfile.mkdtemp(prefix="gpu-evidence-"))
    env = dict(os.environ, REPRO_RESULTS=str(scratch / "results"), PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    # the tests try the benchmark preset's 2 autotune configs per kernel (fewer compilations,
    # and the benchmark then finds those kernels in Triton's cache)
    env["REPRO_FLASH_TUNE_CONFIGS"] = "2"
    if dry_run:
        env.update(CUDA_VISIBLE_DEVICES="", TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    records = []
    summary = {"machine": info, "dry_run": dry_run, "window_s": window_s, "steps": records}
    for i in range(len(steps())):
        left = window_s - (time.monotonic() - t_start)
        # the budgeted run takes what the later steps leave, between 60 and 150 s
        later = sum(s.estimate_s for s in steps()[i + 1 :] if not s.optional)
        run_budget = run_budget_for(left - later)
        step = steps(run_budget)[i]
        rec = {"step": step.name, "what": step.what, "estimate_s": step.estimate_s}
        records.append(rec)
        limit = step.limit_s if gpu else 300.0
        if gpu and step.estimate_s > left:
            rec.update(
                status="skipped", reason=f"{left:.0f} s left, estimate {step.estimate_s:.0f} s"
            )
            log(f"skip {step.name}: {rec['reason']}")
            write_json(out / "summary.json", summary)
            continue
        cmd = [c.replace("{out}", str(out)) for c in (step.gpu_cmd if gpu else step.cpu_cmd)]
        limit = min(limit, max(30.0, left)) if gpu else limit
        log(f"step {step.name}: {' '.join(cmd)} (limit {limit:.0f} s)")
        t0 = time.monotonic()
        tail: list[str] = []
        try:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip

            def pump(stream=proc.stdout, name=step.name, tail=tail):
                for line in stream:
                    log(f"  {name} | {line.rstrip()}")
                    tail.append(line.rstrip())
                    del tail[:-20]

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            try:
                rc = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the step and any process it started
                proc.wait()
                rc = "timeout"
            reader.join(timeout=10)
        except OSError as e:
            rc = f"could not start: {e}"
        rec["seconds"] = round(time.monotonic() - t0, 1)
        rec["status"] = "ok" if rc == 0 else ("timeout" if rc == "timeout" else "failed")
        rec["returncode"] = rc
        if rc != 0:
            rec["tail"] = tail
        for rel, name in step.produces.items():
            src = scratch / "results" / rel
            if src.exists():
                shutil.copy2(src, out / name)
                rec.setdefault("files", []).append(name)
        log(f"step {step.name}: {rec['status']} in {rec['seconds']} s")
        write_json(out / "summary.json", summary)
    summary["seconds"] = round(time.monotonic() - t_start, 1)
    bad = [r["step"] for r in records if r.get("status") not in ("ok", "skipped")]
    summary["status"] = "failed: " + ", ".join(bad) if bad else "ok"
    write_json(out / "summary.json", summary)
    log(f"done in {summary['seconds']} s: {summary['status']}; files in {out}")
    shutil.rmtree(scratch, ignore_errors=True)
    return 1 if bad else 0


def collect(out: Path) -> int:
    """Copy the GPU result files from a device run's OUTDIR into results/."""
    from importlib import import_module

    sys.path.insert(0, str(ROOT))
    results = import_module("repro.paths").results_dir()
    summary = out / "summary.json"
    if not summary.exists():
        print(f"error: {summary} is missing; give the folder a GPU run wrote", file=sys.stderr)
        return 2
    s = json.loads(summary.read_text())
    if s.get("dry_run"):
        print(f"error: {summary} is from a --dry-run; only a GPU run's files are results",
              file=sys.stderr)  # fmt: skip
        return 2
    n = 0
    for name, rel in COLLECT.items():
        src = out / name
        if src.exists():
            dst = results / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(dst.suffix + ".tmp")
            shutil.copy2(src, tmp)
            os.replace(tmp, dst)
            print(f"{name} -> {dst}")
            n += 1
    print(f"{n} file(s) filed under {results}")
    return 0 if n else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", type=Path, help="folder for the results files and the log")
    p.add_argument("--dry-run", action="store_true",
                   help="print the GPU plan, then a tiny CPU pass through every step")  # fmt: skip
    p.add_argument("--collect", action="store_true",
                   help="file a GPU run's OUTDIR under results/ instead of running")  # fmt: skip
    p.add_argument("--window", type=float, default=WINDOW_S, help="seconds for the whole run")
    args = p.parse_args(argv)
    if args.window < 60:
        p.error(f"--window {args.window:g}: give at least 60 seconds")
    if args.collect:
        return collect(args.outdir)
    if args.outdir.exists() and not args.outdir.is_dir():
        p.error(f"outdir {args.outdir}: exists and is not a folder")
    return run(args.outdir, args.dry_run, args.window)


if __name__ == "__main__":
    sys.exit(main())
