"""LoRA: Low-Rank Adaptation of Large Language Models (Hu et al. 2021), arXiv:2106.09685.

Freeze the pretrained weights and learn each adapted matrix's update as a product of two thin
matrices, ΔW = (α/r)·BA (``lora.py``). We pretrain a small GPT inside the run on the Brown
corpus's informative prose (press, religion, hobbies, lore, belles lettres, government,
learned: nine genres) and adapt it to its imaginative prose (general fiction, mystery, science
fiction, adventure, romance, humour), a real shift of vocabulary and style; the score is the
language-modelling loss on held-out fiction documents. LoRA adapts W_q and W_v in every layer,
as in the paper's GPT-3 experiments (§7.1, Table 5: r = 4 on W_q and W_v).

Findings (re-measured on trained models; 3 seeds in quick and 5 in full; seed s pretrains its
own base model and every method fine-tunes that base on the same fiction batches, so the
comparisons are paired per seed):
  * ``lora-within-margin``: LoRA at rank 4 on W_q, W_v is equivalent to full fine-tuning on the
    target genre (Tables 2–4: on par with or better than full fine-tuning), judged two-sided;
  * ``rank-1-suffices`` (Table 6): rank 1 is equivalent to rank 4, judged two-sided.
Both are gated on the base model having learned the source text (held-out loss below the
source unigram by 0.5 nats in quick, 1.0 in full), on the compared methods having learned the
target (the same margins below the fiction unigram), and on each compared method's tuned
learning rate lying inside the grid.
Learning rates: every method (full fine-tuning, LoRA r = 1, LoRA r = 4) is run at every rate
of one shared, equally log-spaced grid; each keeps the rate with the lowest dev loss averaged
over seeds (half of the held-out fiction), and is reported on the other half (test).

Checks of our implementation:
  * ``under-1pct-trainable``: our rank-4 LoRA trains under 1% of the model's parameters;
  * ``merge-exact``, ``merged-plain-architecture``, ``merged-no-latency``: merging BA into W
    gives the same outputs and a model with the pretrained architecture, hence no added
    latency (§4.1); the latency is a ratio against the pretrained model's forward pass in the
    same run (machine-dependent, not compared by ``repro verify``);
  * ``peft-agrees``: our LoRA layer and ``peft``'s, given the same W₀, A and B, give the same
    outputs;
  * ``peft-trains-the-same``: our LoRA and peft's (``LoraConfig`` + ``get_peft_model``) on the
    same TinyLM, from the same A (B = 0) and on the same batches, give the same training
    losses and the same A and B after a few AdamW steps.

Left out: the paper's models (RoBERTa, DeBERTa, GPT-2, GPT-3) and tasks (GLUE, E2E NLG,
WikiSQL, MNLI, SAMSum), memory measurements on GPUs, and the subspace analysis of §7.
"""

from dataclasses import dataclass

from repro.claims import (
    AtMost,
    Claim,
    Equivalent,
    IsTrue,
    Reproduction,
    inside_grid_gate,
    learned_gate,
)

# One shared grid of peak learning rates, equally log-spaced (10^-4 … 10^-0.25 in steps of
# 10^0.75); every method is run at every rate. Calibrated on seed 0 before the run (dev loss):
# on the 500-step base after 150 steps, full fine-tuning is best near 3e-3 (worse at 1e-3 and
# 1e-2), LoRA r = 1 and 4 near 3e-2 (worse at 1e-2 and 0.1, diverging at 0.3); on the 1000-step
# base after 300 steps, full fine-tuning is best at 5.6e-4 (3.2e-3 close, 1e-4 worse), LoRA
# r = 4 at 1.8e-2 and r = 1 at 3.2e-3. A 4-point grid from 10^-3.25 left full fine-tuning on its
# lower edge there, and a 5-point one to 0.1 left LoRA's dev loss at 1.8e-2 and 0.1 within
# 0.002 of each other after 100-120 steps (an edge risk): hence 10^-4 at the bottom and 0.56
# at the top.
LR_GRID = (10**-4.0, 10**-3.25, 10**-2.5, 10**-1.75, 10**-1.0, 10**-0.25)


