"""Neural Machine Translation by Jointly Learning to Align and Translate (Bahdanau, Cho &
Bengio 2014), https://arxiv.org/abs/1409.0473.

Claim checked (Fig. 2, §5.1): an encoder–decoder that squeezes the source into one fixed-length
vector (RNNencdec) gets worse as sequences get longer; the same model with a soft alignment
over all encoder states (RNNsearch) does not, or much less.

Our test bed: the paper's English–French translation needs days of GPU time, so we use two
transduction tasks where the length of the input is all that varies: reversing random symbol
strings and copying them. Reversal favours the baseline (the last symbol read is the first
written, Sutskever et al.'s trick); copying does not (the first symbol written was read longest
ago). Both models share everything but the alignment; the baseline's hidden size is raised until
the parameter counts agree (within a few per cent), and both train for the same steps on the
same batches at the same learning rate. Accuracy is per target token, greedy decoding, on
strings drawn apart from training, per length bucket.

Every claim is a finding (trained models re-measured), three per task, each over ``seeds`` seeds
(3 in quick, 5 in full); seed s fixes both models' initialisation, the training batches and the
evaluation draws, so the two arms are paired by seed. Each finding has three gates, on every
seed: both decoders have learned (teacher-forced held-out loss below the unigram cross-entropy
of the target symbols, ≈ ln n_symbols, by 0.5 nats in quick / 1.0 in full), and the fixed-vector
baseline is trained to its own sanity level: ≥ 90% token accuracy on the shortest bucket, where
one vector has room for the whole source. Without that gate a baseline that is merely
under-trained would "degrade with length" too.

Left out: BLEU on WMT'14, the maxout readout (a tanh layer stands in), Adadelta (we use Adam),
beam search.
"""

from dataclasses import dataclass
from typing import Literal

from repro.claims import AtLeast, AtMost, Claim, Reproduction, baseline_gate, learned_gate


@dataclass(frozen=True)
class Config:
    tasks: tuple[Literal["reverse", "copy"], ...] = ("reverse", "copy")
    min_len: int = 3  # shortest source sequence
    max_len: int = 12  # longest source sequence
    n_symbols: int = 16  # alphabet size
    buckets: int = 5  # equal-width length buckets for the accuracy-vs-length curve
    emb: int = 32  # embedding width (source and target)
    hidden: int = 64  # GRU width of the attention model; the baseline's is matched by params
    steps: int = 300  # optimiser steps, the same for both models
    # sequences per step, lengths mixed: batches of one length each (cheaper) left the
    # attention model at 40-90% after 250 steps where mixed batches reach 93-99%
    batch: int = 64
    lr: float = 3e-3  # Adam; checked on a 1e-3 / 3e-3 / 1e-2 grid for both models (card)
    clip: float = 1.0  # gradient-norm clip, as in the paper (App. B.2)
    eval_per_bucket: int = 300  # held-out sequences per length bucket
    seeds: int = 3  # independent seeds (paired: both models share a seed's batches)


def gates(task: str) -> tuple:
    """Both decoders learned, and the fixed-vector baseline is sane on the shortest sources."""
    return (
        learned_gate("attention", f"{task}_attention_below_unigram"),
        learned_gate("no_attention", f"{task}_no_attention_below_unigram"),
        # 90%: the fixed vector must carry a 3-6 symbol source almost intact (its own level;
        # the paper's RNNencdec is close to RNNsearch on short sentences, Fig. 2)
        baseline_gate(
            "fixed vector, shortest bucket", f"{task}_no_attention_shortest", AtLeast(0.9)
        ),
    )


def task_claims(task: str) -> tuple[Claim, ...]:
    """The three length findings for one task; reversal keeps the original claim ids."""
    prefix = "" if task == "reverse" else f"{task}-"
    where = "reversal" if task == "reverse" else "copying"
    return (
        Claim(
            id=f"{prefix}no-attention-degrades",
            statement=f"{where}: without attention, accuracy falls as the source gets longer",
            source="Fig. 2, §5.1",
            paper_value="RNNencdec BLEU falls steadily with sentence length",
            metric=f"{task}_no_attention_drop",
            # a fall of 20 accuracy points from the shortest to the longest bucket is a clear
            # degradation, the size of the paper's fall for RNNencdec relative to its level
            rule=AtLeast(0.2),
            unit="token accuracy, shortest bucket − longest bucket",
            kind="finding",
            gates=gates(task),
        ),
        Claim(
            id=f"{prefix}attention-degrades-much-less",
            statement=f"{where}: with attention the fall with length is at most half of the "
            "baseline's",
            source="Fig. 2, §5.1",
            paper_value="RNNsearch-50 shows no deterioration even for 50+ word sentences",
            metric=f"{task}_attention_drop_ratio",
            # "does not, or much less": at most half the baseline's fall
            rule=AtMost(0.5),
            unit="(attention fall) / (no-attention fall), per seed",
            kind="finding",
            gates=gates(task),
        ),
        Claim(
            id=f"{prefix}attention-wins-on-long",
            statement=f"{where}: on the longest sources the attention model is clearly more "
            "accurate",
            source="Fig. 2; Table 1",
            paper_value="RNNsearch-50 26.75 vs RNNencdec-50 17.82 BLEU (all sentences)",
            metric=f"{task}_long_bucket_gap",
            # 20 accuracy points: as wide as the baseline's own fall must be
            rule=AtLeast(0.2),
            unit="token accuracy, attention − no attention (longest bucket), paired by seed",
            kind="finding",
            gates=gates(task),
        ),
    )


REPRO = Reproduction(
    id="bahdanau-attention",
    papers=("bahdanau-attention",),
    title="Soft alignment keeps long sequences intact",
    config=Config,
    presets={
        # Sources of 3-12 symbols, 300 steps, both tasks, 3 seeds.
        "quick": {},
        # Sources of 4-20 symbols, 600 steps, 5 seeds.
        "full": {"min_len": 4, "max_len": 20, "steps": 600, "seeds": 5},
    },
    claims=task_claims("reverse") + task_claims("copy"),
    timeout_s=1200,  # a hang guard, several times the quick preset's CPU time
)
