"""Better & Faster Large Language Models via Multi-token Prediction (Gloeckle, Youbi Idrissi,
Rozière, Lopez-Paz, Synnaeve 2024, arXiv:2404.19737).

A shared trunk feeds n output heads; head i predicts the token i positions ahead and the
training loss sums the n cross-entropies (``model.py``). At inference the trunk and the first
head form an ordinary next-token model, so n-token and next-token models are compared at the
same inference size. The paper finds that the benefit grows with model size: on code
benchmarks n = 4 hurts models of 0.3B and 0.6B parameters and helps from about 3B on (Fig. 3),
and on natural-language multiple-choice benchmarks n = 2 and 4 do not help a 7B model (§3.7).

Claims (both findings, measured on trained models with next-token validation loss as the
measure, judged on per-seed paired differences: seed s gives n = 1 and n = 4 the same batches
and the same initial embeddings, trunk, head 1 and unembedding;
3 seeds in quick, 5 in full; rules fixed before the first run):
  * finding ``no-gain-at-small-scale``: at our (tiny) scale, n = 4 does not improve
    next-token loss over n = 1, as for the paper's smallest models;
  * finding ``benefit-grows-with-size``: the effect of n = 4 improves (its loss difference to
    n = 1 falls) from the smaller to the larger of our models, the direction of the paper's
    size trend.
  * finding ``self-speculative-speedup``: greedy self-speculative decoding with the 4-head
    model (heads 2-4 draft, the next-token head verifies; ``speculative.py``) generates the
    paper's ~3 tokens per forward pass (§3.2: 3.0× faster on code with n = 4);
  * check ``speculative-equals-greedy``: that decoding returns exactly the greedy output.
Every finding is gated on each compared arm having learned (held-out loss 0.5 nats below the
unigram floor in quick, 1.0 in full): a stalled arm makes the comparison inconclusive.

Issue 16: before, n = 4 models stalled at the unigram plateau (every head ~5.26 nats) in
quick, so the comparison was between an untrained and a barely trained arm. See
``Config`` for what changed and why.

Left out: the code benchmarks, byte-level models and the induction/algorithmic-reasoning
probes. The paper's trend spans 0.3B–13B; ours is one width (the size trend is not checked in
this budget, see the presets).
"""

from dataclasses import dataclass

from repro.claims import AtLeast, AtMost, Claim, Reproduction, learned_gate

# Sized to the CPU budget: quick 3 seeds × (n = 1, n = 4) ≈ 160 CPU-s, full 5 seeds ≈ 14
# CPU-min; n = 4 needs about three times the steps n = 1 needs to clear the learned gate (see
# Config). The size trend (two widths) does not fit: benefit-grows-with-size is not checked.
QUICK_STEPS = 600
FULL_STEPS = 2000
LR = 3e-3


@dataclass(frozen=True)
class Config:
    """Issue 16, first change: quick had trained on 8 windows of 32 tokens per step for 400
        steps (100k tokens): the n = 1 models ended 0.07-0.5 nats below the unigram floor and
        every n = 4 head sat on it (5.26 nats). The four heads share the trunk, the final norm and
        the unembedding, and under Adam the trunk's update follows the sum of four gradients of
        which three (tokens 2-4 ahead, barely predictable) are mostly noise early on: the
        next-token signal is diluted and the n = 4 model leaves the unigram plateau later than
        n = 1. 16 windows of 64 tokens, 400 steps (quick) / 700 (full), tied unembedding, gave
        (results at commit cd14e7e) n = 4 models 0.03-0.35 (quick) and 0.57-0.67 (full) nats below
        unigram and n = 1 models 0.88-1.24 in full: both gated findings inconclusive.

        Second change (after seeing those results): one-seed calibration runs (CPU-seconds per
        step and the margin below unigram, n = 4 at 3e-3) showed that at equal compute more
        steps on smaller batches train further (8 × 64 tokens, 700 steps: 0.52 nats; 16 × 64,
        600 steps: 0.57 at 6e-3 for 40% more CPU), and that an unembedding of its own, as in
        the paper's Llama-style models, lets both arms leave the plateau sooner (n = 4, 650
        steps: 0.62 against 0.49 tied; n = 1: 1.18 against 0.81), since the input embedding no
        longer takes the gradients of four output heads. Still, in those runs the n = 4 model
        needed about 2,000 steps to reach the full gate's 1.0 nats (0.97 after 1,600 steps on
        one seed), three times what n = 1 needs: so quick 600 steps and full 2,000, 8 windows
        of 64 tokens each, the most the CPU budget holds (quick ≈ 160 CPU-s, full ≈ 14
        CPU-min). The learning rate, shared by both arms, was checked on one equal grid for both
        arms before the runs (seed 0, quick's 600 steps, this config except that the unembedding
    then drew its initial weights after the heads; nats below unigram at
        1.5e-3 / 3e-3 / 6e-3: n = 1 1.18 / 1.22 / 0.86, n = 4 0.58 / 0.64 / 0.59): 3e-3 is the
        best of the three for both arms and inside the grid, so it is kept."""

    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    max_docs: int | None = None  # all 500 documents
    seq_len: int = 64  # input tokens per window (heads' targets reach n tokens further)
    batch_size: int = 8  # windows per step
    widths: tuple[int, ...] = (64,)  # d_model of each size; heads of 16 dimensions
    n_layer: int = 3  # blocks of the next-token model: n_layer − 1 trunk + 1 head
    tie_embeddings: bool = False  # f_u's matrix: its own (the paper's Llama-style models)
    n_futures: tuple[int, ...] = (1, 4)  # tokens predicted per position (1 = baseline)
    steps: int = QUICK_STEPS  # optimiser steps per run
    lr: float = LR  # AdamW peak learning rate (cosine, 5% warm-up), both arms
    eval_batches: int = 40  # validation windows: eval_batches × batch_size (320, as before)
    seeds: int = 3  # paired seeds (ctx.seed + i); each trains every (width, n)
    prompt_len: int = 16  # self-speculative decoding: held-out prompt tokens, then greedy
    spec_prompts: int = 16  # prompts, each continued to seq_len tokens


