"""Improving Language Understanding by Generative Pre-Training (Radford, Narasimhan, Salimans,
Sutskever 2018; OpenAI report, no arXiv id:
https://cdn.openai.com/research-covers/language-unsupervised/language_understanding_paper.pdf).

A decoder-only Transformer (``model.py``: post-LN, learned positions, GELU, tied output) is
pre-trained by next-token prediction on the Brown corpus's training documents, then
fine-tuned with a linear head on the state of a final extract token, with L3 = L2 + λ·L1
(§3.2). The labelled task is built from real text: does a passage (24–63 tokens) come from
Brown's informative prose (press, religion, hobbies, lore, belles lettres, government,
learned: categories A–J) or its imaginative prose (the six fiction genres, K–R)? A few
hundred labelled passages (balanced) come from training documents; dev passages from training
documents the labelled ones never use; test passages (balanced, so chance is 50%) from the
held-out documents that neither pre-training nor fine-tuning saw. A four-way genre task was
tried first and dropped: with this few labels even a bag-of-words classifier barely beat
the majority class (41% against 38%).
Fine-tuning runs about three epochs over the labelled passages, as in §4.1.

Checks of our implementation (on the first seed's pre-trained model):
  * ``causal-mask-no-leak`` (§3.1, the masked self-attention): perturbing the tokens after
    position t never changes the logits at positions ≤ t, over many random perturbations;
  * ``control-leaks``: the same weights without the mask do leak, which shows the check above
    can fail.
Findings (re-measured on trained models; one pre-trained model and one set of labelled
passages per seed, 3 seeds in quick and 5 in full; the four fine-tuning arms of a seed share
its labelled passages, head initialisation and batch order, so arms are compared paired):
  * ``pretraining-beats-unigram`` (§3.1): generative pre-training lowers the held-out
    language-modelling loss well below the unigram cross-entropy of the held-out text;
  * ``pretraining-helps-finetuning`` (Tables 2–5): the pre-trained model, fine-tuned, beats
    the same architecture trained from scratch with the same fine-tuning recipe and steps
    (Table 5: −14.8 points on average without pre-training);
  * ``pretraining-helps-finetuning-lambda0``: the same comparison with λ = 0 in both arms.
    Both pre-training findings are also gated on the from-scratch arm beating chance by 5
    points on every seed (a baseline gate): added after the first full run, where the
    scratch λ = 0.5 arm stayed at chance, so the λ = 0.5 "gain" measured a broken baseline;
  * ``aux-lm-no-gain-small-data`` (Table 5, §5): the auxiliary language-modelling objective
    (λ = 0.5 against λ = 0) helps larger data sets but not small ones; ours is small, so we
    check that the two are equivalent within the paper's small-task differences (two-sided).
The fine-tuning findings are gated on the pre-trained model having learned (held-out LM loss
below the unigram cross-entropy by 0.5 nats in quick, 1.0 in full) and on each compared arm's
learning rate lying inside the grid.

Each fine-tuning arm is run at every learning rate of one shared log-spaced grid, keeps the
one with the best dev accuracy averaged over seeds, and only that lr's models are scored on
test (held-out documents).

Left out: BooksCorpus and the 117M-parameter model (days of GPU time), the paper's twelve
benchmark tasks and their input transformations (entailment, similarity, multiple choice:
Fig. 1), the zero-shot heuristics and the layer-transfer study (Fig. 2), and the learning-rate
schedules beyond a warm-up and a linear or cosine decay.
"""

from dataclasses import dataclass

from repro.claims import (
    AtLeast,
    AtMost,
    Claim,
    Equivalent,
    Reproduction,
    baseline_gate,
    inside_grid_gate,
    learned_gate,
)


