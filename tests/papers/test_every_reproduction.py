"""Every reproduction, end to end, at its ``tiny`` preset: the whole code path of each run
(data, models, training, measurement, the results record) executes in CI on every push,
while the quick presets are re-run only when their code changed (``repro all --stale``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from repro.registry import all_reproductions
from repro.results import read_result

REPS = all_reproductions()

# The smallest overrides of each reproduction's quick preset that still run every code path
# (data, models, training, every metric, figures) in a few CPU-seconds on one thread. A
# reproduction may instead declare a "tiny" preset of its own (``repro new --repro`` does).
# Findings measured here on 1-2 seeds are simply inconclusive: this is a test of the code
# path, not a result.
TINY: dict[str, dict] = {
    "bahdanau-attention": {
        "min_len": 2,
        "max_len": 6,
        "n_symbols": 5,
        "buckets": 2,
        "emb": 8,
        "hidden": 8,
        "steps": 3,
        "batch": 8,
        "eval_per_bucket": 8,
        "seeds": 2,
    },
    "attention-is-all-you-need": {
        "dims": (16, 256),
        "samples": 20000,
        "softmax_rows": 20,
        "seq_len": 8,
        "d_model": 16,
        "positions": 64,
        "offsets": (1, 3),
        "mha_trials": 2,
        "min_len": 2,
        "max_len": 4,
        "n_symbols": 4,
        "model_dim": 16,
        "n_head": 2,
        "d_ff": 32,
        "steps": 3,
        "batch": 8,
        "warmup": 2,
        "eval_sequences": 20,
        "seeds": 2,
    },
    "fast-weight-memories": {
        "lengths": (1, 2, 7, 32),
        "decode_lengths": (16, 64, 256),
        "d_model": 16,
        "d_key": 8,
        "d_value": 8,
    },
    "transformer-xl": {
        "d_model": 16,
        "n_layer": 1,
        "n_head": 2,
        "seg_len": 8,
        "batch_size": 4,
        "steps": 3,
        "warmup": 1,
        "eval_streams": 2,
        "eval_segments": 3,
        "warmup_segments": 4,
        "seeds": 2,
    },
    "music-transformer": {
        "check_lengths": (1, 2, 17, 64),
        "check_dims": (1, 8),
        "mem_lengths": (64, 128, 256),
        "mem_dims": (16, 32, 64),
    },
    "rank-collapse": {
        "tokens": 8,
        "d_model": 16,
        "heads": 2,
        "depth": 6,
        "draws": 3,
        "mlp_gains": (1.0, 4.0),
    },
    "linformer": {
        "seq_len": 32,
        "d_model": 16,
        "n_layer": 1,
        "n_head": 2,
        "batch_size": 4,
        "steps": 40,
        "eval_windows": 8,
        "proj_ks": (2, 4, 8, 16, 32),
        "jl_draws": 15,
        "cost_lengths": (256, 512, 1024),
        "cost_k": 16,
        "cost_head_dim": 16,
        "repeats": 1,
        "seeds": 2,
    },
    "gemma": {
        "d_model": 16,
        "n_layer": 1,
        "n_head": 2,
        "head_dim": 8,
        "ffn_ratio": 2,
        "seq_len": 16,
        "batch_size": 4,
        "steps": 3,
        "warmup": 1,
        "eval_batches": 2,
        "seeds": 2,
    },
    "kaplan-scaling-laws": {
        "seq_len": 16,
        "batch_size": 4,
        "shapes": ("16x1", "24x2", "32x2"),
        "tokens": 640,
        "eval_batches": 1,
        "seeds": 2,
    },
    "chinchilla": {
        "seq_len": 16,
        "batch_size": 4,
        "widths": (4, 8, 12),
        "budgets": (1e8,),
        "min_steps": 2,
        "max_steps": 100,
        "eval_batches": 1,
        "seeds": 2,
    },
    "emergence-mirage": {
        "widths": (8, 12, 16),
        "steps": 3,
        "batch_size": 8,
        "test_size": 50,
        "seeds": 2,
    },
    "transcoders": {
        "seq_len": 16,
        "d_model": 16,
        "n_layer": 3,
        "n_head": 2,
        "lm_steps": 50,
        "lm_batch": 4,
        "expansion": 2,
        "collect_windows": 16,
        "dict_steps": 200,
        "dict_batch": 64,
        "l1_coeffs": (0.0003, 0.003, 0.03),
        "eval_batches": 1,
        "attribution_tokens": 64,
        "attribution_pairs": 4,
        "seeds": 2,
    },
    "optical-transformers": {
        "planted_trials": 16,
        "planted_widths": (16, 64),
        "widths": (16, 32),
        "steps": 2,
        "eval_windows": 2,
        "seq_len": 16,
        "grid_lo": -1.0,
        "grid_hi": 1.0,
        "bisect_iters": 1,
        "seeds": 2,
        "max_docs": 20,
    },
    "fp8-lm": {
        "steps": 3,
        "d_model": 16,
        "n_layer": 1,
        "eval_batches": 2,
        "seeds": 2,
        "max_docs": 20,
    },
    "bitnet-b158": {
        "steps": 2,
        "widths": (16, 24, 32),
        "eval_batches": 2,
        "seeds": 2,
        "max_docs": 20,
        "addonly_tokens": 4,
    },
    "gpt": {
        "pretrain_steps": 2,
        "eval_windows": 4,
        "eval_every": 1,
        "perturb_trials": 2,
        "n_labelled": 16,
        "finetune_steps": 2,
        "seeds": 2,
        "n_eval": 8,
    },
    "bart": {
        "noise_windows": 1000,
        "steps": 2,
        "batch": 4,
        "eval_windows": 8,
        "seeds": 2,
        "max_docs": 20,
    },
    "lora": {
        "pretrain_steps": 2,
        "finetune_steps": 2,
        "eval_batches": 1,
        "latency_batch": 2,
        "latency_rounds": 1,
        "seeds": 2,
    },
    "instructgpt": {
        "pretrain_steps": 2,
        "rm_steps": 2,
        "rm_batch": 4,
        "eval_pairs": 8,
        "rl_steps": 3,
        "rl_batch": 4,
        "window": 1,
        "seeds": 2,
    },
    "multi-token-prediction": {
        "steps": 2,
        "widths": (16, 32),
        "eval_batches": 2,
        "seeds": 2,
        "max_docs": 20,
    },
    "sophia": {
        "steps": 4,
        "eval_every": 2,
        "eval_batches": 1,
        "batch_size": 2,
        "seq_len": 16,
        "seeds": 2,
        "max_docs": 20,
        "hessian_every": 2,
    },
    "schedule-free": {
        "horizons": (2, 4),
        "bigram_horizons": (2, 4),
        "batch_size": 2,
        "seq_len": 16,
        "eval_batches": 1,
        "seeds": 2,
        "max_docs": 20,
    },
    "cramming": {
        "model": "micro",
        "budget": "1s",
        "vocab_size": 512,
        "seq_len": 32,
        "batch_size": 8,
        "micro_batch": 4,
        "eval_sequences": 16,
        "finetune_per_class": 4,
        "finetune_test_per_class": 4,
        "finetune_epochs": 1,
        "throughput_steps": 1,
        "throughput_rounds": 1,
        "checkpoint": False,
        "seeds": 2,
    },
    "on-layer-normalization": {
        "seeds": 1,
        "max_docs": 10,
        "vocab_size": 256,
        "seq_len": 16,
        "depths": (2, 4),
        "grad_width": 16,
        "grad_heads": 2,
        "grad_batch": 2,
        "grad_batches": 1,
        "grad_seeds": 1,
        "train_layers": 2,
        "train_width": 16,
        "train_heads": 2,
        "train_batch": 4,
        "steps": 5,
        "eval_batches": 2,
    },
    "peri-ln": {
        "seeds": 1,
        "use_all_docs": False,
        "max_docs": 10,
        "vocab_size": 512,
        "seq_len": 16,
        "d_model": 16,
        "n_layer": 2,
        "n_head": 2,
        "batch": 4,
        "steps": 5,
        "warmup": 2,
        "probe_windows": 4,
        "eval_batches": 2,
    },
    "deepnet": {
        "seeds": 1,
        "max_docs": 10,
        "seq_len": 16,
        "train_layers": 4,
        "batch": 4,
        "steps": 5,
        "warmup": 2,
        "eval_batches": 1,
        "depths": (2, 4),
        "update_steps": 2,
        "probe_batch": 2,
    },
    "rmsnorm": {
        "seeds": 1,
        "max_docs": 10,
        "seq_len": 16,
        "batch_size": 4,
        "d_model": 16,
        "n_layer": 1,
        "n_head": 2,
        "steps": 5,
        "evals": 1,
        "eval_batches": 1,
        "widths": (16, 32),
        "rows": 16,
        "timing_rounds": 3,
    },
    "glu-variants": {
        "seeds": 1,
        "max_docs": 10,
        "seq_len": 16,
        "batch_size": 4,
        "d_model": 16,
        "n_layer": 1,
        "n_head": 2,
        "steps": 5,
        "eval_batches": 2,
    },
    "simplified-transformer-blocks": {
        "seeds": 1,
        "max_docs": 10,
        "seq_len": 16,
        "batch_size": 4,
        "d_model": 16,
        "n_layer": 1,
        "n_head": 2,
        "steps": 5,
        "eval_batches": 2,
        "lrs": (1e-3, 2e-3, 4e-3),
    },
    "mup": {
        "seeds": 1,
        "max_docs": 10,
        "base_width": 8,
        "batch_size": 16,
        "coord_widths": (8, 16),
        "coord_steps": 1,
        "coord_seeds": 1,
        "widths": (8, 16),
        "log2_lrs": (-6.0, -5.0, -4.0),
        "steps": 5,
        "val_tokens": 256,
    },
    "longformer": {
        "block": 16,
        "window": 16,
        "head_dim": 16,
        "check_len": 128,
        "random_blocks": 2,
        "cost_lengths": (256, 512, 1024, 2048),
        "dense_max_len": 2048,
        "fit_from": 512,
        "repeats": 1,
    },
    "cope": {
        "n_instr": 8,
        "d_model": 8,
        "n_head": 2,
        "steps": 2,
        "warmup": 1,
        "n_test": 16,
        "seeds": 1,
        "npos_max": 4,
        "batch_size": 4,
    },
    "rwkv": {
        "wkv_len": 16,
        "wkv_channels": 4,
        "vocab_size": 512,
        "max_docs": 20,
        "d_model": 16,
        "n_layer": 1,
        "n_head": 2,
        "seq_len": 16,
        "batch_size": 4,
        "steps": 3,
        "seeds": 1,
        "eval_batches": 1,
        "decode_d": 64,
        "decode_layers": 1,
        "decode_heads": 1,
        "decode_lengths": (256, 1024, 8192),
        "decode_tokens": 8,
        "decode_repeats": 5,
    },
    "mamba-2": {
        "batch": 1,
        "heads": 2,
        "head_dim": 8,
        "state": 8,
        "check_len": 64,
        "check_chunks": (8, 64),
        "rank_len": 32,
        "chunk": 32,
        "time_lengths": (256, 512, 1024, 2048),
        "quadratic_max_len": 2048,
        "fit_from": 512,
        "repeats": 3,
    },
    "xlstm": {
        "cell_len": 16,
        "cell_heads": 1,
        "cell_dim": 4,
        "gate_scales": (1.0, 1000.0),
        "vocab_size": 512,
        "max_docs": 20,
        "d_model": 16,
        "heads": 2,
        "seq_len": 16,
        "batch_size": 4,
        "steps": 3,
        "eval_batches": 1,
        "seeds": 1,
    },
    "fnet": {
        "vocab_size": 512,
        "seq_len": 32,
        "max_per_doc": 2,
        "d_model": 16,
        "n_layer": 1,
        "n_head": 2,
        "d_ff": 32,
        "batch_size": 8,
        "steps": 3,
        "warmup": 1,
        "seeds": 1,
        "bench_lengths": (128, 512, 1024),
        "bench_layers": 1,
        "bench_repeats": 5,
    },
    "flash-attention": {
        "exact_cases": ("19x23-d16-causal-fp16", "24x9-d16-full-bf16"),
        "exact_heads": 1,
        "mem_lengths": (128, 256, 512),
        "mem_head_dim": 16,
        "mem_block": 32,
        "io_seq_len": 256,
        "io_head_dim": 16,
        "io_sram_kib": (1, 2, 4, 8),
        "speed_lengths": (1024,),
        "speed_rounds": 1,
    },
}


@pytest.mark.parametrize("rep_id", sorted(REPS))
def test_runs_end_to_end_at_its_tiny_preset(rep_id: str, tmp_path: Path):
    rep = REPS[rep_id]
    if "tiny" in rep.presets:
        preset, overrides = "tiny", {}
    else:
        assert rep_id in TINY, f"{rep_id}: declare a 'tiny' preset, or add it to TINY here"
        preset, overrides = "quick", TINY[rep_id]
    env = {
        **os.environ,
        "REPRO_RESULTS": str(tmp_path / "results"),
        "REPRO_RUNS": str(tmp_path / "runs"),
        "OMP_NUM_THREADS": "1",
        "TRITON_INTERPRET": "1",  # FlashAttention's Triton kernels, on the CPU
    }
    args = [f"--{k}={_arg(v)}" for k, v in overrides.items()]
    cmd = [sys.executable, "-m", "repro", "run", rep_id, "--preset", preset, "--device", "cpu"]
    proc = subprocess.run(
        [*cmd, *args, "--no-progress", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    # a run with overrides stays in the local run history: read its record there
    runs = sorted((tmp_path / "runs" / rep_id).glob(f"*-{preset}"))
    assert runs, proc.stdout[-2000:] + proc.stderr[-2000:]
    data, warn = read_result(runs[-1] / f"{preset}.json")
    assert data is not None, warn or proc.stdout[-2000:] + proc.stderr[-2000:]
    assert data["status"] == "ok", data.get("error")
    rows = {c["id"]: c for c in data["claims"]}
    assert set(rows) == {c.id for c in rep.claims}
    for claim in rep.claims:
        row = rows[claim.id]
        assert row["kind"] == claim.kind
        # every claim is measured, or the run said why not (a GPU, a preset that skips it)
        assert "was not measured" not in (row.get("reason") or ""), (
            f"{rep_id}: claim {claim.id!r}: metric {claim.metric!r} missing from the run"
        )
    assert data["code_hash"]


def _arg(v) -> str:
    """A value as ``--key=value`` expects it: tuples as "(a, b)", strings bare."""
    if isinstance(v, tuple):
        return "(" + ", ".join(_arg(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
