"""BART: Denoising Sequence-to-Sequence Pre-training (Lewis et al. 2019, arXiv:1910.13461).

BART corrupts a text with a noising function, reads the corrupted text with a bidirectional
encoder and trains an autoregressive decoder to write out the original. ``noising.py`` has the
five noising functions of §2.2 (token masking, token deletion, text infilling, sentence
permutation, document rotation); ``model.py`` a small encoder–decoder with GELU, learned
positions and tied embeddings (§2.1), post-LN as in the paper or pre-LN (what the presets use:
post-LN stayed on the unigram plateau within the CPU budget).

Checks of our implementation (the noising function against its specification, §2.2 /
§5.1, measured on the output of many windows):
  * ``infilling-mask-fraction``: text infilling hides 30% of the tokens;
  * ``infilling-span-length``: span lengths follow Poisson(λ = 3);
  * ``one-mask-per-span``: each span (0-length ones included) is shown as exactly one [MASK].
Findings (re-measured on trained models; one value per seed, 3 seeds in quick and 5 in full;
seed s gives both objectives the same initial weights, the same pretraining windows and the
same fine-tuning batches, so the arms are paired):
  * ``infilling-beats-masking`` (Table 1, the headline): text infilling is a stronger
    pretraining objective than token masking. The paper pretrains BART-base with each noising
    function, fine-tunes on each task and compares perplexities on ELI5, XSum, ConvAI2 and
    CNN/DM. We pretrain a text-infilling and a token-masking denoiser from the same weights on
    the same windows, fine-tune each on one downstream generation task built from Brown
    (continue a held-out text: the encoder reads 16 tokens, the decoder writes the next 16,
    as in ELI5's free-form answers) and compare the held-out perplexities as a per-seed
    paired ratio. Gates: each fine-tuned arm is a learned language model (held-out loss below
    the unigram floor of its targets), each denoiser is learned (held-out reconstruction loss
    below the unigram floor) and reads its source (a quarter of the visible tokens copied
    right; a decoder that ignores the source gets about a tenth), and the downstream task
    sees pretraining (both pretrained arms beat fine-tuning from scratch);
  * ``reconstruction-beats-copy-oracle`` (§2): the infilling model learns to reconstruct: on
    held-out Brown windows its loss per target token is below that of an oracle that copies
    every visible token for free and guesses hidden ones from unigram frequencies. Gated on
    its hidden-token loss being below the unigram loss of the same tokens (the learned gate
    on the tokens where only context helps).

What changed in issue 17: the comparison of Table 1 ran only in the full preset and on one
seed, and the hidden-token finding was judged against twice the accuracy of always guessing
the most frequent token (a bar any frequency model nearly clears). Now the comparison is the
headline, in both presets, with a rule from Table 1's margins and the gates above; the
hidden-token bar became the learned gate (unigram loss of the hidden tokens).

Left out, and why: the paper's scale (BART-base is 6+6 layers of width 768 trained on
Books+Wikipedia for 1M steps; BART-large on 160 GB) and its fine-tuning tasks are far beyond a
CPU minute, so the Table 1 comparison runs with a one-layer model on the Brown corpus, which
the paper's verdict need not survive; the understanding columns of Table 1 (SQuAD, MNLI) are
not compared. Sentence permutation and document rotation are implemented and tested but not
trained in the presets; dropout is off (the runs are far from over-fitting); the decoder is
evaluated with teacher forcing (greedy decoding only for the example).
"""

from dataclasses import dataclass
from typing import Literal

from repro.claims import (
    AtLeast,
    AtMost,
    Claim,
    IsTrue,
    Near,
    Reproduction,
    baseline_gate,
    learned_gate,
)

Objective = Literal["infilling", "masking", "deletion", "permutation", "rotation"]


