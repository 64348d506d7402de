"""FP8-LM: Training FP8 Large Language Models (Peng et al. 2023, arXiv:2310.18313).

FP8-LM trains GPT-style models from 7B to 175B parameters with FP8 matrix products, FP8
gradients and FP8 optimiser states, and reports loss curves that track the BF16 baseline while
memory falls by 39% and training runs 75% faster than BF16 Megatron-LM on H100s (175B). The
FP8 formats have little range (E4M3 tops out at 448; E5M2's smallest subnormal is 1.5e-5), so
every tensor carries a scale factor that moves its values into range.

We simulate FP8-LM's recipe on the CPU with torch's float8 dtypes (``fp8.py``):
  * compute: every linear layer in the Transformer blocks casts its matmul inputs to E4M3
    (forward) or E5M2 (output gradient) and back, each with a per-tensor scale, so the
    products read FP8 values; accumulation stays float32;
  * gradients and optimiser (§2.2, MS-AMP level O2, ``FP8AdamW``): the weight gradient of
    those layers is stored in E4M3 with a per-tensor scale (the tensor FP8-LM all-reduces; our
    single process quantises it but does not all-reduce it), AdamW's first moment in E4M3 and
    its second moment in FP16, the master weight in FP16, each with a per-tensor scale; the
    update itself is computed in float32 from the dequantised tensors;
  * memory: the bytes per parameter of weight + gradient + optimiser state are summed from the
    tensors each arm holds after training (FP8-LM: 16 bytes → 6).
The same model is trained from the same initial weights on the same batches three times per
seed: bf16 (bf16 matmul inputs, float32 weights, gradients and AdamW state: the paper's BF16
mixed-precision baseline), FP8 (the recipe above) and FP8 matmul inputs without scaling.

Claims (rules fixed before the run):
  * finding ``fp8-tracks-bf16``: FP8 ends within ±MATCH_NATS of bf16 (equivalence, TOST on
    the per-seed paired differences FP8 − bf16), gated on both arms having learned;
  * finding ``unscaled-gradients-underflow``: without scaling, most of the output-gradient
    entries underflow to zero in E5M2 (one share per seed);
  * finding ``unscaled-training-degrades``: without scaling, training ends more than that
    margin above bf16; gated on bf16 having learned only, since failing to learn is what the
    claim predicts for the unscaled arm;
  * check ``fp8-state-bytes``: our FP8 optimiser holds 6 bytes per parameter (2 master weight,
    1 gradient, 1 first moment, 2 second moment, plus one float32 scale per tensor);
  * check ``state-memory-saving``: 1 − 6/16 = 62.5% less than the float32 baseline's tensors.
Seeds: 3 in quick, 5 in full; seed s gives all three arms the same initial weights and batches.

History: until issue 16 the presets trained 250 steps on 16×32-token batches (quick; every arm
ended 0.0–0.25 nats below unigram, so both comparisons were inconclusive on the learned gate),
FP8 covered the matmul inputs only, and the tolerance was 0.02 nats (below the seed noise).
Then quick ran 400 steps until the results at commit cd14e7e, over its CPU budget (see the
presets); it now runs 330.

Left out: the gradient all-reduce across processes (and its shared amax and pre-scaling),
delayed amax-history scaling, FP8 distributed parallelism (level O3), the speed results (they
need FP8 tensor cores) and all downstream evaluations.
"""

from dataclasses import dataclass

from repro.claims import AtLeast, Claim, Equivalent, Near, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    max_docs: int | None = None  # all 500 documents
    seq_len: int = 64  # tokens per window
    batch_size: int = 16  # windows per step
    d_model: int = 64  # width
    n_layer: int = 2  # Transformer blocks
    n_head: int = 4  # attention heads
    steps: int = 330  # optimiser steps per arm (quick; 400 until the results at cd14e7e)
    lr: float = 3e-3  # AdamW peak learning rate (cosine, 5% warm-up)
    margin: int = 0  # scale = format max / amax / 2^margin (Transformer Engine's "margin")
    eval_batches: int = 40  # validation windows: eval_batches × batch_size
    seeds: int = 3  # paired seeds (ctx.seed + i); each trains all three arms


# "Tracks BF16" needs a two-sided margin. The paper prints no number for the gap (we searched
# its text; its Fig. 4 draws the FP8 and BF16 loss curves of GPT-7B, 13B and 175B on top of each
# other). We fix ±0.05 nats before the run: about 1% of our bf16 loss (~4.2 nats after
# training), and above the seed-to-seed spread of one arm (about 0.04 nats in the earlier quick
# run), so the margin is not narrower than the noise it is judged against. (Until issue 16 it
# was 0.02 nats, below that spread.)
MATCH_NATS = 0.05
# FP8-LM §2.2: AdamW with a float32 weight, gradient and two moments holds 16 bytes per
# parameter; FP8 gradient + FP8 first moment + FP16 second moment + FP16 master weight hold 6
# (MS-AMP's documentation: O2 saves "up to 62.5%" of the optimiser's memory, 8 → 3 bytes).
PAPER_BYTES = 6.0
BASELINE_BYTES = 16.0

REPRO = Reproduction(
    id="fp8-lm",
    papers=("fp8-lm",),
    title="FP8 compute, gradients and optimiser state with per-tensor scaling against bf16",
    config=Config,
    presets={
        # 3 seeds × three arms of 330 steps on 16×64-token batches. Until the results at
        # commit cd14e7e quick ran 400 steps: 223 CPU-s, over the 180 CPU-s quick budget (all
        # gated arms 0.62-0.94 nats below unigram, gate 0.5). Changed after those results,
        # for the budget only: 330 steps, and the forward casts no longer count their
        # (unused) underflow statistics, which leaves every number identical and saves ~10%.
        "quick": {},
        # 5 seeds × three arms of 1000 steps (width-64 TinyLMs need about 1,000 steps to reach
        # the full preset's 1.0-nat learned gate)
        "full": {"steps": 1000, "eval_batches": 80, "seeds": 5},
    },
    claims=(
        Claim(
            id="fp8-tracks-bf16",
            statement="with FP8 matmuls, FP8 gradients and FP8/FP16 optimiser state, each with "
            "per-tensor scaling, training gives the same held-out loss as bf16 (equivalence)",
            source="Fig. 4 (GPT-7B/13B/175B loss curves); §2.2; §4.2",
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
            # only the baseline must have learned: the claim predicts the unscaled arm fails
            gates=(learned_gate("bf16"),),
        ),
        Claim(
            id="fp8-state-bytes",
            statement="our FP8 optimiser holds 6 bytes of weight, gradient and optimiser state "
            "per parameter",
            source="§2.2 (FP8 optimizer)",
            paper_value="16 bytes → 6 bytes per parameter",
            metric="fp8_state_bytes_per_param",
            # the per-tensor float32 scales add 16 bytes per matrix (< 0.01 byte per parameter
            # for our smallest 64×64 matrix); anything else in the wrong format adds ≥ 1 byte
            rule=Near(PAPER_BYTES, atol=0.01),
            unit="bytes per block-linear parameter, summed from the stored tensors",
            kind="check",
        ),
        Claim(
            id="state-memory-saving",
            statement="against the float32 weight, gradient and AdamW state of the bf16 "
            "baseline, the FP8 recipe saves 62.5% of that memory",
            source="§2.2",
            paper_value="1 − 6/16 = 62.5%",
            metric="state_memory_saving",
            rule=Near(1 - PAPER_BYTES / BASELINE_BYTES, atol=0.001),
            unit="share of the baseline's bytes, from the tensors of both arms",
            kind="check",
        ),
    ),
    timeout_s=900,
)
