"""Attention Is All You Need (Vaswani et al. 2017, arXiv:1706.03762).

Four implementation checks (pass/fail: identities of the maths and of our code, no training)
and one finding (a trained model, over seeds):

  * check, §3.2.1, footnote 4: for q, k with independent zero-mean unit-variance components, q·k has
    variance d_k; dividing by √d_k brings it back to 1, and without it the softmax saturates
    (its largest probability goes to 1) as d_k grows.
  * check, §3.5: with sinusoidal encodings, PE(pos + k) is a linear function of PE(pos) for every
    fixed offset k (a rotation per frequency pair), measured as a least-squares residual.
  * check, §3.2.2: our multi-head attention, written out from the paper's equations, gives the same
    outputs and per-head weights as ``torch.nn.MultiheadAttention`` holding the same weights
    (self-attention with the causal mask, cross-attention with padded keys), in float64.
  * finding, §3, Fig. 1: the encoder–decoder (post-LN, sinusoidal positions, tied embeddings, the
    warm-up schedule of §5.3) learns a sequence transduction task (reverse in the quick
    preset; copy, reverse and sort in the full one) to ≥ 99% exactly decoded sequences,
    greedy decoding, on sources never seen in training. This is a stand-in: the paper's
    evidence is WMT'14 BLEU, which it does not re-measure; it shows that our implementation of
    the architecture learns a transduction, over ``seeds`` seeds (3 in quick, 5 in full; seed
    s fixes initialisation, data and held-out set), gated on the held-out loss beating the
    unigram floor of the target tokens (worst task).

Left out here: the translation results (BLEU on WMT'14) need days of GPU time; dropout and
label smoothing (§5.4) are switched off because the synthetic tasks have nothing to
regularise against; beam search (§6.1) is replaced by greedy decoding.
"""

from dataclasses import dataclass
from typing import Literal

from repro.claims import AtLeast, AtMost, Claim, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)  # d_k values to measure
    samples: int = 20000  # q, k pairs per d_k for the variance estimate
    seq_len: int = 64  # keys per softmax for the saturation measurement
    softmax_rows: int = 2000  # softmax rows per d_k
    d_model: int = 512  # width of the positional encoding
    positions: int = 2048  # positions used to fit PE(pos + k) from PE(pos)
    offsets: tuple[int, ...] = (1, 2, 5, 17, 100, 500)
    # multi-head attention against torch.nn.MultiheadAttention
    mha_trials: int = 20  # random shapes/weights compared
    # the sequence-to-sequence model and task
    tasks: tuple[Literal["copy", "reverse", "sort"], ...] = ("reverse",)  # trained one by one
    min_len: int = 4  # shortest source
    max_len: int = 10  # longest source
    n_symbols: int = 12  # alphabet size
    n_layer: int = 1  # encoder layers (= decoder layers); one suffices for these tasks
    model_dim: int = 64  # d_model of the seq2seq model
    n_head: int = 4
    d_ff: int = 256  # 4·d_model as in the paper
    steps: int = 800  # optimiser steps per task
    batch: int = 64  # sequences per step
    lr_scale: float = 0.5  # multiplies the §5.3 schedule; 1.0 diverged at d_model = 64
    warmup: int = 100  # warm-up steps of the §5.3 schedule
    cooldown: float = 0.3  # final share of steps with a linear decay to 0
    eval_sequences: int = 1000  # held-out sources for exact-match accuracy
    seeds: int = 3  # seeds of the seq2seq finding (initialisation, data, held-out set)


REPRO = Reproduction(
    id="attention-is-all-you-need",
    papers=("attention-is-all-you-need",),
    title="Scaled dot products and sinusoidal positions",
    config=Config,
    presets={
        "quick": {},
        # Three tasks, longer sequences over a larger alphabet, a deeper model.
        "full": {
            "samples": 200000,
            "softmax_rows": 20000,
            "positions": 8192,
            "offsets": (1, 2, 3, 5, 8, 17, 64, 100, 500, 1000),
            "mha_trials": 100,
            "tasks": ("copy", "reverse", "sort"),
            "max_len": 16,
            "n_symbols": 16,
            "n_layer": 2,
            "steps": 2000,
            "eval_sequences": 2000,
            "seeds": 5,
        },
    },
    claims=(
        Claim(
            id="dot-product-variance",
            statement="our sampled q·k has variance d_k for unit-variance components, so "
            "q·k/√d_k has variance 1",
            source="§3.2.1, footnote 4",
            paper_value="Var(q·k) = d_k",
            metric="max_rel_err_var",
            rule=AtMost(0.05),
            unit="max |Var/d_k − 1|",
            # a statistical identity checked by sampling, no model involved
            kind="check",
        ),
        Claim(
            id="softmax-saturation",
            statement="on random q, k, unscaled logits push the softmax into saturation as d_k "
            "grows; scaled ones do not",
            source="§3.2.1",
            paper_value="small gradients from saturated softmax for large d_k",
            metric="saturation_gap_at_max_dk",
            rule=AtLeast(0.3),
            unit="mean max-prob (unscaled − scaled) at largest d_k",
            # arithmetic on random vectors (the paper's argument), not a trained model
            kind="check",
        ),
        Claim(
            id="relative-position-linear",
            statement="our sinusoidal encoding has PE(pos+k) a linear function of PE(pos) for "
            "any fixed k",
            source="§3.5",
            paper_value="PE(pos+k) = M_k · PE(pos)",
            metric="max_relative_residual",
            rule=AtMost(1e-6),
            unit="max ‖residual‖/‖target‖ over k",
            kind="check",
        ),
        Claim(
            id="mha-matches-torch",
            statement="multi-head attention written from the paper's equations equals "
            "torch.nn.MultiheadAttention with the same weights",
            source="§3.2.2",
            paper_value="MultiHead(Q,K,V) = Concat(head_1..head_h) W^O",
            metric="mha_max_abs_diff",
            # float64 with O(1) values: anything above rounding (1e-16 · d) is a real difference
            rule=AtMost(1e-10),
            unit="max |ours − torch| over outputs and per-head weights (float64)",
            kind="check",
        ),
        Claim(
            id="seq2seq-learns-task",
            statement="a small encoder–decoder Transformer (our implementation of §3) learns a "
            "synthetic transduction task to ≥ 99% exactly decoded held-out sequences (a "
            "stand-in for the paper's translation results, which we do not measure)",
            source="§3, Fig. 1",
            paper_value="the architecture of §3 (the paper reports WMT'14 BLEU, not this task)",
            metric="min_exact_match",
            # the bar set in our issue: 99% of whole sequences right, the worst task counts
            rule=AtLeast(0.99),
            unit="share of sequences decoded exactly (worst task), per seed",
            kind="finding",
            gates=(learned_gate("seq2seq"),),
        ),
    ),
    timeout_s=600,
)
