"""GLU Variants Improve Transformer (Shazeer 2020, arXiv:2002.05202).

The feed-forward sub-layer FFN(x) = act(xW₁)W₂ is replaced by a gated product
FFN(x) = (act(xW) ⊙ xV)W₂ with sigmoid (GLU), identity (bilinear), ReLU (ReGLU), GELU (GEGLU)
or Swish (SwiGLU) as the gate's activation. The gated layer has three matrices instead of
two, so its hidden width is cut to 2/3 (3072 → 2048 in the paper; 4d → 8d/3 here) to keep
parameters and compute equal.

We train the eight feed-forward kinds of the paper's Table 1 (ReLU, GELU, Swish and the five
gated ones) in the same small decoder-only LM (``repro.common.tinylm``, no biases as in T5)
on the Brown corpus, with several seeds, all with the same hyper-parameters, and compare the
ranking of held-out losses with two published tables.

Claims checked (all four are *findings*; each metric is a per-seed list over ``seeds``, 3 in
quick and 5 in full, every kind of one seed sharing the batch order):
  * the best gated variant beats the best non-gated one (both picked by their mean over
    seeds, then differenced seed by seed; Table 1: GEGLU 1.942 against GELU 1.983
    log-perplexity after 65k steps);
  * GEGLU and SwiGLU, the paper's two best, each beat the ReLU baseline (per seed, the
    smaller of the two margins; Table 1: 1.942 and 1.944 against 1.997);
  * our ranking of the eight agrees with Table 1's (Spearman ρ above the one-sided 5%
    critical value for n = 8, 9/14 ≈ 0.643);
  * the same against the lecture's copy of Narang et al. 2021, Table 1 ("Do Transformer
    modifications transfer?"), read from ``notes/data/csc6203-l3-tables.yml``.

"Beats" is judged on the 95% t-interval of the per-seed margins, which replaces the earlier
"more than the seed spread" rule (margin ÷ the mean range over seeds ≥ 1): the interval is the
statistical form of the same "more than seed noise". Spearman's ρ is computed per seed. Every
finding is gated on each kind it compares having learned (held-out loss 0.5 / 1.0 nats below
the unigram entropy).

Sizes and learning rate (issue 16). Before, quick trained a 32-wide model on 8×32-token batches
for 250 steps: every kind ended 0.05-0.15 nats below the unigram entropy, the learned gates
failed and the ranking was noise (on seed 0 ReLU beat all eight). Now 16×64-token batches: quick
is one 64-wide block for 280 steps, full two blocks for 800 steps (5 seeds; the full preset
declared before, 1,500 steps of a 64-wide model, was never run and would have cost ~40
CPU-minutes). One learning rate serves all eight kinds (tuning each of eight kinds on a grid is
beyond the budget); it was checked before the runs on ReLU and SwiGLU, seed 0. Quick: both were
best at 6e-3 of 3e-3 / 6e-3 / 1.2e-2. Full: of 1.5e-3 / 3e-3 / 6e-3, ReLU was best at 3e-3 and
SwiGLU at 6e-3, so the full rate is their geometric middle, 4.2e-3, inside the good region of
both; a residual lr preference of a few hundredths of a nat between kinds remains possible and
is of the size of the effects judged.

Left out: the 524k-step column, the fine-tuning results (GLUE, SuperGLUE, SQuAD; Tables 2–3)
and the encoder-decoder span-corruption setup; our runs are a few hundred to a few thousand
steps of a model with ~100k non-embedding parameters.
"""

from dataclasses import dataclass

from repro.claims import AtLeast, Claim, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    max_docs: int | None = None  # all 500 documents
    seq_len: int = 64  # tokens per window
    batch_size: int = 16  # windows per step
    d_model: int = 64  # width; d_ff = 4·d (plain) or round(8d/3) (gated)
    n_layer: int = 1  # Transformer blocks (2 in full)
    n_head: int = 4  # attention heads
    steps: int = 280  # optimiser steps per run
    lr: float = 6e-3  # AdamW peak learning rate (cosine decay, 5% warm-up), same for all
    seeds: int = 3  # seeds ctx.seed + i; each: new initial weights and batch order
    ffns: tuple[str, ...] = (
        "relu",
        "gelu",
        "swish",
        "glu",
        "bilinear",
        "reglu",
        "geglu",
        "swiglu",
    )  # the rows of Table 1
    eval_batches: int = 20  # validation windows: eval_batches × batch_size
    init: str = "fan_in"  # fan_in: N(0, 1/d_in) as in the paper's T5 set-up; gpt2: std 0.02


