"""Are Emergent Abilities of Large Language Models a Mirage? (Schaeffer, Miranda, Koyejo 2023,
NeurIPS 2023, arXiv:2304.15004), against Emergent Abilities of Large Language Models (Wei et
al. 2022, arXiv:2206.07682).

The paper's argument: if per-token accuracy p improves smoothly with scale, a metric that
needs all L tokens of an answer right (exact match ≈ p^L) stays near zero and then shoots up,
looking "emergent", while a metric linear in the per-token errors (token edit distance
≈ L·(1 − p)) improves steadily on the same outputs. Its first test is multi-digit arithmetic
with the GPT-3 family (Fig. 3): exact-match accuracy jumps, token edit distance does not.

We train a family of small decoder-only Transformers of increasing width on 3-digit addition
(``addition.py``; answers of L = 4 tokens, written least significant digit first), score the
same greedy outputs on held-out problems with exact match, per-token accuracy and token edit
distance, and the teacher-forced per-token log-likelihood, and measure how sharp each curve
is over the family:

    sharpness = max_k |m_{k+1} − m_k| / (max_k m_k − min_k m_k)

the share of the metric's whole change over the family that happens between two neighbouring
sizes: 1/(K − 1) = 0.2 for a steady climb over our K = 6 sizes, 1 for a single jump.

All six claims are findings, measured on the trained family. The family is trained once per
seed (3 in quick, 5 in full; seed ctx.seed + i sets the initialisation and the problem stream
of every width), the sharpness of each seed's curve is one sample, and the verdict comes from
the 95% t-interval over seeds: a single family's curve can flip with its seed base (an earlier
single-seed version of this run did). Gates: the largest model of each seed, and every model
of the upper half of the family (the three widest), must beat the unigram cross-entropy of
answer digits by the learned margin (``largest_below_unigram``, ``upper_half_below_unigram``):
a family where only the widest model left the plateau measures a learning threshold, not a
metric. The lower half is not gated: failing is what small models may do.

Claims checked (rules fixed before the run, for K = 6 sizes):
  * the headline, the smooth-vs-sharp contrast on the same outputs: sharpness of exact match
    minus sharpness of token edit distance, paired per seed, ≥ 0.2 (one even share 1/(K − 1));
  * the same contrast against per-token accuracy;
  * exact match looks emergent: sharpness ≥ 0.5 (half of its rise between two neighbours);
  * per-token accuracy is smooth: sharpness ≤ 0.4 (no step carries more than twice the even
    share of 0.2);
  * token edit distance is smooth by the same rule;
  * exact match is what independent per-token errors predict: |EM − Π_i p_i| ≤ 0.1 at every
    size, with p_i the accuracy at answer position i.

Left out: the BIG-Bench meta-analysis, the GPT-3/InstructGPT API evaluations, the vision
experiments, and the paper's second prediction (more test data resolves above-chance
performance of small models). Our family is trained on the task itself, so a size can also
cross a learning threshold that no metric choice removes; the run reports that as it is.
"""

from dataclasses import dataclass

from repro.claims import FINDING, AtLeast, AtMost, Claim, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    n_digits: int = 3  # operand digits; answers have n_digits + 1 tokens
    reverse: bool = True  # answer least significant digit first (see addition.py)
    widths: tuple[int, ...] = (8, 12, 16, 24, 32, 48)  # the model family (d_model), K = 6
    n_layer: int = 2  # blocks, the same for every size
    seeds: int = 3  # families trained, seeds ctx.seed + i (5 in full)
    steps: int = 800  # optimiser steps per model (fresh problems every step)
    batch_size: int = 64  # problems per step
    # AdamW peak learning rate (cosine, 5% warm-up), one for every width. 3e-3 with 600 steps
    # (the preset before issue 17) left widths 8-24 on the digit-frequency plateau (per-token
    # accuracy 0.23-0.29 on most seeds), so the curves measured who escaped it. Checked on
    # seed 0 before this run, 1e-2 with 1,000 steps: answer loss below unigram 0.93, 1.54,
    # 2.09, 1.69, 2.19 nats for widths 8, 16, 24, 32, 48 (per-token accuracy 0.50 to 1.00);
    # at step 500 of that run 0.46-0.47 for widths 8-16 and 0.84-1.48 for 24-48
    lr: float = 1e-2
    test_size: int = 2000  # held-out problems (a fixed tenth of all pairs never trained on)


SMOOTH = 0.4  # at most twice the even share 1/(K − 1) = 0.2 in any one step
SHARP = 0.5  # at least half of the whole change in one step