@dataclass(frozen=True)
class Config:
    # noising (§2.2, §5.1: 30% of tokens, Poisson(3) spans)
    mask_ratio: float = 0.3  # share of tokens hidden by infilling, masking and deletion
    poisson_lambda: float = 3.0  # mean span length for text infilling
    noise_windows: int = 8000  # windows whose noising is measured for claim 1
    noise_len: int = 64  # tokens per window in that measurement
    # data: Brown corpus, byte-level BPE, split by document
    vocab_size: int = 512
    max_docs: int = 0  # 0 = all 500 texts
    seq_len: int = 32  # tokens per pretraining window (the decoder's target)
    # model (§2.1, at toy width)
    d_model: int = 64
    n_head: int = 4
    # encoder layers = decoder layers; at 1 layer copying the visible tokens is learnt within
    # the quick budget (trial: 77% of them right after 1500 steps, 18% for 2 layers × 500)
    n_layer: int = 1
    d_ff: int = 256
    # post-LN (BART's choice) stayed on the unigram plateau for 250 steps at lr 1e-3 and 2e-3
    # in a trial run; pre-LN left it, so the CPU-sized runs use pre-LN
    pre_ln: bool = True
    # pretraining: both objectives from the same initial weights and windows (per seed)
    objectives: tuple[Objective, ...] = ("infilling", "masking")
    steps: int = 1000
    batch: int = 16
    # peak; linear warm-up then linear decay, for pretraining and fine-tuning alike. One rate
    # for both objectives, checked on seed 0 of the quick preset before the run (visible-token
    # accuracy of the infilling / masking denoiser; continuation loss after fine-tuning):
    #   1.5e-3: 0.23 / 0.24, 4.237 / 4.234 (neither reads its source well: gate not met)
    #   3e-3:   0.57 / 0.57, 4.161 / 4.171 (both copy; ratio 0.990)
    #   6e-3:   0.15 / 0.16, 4.120 / 4.101 (both plain LMs: lower perplexity, gate not met)
    # and in pretraining-only curves (1,000 steps, seed 0) 4e-3 left the masking model at 0.13.
    # So 3e-3 is the one rate of this grid where both denoisers learn to copy within the
    # budget, not the downstream optimum, which at 6e-3 belongs to models that ignore the
    # noising. Full preset, seed 0, at 3e-3: 0.85 / 1.00, 4.048 / 4.070 (ratio 0.978)
    lr: float = 3e-3
    warmup: int = 50  # 5% of the pretraining steps
    seeds: int = 3  # repeats of everything trained (init and data): ctx.seed + i
    # downstream task of the headline: continue a held-out text from its first src_len tokens
    src_len: int = 16
    tgt_len: int = 16
    finetune_steps: int = 100  # 0: no downstream task (the headline is not checked)
    finetune_warmup: int = 10
    scratch_baseline: bool = True  # also fine-tune the initial weights (the pretraining gate)
    # evaluation
    eval_windows: int = 256  # held-out windows for every evaluation
    example_len: int = 32  # tokens in the example shown in the figure (≤ seq_len)


