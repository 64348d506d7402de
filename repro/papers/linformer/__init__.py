"""Linformer: Self-Attention with Linear Complexity (Wang et al. 2020, arXiv:2006.04768).

Findings (trained models, paired by seed: 3 seeds in quick, 5 in full):

  * finding, abstract and Fig. 3: a Linformer with k = n/4 trains to the held-out loss of
    full attention ("performs on par"), judged as a two-sided equivalence on the paired loss
    difference (nats, i.e. the log of the perplexity ratio).
  * finding, Fig. 3 (the curves for k = 128 vs 256): a smaller k costs loss: k = n/16 ends
    above k = n/4, paired by seed (full preset only: quick's CPU budget goes to the rate
    search).

Both arms are causal language models on the Brown corpus (BPE-512, n = 64, 2 layers, width 64),
not the paper's masked-LM encoders. Why: our MLM encoder of the same size learns too slowly
for the learned gate within this machine's budget (measured while planning this preset, with
the masked tokens' unigram cross-entropy as the floor: 0.16 nats below it after 600 steps at
lr 3e-3, 0.46–0.49 after 1,000 steps with 40% masking, where the same network as a causal LM
is 0.77 below after 400 steps), so full's 1.0-nat gate would be out of reach. Linformer's
projection mixes the whole sequence, so its causal form here projects each query's prefix
(query i sees Σ_{j≤i} E[:, j] k_j and Σ_{j≤i} F[:, j] v_j; model.py): at the last position it is
exactly the paper's E K, F V, and it stays linear in n. The finding is therefore about
projected keys and values with k ≪ n in a causal LM, which the paper did not test; the card
says so.

Every finding is gated: each arm's held-out loss must sit below the unigram cross-entropy of
the scored tokens by 0.5 nats (quick) / 1.0 (full), and each tuned rate must lie inside its
grid (full attention and Linformer k = n/4 each search the same grid on the first seed; the
small-k arm takes Linformer's rate). An untrained model fails the learned gate, so it cannot
pass any finding (tests judge the findings on an untrained model's metrics).

Checks (pass/fail), properties of our code and of the first seed's trained full-attention maps:

  * §3, Fig. 1: the maps' normalised cumulative singular values reach 0.75 at n/4, and hold
    more mass there than the same rows shuffled within the causal support. These were
    findings; an untrained (near-uniform) map passes the first too, which is why they are
    checks now, and they are measured on causal maps, not RoBERTa's bidirectional ones.
  * Theorem 1: P Rᵀ R V with a random k×n projection approximates P V, the error falling
    with k (Johnson–Lindenstrauss, ∝ k^{-1/2}); on the trained maps.
  * Table 1, §4, efficiency table: peak memory (profiler) and CPU time of one head against n,
    log-log slopes: full attention quadratic, Linformer with fixed k linear.

Left out: RoBERTa-scale MLM pretraining and the GLUE/IMDB fine-tuning table (days of GPU time);
layerwise sharing of E and F (we share them across a layer's heads only).
"""

from dataclasses import dataclass

from repro.claims import (
    AtLeast,
    AtMost,
    Claim,
    Equivalent,
    IsTrue,
    Reproduction,
    inside_grid_gate,
    learned_gate,
)


@dataclass(frozen=True)
class Config:
    # causal LMs on the Brown corpus (the recipe whose learning rate the project measured:
    # lr 3e-3, 300 steps → 0.65 nats below unigram; 1,000 steps → 1.43)
    vocab_size: int = 512
    max_docs: int = 500  # Brown documents used (500 = all)
    seq_len: int = 64  # n
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    batch_size: int = 16
    steps: int = 300
    # peak AdamW rates, the same grid for full attention and Linformer k = n/4, a factor 2
    # apart; chosen on the first seed. First declared as (1.5e-3, 3e-3, 6e-3) around the
    # project's measured 3e-3; in that first quick run (commit cbb749f) full attention chose
    # 1.5e-3, the lower edge (its loss is flat from 1.5e-3 to 3e-3), so the grid gained a
    # point below.
    lr_grid: tuple[float, ...] = (7.5e-4, 1.5e-3, 3e-3, 6e-3)
    proj_k: int = 16  # k = n/4, the paper's 128 of 512
    small_k: int = 4  # k = n/16, for the "smaller k costs loss" finding
    train_small_k: bool = False  # train the k = n/16 arm (full preset; quick has no CPU left)
    tune_windows: int = 64  # held-out windows that choose the rate (not scored by findings)
    eval_windows: int = 256  # held-out windows the findings score (16k tokens)
    spectrum_windows: int = 16  # windows whose maps the spectrum checks read
    # low-rank approximation
    proj_ks: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    jl_draws: int = 5  # random projections per k; the median is kept
    # memory and time of one head against n
    cost_lengths: tuple[int, ...] = (256, 512, 1024, 2048, 4096)
    cost_k: int = 128
    cost_head_dim: int = 64
    repeats: int = 3
    seeds: int = 3  # seeds per arm (seed: shared initial weights and training windows)