@dataclass(frozen=True)
class Config:
    # byte-level BPE trained on the training documents only. 512, not 1,024 as before: at
    # lr 3e-3, 1,024 a seed left the unigram plateau only after ~375 of 500 steps (0.85 nats below
    # unigram at 500), at 512 after ~250 (1.12 at 500), and each step costs 10% less
    vocab_size: int = 512
    seq_len: int = 64  # context length for pre-training and for the labelled passages
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4
    # §4.1 uses 0.1 on residuals, embeddings and attention throughout; a small model that
    # sees each pre-training token about once underfits, so dropout only slows it down
    dropout: float = 0.0  # during pre-training
    finetune_dropout: float = 0.1  # during fine-tuning, where a few hundred labels overfit
    # pre-training (§4.1: Adam, warm-up then cosine decay)
    pretrain_steps: int = 400  # 300 (BPE-1024) left one seed of three 0.42 below unigram
    pretrain_batch: int = 16  # windows per step
    # above the paper's 2.5e-4: a 137k-parameter model trains fast. Checked on seed 0 at 400
    # steps before the run (nats below unigram): 7.5e-4 → 0.54, 1.5e-3 → 0.78, 3e-3 → 0.08
    # and 6e-3 → 0.01 (this post-LN model stays on the unigram plateau at the larger rates;
    # 3e-3 was the old value and left quick's seed 0 there); seed 2 at 1.5e-3 → 0.84
    pretrain_lr: float = 1.5e-3
    warmup: int = 20  # linear warm-up steps (5%)
    eval_windows: int = 256  # held-out windows of seq_len tokens for the LM loss
    eval_every: int = 100  # steps between held-out evaluations (for the curve)
    # the causal-mask check
    perturb_trials: int = 200  # random (sequence, t) perturbations
    # fine-tuning (§4.1: λ = 0.5, linear decay with a short warm-up)
    n_labelled: int = 320  # labelled training passages (balanced over the two classes)
    min_passage: int = 24  # shortest passage in tokens (before the extract token)
    finetune_steps: int = 50  # the same for every arm
    finetune_batch: int = 16
    # one shared, log-spaced grid; each arm keeps the lr with the best mean dev accuracy, and
    # the inside-grid gate says when that is an edge. Calibrated on one seed before the run:
    # the pre-trained arms and scratch λ=0 peak at 3e-3, scratch λ=0.5 at 1e-2, and every arm
    # collapses to chance at 3e-2, so all four optima are inside this grid (re-checked on a
    # model pre-trained at 1.5e-3: both pre-trained arms again peak at 3e-3)
    finetune_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    lm_weight: float = 0.5  # λ of L3 = L2 + λ·L1
    seeds: int = 3  # seeds: pre-training, labelled passages, head init, batch order
    n_eval: int = 400  # dev passages and test passages (each balanced over the classes)
    split_seed: int = 0  # which documents are held out (the split of repro.common.data)


