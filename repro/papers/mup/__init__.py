"""Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer
(Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen, Gao 2022), arXiv:2203.03466;
with the width-scaling study of the July 2024 roundup, Scaling Exponents Across
Parameterizations and Optimizers (Everett et al. 2024), arXiv:2407.05872.

Under the maximal update parameterisation (µP) the typical size of every activation and of its
change per step stays the same as the network widens, so hyperparameters tuned on a narrow model
carry over to a wide one. Under the standard parameterisation (SP) the activations' updates grow
with width, and the best learning rate drifts down as the model widens.

Model: a next-token MLP on the Brown corpus (previous 4 tokens → 2 ReLU layers of width n →
vocabulary), trained with Adam; SP and µP as in TP5 Table 3, relative to a base width at which
both are the same model (``model.py``).

Claims checked:
  * coordinate check (TP5 §D.1 / the µP recipe's verification step; Everett et al. use the same
    diagnostic): after a few Adam steps the mean |coordinate| of the hidden pre-activations and
    the logits is flat in width under µP and grows with width under SP — measured as the
    exponent s of size ∝ width^s across widths;
  * learning-rate transfer (TP5 Fig. 1): the loss-minimising learning rate stays put across
    widths under µP and moves under SP — measured in octaves (log2) between the narrowest and
    the widest model;
  * with the learning rate tuned on the narrowest model, µP models improve monotonically with
    width (TP5 Fig. 1: "wider is better" at any fixed learning rate under µP);
  * Everett et al.: µP is not the only way; SP's initialisation with per-layer learning-rate
    exponents (for Adam: hidden and output rates ∝ 1/width) transfers as well.

Kinds and seeds: all six claims are *findings* (the papers' measurements re-made on our
models). Each metric is a per-seed list over ``seeds`` (3 in quick, 5 in full): per seed one
coordinate check (``coord_seeds`` initialisations averaged inside it, as the µP package does)
and one full learning-rate sweep (one seed = the same initial draws and batches at every rate).
"The optimum stays put" is an equivalence: the signed shift in octaves must lie within ±1
octave (one grid step). The sweep claims are gated on every width's best run having learned
(held-out loss 0.5 / 1.0 nats below the unigram entropy; the worst width decides) and on no
width's optimum sitting on the edge of the learning-rate grid. The coordinate check measures
models after a few steps, so no learned gate applies there.

Left out: Transformers and the other hyperparameters TP5 transfers (initialisation scale,
schedules; depth and batch size transfer), the GPT-3 6.7B experiment, and Everett et al.'s
per-layer constant tuning, alignment measurements, Adam epsilon and Adam-atan2 — our widths are
far too small for epsilon to matter.
"""

from dataclasses import dataclass

from repro.claims import (
    AtLeast,
    AtMost,
    Claim,
    Equivalent,
    IsTrue,
    Reproduction,
    inside_grid_gate,
    learned_gate,
)


@dataclass(frozen=True)
class Config:
    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    max_docs: int | None = None  # all 500 Brown documents
    context: int = 4  # previous tokens the MLP sees
    emb_dim: int = 16  # per-token embedding size (fixed: it is not a width that grows)
    base_width: int = 32  # µP ≡ SP at this width
    batch_size: int = 256  # next-token examples per step
    # coordinate check
    coord_widths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
    coord_steps: int = 4  # Adam steps before the activations are measured
    coord_lr: float = 0.01  # a large rate makes width effects show within a few steps
    coord_seeds: int = 3  # averaged within one seed, as in the µP package's coordinate checks
    # learning-rate sweep
    # the narrowest and widest model, 8x apart: the sweep's cost is the widest model's runs
    widths: tuple[int, ...] = (32, 256)
    # one grid for every parameterisation and width, an octave apart; it holds every optimum
    # inside (measured at 200 and 800 steps: about 2^-7 to 2^-5)
    log2_lrs: tuple[float, ...] = (-8.0, -7.0, -6.0, -5.0, -4.0, -3.0)
    swept: tuple[str, ...] = ("sp", "mup", "sp-perlayer")  # parameterisations in the sweep
    # Adam steps per run, constant rate after warm-up: 200 x 256 examples take the width-32
    # model about 0.7 nats below the unigram entropy at its best rate (quick gate: 0.5)
    steps: int = 200
    warmup_frac: float = 0.1
    val_tokens: int = 4096  # held-out next-token examples for the final loss
    seeds: int = 3  # independent seeds: each finding's sample has one value per seed


