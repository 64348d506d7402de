"""Training Compute-Optimal Large Language Models (Hoffmann et al. 2022), arXiv:2203.15556.

For a compute budget C ≈ 6·N·D, how large should the model be (N parameters) and how many
tokens D should it see? The paper answers with three fits over 400+ models (§3) that agree on
N_opt ∝ C^a, D_opt ∝ C^b with a ≈ b ≈ 0.5 (Table 2), against a = 0.73 in Kaplan et al.

Claims checked:
  * (a) checks (arithmetic on the paper's printed constants, pass/fail): from the published
    parametric fit L̂(N, D) = E + A/N^α + B/D^β (§3.3: E = 1.69,
    A = 406.4, B = 410.7, α = 0.34, β = 0.28): its exponent a = β/(α+β) against Table 2's
    Approach 3 row, the optimum N_opt, D_opt at Gopher's budget (5.76e23 FLOPs) against the
    model actually trained (Chinchilla, 70B on 1.4T tokens), and the fit's verdict on
    Gopher (280B, 300B tokens) against Chinchilla. The constants are printed to two decimals,
    which moves the optimum a lot; we report the range every rounding-consistent set gives.
    The fit's own optimum is smaller than the trained Chinchilla (about 32B on 3T tokens,
    ≈ 90 tokens per parameter, against ≈ 20 for Approaches 1 and 2, Table 3): the paper says
    as much (Approach 3 predicts smaller models), and we do not hide it.
    These four are checks: they test that our arithmetic on the paper's numbers gives the
    paper's conclusions, not a measurement of ours.
  * (b) findings, Approach 2 at toy scale: IsoFLOP profiles of tiny GPTs on the Brown corpus,
    one parabola in log N per budget (§3.2), and the power law N_opt ∝ C^a through the
    parabola minima. The whole sweep runs once per seed (3 in quick, 5 in full; seed
    ctx.seed + i sets the initialisation and data order of every run), so each finding's
    metric is a per-seed list judged on its 95% t-interval over seeds (each seed's own
    regression interval for a is reported, not judged). Gate: every run of every seed must sit
    below the unigram cross-entropy of the held-out text by the learned margin
    (``isoflop_below_unigram``, the worst run per seed). The quick preset has one budget, so
    it tests the valley only; the exponent needs the full preset.

Left out: Approaches 1 and 3 on our own runs (they need many more runs than a CPU allows),
and everything about the trained Chinchilla's downstream results. Our budgets are 10^10 to
1.6·10^11 FLOPs, twelve orders of magnitude below the paper's; models of a few thousand to a
hundred thousand parameters, where the embedding matrix is a large share of N, and runs of
a hundred to a few thousand steps. FLOPs are counted as 6·N·D with N all parameters (the paper's
convention); attention's sequence-length term is left out of C as in the paper's eq. (4)
approximation.
"""

from dataclasses import dataclass

from repro.claims import (
    CHECK,
    FINDING,
    AtLeast,
    AtMost,
    Between,
    Claim,
    Near,
    Reproduction,
    learned_gate,
)


@dataclass(frozen=True)
class Config:
    vocab_size: int = 512  # BPE vocabulary; small so the embedding does not swamp tiny models
    max_docs: int | None = None  # all 500 Brown documents (2.6M training tokens at 512)
    seq_len: int = 64  # tokens per window
    batch_size: int = 8  # windows per step; small batches suit these short runs
    n_layer: int = 2  # depth of every model; size varies through the width
    widths: tuple[int, ...] = (8, 12, 16, 24)  # d_model values: 6.4k to 28k parameters
    budgets: tuple[float, ...] = (3e10,)  # FLOPs per IsoFLOP profile
    seeds: int = 3  # whole sweeps, seeds ctx.seed + i, one fit per seed (5 in full)
    min_steps: int = 100  # shorter runs are left out: the schedule has no room to act
    max_steps: int = 6000  # longer runs are left out: too slow on a CPU
    stop_at_wall: bool = True  # stop a budget's sweep once two sizes below its minimum are seen
    lr: float = 1e-2  # AdamW peak; best of {3e-3, 1e-2, 3e-2} at 6k and 44k params (pilot)
    warmup_frac: float = 0.1  # warm-up as a share of each run
    weight_decay: float = 0.0
    eval_batches: int = 16  # validation: 16 × 16 windows of seq_len tokens


# Every run of the sweep is a language-model arm; the gate takes the worst run per seed.
ISOFLOP_LEARNED = learned_gate("isoflop")

