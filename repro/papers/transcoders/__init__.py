"""Transcoders Find Interpretable LLM Feature Circuits (Dunefsky, Chlenski, Nanda 2024,
NeurIPS 2024), https://arxiv.org/abs/2406.11944.

A transcoder is a wide, sparsely active ReLU MLP trained to imitate one MLP sub-layer of a
language model: it reads the MLP's input (after the pre-norm) and predicts the MLP's output,
with the loss ‖MLP(x) − TC(x)‖² + λ‖z(x)‖₁ on its feature activations z. An SAE of the same
width trained on the MLP's *output* is the peer it is compared with.

What we do: train a small decoder-only LM (``repro.common.tinylm``, pre-LN, GELU MLPs, as in
GPT-2) on the shipped Brown corpus, collect (MLP input, MLP output) pairs of its middle layer
on training text, and train transcoders and SAEs of width ``expansion · d_model`` over a sweep
of λ. Each one is spliced into the LM's forward pass in place of the MLP's output, and we
measure the rise of the LM's held-out next-token cross-entropy (the paper's faithfulness
measure) against the mean number of active features per token, L0 (its sparsity measure), and
the fraction of variance of the MLP output left unexplained. A second transcoder on the next
layer is trained for the circuit check.

Seeds: one LM per run (seed ctx.seed: its initialisation and data order), trained to the
learned gate (held-out loss below the unigram cross-entropy of the held-out text by 0.5 nats in
quick, 1.0 in full); then the dictionaries are repeated per *dictionary seed*, 3 in quick and 5
in full (seed ctx.seed + i draws every dictionary's initialisation and batches). A seed's
transcoders and SAEs share its draws, and all of them the LM and its activations, so the
comparison is paired by seed. Findings are judged on the 95% t-interval over dictionary seeds.

Claims (rules set from the paper before the first run):
  * finding, §3.2, Fig. 3: a transcoder spliced in for the MLP keeps the LM's loss close to the
    original at modest L0: at L0 = d_model/4 (interpolated on the λ sweep) it leaves at most
    a fifth of the loss increase that mean-ablating the MLP causes.
  * finding, §3.2, Fig. 3 (and the abstract's "at least on par with SAEs"): over the frontier
    the transcoder's loss increase is within a factor 1.2 of the SAE's either way. Fixed before
    this run: the frontier is read at three L0 levels, d_model/8, /4 and /2 (each kind's λ
    sweep interpolated in log L0, never extrapolated), and the per-seed value is the mean over
    the levels of log(ΔCE_TC/ΔCE_SAE), judged inside ±log 1.2 (equivalence). Gated also on
    both loss increases being resolved: at every level at least 2 standard errors (per-batch
    differences on the same held-out text) above zero, since a ratio of noise says nothing.
  * check (an identity of our implementation, pass/fail, every seed), §4.1: the contribution
    of layer-l transcoder feature i to layer-l' transcoder feature j along the direct residual
    path factorises into an input-dependent activation times an input-invariant weight,
    z_i(x) · (f_dec_i · f_enc_j) (with the later LayerNorm's gain and centring folded into the
    weight and its scale 1/σ(x) held at its value on the input). Measured by ablating the
    feature's output from the residual stream and re-running the later LayerNorm and encoder,
    in float64, over many tokens and feature pairs.
  * check, the same measurement with the real LayerNorm (σ recomputed after the ablation): the
    identity then no longer holds, and its median relative error is reported (the check is
    that it is far above rounding, so that the frozen-σ qualification is visible, not hidden).

Also measured, not judged: the loss increases in nats with their standard errors, the
fraction of variance unexplained, dead features, and the per-level log ratios.

Left out: the paper's models (GPT-2 small, Pythia-410M/1.4B) and dictionary sizes (24,576
and more features) need GPUs and hub downloads; the blind human interpretability study and
the greater-than case study (§4–5) need a model that knows years; dead-feature resampling
and the paper's exact optimiser settings. Our LM has 3 layers of width 48 trained for 1,200
steps (quick) and our dictionaries 384 features.
"""

