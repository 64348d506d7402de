"""FP8-LM: Training FP8 Large Language Models (Peng et al. 2023, arXiv:2310.18313).

FP8-LM trains GPT-style models from 7B to 175B parameters with FP8 matrix products, FP8
gradients and FP8 optimiser states, and reports loss curves that track the BF16 baseline while
memory falls by 39% and training runs 75% faster than BF16 Megatron-LM on H100s (175B). The
FP8 formats have little range (E4M3 tops out at 448; E5M2's smallest subnormal is 1.5e-5), so
every tensor carries a scale factor that moves its values into range.

We simulate the compute part on the CPU (``fp8.py``): every linear layer in the Transformer
blocks of a small LM casts its matmul inputs to E4M3 (forward) or E5M2 (output gradient) with
torch's float8 dtypes and back, so the products read FP8 values; accumulation and master
weights stay float32. The same model is trained from the same initial weights on the same
batches with float32 inputs, bf16 inputs, FP8 with per-tensor scaling, and FP8 without.

Claims (all three are findings, measured on trained models; rules fixed before the first run):
  * finding ``fp8-tracks-bf16``: scaled FP8 ends within ±0.02 nats of bf16 (an equivalence
    claim, "no loss of accuracy"), judged on the per-seed paired differences FP8 − bf16;
  * finding ``unscaled-gradients-underflow``: without scaling, most of the output-gradient
    entries underflow to zero in E5M2 (one share per seed);
  * finding ``unscaled-training-degrades``: without scaling, training ends more than that
    margin above bf16 (paired per-seed differences).
Each finding comparing trained arms is gated on every arm having learned (held-out loss below
the unigram floor). Seeds: 3 in quick, 5 in full; seed s gives all four precisions the same
initial weights and batches.

Left out: FP8 optimiser states and FP8 gradient all-reduce (the paper's 2nd and 3rd levels),
delayed amax-history scaling, the memory and speed results (they need FP8 tensor cores), and
all downstream evaluations.
"""

from dataclasses import dataclass

from repro.claims import AtLeast, Claim, Equivalent, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    max_docs: int | None = None  # all 500 documents
    seq_len: int = 32  # tokens per window
    batch_size: int = 16  # windows per step
    d_model: int = 64  # width
    n_layer: int = 2  # Transformer blocks
    n_head: int = 4  # attention heads
    steps: int = 250  # optimiser steps per precision
    lr: float = 3e-3  # AdamW peak learning rate (cosine, 5% warm-up)
    margin: int = 0  # scale = FP8_MAX / amax / 2^margin (Transformer Engine's "margin")
    eval_batches: int = 40  # validation windows: eval_batches × batch_size
    seeds: int = 3  # paired seeds (ctx.seed + i); each trains all four precisions


# "Tracks BF16" needs a margin. The paper prints no number: its Fig. 4 draws FP8 and BF16 loss
# curves on top of each other at every size. We keep the tolerance fixed before the first run,
# 0.02 nats (0.5% of our ~5 nats), now two-sided. It is below the 0.04-nat spread of a single
# arm between seeds, which is why the claim is judged on paired per-seed differences (same
# init, same batches), where that common variation cancels.
MATCH_NATS = 0.02

REPRO = Reproduction(
    id="fp8-lm",
    papers=("fp8-lm",),
    title="FP8 matmul inputs with and without per-tensor scaling against bf16",
    config=Config,
    presets={
        # 3 seeds × four runs of 250 steps
        "quick": {},
        # 5 seeds × four runs of 2000 steps on 64-token windows
        "full": {"steps": 2000, "seq_len": 64, "eval_batches": 80, "seeds": 5},
    },
    claims=(
        Claim(
            id="fp8-tracks-bf16",
            statement="with per-tensor scaling, FP8 matmul inputs give the same held-out loss as "
            "bf16 inputs (equivalence)",
            source="Fig. 4 (GPT-7B/13B/175B loss curves); §4.2",
            paper_value="FP8 and BF16 loss curves overlap from 7B to 175B",
            metric="fp8_minus_bf16",
            rule=Equivalent(MATCH_NATS),  # margin: see MATCH_NATS
            unit="nats/token (FP8 − bf16, validation, paired per seed)",
            kind="finding",
            gates=(learned_gate("fp8"), learned_gate("bf16")),
        ),
        Claim(
            id="unscaled-gradients-underflow",
            statement="without scaling, small gradients fall below E5M2's range and are flushed "
            "to zero",
            source="§2.1 (precision decoupling, automatic scaling)",
            paper_value="FP8's limited range causes gradient underflow without scaling",
            metric="unscaled_gradient_underflow",
            rule=AtLeast(0.5),  # "underflows": the majority of the nonzero gradient entries lost
            unit="share of nonzero output-gradient entries cast to 0 (per seed)",
            kind="finding",
        ),
        Claim(
            id="unscaled-training-degrades",
            statement="without scaling, the FP8 run no longer tracks bf16",
            source="§2.1",
            paper_value="scaling is needed to keep FP8 training accurate",
            metric="unscaled_minus_bf16",
            rule=AtLeast(MATCH_NATS),  # outside the tolerance that defines "tracks"
            unit="nats/token (unscaled FP8 − bf16, validation, paired per seed)",
            kind="finding",
            gates=(learned_gate("fp8_unscaled"), learned_gate("bf16")),
        ),
    ),
    timeout_s=300,
)
