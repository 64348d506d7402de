"""Better & Faster Large Language Models via Multi-token Prediction (Gloeckle, Youbi Idrissi,
Rozière, Lopez-Paz, Synnaeve 2024, arXiv:2404.19737).

A shared trunk feeds n output heads; head i predicts the token i positions ahead and the
training loss sums the n cross-entropies (``model.py``). At inference the trunk and the first
head form an ordinary next-token model, so n-token and next-token models are compared at the
same inference size. The paper finds that the benefit grows with model size: on code
benchmarks n = 4 hurts models of 0.3B and 0.6B parameters and helps from about 3B on (Fig. 3),
and on natural-language multiple-choice benchmarks n = 2 and 4 do not help a 7B model (§3.7).

Claims (both findings, measured on trained models with next-token validation loss as the
measure, judged on per-seed paired differences: seed s gives n = 1 and n = 4 the same batches;
3 seeds in quick, 5 in full; rules fixed before the first run):
  * finding ``no-gain-at-small-scale``: at our (tiny) scale, n = 4 does not improve
    next-token loss over n = 1, as for the paper's smallest models;
  * finding ``benefit-grows-with-size``: the effect of n = 4 improves (its loss difference to
    n = 1 falls) from the smaller to the larger of our models, the direction of the paper's
    size trend.
Both are gated on every compared arm having learned (held-out loss 0.5 nats below the unigram
floor in quick, 1.0 in full): a stalled arm makes the comparison inconclusive.

Left out: the code benchmarks, self-speculative decoding (the 3× inference speed-up), byte-level
models and the induction/algorithmic-reasoning probes. The paper's trend spans 0.3B–13B; our
sizes span one order of magnitude below 1M parameters, so the second claim is a weak test.
"""

from dataclasses import dataclass

from repro.claims import AtLeast, AtMost, Claim, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    max_docs: int | None = None  # all 500 documents
    seq_len: int = 32  # input tokens per window (heads' targets reach n tokens further)
    batch_size: int = 8  # windows per step
    widths: tuple[int, ...] = (32, 64)  # d_model of each size; heads of 16 dimensions
    n_layer: int = 3  # blocks of the next-token model: n_layer − 1 trunk + 1 head
    n_futures: tuple[int, ...] = (1, 4)  # tokens predicted per position (1 = baseline)
    steps: int = 400  # optimiser steps per run
    lr: float = 3e-3  # AdamW peak learning rate (cosine, 5% warm-up)
    eval_batches: int = 40  # validation windows: eval_batches × batch_size
    seeds: int = 3  # paired seeds (ctx.seed + i); each trains every (width, n)


REPRO = Reproduction(
    id="multi-token-prediction",
    papers=("multi-token-prediction",),
    title="n-token prediction heads: next-token loss at small scale",
    config=Config,
    presets={
        # 3 seeds × two widths × n = 1 and 4, 400 steps each (at 200 steps of 16 windows every model
        # was still on the unigram plateau, ~5.3 nats, so there was nothing to compare)
        "quick": {},
        # 5 seeds × three widths × n = 1, 2, 4, 1500 steps each on 64-token windows
        "full": {
            "seeds": 5,
            "widths": (32, 64, 128),
            "n_futures": (1, 2, 4),
            "steps": 1500,
            "seq_len": 64,
        },
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
    ),
    timeout_s=300,
)