REPRO = Reproduction(
    id="chinchilla",
    papers=("chinchilla",),
    title="Compute-optimal scaling: the published fit and a tiny IsoFLOP sweep",
    config=Config,
    presets={
        # one IsoFLOP profile (four sizes, ~3,400 steps per seed) over three seeds: the valley,
        # not the slope, which needs at least three budgets and about ten times the compute
        "quick": {},
        # five budgets a factor 2 apart (1.2 decades), nine sizes from 2.8k to 137k parameters
        "full": {
            "widths": (4, 6, 8, 12, 16, 24, 32, 48, 64),
            "budgets": (1e10, 2e10, 4e10, 8e10, 1.6e11),
            "eval_batches": 32,
            "seeds": 5,
        },
    },
    claims=(
        Claim(
            id="fit-exponent",
            statement="the paper's printed fit constants give N_opt ∝ C^a with a = β/(α+β) "
            "equal to Table 2's Approach 3 exponent",
            source="§3.3, Table 2",
            paper_value="a = 0.46 (Approach 3)",
            metric="fit_a",
            # 0.46 is rounded (±0.005) and α, β printed to two decimals move β/(α+β) by up to
            # ±0.008, so agreement means within 0.013
            rule=Near(0.46, atol=0.013),
            unit="exponent",
            kind=CHECK,
        ),
        Claim(
            id="gopher-budget-model-size",
            statement="solving the printed fit at Gopher's budget gives a compute-optimal model "
            "no larger than Chinchilla (70B), a quarter of Gopher's 280B or less",
            source="§3.3, Table 3, §4.1",
            paper_value="Table 3: 67B at 5.76e23 FLOPs; Chinchilla trained at 70B; Approach 3 "
            "projects a smaller model than Approaches 1–2",
            metric="gopher_budget_n_opt",
            rule=AtMost(70e9),  # the paper's point: the optimum is ≤ Chinchilla, far below 280B
            unit="parameters",
            kind=CHECK,
        ),
        Claim(
            id="gopher-budget-tokens",
            statement="solving the printed fit at Gopher's budget gives at least as many tokens "
            "as Chinchilla saw",
            source="§3.3, Table 3, §4.1",
            paper_value="1.4T tokens (Chinchilla); 1.5T in Table 3; Gopher saw 300B",
            metric="gopher_budget_d_opt",
            rule=AtLeast(1.4e12),  # the paper's point: over a trillion tokens, ≥ 4.7× Gopher's
            unit="tokens",
            kind=CHECK,
        ),
        Claim(
            id="fit-prefers-chinchilla",
            statement="the printed fit evaluated at Chinchilla (70B, 1.4T) and Gopher (280B, "
            "300B) gives the lower loss to Chinchilla at about the same compute",
            source="§4 (Chinchilla outperforms Gopher)",
            paper_value="Chinchilla beats Gopher on nearly every evaluation",
            metric="fit_loss_gap_gopher_minus_chinchilla",
            rule=AtLeast(0.0),  # any positive gap: the fit orders the two models as the paper did
            unit="nats (L̂ Gopher − L̂ Chinchilla)",
            kind=CHECK,
        ),
        Claim(
            id="isoflop-valleys",
            statement="each IsoFLOP profile of our tiny GPTs has a valley: a minimum inside the "
            "sampled sizes",
            source="§3.2, Fig. 3 (left)",
            paper_value="a clear valley in loss at every budget",
            metric="isoflop_interior_fraction",
            rule=AtLeast(1.0),  # every budget, as in the paper's figure
            unit="share of budgets with an interior minimum (per seed)",
            kind=FINDING,
            gates=(ISOFLOP_LEARNED,),
        ),
        Claim(
            id="isoflop-exponent",
            statement="the IsoFLOP minima follow N_opt ∝ C^a with a near 0.5",
            source="§3.2, Table 2 (Approach 2)",
            paper_value="a = 0.49 (95% CI 0.462–0.534)",
            metric="isoflop_a",  # one fit per seed
            # ±0.1 about 0.5 covers all three of the paper's estimates (0.46–0.50) and
            # excludes Kaplan et al.'s 0.73
            rule=Between(0.4, 0.6),
            unit="exponent",
            kind=FINDING,
            gates=(ISOFLOP_LEARNED,),
        ),
        Claim(
            id="isoflop-ci-excludes-kaplan",
            statement="the IsoFLOP exponent a lies below Kaplan et al.'s 0.73 (the 95% interval "
            "over seeds)",
            source="Table 2",
            paper_value="0.49 vs Kaplan's 0.73",
            metric="isoflop_a",
            # Kaplan et al.'s N_opt ∝ C^0.73: the paper's point is that a is clearly below it.
            # Before seeds this was 'the one fit's own 95% bound < 0.73' (IsTrue); now the
            # upper end of the interval over seeds must be at or below 0.73.
            rule=AtMost(0.73),
            unit="exponent (per seed)",
            kind=FINDING,
            gates=(ISOFLOP_LEARNED,),
        ),
    ),
    timeout_s=600,  # a hang guard, ~5x the quick preset (3 seeds) on one thread
)