import math
from dataclasses import dataclass

from repro.claims import (
    CHECK,
    FINDING,
    AtLeast,
    AtMost,
    Claim,
    Equivalent,
    Reproduction,
    baseline_gate,
    learned_gate,
)


@dataclass(frozen=True)
class Config:
    # the language model (repro.common.tinylm), trained in the run
    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    seq_len: int = 32  # tokens per window
    d_model: int = 48
    n_layer: int = 3  # layer 1 is the middle one; layer 2 holds the second transcoder
    n_head: int = 4
    # 300 steps left the middle MLP nearly idle (mean-ablating it cost 0.02 nats, and 6
    # features explained 99% of its output); after 800 it matters about as much as layer 0's,
    # and the LM sat 0.93-1.01 nats below unigram on three seeds; one LM per run now, so it
    # gets 1,200
    lm_steps: int = 1200  # optimiser steps for the LM
    lm_batch: int = 16  # windows per LM step
    lm_lr: float = 1e-2  # AdamW peak (cosine decay, 5% warm-up)
    # the dictionaries
    layer: int = 1  # the MLP imitated (transcoder) / reconstructed (SAE)
    later_layer: int = 2  # the second transcoder, for the circuit claim
    expansion: int = 8  # features per d_model dimension (paper: 32× for GPT-2 small)
    collect_windows: int = 1024  # training windows whose (MLP in, MLP out) pairs we keep
    dict_steps: int = 400  # Adam steps per dictionary
    dict_batch: int = 512  # tokens per dictionary step
    dict_lr: float = 3e-3  # Adam rate, linear decay over the last fifth of the steps
    # λ sweep (on inputs/targets scaled to mean squared norm 1); the same λs for both kinds.
    # In the previous quick run λ = 0.01 gave L0 37-57 and λ = 0.1 gave 7-10 (both kinds): 0.3
    # is added so that the sparsest level, d_model/8 = 6, lies inside both sweeps
    l1_coeffs: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3)
    later_l1: float = 0.01  # λ of the second transcoder
    # measurements
    # held-out batches of lm_batch × seq_len for the loss and L0 (24,576 tokens; 16 before):
    # the per-batch differences give each loss increase its standard error
    eval_batches: int = 48
    ref_l0_fraction: float = 0.25  # claim 1 reads the frontier at L0 = this · d_model
    # claim 2 reads the frontier at these L0 levels (fractions of d_model), fixed before the run
    l0_levels: tuple[float, ...] = (0.125, 0.25, 0.5)
    attribution_tokens: int = 2048  # held-out tokens for the circuit check
    attribution_pairs: int = 64  # (early feature, late feature) pairs checked
    seeds: int = 3  # dictionary seeds ctx.seed + i (5 in full), on the one LM