# The paper's self-speculative speed-up with n = 4 (abstract: "up to 3 times faster"; §3.2:
# 3.0x on code, 7B model). Generated tokens per forward pass bound a wall-clock speed-up from above (drafting
# heads cost time), so a 3.0x speed-up needs at least 3 tokens per pass.
PAPER_SPEEDUP = 3.0

REPRO = Reproduction(
    id="multi-token-prediction",
    papers=("multi-token-prediction",),
    title="n-token prediction heads: next-token loss and self-speculative decoding at small scale",
    config=Config,
    presets={
        # 3 seeds × n = 1 and 4 at width 64, QUICK_STEPS steps of 8 × 64 tokens each, then
        # speculative decoding
        "quick": {},
        # 5 seeds, FULL_STEPS steps
        "full": {"seeds": 5, "steps": FULL_STEPS},
    },
    claims=(
        Claim(
            id="no-gain-at-small-scale",
            statement="for small models, training with 4 future-token heads does not improve "
            "next-token prediction",
            source="Fig. 3; §3.1",
            paper_value="n = 4 scores below n = 1 at 0.3B and 0.6B (MBPP, HumanEval)",
            metric="n4_minus_n1_smallest",
            rule=AtLeast(0.0),  # the paper's small-model finding is a sign: no improvement
            unit="nats/token (n = 4 − n = 1, next-token validation loss, smallest model, "
            "paired per seed)",
            kind="finding",
            gates=(learned_gate("smallest_n1"), learned_gate("smallest_n4")),
        ),
        Claim(
            id="benefit-grows-with-size",
            statement="the effect of 4-token prediction becomes more favourable as the model grows",
            source="Fig. 3",
            paper_value="n = 4 hurts at 0.3B–0.6B, helps from ~3B (up to +17% MBPP at 13B)",
            metric="effect_change_with_size",
            rule=AtMost(0.0),  # direction of the trend: (n4 − n1) at largest minus at smallest
            unit="nats (difference at largest − at smallest, paired per seed)",
            kind="finding",
            gates=tuple(learned_gate(f"{s}_n{n}") for s in ("smallest", "largest") for n in (1, 4)),
        ),
        Claim(
            id="self-speculative-speedup",
            statement="greedy self-speculative decoding with the 4-token model (extra heads draft, "
            "the next-token head verifies) generates several tokens per forward pass",
            source="§3.2; abstract",
            paper_value="up to 3x faster inference with n = 4 (3.0x on code, 7B model)",
            metric="spec_tokens_per_pass",
            rule=AtLeast(PAPER_SPEEDUP),  # see PAPER_SPEEDUP
            unit="generated tokens per forward pass (greedy, 4 heads, largest width), per seed",
            kind="finding",
            gates=(learned_gate("largest_n4"),),
        ),
        Claim(
            id="speculative-equals-greedy",
            statement="our self-speculative decoding returns exactly the next-token model's "
            "greedy output",
            source="§3.2 (blockwise parallel decoding, Stern et al. 2018)",
            paper_value="verification by the next-token head keeps the greedy output",
            metric="spec_output_equals_greedy",
            rule=AtLeast(1.0),  # every prompt, every seed
            unit="share of prompts with identical output, per seed",
            kind="check",
        ),
    ),
    timeout_s=600,  # quick ≈ 160 CPU-s, twice that in wall time on a shared machine
)
