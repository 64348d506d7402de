"""The Road Less Scheduled (Defazio, Yang, Mehta, Mishchenko, Khaled, Cutkosky 2024),
arXiv:2405.15682. Schedule-free SGD and AdamW, written by us in ``optim.py``.

Schedule-free training drops the learning-rate decay schedule, and with it the need to know the
number of steps T in advance. The base optimiser's steps form a sequence z; the model that is
evaluated is x, a running average of the z's; gradients are taken at y, an interpolation of the
two (equations in ``optim.py``). The paper reports that one such run matches or beats cosine
schedules tuned for each length along the whole run (Fig. 1), on convex problems and on deep
learning problems including GPT-2-style language models (§4).

Claims (all three findings; validation loss, both methods tuned on grids of the same size):
  * a small GPT on the Brown corpus: schedule-free AdamW at the last step against the best
    cosine-decayed AdamW run of that length;
  * the same schedule-free run, read off at the earlier horizon too, against cosine runs that
    were tuned for and told that shorter length (the "anytime" property: the schedule-free run
    never knew T, and its one learning rate is chosen at the longest horizon);
  * a convex problem (a bigram model, i.e. multinomial logistic regression on the previous
    token): schedule-free SGD against cosine-decayed SGD with momentum.
"Matches" is judged as a two-sided equivalence (DESIGN.md: a one-sided "no worse than" rule
is not allowed for a "matches" claim): the 95% interval of the per-seed gap
(schedule-free − cosine) must lie inside ±0.02 nats. Schedule-free far *ahead* of cosine is
then "not reproduced" as a match, and the interval says in which direction it missed.
A test (a check of our code, not a claim here) compares our optimisers' iterates with Meta's
``schedulefree`` package.

Seeds: 3 (quick) / 5 (full). The learning rates are tuned once, on the first seed, over each
method's grid (every method gets the same number of rates, the same spacing; for the GPT the
very same rates); the other seeds re-run both methods at the tuned rates only. All runs of one
seed share initial weights and batch order, so the per-seed gap is paired. (Re-tuning on every
seed would cost n times the grid: over the CPU budget at a size where the models learn.)
Gates: every arm ends at least 0.5 nats (full: 1.0) below the held-out unigram loss (at every
horizon for the anytime claim), and no tuned rate sits on its grid's edge (at every horizon
for the cosine runs of the anytime claim).

History: until 2026-12-07 the GPT was 32 wide with batches of 8×64 tokens, each seed re-tuned
three-point grids, and the rule was one-sided (≤ +0.02 nats). The cosine arm then stayed
near the unigram plateau (learned gate failed at 150 steps in quick, so both GPT claims were
inconclusive) and several best rates sat on a grid edge. Pilots on the first seed (one
thread) at width 64 and batches of 16×64 tokens put the best rate of both methods near 1.5e-3
to 3e-3, so the first quick run of this version (results at commit a82849e) used the grid
1.5e-3, 3e-3, 6e-3 for both GPT arms, and 30-300 (cosine) and 300-3000 (schedule-free) for
the bigram model. Every finding came out inconclusive on the grid-edge gate: cosine AdamW was
best at the lowest rate at both horizons, both bigram arms at their highest. The grids were
then re-centred on those optima, one factor-2 (GPT) or ~3 (bigram) step, with the same
size and spacing for both methods (quick: cosine 7.5e-4 to 3e-3, schedule-free 1.5e-3 to
6e-3; full: four rates, 7.5e-4 to 6e-3 for both), and the run repeated. The first full run
(results at commit 44b0876) then put schedule-free AdamW's best rate at the top of its grid
(6e-3) on the 1,200-step runs, so both GPT findings were inconclusive on the grid-edge gate
(the bigram finding was reproduced, every learned gate passed); the full preset's
schedule-free grid moved up one factor-2 step (1.5e-3 to 1.2e-2, still four rates) and the
full run was repeated.

Left out: the paper's large problems (ImageNet, GPT-2 on OpenWebText, AlgoPerf), its theory
(the online-to-batch bounds), and the r-weighted averaging variants (we use r = 0, the default).
At our scale runs are short (hundreds of steps), far from the long-horizon regime of the paper.
"""

from dataclasses import dataclass

from repro.claims import Claim, Equivalent, Reproduction, inside_grid_gate, learned_gate


