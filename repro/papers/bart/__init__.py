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
seed s gives every objective the same initial weights and windows):
  * ``reconstruction-beats-copy-oracle`` (§2): the model learns to reconstruct: on held-out
    Brown windows its loss per target token is below that of an oracle that copies every
    visible token for free and guesses hidden ones from unigram frequencies;
  * ``hidden-token-accuracy`` (§2): its accuracy on hidden tokens is well above always
    guessing the most frequent token;
  * ``infilling-beats-masking`` (Table 1): text infilling is a stronger pretraining objective
    than token masking. The paper fine-tunes on SQuAD, MNLI, ELI5, XSum, ConvAI2 and CNN/DM;
    we fine-tune each pretrained model on one downstream proxy, continuing a held-out Brown
    text from its first tokens (conditional generation, as ELI5/ConvAI2), and compare
    perplexities as a per-seed paired ratio, gated on both fine-tuned arms having learned
    (continuation loss below the unigram floor). Full preset only.

Left out, and why: the paper's scale (BART-base is 6+6 layers of width 768 trained on
Books+Wikipedia for 1M steps; BART-large on 160 GB) and its fine-tuning tasks are far beyond a
CPU minute, so the Table 1 comparison runs with a tiny model on the Brown corpus, which the
paper's verdict need not survive. At the quick scale the model copies only part of the
visible tokens, so the copy-oracle claim fails there and passes in the full preset. Sentence permutation and document rotation are implemented
and tested but not trained in the presets; dropout is off (the runs are far from
over-fitting); the decoder is evaluated with teacher forcing (greedy decoding only for the
example).
"""

from dataclasses import dataclass
from typing import Literal

from repro.claims import AtLeast, AtMost, Claim, IsTrue, Near, Reproduction, learned_gate

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
    # pretraining
    # each from the same init; claim 3 needs infilling and masking
    objectives: tuple[Objective, ...] = ("infilling",)
    steps: int = 1500
    batch: int = 16
    lr: float = 3e-3  # peak; linear warm-up then linear decay
    warmup: int = 30
    seeds: int = 3  # repeats of everything trained (init and data): ctx.seed + i
    # downstream proxy for claim 3: continue a text from its first src_len tokens
    src_len: int = 24
    tgt_len: int = 8
    finetune_steps: int = 0  # 0: no downstream proxy (claim 3 is not checked)
    scratch_baseline: bool = False  # also fine-tune a randomly initialised model
    # evaluation
    eval_windows: int = 256  # held-out windows for every evaluation
    example_len: int = 32  # tokens in the example shown in the figure (≤ seq_len)


REPRO = Reproduction(
    id="bart",
    papers=("bart",),
    title="Text infilling: Poisson(3) spans, one mask each, reconstructed",
    config=Config,
    presets={
        # 3 seeds of the infilling model
        "quick": {},
        # Two layers, 2.7× the pretraining tokens, a token-masking model from the same initialisation and
        # data, and the fine-tuning proxy of claim 3 (with a no-pretraining baseline).
        "full": {
            "seeds": 5,
            "noise_windows": 20000,
            "n_layer": 2,
            "batch": 32,
            "objectives": ("infilling", "masking"),
            "steps": 2000,
            "finetune_steps": 300,
            "scratch_baseline": True,
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
            id="reconstruction-beats-copy-oracle",
            statement="the model reconstructs held-out text with a lower loss than an oracle "
            "that copies visible tokens for free and fills spans from unigram frequencies",
            source="§2",
            paper_value="BART is trained to reconstruct the original document",
            metric="recon_loss_over_copy_oracle",
            # the oracle is told where the spans are and how long: < 1 means the model fills
            # spans from context by more than it pays for copying and counting
            rule=AtMost(1.0),
            unit="model loss / oracle loss, per target token (per seed)",
            kind="finding",
            gates=(learned_gate("denoiser"),),
        ),
        Claim(
            id="hidden-token-accuracy",
            statement="tokens under the masks are predicted well above the most-frequent-token "
            "baseline",
            source="§2",
            paper_value="the model learns to reconstruct the original document",
            metric="hidden_accuracy_over_mode",
            # "well above" read as at least twice the accuracy that needs no context
            rule=AtLeast(2.0),
            unit="hidden-token accuracy / most-frequent-token accuracy (per seed)",
            kind="finding",
            gates=(learned_gate("denoiser"),),
        ),
        Claim(
            id="infilling-beats-masking",
            statement="pretraining with text infilling gives a lower downstream perplexity "
            "than pretraining with token masking",
            source="Table 1",
            paper_value="infilling vs masking, perplexity: ELI5 24.26 vs 25.05, XSum 6.61 vs "
            "7.08, ConvAI2 11.05 vs 11.73, CNN/DM 5.83 vs 6.10",
            metric="ppl_ratio_infilling_over_masking",
            # the paper finds infilling lower on every generation task; any ratio < 1 agrees
            rule=AtMost(1.0),
            unit="continuation perplexity, infilling / masking (paired per seed)",
            kind="finding",
            gates=(learned_gate("infilling"), learned_gate("masking")),
        ),
    ),
    timeout_s=400,
)