# Full preset's learning rate: ReLU and SwiGLU (2 blocks, 800 steps, seed 0) were trained at
# 1.5e-3, 3e-3 and 6e-3 before the run (ReLU best at 3e-3, SwiGLU at 6e-3); see the docstring.
FULL_LR = 4.2e-3

# One-sided 5% critical value of Spearman's ρ for n = 8 from the exact permutation
# distribution: ρ ≥ 9/14 (printed as 0.643 in tables) arises by chance in 4.8% of orderings,
# so a ranking this close to the paper's is unlikely to be luck.
RHO_CRIT_N8 = 9 / 14

FFNS = ("relu", "gelu", "swish", "glu", "bilinear", "reglu", "geglu", "swiglu")
ALL_LEARNED = tuple(learned_gate(k) for k in FFNS)

REPRO = Reproduction(
    id="glu-variants",
    papers=("glu-variants",),
    title="Gated feed-forward layers against ReLU/GELU/Swish at equal parameters",
    config=Config,
    presets={
        # 24 runs (3 seeds × 8 kinds) of 280 steps of a 1-block, 64-wide model
        "quick": {},
        # 40 runs (5 seeds × 8 kinds) of 800 steps of a 2-block, 64-wide model
        "full": {"n_layer": 2, "steps": 800, "lr": FULL_LR, "seeds": 5},
    },
    claims=(
        Claim(
            id="gated-beats-plain",
            statement="the best gated feed-forward variant has a lower held-out loss than the best "
            "non-gated one",
            source="Table 1",
            paper_value="GEGLU 1.942 vs GELU 1.983 (65k steps); 1.633 vs 1.677 ReLU (524k)",
            metric="gated_margin",
            kind="finding",
            # lower loss: the interval of the per-seed margin above 0 (this replaces the old
            # "margin ≥ 1 seed spread" noise rule; see the module docstring)
            rule=AtLeast(0.0),
            gates=ALL_LEARNED,  # the best kinds are picked at run time: every kind must learn
            unit="best plain − best gated held-out loss (nats/token), per seed",
        ),
        Claim(
            id="geglu-swiglu-beat-relu",
            statement="GEGLU and SwiGLU each beat the ReLU baseline",
            source="Table 1",
            paper_value="GEGLU 1.942, SwiGLU 1.944 vs ReLU 1.997",
            metric="geglu_swiglu_margin",
            kind="finding",
            rule=AtLeast(0.0),  # the smaller of the two margins above 0, as for gated-beats-plain
            gates=(learned_gate("relu"), learned_gate("geglu"), learned_gate("swiglu")),
            unit="min over {GEGLU, SwiGLU} of (ReLU − it), nats/token, per seed",
        ),
        Claim(
            id="ranking-matches-table1",
            statement="the ranking of the eight variants agrees with the paper's",
            source="Table 1 (65,536 steps column)",
            paper_value="GEGLU < SwiGLU < ReGLU < Bilinear < GLU < GELU < Swish < ReLU",
            metric="spearman_table1",
            kind="finding",
            gates=ALL_LEARNED,
            rule=AtLeast(RHO_CRIT_N8),
            unit="Spearman ρ over the 8 kinds, per seed",
        ),
        Claim(
            id="ranking-matches-transfer-table",
            statement="the ranking agrees with the T5 re-implementation study shown in the lecture",
            source="Narang et al. 2021 Table 1, via CSC6203 Lecture 3",
            paper_value="final C4 loss SwiGLU 1.788, GeGLU 1.792, LiGLU 1.798, ReGLU 1.808, "
            "GLU 1.814, ReLU 1.838, GeLU 1.838, Swish 1.847",
            metric="spearman_transfer_table",
            kind="finding",
            gates=ALL_LEARNED,
            rule=AtLeast(RHO_CRIT_N8),
            unit="Spearman ρ over the 8 kinds, per seed",
        ),
    ),
    timeout_s=180,
)