# The largest model of each seed's family must have learned the task beyond digit frequencies,
# and so must every model of the family's upper half (the smallest margin over the three
# widest): a family in which only the widest model left the plateau measures a learning
# threshold, not a metric. The lower half is not gated: being worse is what small models do.
LARGEST_LEARNED = learned_gate("largest")
UPPER_HALF_LEARNED = learned_gate("upper half of the family", "upper_half_below_unigram")
GATES = (LARGEST_LEARNED, UPPER_HALF_LEARNED)
# The contrast's bar: exact match puts at least one even share 1/(K − 1) = 0.2 more of its
# whole change into a single step than the continuous metric does on the same outputs. The
# paper gives no number for how much sharper (Fig. 3 shows a jump against a steady decline);
# 0.2 is the gap between an even climb and one whose largest step is twice the even share.
CONTRAST = 0.2

REPRO = Reproduction(
    id="emergence-mirage",
    papers=("emergence-mirage", "emergent-abilities"),
    title="Sharp exact match, smooth per-token metrics over a family of small models",
    config=Config,
    presets={
        # six widths, 800 steps, three seeds (18 models, under three CPU-minutes)
        "quick": {},
        # quick's six widths, five seeds, 1,000 steps (30 models, about seven CPU-minutes).
        # Changed after the first full run (results in c5778ef; widths 8, 16, 24, 32, 48, 64):
        # width 64 ended 0.61 and 0.92 nats below unigram on seeds 1 and 4, short of the 1.0
        # gate, so every full verdict was inconclusive; the rate 1e-2 had been checked on
        # widths 8 to 48 only, so full now keeps to those widths.
        "full": {"seeds": 5, "steps": 1000},
    },
    claims=(
        Claim(
            id="exact-match-sharper-than-edit-distance",
            statement="on the same outputs of the same model family, exact match changes more "
            "abruptly with model size than token edit distance does",
            source="Fig. 3 (GPT-3 arithmetic: accuracy vs token edit distance)",
            paper_value="exact match jumps at one size while edit distance declines steadily",
            metric="contrast_exact_match_minus_edit_distance",
            rule=AtLeast(CONTRAST),
            unit="sharpness of exact match − sharpness of edit distance (paired per seed)",
            kind=FINDING,
            gates=GATES,
        ),
        Claim(
            id="exact-match-sharper-than-per-token",
            statement="on the same outputs, exact match changes more abruptly with model size "
            "than per-token accuracy does",
            source="§2, Fig. 2",
            paper_value="per-token accuracy improves smoothly; exact match ≈ p^L looks emergent",
            metric="contrast_exact_match_minus_per_token_acc",
            rule=AtLeast(CONTRAST),
            unit="sharpness of exact match − sharpness of per-token accuracy (paired per seed)",
            kind=FINDING,
            gates=GATES,
        ),
        Claim(
            id="exact-match-looks-emergent",
            statement="exact match on multi-token answers rises sharply over the model family",
            source="Fig. 3 (GPT-3 arithmetic, accuracy); Wei et al. 2022 Fig. 2",
            paper_value="near zero, then a jump at one model size",
            metric="sharpness_exact_match",
            rule=AtLeast(SHARP),
            unit="largest neighbour step / whole range (per seed)",
            kind=FINDING,
            gates=GATES,
        ),
        Claim(
            id="per-token-accuracy-smooth",
            statement="per-token accuracy on the same outputs improves smoothly",
            source="§2, Fig. 2",
            paper_value="smooth, predictable per-token improvement",
            metric="sharpness_per_token_acc",
            rule=AtMost(SMOOTH),
            unit="largest neighbour step / whole range (per seed)",
            kind=FINDING,
            gates=GATES,
        ),
        Claim(
            id="edit-distance-smooth",
            statement="token edit distance on the same outputs improves smoothly: the jump goes "
            "away under a continuous metric",
            source="Fig. 3 (GPT-3 arithmetic, token edit distance)",
            paper_value="steady decrease with scale",
            metric="sharpness_edit_distance",
            rule=AtMost(SMOOTH),
            unit="largest neighbour step / whole range (per seed)",
            kind=FINDING,
            gates=GATES,
        ),
        Claim(
            id="exact-match-is-product",
            statement="exact match is close to the product of per-position accuracies (p^L "
            "when the positions are equally hard)",
            source="§2, eq. for Accuracy(N) ≈ p_N^L",
            paper_value="Accuracy ≈ p^L",
            metric="em_independence_max_error",
            # 0.1 is ten times the sampling error of EM on 2000 problems (√(0.25/2000) ≈ 0.011)
            rule=AtMost(0.1),
            unit="max over sizes of |EM − Π_i p_i| (per seed)",
            kind=FINDING,
            gates=GATES,
        ),
    ),
    timeout_s=600,  # a hang guard, 4-5x the quick preset's CPU time
)
