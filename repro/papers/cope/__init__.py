"""Contextual Position Encoding: Learning to Count What's Important (Golovneva et al. 2024,
arXiv:2405.18719), on the Flip-Flop task.

CoPE decides per query which earlier tokens count as a position step (a sigmoid gate on
q·k) and embeds the resulting fractional count. On Flip-Flop (Liu et al. 2023) the answer to a
read is the bit of the most recent write, however much noise ("ignore" instructions) came
since; with CoPE a head can count writes only, so "the last write" is position 0 at any
distance, while token-counting encodings must learn a recency rule over distances.

Claims checked (the paper's §4 Flip-Flop experiment, at a much smaller scale); all three are
findings (trained models), each a per-seed sample over ``seeds`` training runs (3 in quick, 5
in full; seed ctx.seed + i, the same training stream, initialisation seed and test sets for
every encoding, so the encodings are paired by seed). Each encoding's peak learning rate is
the point of one shared grid with the lowest read loss on an in-distribution dev split (never
a test split), searched on the first seed and reused by the others:
  * CoPE solves the task in distribution (trained and tested with p(ignore) = 0.8).
  * CoPE keeps high accuracy out of distribution when writes become sparse (p(ignore) =
    0.98, the same sequence length), and
  * there it beats learned absolute positions and rotary embeddings (RoPE) clearly (per-seed
    gap to the better baseline of that seed).
Validity gates: an out-of-distribution comparison means something only for models that
learned the task in distribution, so each compared arm must reach 90% in-distribution read
accuracy on every seed, and no arm's tuned rate may sit on the edge of its grid. (The unigram *learned* gate of language models does not fit here: the
scored tokens are bits, whose unigram entropy is ln 2 ≈ 0.69 nats, below the 1.0-nat margin
of the full preset.)
We also report the dense split (p(ignore) = 0.1) as the paper does, without a claim.

Left out: the paper's scale (4 layers, width 256, length 512, long training), its relative-PE
baseline, the selective-copy and counting tasks, and the language- and code-modelling
experiments (Wikitext-103, code) that need GPU days. The paper's Flip-Flop table is quoted
qualitatively: we could not consult its exact numbers offline (see the claims' paper values).
"""

from dataclasses import dataclass

from repro.claims import AtLeast, Claim, Gate, Reproduction, inside_grid_gate


@dataclass(frozen=True)
class Config:
    n_instr: int = 64  # instructions per sequence (2 tokens each)
    d_model: int = 64
    n_layer: int = 2  # one layer to find the bit after each write, one to read it
    n_head: int = 4
    npos_max: int = 16  # CoPE positions are clipped below this
    batch_size: int = 32
    steps: int = 300
    # peak AdamW learning rates searched per encoding (the same grid for each), linear warm-up
    # then cosine decay; the search picks the lowest read loss on the in-distribution dev split
    lr_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    lr: float = 3e-3  # the rate of one run; set from lr_grid by the search
    warmup: int = 15
    seeds: int = 3  # training runs per encoding, paired across encodings by seed
    n_test: int = 384  # test sequences per split (the sparse split has ~0.6 reads each)
    n_dev: int = 256  # in-distribution dev sequences for the learning-rate search
    encodings: tuple[str, ...] = ("absolute", "rope", "cope")


def learned_in_dist(arm: str) -> Gate:
    """The arm learned Flip-Flop in distribution (read accuracy at p_ignore = 0.8, per seed)."""
    # 0.9: the paper's baselines all solve the in-distribution split (near 0% error); an arm
    # that gets more than 1 read in 10 wrong in distribution has not learned the task, and its
    # out-of-distribution error says nothing about its position encoding.
    return Gate(
        name=f"learned in distribution ({arm})", metric=f"{arm}_in_dist_accuracy", rule=AtLeast(0.9)
    )


ARMS = ("cope", "absolute", "rope")

REPRO = Reproduction(
    id="cope",
    papers=("cope",),
    title="CoPE on Flip-Flop: counting writes instead of tokens",
    config=Config,
    presets={
        # Issue 15 (session 7): before, one rate (3e-3), width 32 and 250 steps for every
        # encoding; the absolute arm stayed near 74% in distribution, so the out-of-distribution
        # findings were inconclusive on its gate. Now width 64 with 4 heads (at width 32 the
        # absolute arm was still at ~77% after 200 steps, measured here), and each encoding's
        # rate from the same grid, picked on an in-distribution dev split.
        # The first run of this design (commit c6c7e2f: grid 1e-3, 3e-3, 1e-2; 200 steps;
        # 273 CPU-s) put RoPE's best rate on the grid's top edge and left two seeds of each
        # encoding below 90% in distribution; so the grid gains 3e-2 and training is longer.
        # Quick: 32 instructions (64 tokens), 250 steps, three seeds (~6 CPU minutes: over the
        # 3-minute quick budget, which cannot hold three encodings x a four-point grid that
        # learn this task).
        "quick": {"n_instr": 32, "steps": 250, "warmup": 12, "n_test": 1024, "seeds": 3},
        # Full: the same sequences, 400 steps, five seeds per encoding (~13 CPU minutes).
        "full": {"n_instr": 32, "steps": 400, "warmup": 20, "n_test": 1024, "seeds": 5},
    },
    claims=(
        Claim(
            id="cope-in-distribution",
            kind="finding",
            statement="a small decoder with CoPE solves Flip-Flop in distribution",
            source="§4, Flip-Flop results table",
            paper_value="CoPE: ~0% in-distribution test error",
            metric="cope_in_dist_accuracy",
            rule=AtLeast(0.99),  # "solves": at most 1 read in 100 wrong
            unit="read accuracy (p_ignore = 0.8)",
            gates=(inside_grid_gate("cope"),),
        ),
        Claim(
            id="cope-sparse-ood",
            kind="finding",
            statement="CoPE stays accurate when writes are far sparser than in training",
            source="§4, Flip-Flop results table",
            paper_value="CoPE generalises to the sparse OOD split, with the lowest error",
            metric="cope_sparse_accuracy",
            rule=AtLeast(0.95),  # "high accuracy" out of distribution
            unit="read accuracy (p_ignore = 0.98)",
            gates=(learned_in_dist("cope"), inside_grid_gate("cope")),
        ),
        Claim(
            id="cope-beats-token-positions-ood",
            kind="finding",
            statement="on the sparse split CoPE beats learned absolute positions and RoPE",
            source="§4, Flip-Flop results table",
            paper_value="absolute PE and RoPE have much higher OOD error than CoPE",
            metric="cope_minus_best_baseline_sparse",
            rule=AtLeast(0.05),  # a clear gap: 5 points of accuracy over the better baseline
            unit="accuracy gap to the best baseline (p_ignore = 0.98)",
            gates=tuple(learned_in_dist(arm) for arm in ARMS)
            + tuple(inside_grid_gate(arm) for arm in ARMS),
        ),
    ),
    timeout_s=1500,  # a hang guard, ~4x the ~360 CPU seconds of the quick preset
)