REPRO = Reproduction(
    id="bart",
    papers=("bart",),
    title="Text infilling: Poisson(3) spans, one mask each, reconstructed",
    config=Config,
    presets={
        # 3 seeds; per seed two denoisers of 800 steps (infilling, masking) from the same
        # weights, each fine-tuned 150 steps, and the no-pretraining arm
        "quick": {},
        # 5 seeds, 2.5× the pretraining steps (the 1.0-nat learned gates; more copying) and 2×
        # the fine-tuning steps; more noising windows and more held-out windows
        "full": {
            "seeds": 5,
            "noise_windows": 20000,
            "steps": 2000,
            "warmup": 100,
            "finetune_steps": 200,
            "eval_windows": 512,
        },
    },
    claims=(
        Claim(
            id="infilling-mask-fraction",
            statement="our text infilling hides 30% of the tokens",
            source="§5.1",
            paper_value="30% of tokens masked in each document",
            metric="mask_fraction",
            # the paper's 30%; ±0.005 is ≥ 6 standard errors (8 000 windows of 64 tokens)
            rule=Near(0.30, atol=0.005),
            unit="hidden tokens / all tokens",
            kind="check",
        ),
        Claim(
            id="infilling-span-length",
            statement="our span lengths follow Poisson(λ = 3): on average 3 tokens behind each "
            "mask",
            source="§2.2",
            paper_value="span lengths drawn from Poisson(λ = 3)",
            metric="mean_span_length",
            # E[L] = λ = 3; ±0.05 is ≥ 6 standard errors (≥ 51 000 spans counted)
            rule=Near(3.0, atol=0.05),
            unit="hidden tokens / mask tokens (0-length spans included)",
            kind="check",
        ),
        Claim(
            id="one-mask-per-span",
            statement="in our noising, each span, 0-length ones included, becomes exactly one "
            "[MASK]",
            source="§2.2",
            paper_value="each span is replaced with a single [MASK] token",
            metric="one_mask_per_span",
            # a specification: one counter-example in any window is a failure
            rule=IsTrue(),
            unit="every window matches the one-mask-per-span rebuild",
            kind="check",
        ),
        Claim(
            id="infilling-beats-masking",
            statement="pretraining with text infilling gives a lower downstream perplexity "
            "than pretraining with token masking",
            source="Table 1 (rows: w/ Text Infilling vs w/ Token Masking; column: ELI5)",
            paper_value="perplexity, infilling vs masking: ELI5 24.26 vs 25.05 (ratio 0.968); "
            "XSum 6.61 vs 7.08, ConvAI2 11.05 vs 11.73, CNN/DM 5.83 vs 6.10",
            metric="ppl_ratio_infilling_over_masking",
            # Table 1's ELI5 column is the task closest to ours (free-form text generated from
            # a context); its ratio 24.26 / 25.05 = 0.968 is also the smallest gap of the four
            # generation columns (XSum 0.934, ConvAI2 0.942, CNN/DM 0.956). Reproduced when the
            # interval lies below 1 − 0.032 / 2 = 0.984 (infilling ahead by at least half the
            # paper's smallest gap); not reproduced when it lies above (a gain that small, or
            # none, or masking ahead)
            rule=AtMost(0.984),
            unit="held-out continuation perplexity, infilling / masking (paired per seed)",
            kind="finding",
            gates=(
                learned_gate("infilling, fine-tuned", "infilling_finetuned_below_unigram"),
                learned_gate("masking, fine-tuned", "masking_finetuned_below_unigram"),
                learned_gate("infilling denoiser", "infilling_denoiser_below_unigram"),
                learned_gate("masking denoiser", "masking_denoiser_below_unigram"),
                # a denoiser that does not read its source is a decoder-only LM whatever its
                # noising: in calibration both sat at 0.10–0.14 visible-token accuracy while
                # only the decoder had learned (seed 0, 400–1,000 steps at lr 6e-3), so the
                # bar is about twice that
                baseline_gate(
                    "infilling reads its source", "infilling_visible_accuracy", AtLeast(0.25)
                ),
                baseline_gate(
                    "masking reads its source", "masking_visible_accuracy", AtLeast(0.25)
                ),
                # the downstream task must see pretraining, or the ratio compares two copies
                # of a from-scratch model: the weaker pretrained arm beats no pretraining by
                # 0.1 nats per token (perplexity × 0.9) on every seed
                baseline_gate("downstream sees pretraining", "pretraining_gain", AtLeast(0.1)),
            ),
        ),
        Claim(
            id="reconstruction-beats-copy-oracle",
            statement="the infilling model reconstructs held-out text with a lower loss than an "
            "oracle that copies visible tokens for free and fills spans from unigram frequencies",
            source="§2",
            paper_value="BART is trained to reconstruct the original document",
            metric="recon_loss_over_copy_oracle",
            # the oracle is told where the spans are and how long: < 1 means the model fills
            # spans from context by more than it pays for copying and counting
            rule=AtMost(1.0),
            unit="model loss / oracle loss, per target token (per seed)",
            kind="finding",
            # the learned gate on the tokens where only context helps: the hidden tokens'
            # loss below the unigram loss of the same tokens (replaces the old bar of twice
            # the accuracy of always guessing the most frequent token)
            gates=(learned_gate("infilling denoiser, hidden tokens", "hidden_below_unigram"),),
        ),
    ),
    timeout_s=400,
)