REPRO = Reproduction(
    id="transcoders",
    papers=("transcoders",),
    title="Transcoders against SAEs on one MLP layer: sparsity vs faithfulness, circuits",
    config=Config,
    presets={
        # a 3-layer, 48-wide LM after 1,200 steps; 4 λ per kind, 384 features each; 3 seeds
        "quick": {},
        # a 4-layer, 64-wide LM on 64-token windows after 1500 steps; 4 λ per kind, 512
        # features, 3× the dictionary steps on twice the batch; 5 seeds
        "full": {
            "seq_len": 64,
            "d_model": 64,
            "n_layer": 4,
            "layer": 2,
            "later_layer": 3,
            "lm_steps": 1500,
            "lm_lr": 5e-3,
            "collect_windows": 1024,
            "dict_steps": 1200,
            "dict_batch": 1024,
            "eval_batches": 48,
            "attribution_pairs": 256,
            "seeds": 5,
        },
    },
    claims=(
        Claim(
            id="transcoder-faithful",
            statement="splicing a transcoder in for the MLP keeps the LM's loss close to the "
            "original at modest sparsity",
            source="§3.2, Fig. 3",
            paper_value="transcoders approximate GPT-2 small's and Pythia's MLPs faithfully "
            "with tens of active features per token (d_model 768-2048)",
            metric="tc_gap_fraction_at_ref_l0",
            # 'close to the original' read as: at most a fifth of what removing the MLP
            # (mean ablation) costs, at L0 = d_model/4; the paper's GPT-2 transcoders run at
            # L0 below d_model/8, we allow d/4 for a dictionary 48× smaller than theirs
            rule=AtMost(0.2),
            unit="CE increase (transcoder) / CE increase (MLP mean-ablated), at L0 = d_model/4 "
            "(per seed)",
            kind=FINDING,
            gates=(learned_gate("lm"),),
        ),
        Claim(
            id="on-par-with-sae",
            statement="over the sparsity frontier, a transcoder's loss increase is on par with "
            "an SAE's of the same width trained on the MLP output (mean over L0 = d/8, d/4, "
            "d/2 of the log ratio)",
            source="§3.2, Fig. 3; abstract",
            paper_value="transcoders on par with or better than SAEs on the L0 vs CE-loss "
            "frontier (GPT-2 small, Pythia-410M, Pythia-1.4B)",
            metric="tc_over_sae_log_ratio",
            # 'on par' is an equivalence claim: the ratio within a factor 1.2 either way, i.e.
            # the log ratio within ±log 1.2 ≈ ±0.18. The paper gives no error bars on its Fig. 3
            # frontiers; 1.2 is the 20% this reproduction declared before its first run (as a
            # one-sided bound), kept as the two-sided margin.
            rule=Equivalent(margin=math.log(1.2)),
            unit="mean over the three L0 levels of log(ΔCE transcoder / ΔCE SAE), per "
            "dictionary seed",
            kind=FINDING,
            gates=(
                learned_gate("lm"),
                # added with the L0 levels (before the run): both increases ≥ 2 standard
                # errors above zero at every level, else the ratio is one of noise
                baseline_gate("loss increases resolved", "min_z_at_levels", AtLeast(2.0)),
            ),
        ),
        Claim(
            id="input-invariant-circuit",
            statement="in our implementation, the direct contribution of an earlier transcoder "
            "feature to a later transcoder feature equals its activation times a fixed, "
            "input-independent weight (σ of the later LayerNorm frozen), on every seed",
            source="§4.1",
            paper_value="attribution = z_i(x) · (f_dec_i · f_enc_j): input-dependent × "
            "input-invariant",
            metric="attribution_max_rel_err",
            # float64 with O(1) values: anything above rounding (~1e-13) would mean the
            # connection depends on the input beyond the activation
            rule=AtMost(1e-9),
            unit="max |measured − z_i·w_ij/σ| / max |measured| (float64), per seed",
            kind=CHECK,
            # a rounding-level residual: it differs between machines and BLAS builds
            verify_rtol=None,
        ),
        Claim(
            id="real-layernorm-breaks-invariance",
            statement="with the later LayerNorm's σ recomputed after the ablation (the real "
            "model), the same attribution departs from activation × fixed weight far beyond "
            "rounding: the identity above needs σ frozen",
            source="§4.1 (the paper treats LayerNorm's scale as fixed)",
            paper_value="attribution exact only up to the LayerNorm's nonlinearity",
            metric="frozen_sigma_vs_real_ln_median_rel_err",
            # 1e-6 is 10^3 × the identity's tolerance: a real departure, not rounding; the
            # value itself is the reported size of the approximation
            rule=AtLeast(1e-6),
            unit="median over feature pairs of ‖real − z_i·w_ij/σ‖ / ‖real‖ (float64), per seed",
            kind=CHECK,
            verify_rtol=None,
        ),
    ),
    timeout_s=600,
)