REPRO = Reproduction(
    id="gpt",
    papers=("gpt",),
    title="GPT: causal mask, generative pre-training, fine-tuning with and without it",
    config=Config,
    presets={
        # 3 seeds, each pre-training its own model (400 steps, ≥ 0.5 nats below unigram);
        # fine-tuning 50 steps (2.5 epochs of the 320 labels) at every lr of the grid
        "quick": {},
        # the same model and labels, pre-trained 2.5× longer (the 1.0-nat learned gate);
        # fine-tuning three epochs (§4.1), more seeds and more dev/test passages
        "full": {
            "pretrain_steps": 1000,
            "warmup": 50,
            "eval_every": 250,
            "perturb_trials": 1000,
            "finetune_steps": 60,
            "seeds": 5,
            "n_eval": 1000,
        },
    },
    claims=(
        Claim(
            id="causal-mask-no-leak",
            statement="in our GPT, changing the tokens after position t never changes the "
            "logits at positions ≤ t",
            source="§3.1 (masked self-attention)",
            paper_value="each position attends only to earlier positions",
            metric="causal_max_abs_diff",
            # −∞ masking makes future weights exactly 0; 1e-6 only allows float32 rounding
            rule=AtMost(1e-6),
            unit="max |Δ logit| at positions ≤ t over random perturbations",
            kind="check",
        ),
        Claim(
            id="control-leaks",
            statement="the same weights without the mask do let future tokens change past "
            "logits (the check above can fail)",
            source="§3.1 (control)",
            paper_value="an unmasked model sees the future",
            metric="control_max_abs_diff",
            # 1e-4 is 100× the tolerance above: a real leak, not float32 rounding
            rule=AtLeast(1e-4),
            unit="max |Δ logit| at positions ≤ t, no mask",
            kind="check",
        ),
        Claim(
            id="pretraining-beats-unigram",
            statement="generative pre-training lowers the held-out LM loss well below the "
            "unigram cross-entropy of the held-out text",
            source="§3.1",
            paper_value="the LM objective learns from context (no number at this scale)",
            metric="lm_gain_over_unigram",
            # 0.5 nats/token = perplexity × 0.61: clearly using context, not a tweak of unigram
            rule=AtLeast(0.5),
            unit="unigram cross-entropy − held-out LM loss (nats/token, per seed)",
            kind="finding",
        ),
        Claim(
            id="pretraining-helps-finetuning",
            statement="fine-tuned after pre-training, the model classifies passages better "
            "than the same model trained from scratch with the same steps",
            source="Table 5 (also Tables 2–4)",
            paper_value="−14.8 points on average without pre-training",
            metric="finetune_gain_from_pretraining",
            # a third of the paper's 14.8 points: our pre-training is ~10⁵× smaller, and
            # 5 points is above the seed-to-seed spread of a few hundred test passages
            rule=AtLeast(0.05),
            unit="test accuracy, pre-trained − scratch (λ = 0.5, paired per seed)",
            kind="finding",
            gates=(
                learned_gate("pretrained"),
                inside_grid_gate("pre-trained λ=0.5", "pretrained_aux_lr_inside_grid"),
                inside_grid_gate("scratch λ=0.5", "scratch_aux_lr_inside_grid"),
                # added after the first full run (issue 17): the scratch λ = 0.5 arm stayed at
                # chance on 4 of 5 seeds at every rate of the grid, so the "gain" measured a
                # broken baseline; it must beat chance by 5 points on every seed
                baseline_gate("scratch λ=0.5", "scratch_aux_above_chance", AtLeast(0.05)),
            ),
        ),
        Claim(
            id="pretraining-helps-finetuning-lambda0",
            statement="the same comparison without the auxiliary LM objective: fine-tuned "
            "after pre-training, the model classifies passages better than from scratch",
            source="Table 5 (also Tables 2–4)",
            paper_value="−14.8 points on average without pre-training",
            metric="finetune_gain_from_pretraining_lambda0",
            # added after the first full run together with the gate above, so that the
            # pre-training claim is also judged against a from-scratch arm that trains; the
            # rule is the λ = 0.5 finding's, unchanged
            rule=AtLeast(0.05),
            unit="test accuracy, pre-trained − scratch (λ = 0, paired per seed)",
            kind="finding",
            gates=(
                learned_gate("pretrained"),
                inside_grid_gate("pre-trained λ=0", "pretrained_noaux_lr_inside_grid"),
                inside_grid_gate("scratch λ=0", "scratch_noaux_lr_inside_grid"),
                baseline_gate("scratch λ=0", "scratch_noaux_above_chance", AtLeast(0.05)),
            ),
        ),
        Claim(
            id="aux-lm-no-gain-small-data",
            statement="with only a few hundred labels, fine-tuning with the auxiliary LM "
            "objective (λ = 0.5) and without it (λ = 0) give equivalent accuracy",
            source="Table 5, §5",
            paper_value="helps on QQP and NLI, not on the smaller data sets (avg 74.7 vs 75.0)",
            metric="aux_lm_gain",
            # Equivalence, two-sided: Table 5's differences with and without the auxiliary
            # objective on the small tasks are under 3 points either way (CoLA 45.4 vs 47.9,
            # MRPC 82.3 vs 84.9, RTE 56.0 vs 54.4; average 74.7 vs 75.0), so ±3 points
            rule=Equivalent(0.03),
            unit="test accuracy, λ = 0.5 − λ = 0 (pre-trained, paired per seed)",
            kind="finding",
            gates=(
                learned_gate("pretrained"),
                inside_grid_gate("pre-trained λ=0.5", "pretrained_aux_lr_inside_grid"),
                inside_grid_gate("pre-trained λ=0", "pretrained_noaux_lr_inside_grid"),
            ),
        ),
    ),
    timeout_s=400,
)