REPRO = Reproduction(
    id="mup",
    papers=("mup", "scaling-exponents"),
    title="µP: flat coordinate sizes and a learning rate that transfers across widths",
    config=Config,
    presets={
        "quick": {},
        # 5 seeds; 800 steps take the width-32 model about 1.1 nats below the unigram entropy
        # (gate 1.0); the optima sit half an octave to an octave lower than after 200 steps,
        # so the grid moves down one octave; a middle width for "wider is better"
        "full": {
            "coord_widths": (32, 64, 128, 256, 512, 1024, 2048),
            "widths": (32, 64, 256),
            "log2_lrs": (-9.0, -8.0, -7.0, -6.0, -5.0, -4.0),
            "steps": 800,
            "seeds": 5,
        },
    },
    claims=(
        Claim(
            id="coord-check-mup-flat",
            statement="under µP the activations' coordinate sizes after a few Adam steps do not "
            "change with width",
            source="§D.1 coordinate check; Everett et al. §3",
            paper_value="flat in width",
            metric="coord_mup_max_abs_slope",
            kind="finding",
            # flat: less than a factor 2^0.2 ≈ 1.15 per doubling, for every layer measured
            rule=AtMost(0.2),
            unit="max |s| over h1, h2, logits (size ∝ width^s)",
        ),
        Claim(
            id="coord-check-sp-grows",
            statement="under SP the logits' coordinate size after a few Adam steps grows with "
            "width",
            source="§D.1 coordinate check; §2",
            paper_value="grows with width (∝ width for Adam)",
            metric="coord_sp_logits_slope",
            kind="finding",
            # theory gives s ≈ 1 for Adam; half of that is unmistakable growth
            rule=AtLeast(0.5),
            unit="s (size ∝ width^s)",
        ),
        Claim(
            id="lr-transfer-mup",
            statement="the loss-minimising Adam learning rate stays put across widths under µP",
            source="Fig. 1 (right)",
            paper_value="optimum stable across widths 128-8192",
            metric="mup_shift",
            kind="finding",
            # "stays put" is an equivalence; one octave is one grid step, so the margin says
            # the optimum does not move by more than 2× either way
            rule=Equivalent(1.0),
            gates=(learned_gate("mup"), inside_grid_gate("mup")),
            unit="octaves between the widest and the narrowest model's optimum",
        ),
        Claim(
            id="lr-transfer-sp-shifts",
            statement="under SP the loss-minimising learning rate moves down as width grows",
            source="Fig. 1 (left)",
            paper_value="optimum shifts to smaller rates with width",
            metric="sp_shift",
            kind="finding",
            gates=(learned_gate("sp"), inside_grid_gate("sp")),
            # at least one octave (2×) down over the 8× range of widths (32 to 256, both
            # presets); Adam's 1/width law for the hidden and output rates alone would give
            # three octaves, but the input layer's rate does not scale
            rule=AtMost(-1.0),
            unit="octaves, widest − narrowest",
        ),
        Claim(
            id="sp-perlayer-transfers",
            statement="SP's initialisation with per-layer learning rates (hidden and output "
            "rates ∝ 1/width) transfers across widths too",
            source="Everett et al., abstract and §4",
            paper_value="all parameterisations can transfer with per-layer rates",
            metric="sp_perlayer_shift",
            kind="finding",
            rule=Equivalent(1.0),  # the same margin as µP's: one grid step either way
            gates=(learned_gate("sp_perlayer"), inside_grid_gate("sp_perlayer")),
            unit="octaves between the widest and the narrowest model's optimum",
        ),
        Claim(
            id="mup-wider-is-better",
            statement="with the learning rate tuned on the narrowest µP model, every wider µP "
            "model reaches a lower loss",
            source="Fig. 1 (right)",
            paper_value="wider is always better under µP",
            metric="mup_wider_is_better",
            kind="finding",
            gates=(learned_gate("mup"), inside_grid_gate("mup")),
            rule=IsTrue(),
            unit="monotone in width",
        ),
    ),
    timeout_s=600,  # a hang guard, about 5x the quick preset's CPU time
)