@dataclass(frozen=True)
class Config:
    tasks: tuple[str, ...] = ("lm", "bigram")  # lm: small GPT + AdamW; bigram: convex + SGD
    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    max_docs: int | None = None  # all 500 Brown documents
    seq_len: int = 64  # tokens per window
    batch_size: int = 16  # windows per step
    d_model: int = 64  # small GPT width
    n_layer: int = 2  # small GPT depth
    n_head: int = 4
    # steps: each cosine run is told one; schedule-free runs are read off at each
    horizons: tuple[int, ...] = (250, 350)
    bigram_horizons: tuple[int, ...] = (100, 200)  # the same, for the (cheap, convex) bigram
    warmup_frac: float = 0.05  # warm-up, as a fraction of the longest horizon (both methods)
    betas: tuple[float, float] = (0.9, 0.95)  # β1 is also schedule-free's interpolation β
    weight_decay: float = 0.0  # same for both; 0 keeps the comparison about the schedule
    grad_clip: float = 1.0  # global-norm clip for the GPT runs (both methods)
    adamw_lrs: tuple[float, ...] = (7.5e-4, 1.5e-3, 3e-3)  # cosine AdamW peak rates
    sf_adamw_lrs: tuple[float, ...] = (1.5e-3, 3e-3, 6e-3)  # schedule-free AdamW rates
    sgd_lrs: tuple[float, ...] = (100.0, 300.0, 1000.0)  # cosine SGD (momentum β1) peak rates
    sf_sgd_lrs: tuple[float, ...] = (1000.0, 3000.0, 10000.0)  # schedule-free SGD rates
    eval_batches: int = 20  # validation windows: eval_batches × batch_size
    seeds: int = 3  # seeds (ctx.seed + i); the first one also tunes the learning rates


# "Matches": a two-sided equivalence margin on (schedule-free − cosine) of ±0.02 nats. The
# paper gives no error bars for its language-model comparisons; in its deep-learning figures
# (the GPT-2 / OpenWebText panel among them) the tuned cosine and schedule-free curves end
# within a few hundredths of a nat of each other, which is what it calls matching (our
# reading of the figures, not a number the paper states). 0.02
# nats is the smaller end of that reading, set before the first run; it is also under 0.5% of
# the losses here (about 4 nats).
MATCH = Equivalent(0.02)


def gates(task: str, every_horizon: bool = False) -> tuple:
    """Both methods learned (beyond token frequencies) and both best rates are inside their
    grids; for the anytime claim at every horizon, else at the last one."""
    tail = "_every_horizon" if every_horizon else ""
    return tuple(
        g
        for arm in ("cosine", "sf")
        for g in (
            learned_gate(f"{task}_{arm}", f"{task}_{arm}_below_unigram{tail}"),
            inside_grid_gate(f"{task}_{arm}", f"{task}_{arm}_lr_inside_grid{tail}"),
        )
    )


REPRO = Reproduction(
    id="schedule-free",
    papers=("schedule-free",),
    title="Schedule-free AdamW and SGD against tuned cosine schedules",
    config=Config,
    presets={
        # 3 seeds, grids of 3 rates tuned on the first seed: 4,750 GPT steps (~30 CPU-ms each
        # on one thread) and 2,500 bigram steps (~12 CPU-ms each): 173 CPU-s measured
        "quick": {},
        # 5 seeds, grids of 4 rates, 600 and 1,200 steps: at 800 steps the pilot's cosine run
        # was already 1.2 nats below unigram, past the full preset's 1.0-nat gate
        "full": {
            "horizons": (600, 1200),
            "bigram_horizons": (200, 400),
            "adamw_lrs": (7.5e-4, 1.5e-3, 3e-3, 6e-3),
            "sf_adamw_lrs": (1.5e-3, 3e-3, 6e-3, 1.2e-2),
            "sgd_lrs": (30.0, 100.0, 300.0, 1000.0),
            "sf_sgd_lrs": (300.0, 1000.0, 3000.0, 10000.0),
            "eval_batches": 40,
            "seeds": 5,
        },
    },
    claims=(
        Claim(
            id="adamw-matches-cosine",
            statement="schedule-free AdamW, without a schedule, matches the validation loss of "
            "AdamW with a tuned cosine schedule of the same length (equivalence margin ±0.02 "
            "nats; small GPT)",
            source="Fig. 1 (right); §4",
            paper_value="matches or beats cosine (e.g. GPT-2 on OpenWebText)",
            metric="lm_gap_final",
            rule=MATCH,
            kind="finding",
            gates=gates("lm"),
            unit="nats (schedule-free − cosine, each at its tuned rate)",
        ),
        Claim(
            id="anytime",
            statement="one schedule-free run, read off at an earlier step too, matches (±0.02 "
            "nats) cosine runs that were tuned for and told each of those lengths",
            source="Fig. 1",
            paper_value="a single run tracks the cosine Pareto frontier",
            metric="lm_gap_widest_horizon",
            rule=MATCH,
            kind="finding",
            gates=gates("lm", every_horizon=True),
            unit="nats (schedule-free − cosine at the horizon where the mean gap is widest, "
            "either sign)",
        ),
        Claim(
            id="sgd-convex-matches-cosine",
            statement="schedule-free SGD matches (±0.02 nats) cosine-decayed SGD with momentum "
            "on a convex problem (bigram multinomial logistic regression)",
            source="Fig. 1 (left); §4 (convex problems)",
            paper_value="matches or beats the tuned schedule",
            metric="bigram_gap_final",
            rule=MATCH,
            kind="finding",
            gates=gates("bigram"),
            unit="nats (schedule-free − cosine, each at its tuned rate)",
        ),
    ),
    timeout_s=600,  # a hang guard, ~5x the quick preset's CPU time
)
