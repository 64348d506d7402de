"""Attention is Not All You Need: Pure Attention Loses Rank Doubly Exponentially with Depth
(Dong, Cordonnier & Loukas 2021, arXiv:2103.03404).

res(X) = X - 1xᵀ measures how far the n token vectors are from all being equal (rank 1).
The paper's main theorem bounds a pure self-attention layer by a cube,
‖res(SA(X))‖ ≤ (4γβ/√d_qk)·‖res(X)‖³, so over L layers the residual shrinks doubly
exponentially, like r^(3^L). Skip connections add paths that bypass attention and stop the
collapse; MLPs slow it by their Lipschitz constant; LayerNorm does not help (§3).

What we measure: stacks of 12 layers with random weights at the usual initialisation scale
(float64, the same input and weights for every variant of a draw), the relative residual
‖res(X_l)‖_F / ‖X_l‖_F after each layer, medians over many draws, for pure attention, + MLP,
+ LayerNorm, + skip connections, + skip and MLP (the paper's Fig. 2 compares the same variants
inside BERT, ALBERT and XLNet).

All seven claims are findings: the behaviour the paper predicts, measured on networks (not an
identity of our code). They are measured at random initialisation, not on trained models (the
paper's theorem holds for any weights; its Fig. 2 uses trained BERT, ALBERT and XLNet). Each
finding's sample has one value per draw (a draw = a seed: its X and its weights, shared by
every variant, so comparisons between variants are paired by draw): ``draws`` = 20 in quick,
100 in full, well above the 3 / 5 seeds a finding needs. Nothing is trained, so no learned
gates. The paper's thresholds were stated on the median over draws; the verdict now judges the
95% t-interval of the mean over draws against the same thresholds.

  * Theorem 2.2 / Cor. 2.3: pure attention collapses to rank 1 (to rounding) within the stack,
    and the convergence is super-exponential: the order q in r_{l+1} ≈ c·r_l^q is well above
    the q = 1 of ordinary exponential decay (the bound says 3).
  * §3.1: with skip connections the residual stays far from zero over the same depth.
  * §3.2: adding MLPs slows the collapse (more layers to reach the same residual), and more
    so the larger the MLP's Lipschitz constant (we scale it by 1…8).
  * §3.3: LayerNorm does not prevent the collapse.

Left out: the path decomposition of trained BERT/ALBERT/XLNet (their checkpoints need the
Hugging Face hub, which is not reachable here) and the sorting and convex-hull tasks.
"""

from dataclasses import dataclass

from repro.claims import AtLeast, AtMost, Claim, Reproduction


@dataclass(frozen=True)
class Config:
    tokens: int = 32  # n, rows of X
    d_model: int = 64
    heads: int = 4
    depth: int = 12  # BERT-base depth, as in the paper's experiments
    draws: int = 20  # independent draws (seeds) of X and weights: the findings' samples
    collapse_level: float = 1e-6  # "collapsed": relative residual below this
    order_top: float = 0.5  # convergence order is measured below this residual...
    order_floor: float = 1e-13  # ...and above float64 rounding
    mlp_gains: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)  # MLP Lipschitz scalings (§3.2)


REPRO = Reproduction(
    id="rank-collapse",
    papers=("rank-collapse",),
    title="Pure attention loses rank doubly exponentially; skips stop it",
    config=Config,
    presets={
        "quick": {},
        # full: longer sequences, wider layers, more draws
        "full": {"tokens": 128, "d_model": 256, "heads": 8, "draws": 100},
    },
    claims=(
        Claim(
            id="pure-attention-collapses",
            statement="a stack of pure self-attention layers (random init) converges to a rank-1 "
            "output",
            source="Theorem 2.2, Corollary 2.3; Fig. 2",
            paper_value="residual → 0 with depth without skips or MLPs",
            metric="san_final",
            # a collapse to rank 1 means the residual reaches the collapse level of 1e-6
            rule=AtMost(1e-6),
            unit="‖res‖/‖X‖ after 12 layers, per draw",
            kind="finding",
        ),
        Claim(
            id="doubly-exponential",
            statement="the collapse is doubly exponential: log r_{l+1} / log r_l well above 1",
            source="Theorem 2.2 (cubic bound per layer)",
            paper_value="r_{l+1} ≤ c·r_l³, i.e. order 3",
            metric="san_convergence_order",
            # exponential decay has order 1, the bound's rate is 3: we ask for at least 2
            rule=AtLeast(2.0),
            unit="order q (median over layers), per draw",
            kind="finding",
        ),
        Claim(
            id="skip-prevents-collapse",
            statement="with skip connections the residual stays far from zero over the same depth",
            source="§3.1; Fig. 2",
            paper_value="skip connections prevent rank collapse",
            metric="skip_final",
            # keeps at least 1% of a unit-scale residual, where pure attention loses all of it
            rule=AtLeast(0.01),
            unit="‖res‖/‖X‖ after 12 layers, per draw",
            kind="finding",
        ),
        Claim(
            id="skip-mlp-no-collapse",
            statement="the full layer (skip + MLP) does not collapse either",
            source="§3.1–3.2; Fig. 2",
            paper_value="complete Transformer layers keep the rank",
            metric="skip_mlp_final",
            rule=AtLeast(0.01),
            unit="‖res‖/‖X‖ after 12 layers, per draw",
            kind="finding",
        ),
        Claim(
            id="mlp-slows-collapse",
            statement="MLPs after attention (no skips) slow the collapse down",
            source="§3.2",
            paper_value="MLP Lipschitz constant slows convergence",
            metric="mlp_extra_layers_to_collapse",
            # slower means at least one more layer to reach the same residual
            rule=AtLeast(1.0),
            unit="extra layers to reach 1e-6, paired by draw",
            kind="finding",
        ),
        Claim(
            id="mlp-lipschitz-slows-collapse",
            statement="the larger the MLP's Lipschitz constant, the slower the collapse",
            source="§3.2",
            paper_value="convergence slowed by the MLP's Lipschitz constant λ",
            metric="lipschitz_extra_layers",
            # slower means at least one more layer when λ grows from 1 to 8
            rule=AtLeast(1.0),
            unit="extra layers to reach 1e-6, MLP gain 8 vs 1, paired by draw",
            kind="finding",
        ),
        Claim(
            id="layernorm-does-not-help",
            statement="LayerNorm after attention does not prevent the collapse",
            source="§3.3",
            paper_value="layer normalisation plays no role against rank collapse",
            metric="ln_final",
            rule=AtMost(1e-6),
            unit="‖res‖/‖X‖ after 12 layers, per draw",
            kind="finding",
        ),
    ),
    timeout_s=120,
)
