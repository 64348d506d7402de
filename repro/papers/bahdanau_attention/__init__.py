"""Neural Machine Translation by Jointly Learning to Align and Translate (Bahdanau, Cho &
Bengio 2014), https://arxiv.org/abs/1409.0473.

Claim checked (Fig. 2, §5.1): an encoder–decoder that squeezes the source into one fixed-length
vector (RNNencdec) gets worse as sequences get longer; the same model with a soft alignment
over all encoder states (RNNsearch) does not, or much less.

Our test bed: the paper's English–French translation needs days of GPU time, so we use a
transduction task where the length of the input is all that varies: reversing random symbol
sequences (10–60 symbols in the full preset, 4–24 in the quick one). Reversal favours the
baseline (the last symbol read is the first written, Sutskever et al.'s trick), so any gap left
is the fixed-length bottleneck. Both models share everything but the alignment; the baseline's
hidden size is raised until the parameter counts agree (within a few per cent), and both train
for the same steps on the same batches. Accuracy is per target token, greedy decoding, on
sequences drawn apart from training, per length bucket.

All three claims are findings (trained models re-measured), each over ``seeds`` seeds (3 in
quick, 5 in full); seed s fixes both models' initialisation, the training batches and the
evaluation draws, so the two arms are paired by seed. Each finding is gated on both decoders
having learned: their teacher-forced held-out loss must sit below the unigram cross-entropy of
the target symbols (≈ ln n_symbols) by 0.5 nats (quick) / 1.0 (full).

Left out: BLEU on WMT'14, the maxout readout (a tanh layer stands in), Adadelta (we use Adam),
beam search.
"""

from dataclasses import dataclass
from typing import Literal

from repro.claims import AtLeast, AtMost, Claim, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    task: Literal["reverse", "copy"] = "reverse"  # reverse favours the baseline; copy does not
    min_len: int = 4  # shortest source sequence
    max_len: int = 24  # longest source sequence
    n_symbols: int = 16  # alphabet size
    buckets: int = 5  # equal-width length buckets for the accuracy-vs-length curve
    emb: int = 32  # embedding width (source and target)
    hidden: int = 64  # GRU width of the attention model; the baseline's is matched by params
    steps: int = 250  # optimiser steps, the same for both models
    # sequences per step, lengths mixed: batches of one length each (cheaper) left the
    # attention model at 40-90% after 250 steps where mixed batches reach 93-99%
    batch: int = 64
    lr: float = 3e-3  # Adam
    clip: float = 1.0  # gradient-norm clip, as in the paper (App. B.2)
    eval_per_bucket: int = 300  # held-out sequences per length bucket
    seeds: int = 3  # independent seeds (paired: both models share a seed's batches)


# Both decoders must have learned more than symbol frequencies (metrics <arm>_below_unigram).
GATES = (learned_gate("attention"), learned_gate("no_attention"))

REPRO = Reproduction(
    id="bahdanau-attention",
    papers=("bahdanau-attention",),
    title="Soft alignment keeps long sequences intact",
    config=Config,
    presets={
        # Short sequences and a few hundred steps: the gap is already wide (~35 s a seed).
        "quick": {},
        # The brief's 10–60 symbols with wider GRUs and more steps (tens of minutes on a CPU).
        "full": {
            "min_len": 10,
            "max_len": 60,
            "n_symbols": 20,
            "hidden": 128,
            "emb": 64,
            "steps": 1500,
            "eval_per_bucket": 500,
            "seeds": 5,
        },
    },
    claims=(
        Claim(
            id="no-attention-degrades",
            statement="without attention, accuracy falls as the source gets longer",
            source="Fig. 2, §5.1",
            paper_value="RNNencdec BLEU falls steadily with sentence length",
            metric="no_attention_drop",
            # a fall of 20 accuracy points from the shortest to the longest bucket is a clear
            # degradation, the size of the paper's fall for RNNencdec relative to its level
            rule=AtLeast(0.2),
            unit="token accuracy, shortest bucket − longest bucket",
            kind="finding",
            gates=GATES,
        ),
        Claim(
            id="attention-degrades-much-less",
            statement="with attention the fall with length is at most half of the baseline's",
            source="Fig. 2, §5.1",
            paper_value="RNNsearch-50 shows no deterioration even for 50+ word sentences",
            metric="attention_drop_ratio",
            # "does not, or much less": at most half the baseline's fall
            rule=AtMost(0.5),
            unit="(attention fall) / (no-attention fall), per seed",
            kind="finding",
            gates=GATES,
        ),
        Claim(
            id="attention-wins-on-long",
            statement="on the longest sequences the attention model is clearly more accurate",
            source="Fig. 2; Table 1",
            paper_value="RNNsearch-50 26.75 vs RNNencdec-50 17.82 BLEU (all sentences)",
            metric="long_bucket_gap",
            # 20 accuracy points: as wide as the baseline's own fall must be
            rule=AtLeast(0.2),
            unit="token accuracy, attention − no attention (longest bucket), paired by seed",
            kind="finding",
            gates=GATES,
        ),
    ),
    timeout_s=600,  # a hang guard, 5-6x the quick preset's CPU time
)