@dataclass(frozen=True)
class Config:
    vocab_size: int = 512  # BPE trained on the informative-prose training documents only
    seq_len: int = 64  # tokens per window
    batch_size: int = 16  # windows per pretraining step
    finetune_batch: int = 8  # windows per fine-tuning step
    d_model: int = 128  # GPT width: wide enough for LoRA r=4 on W_q, W_v to be < 1%
    n_layer: int = 1
    n_head: int = 4
    # on informative prose. Measured on seed 0 before the run (held-out source loss below the
    # source unigram): 100 steps → 0.39 nats, 500 → 0.85 (22 CPU-s); the old preset's 500
    # steps at batch 8 left the base far from converged, so that fine-tuning was partly more
    # pretraining
    pretrain_steps: int = 500
    pretrain_lr: float = 3e-3
    # on fiction, every method, every rate of the grid: 100 steps × 6 rates × 3 methods keeps
    # quick within 3 CPU-minutes
    finetune_steps: int = 100
    lrs: tuple[float, ...] = LR_GRID  # every method tries every rate (see LR_GRID)
    ranks: tuple[int, ...] = (1, 4)  # LoRA ranks on W_q, W_v
    alpha: float = 8.0  # fixed across ranks, as in the paper (scale α/r)
    claim_rank: int = 4  # the rank of the "on par with < 1% trainable" claim (Table 5's r)
    eval_batches: int = 10  # dev/test: the first 10 × 16 windows of seq_len tokens
    latency_batch: int = 16  # windows per timed forward pass
    latency_rounds: int = 9  # interleaved timing rounds (median ratio)
    latency_iters: int = 10  # forward passes per model per round
    peft_steps: int = 8  # AdamW steps of the peft training comparison
    seeds: int = 3  # paired seeds (ctx.seed + i): a base model and every method per seed


# Equivalence margin for "on par", fixed before the first run and kept: ±10% of the reference's
# gain over the pretrained model (full fine-tuning's for the first claim, rank 4's for the
# second). The paper's gaps between LoRA and full fine-tuning are under about two points either
# way: GPT-3 175B, Table 4: WikiSQL 73.4 vs 73.8, MNLI-m 91.7 vs 89.5; RoBERTa-base, Table 2:
# GLUE average 87.2 vs 86.4; and rank 1 against rank 4 on W_q, W_v (Table 6): 73.4 vs 73.7 and
# 91.3 vs 91.3. Fine-tuning itself is worth tens of points there (Table 8: GPT-3 few-shot 40.6
# on MNLI-m against 89.5 fine-tuned), so the paper's gaps are a few percent of the gain; 10%
# leaves room for our noisier loss scale.
MARGIN = 0.10

