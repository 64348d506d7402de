"""Cramming under torchrun: two CPU processes (gloo) train exactly what one process trains.

The same command line runs once as one process and once under ``torchrun --nproc_per_node=2``
with the same global batch (one process: micro-batch 8; two processes: micro-batch 4 each), a
fixed step count instead of the clock, and a small local corpus. The per-step losses and the
final weights must agree up to float32 summation order: relative 1e-4 on the losses, 1e-5
absolute on the weights (observed differences are around 1e-7).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from repro.common.data import load_brown


def _run(cmd: list[str], env: dict, timeout: float = 150) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"


def test_two_gloo_processes_match_one(tmp_path):
    pytest.importorskip("torch.distributed")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for d in load_brown()[::12]:  # 42 documents, every genre
        (corpus / f"{d.id}.txt").write_text(d.text)
    env = {
        **os.environ,
        "REPRO_CACHE": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    common = [
        "-m",
        "repro.papers.cramming.train",
        "--model=micro",
        "--vocab_size=512",
        "--seq_len=32",
        f"--corpus={corpus}",
        "--steps=5",
        "--batch_size=16",
        "--eval_sequences=16",
        "--no_progress",
        "--device=cpu",
    ]
    single, double = tmp_path / "one.pt", tmp_path / "two.pt"
    _run([sys.executable, *common, "--micro_batch=8", f"--checkpoint={single}"], env)
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            *common,
            "--micro_batch=4",
            f"--checkpoint={double}",
        ],
        env,
    )
    a = torch.load(single, weights_only=False)
    b = torch.load(double, weights_only=False)
    assert a["step"] == b["step"] == 5
    assert [h["batch"] for h in a["history"]] == [h["batch"] for h in b["history"]]
    assert [h["loss"] for h in b["history"]] == pytest.approx(
        [h["loss"] for h in a["history"]], rel=1e-4
    )
    for name, p in a["model"].items():
        torch.testing.assert_close(b["model"][name], p, rtol=0, atol=1e-5, msg=name)