REPRO = Reproduction(
    id="linformer",
    papers=("linformer",),
    title="Linformer trains like full attention; its maps are low rank and its cost linear in n",
    config=Config,
    presets={
        # quick: 3 seeds × 300 steps; the first seed searches both rates (12 trainings)
        "quick": {},
        # full: 5 seeds × 800 steps (the learned gate is 1.0 nats there), the k = n/16 arm,
        # a longer cost curve (21 trainings)
        "full": {
            "steps": 800,
            "train_small_k": True,
            "proj_ks": (2, 4, 8, 16, 32, 64),
            "cost_lengths": (256, 512, 1024, 2048, 4096, 8192),
            "repeats": 5,
            "seeds": 5,
        },
    },
    claims=(
        Claim(
            id="linformer-on-par-with-full",
            statement="a Linformer LM with k = n/4 reaches the held-out loss of the same LM with "
            "full attention (equivalence)",
            source="abstract; Fig. 3",
            paper_value="pretraining perplexity on par with the standard Transformer (n = 512, "
            "k = 128 and 256); no table of perplexities is printed",
            metric="linformer_minus_full",
            # ±0.05 nats = a perplexity ratio within about ±5%. The paper gives curves, not
            # numbers: in Fig. 3(a) (n = 512) the k = 128 and k = 256 validation-perplexity
            # curves end close to the standard Transformer's, a few percent of perplexity
            # apart by our reading of the figure. 5% is also the bar this reproduction
            # declared before its first run (then on the MLM loss ratio, now on perplexity,
            # where it does not depend on the loss's scale). Fixed before the runs below.
            rule=Equivalent(0.05),
            unit="Linformer (k = n/4) − full attention held-out loss, nats, paired by seed",
            kind="finding",
            gates=(
                learned_gate("full"),
                learned_gate("linformer"),
                inside_grid_gate("full"),
                inside_grid_gate("linformer"),
            ),
        ),
        Claim(
            id="smaller-k-costs-loss",
            statement="shrinking Linformer's k from n/4 to n/16 raises the held-out loss",
            source="Fig. 3(a, b): k = 128 above k = 256",
            paper_value="perplexity falls as k grows (k = 256 below k = 128 at n = 512 and 1024)",
            metric="small_k_minus_linformer",
            # the direction the paper shows; the paper prints no size for it
            rule=AtLeast(0.0),
            unit="Linformer k = n/16 − k = n/4 held-out loss, nats, paired by seed",
            kind="finding",
            gates=(
                learned_gate("linformer"),
                learned_gate("linformer_small"),
                inside_grid_gate("linformer"),
            ),
        ),
        Claim(
            id="attention-low-rank",
            statement="a trained LM's attention matrix P has most of its spectrum in the first "
            "n/4 singular values",
            source="§3, Fig. 1",
            paper_value="long-tailed spectrum: most mass in the first 128 of 512 singular values",
            metric="spectrum_mass_at_quarter",
            # "most": three quarters of the mass in a quarter of the dimensions. A check: an
            # untrained near-uniform map passes it too (spectrum_mass_at_quarter_untrained)
            rule=AtLeast(0.75),
            unit="normalised cumulative singular value at n/4 (median map, first seed)",
            kind="check",
        ),
        Claim(
            id="low-rank-from-structure",
            statement="the trained maps hold more spectral mass at n/4 than the same rows "
            "shuffled within the causal support (same sharpness, no shared structure)",
            source="§3, Fig. 1",
            paper_value="P is low rank (a uniform P would be trivially so)",
            metric="spectrum_mass_gain_over_shuffled",
            rule=AtLeast(0.1),
            unit="mass at n/4, trained − rows shuffled (first seed)",
            kind="check",
        ),
        Claim(
            id="projection-error-falls-with-k",
            statement="our approximation of P V by P Rᵀ R V with a random k×n projection gets "
            "better as k grows",
            source="Theorem 1",
            paper_value="ε-accurate with k = O(log n / ε²), i.e. error ∝ k^{-1/2}",
            metric="jl_error_slope",
            # JL predicts -1/2; we ask for a clear fall of at least k^{-0.3}
            rule=AtMost(-0.3),
            unit="log-log slope of relative error vs k",
            kind="check",
        ),
        Claim(
            id="projection-error-monotone",
            statement="our random-projection error falls at every step of k",
            source="Theorem 1",
            paper_value="error shrinks with k",
            metric="jl_error_decreasing",
            rule=IsTrue(),
            unit="error decreasing over all k tried",
            kind="check",
        ),
        Claim(
            id="full-attention-memory-quadratic",
            statement="our full attention's peak memory grows with n² (the n×n score matrix)",
            source="Table 1; §2",
            paper_value="O(n²) space",
            metric="full_memory_slope",
            # 2 expected; O(n) terms pull a finite-range fit slightly down
            rule=AtLeast(1.8),
            unit="log-log slope of peak bytes vs n",
            kind="check",
        ),
        Claim(
            id="linformer-memory-linear",
            statement="our Linformer attention with fixed k needs peak memory linear in n",
            source="Table 1; §4; efficiency table",
            paper_value="O(nk) space",
            metric="linformer_memory_slope",
            # 1 expected; 0.2 allowed for the n-independent k×d parts
            rule=AtMost(1.2),
            unit="log-log slope of peak bytes vs n",
            kind="check",
        ),
        Claim(
            id="linformer-time-linear",
            statement="our Linformer attention's CPU time grows linearly in n",
            source="Table 1; efficiency table",
            paper_value="O(nk) time",
            metric="linformer_time_slope",
            # 1 expected; 0.3 allowed for timing noise on a shared machine
            rule=AtMost(1.3),
            unit="log-log slope of CPU time vs n",
            kind="check",
            verify_rtol=None,  # a timing on a shared machine
        ),
    ),
    timeout_s=600,  # a hang guard for the quick preset, ~4x its CPU time
)