REPRO = Reproduction(
    id="lora",
    papers=("lora",),
    title="LoRA against full fine-tuning: quality, rank, merging, peft",
    config=Config,
    presets={
        # 3 seeds; each pretrains a 1-layer, 128-wide base for 500 steps (≥ 0.5 nats below the
        # source unigram), then every method runs 100 fine-tuning steps at every rate
        "quick": {},
        # 5 seeds; the base pretrained twice as long (the 1.0-nat gate: 1.55 nats below the
        # fiction unigram on seed 0 at 1000 steps), fine-tuning twice as long, and dev/test on
        # 20 batches of 16 windows (the test half holds 31)
        "full": {
            "seeds": 5,
            "pretrain_steps": 1000,
            "finetune_steps": 200,
            "eval_batches": 20,
            "latency_rounds": 15,
        },
    },
    claims=(
        Claim(
            id="lora-within-margin",
            statement="LoRA (rank 4 on W_q, W_v) is on par with full fine-tuning on the target "
            "genre: its loss within ±10% of full fine-tuning's gain (equivalence)",
            source="Tables 2–4; §5",
            paper_value="on par with or better than full fine-tuning (e.g. GPT-3 WikiSQL 73.4 "
            "vs 73.8, MNLI-m 91.7 vs 89.5)",
            metric="claim_rank_shortfall",
            rule=Equivalent(MARGIN),  # margin: see MARGIN (Tables 2, 4, 8)
            unit="(L_LoRA − L_full) / (L_pretrained − L_full), per seed",
            kind="finding",
            gates=(
                learned_gate("base"),
                learned_gate("full"),
                learned_gate("claim_rank"),
                inside_grid_gate("full"),
                inside_grid_gate("claim_rank"),
            ),
        ),
        Claim(
            id="under-1pct-trainable",
            statement="our rank-4 LoRA on W_q, W_v trains under 1% of our model's parameters",
            source="§4.2, Tables 2–4",
            paper_value="0.01%–1% of parameters trainable (e.g. 4.7M of 175B)",
            metric="claim_rank_trainable_fraction",
            rule=AtMost(0.01),
            unit="trainable / total parameters",
            kind="check",  # a count of our own tensors
        ),
        Claim(
            id="rank-1-suffices",
            statement="rank 1 is on par with rank 4 (both on W_q, W_v): its loss within ±10% "
            "of rank 4's gain (equivalence)",
            source="Table 6; §7.2",
            paper_value="r=1 on W_q, W_v: 73.4 / 91.3 vs r=4: 73.7 / 91.3 (WikiSQL / MNLI)",
            metric="rank1_shortfall_vs_claim_rank",
            rule=Equivalent(MARGIN),  # margin: see MARGIN (Table 6's r=1 vs r=4 gaps)
            unit="(L_r1 − L_r4) / (L_pretrained − L_r4), per seed",
            kind="finding",
            gates=(
                learned_gate("base"),
                learned_gate("lora1"),
                learned_gate("claim_rank"),
                inside_grid_gate("lora1"),
                inside_grid_gate("claim_rank"),
            ),
        ),
        Claim(
            id="merge-exact",
            statement="merging BA into W gives the outputs of the unmerged LoRA model",
            source="§4.1",
            paper_value="W = W₀ + BA, computed and stored once",
            metric="merge_max_rel_diff",
            rule=AtMost(1e-5),  # float32: a few roundings of the summed weight
            unit="max relative difference of logits",
            kind="check",
        ),
        Claim(
            id="merged-plain-architecture",
            statement="the merged model has exactly the pretrained model's modules and shapes",
            source="§4.1",
            paper_value="no additional inference latency",
            metric="merged_is_plain_architecture",
            rule=IsTrue(),
            unit="no LoRA modules left, same parameter shapes",
            kind="check",
        ),
        Claim(
            id="merged-no-latency",
            statement="our merged model's forward pass takes as long as the pretrained model's",
            source="§4.1, Table 1 (adapters add latency, LoRA does not)",
            paper_value="no additional inference latency",
            metric="latency_merged_over_base",
            rule=AtMost(1.05),  # same computation; 5% covers timing noise on a shared machine
            unit="time(merged) / time(pretrained)",
            kind="check",  # our merged module against our base module, timed
            verify_rtol=None,  # a timing: depends on the machine
        ),
        Claim(
            id="peft-agrees",
            statement="our LoRA layer and peft's give the same outputs for the same W₀, A, B",
            source="peer: peft (Hugging Face)",
            paper_value="h = W₀x + (α/r)·BAx",
            metric="peft_max_rel_diff",
            rule=AtMost(1e-6),  # the same float32 operations in a different order
            unit="max relative difference",
            kind="check",
        ),
        Claim(
            id="peft-trains-the-same",
            statement="our LoRA and peft's, trained on the same TinyLM from the same A and B on "
            "the same batches, give the same losses and the same A, B after a few AdamW steps",
            source="peer: peft (LoraConfig, get_peft_model)",
            paper_value="only A and B train; B = 0 at the start",
            metric="peft_train_max_rel_diff",
            # float32: the same operations up to the order of a sum (gradient clipping's norm);
            # a wrong scale, init or frozen set moves the losses by ≥ 1e-3 within a few steps
            rule=AtMost(1e-5),
            unit="max relative difference of per-step losses and of final A, B",
            kind="check",
        ),
    ),
    timeout_s=600,
)
