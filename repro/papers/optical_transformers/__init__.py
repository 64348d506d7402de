"""Optical Transformers (Anderson, Ma, Wang, Wright, McMahon 2023; TMLR 2024),
arXiv:2302.10360, https://arxiv.org/abs/2302.10360.

The paper runs the linear layers of a Transformer on a (simulated, and small-scale real)
optical matrix–vector multiplier whose precision is limited by photon shot noise, and finds
that the optical energy per multiply–accumulate (MAC) needed to keep the model's accuracy
falls as 1/d with the model width d: each output sums d products onto one detector, so at a
fixed energy per MAC the photons per output, and hence the output's signal-to-noise ratio,
grow with d.

We simulate that machine (``optical.py``: non-negative intensities and transmissions via
positive/negative parts and two detectors per output, per-vector and per-matrix full scale,
Poisson photon counts, optional 8-bit operands) and run small GPT-style language models
trained on the Brown corpus through it.

Checks of our simulator (planted operands, no trained model):
  * ``snr-follows-sqrt-photons``, ``simulator-unbiased``: the simulator's noise is shot noise:
    on planted non-negative operands the output SNR grows as √(photons per MAC) and the
    estimate is unbiased;
  * ``snr-grows-with-width``: at a fixed energy per MAC the SNR of a non-negative (coherent)
    sum grows as √d_in, the mechanism behind the paper's scaling argument (§5).
Findings (re-measured on trained LMs; one model per width and seed, 3 seeds in quick and 5 in
full, one value per seed; gated on every width's model having learned: its validation loss
below the unigram floor by 0.5 nats in quick, 1.0 in full). Each model is trained once,
without noise, and then evaluated at every photon budget (the paper's noise study is of
inference only); each noisy loss is the mean over ``noise_repeats`` photon-noise draws.
  * ``energy-per-mac-falls-as-1-over-d`` (§5, Fig. 5): the photons per MAC needed to keep the
    validation loss within a fixed tolerance of the float model fall with width d with
    exponent near −1 (one fitted exponent per seed). The needed budget is the crossing of
    the tolerance on a log-spaced grid of budgets, interpolated in log photons; a second gate
    holds the finding back when any width's crossing lies on or beyond the grid's edge;
  * ``energy-exponent-at-one-lr`` (a control of ours, added after the first full run): the
    same exponent fitted over only the widths trained at the widest width's learning rate
    (64 and 128 in both presets), since a model's noise tolerance also depends on its
    learning rate and width 32 trains at a larger one;
  * ``eight-bit-keeps-accuracy``: 8-bit operands alone (no shot noise) leave the loss
    unchanged within that tolerance (an equivalence claim, judged two-sided).

What to expect from the model: the √d gain holds for a coherent (non-negative) sum. A
trained layer's signed products largely cancel, so the output's signal grows like √d, as
does its shot noise; the energy claim then rests on how coherent trained products are, which
is what the LM measurement tests.

Left out: the optical hardware experiment (§3–4: spatial light modulator, systematic errors
calibrated on the prototype), the electronic energy model and the 100×/8,000× efficiency
projections (they extrapolate from the scaling law with hardware assumptions we cannot
measure), models larger than a few hundred wide, and the paper's own training data. The
attention products (Q·Kᵀ and softmax·V) can be switched onto the optical machine with
``optical_attention=True``; off by default because the paper's scaling argument concerns the
d-wide weight products, while softmax·V sums over the context length, not d.
"""

from dataclasses import dataclass

from repro.claims import (
    AtMost,
    Between,
    Claim,
    Equivalent,
    Reproduction,
    inside_grid_gate,
    learned_gate,
)


@dataclass(frozen=True)
class Config:
    # the simulator on planted operands
    planted_width: int = 256  # d_in of the planted product for the SNR-vs-photons scan
    planted_outputs: int = 32  # outputs (rows of W) of the planted product
    planted_rows: int = 16  # input vectors per planted product
    planted_trials: int = 64  # noisy repeats per budget, for the SNR and bias estimates
    planted_widths: tuple[int, ...] = (16, 64, 256, 1024)  # d_in scan at 1 photon per MAC
    # the language models
    widths: tuple[int, ...] = (32, 64, 128)  # model widths d; one model trained per width
    n_layer: int = 2
    n_head: int = 4  # fixed, so the head width grows with d too
    vocab_size: int = 512  # BPE trained on the Brown training documents
    max_docs: int | None = None  # all Brown documents
    seq_len: int = 64
    batch_size: int = 16
    steps: int = 300  # AdamW steps per width (cosine schedule, 5% warm-up)
    # AdamW peak rate per width (matched to ``widths``): the best of the half-decade grid
    # {3e-4, 1e-3, 3e-3, 1e-2} for each width in a calibration at the quick recipe on seed 0,
    # interior for every width (wider models want smaller rates; one rate for all would
    # leave some widths less trained, and a less trained model tolerates more noise)
    lrs: tuple[float, ...] = (3e-3, 1e-3, 1e-3)
    gate_windows: int = 64  # validation windows of seq_len tokens for the learned gate
    eval_windows: int = 16  # validation windows of seq_len tokens for every noisy loss
    noise_repeats: int = 3  # independent photon-noise draws averaged per loss
    # the optical machine
    bits: int = 8  # operand precision (0: unquantised)
    optical_attention: bool = False  # also run Q·Kᵀ and softmax·V optically
    # the search for the needed energy: a log-spaced grid of photons per MAC, scanned from
    # the top down to the first budget whose loss gap exceeds the tolerance, the crossing
    # interpolated in log p between it and the budget above
    tolerance: float = 0.05  # allowed loss increase over the float model (nats/token)
    grid_lo: float = -1.5  # log10 of the smallest photons per MAC on the grid
    grid_hi: float = 1.25  # log10 of the largest (quick-trained models need ~3 photons/MAC)
    grid_step: float = 0.25  # grid spacing in decades (a factor 1.78)
    seeds: int = 3  # seeds (ctx.seed + i): every width trained and searched once per seed


REPRO = Reproduction(
    id="optical-transformers",
    papers=("optical-transformers",),
    title="Shot-noise-limited optical matrix products in a small LM",
    config=Config,
    presets={
        # 3 seeds × widths 32, 64, 128 (a factor 4), 300 steps: each model ≥ 0.5 nats below
        # unigram before any noise is applied
        "quick": {},
        # 5 seeds, 800 steps (each model ≥ 1.0 nats below unigram), twice the noisy
        # validation tokens, more planted repeats
        "full": {
            "seeds": 5,
            "steps": 800,
            "grid_hi": 2.5,  # longer-trained models need more photons (calibration)
            "eval_windows": 32,
            "planted_trials": 256,
        },
    },
    claims=(
        Claim(
            id="snr-follows-sqrt-photons",
            statement="our simulated output SNR grows as the square root of the photons per MAC",
            source="§5 (shot-noise model)",
            paper_value="SNR ∝ √N for Poisson counts of N photons",
            metric="snr_photon_slope",
            # Poisson counts give slope 0.5 exactly; ±0.05 covers the error of a 64-repeat
            # standard deviation averaged over 512 outputs many times over
            rule=Between(0.45, 0.55),
            unit="log-log slope of SNR vs photons per MAC",
            kind="check",
        ),
        Claim(
            id="simulator-unbiased",
            statement="our simulated optical product is an unbiased estimate of the exact product",
            source="§5 (shot-noise model)",
            paper_value="E[ŷ] = W x (zero-mean shot noise)",
            metric="max_abs_bias_z",
            # a z-score over 9 budgets: |z| > 4 happens by chance with probability < 1e-3
            rule=AtMost(4.0),
            unit="largest |z| of the mean relative error over budgets",
            kind="check",
        ),
        Claim(
            id="snr-grows-with-width",
            statement="in our simulator, at a fixed energy per MAC the SNR of a width-d sum of "
            "non-negative products grows as √d, since d MACs pour photons into one detector",
            source="§5",
            paper_value="photons per output = d × photons per MAC",
            metric="snr_width_slope",
            # √d exactly for a coherent sum; ±0.05 for estimation error as above
            rule=Between(0.45, 0.55),
            unit="log-log slope of SNR vs d_in at 1 photon per MAC",
            kind="check",  # planted operands: a property of the simulator, not of a model
        ),
        Claim(
            id="energy-per-mac-falls-as-1-over-d",
            statement="the photons per MAC needed to keep the LM's validation loss within the "
            "tolerance of the noise-free model fall as 1/d with width d",
            source="§5, Fig. 5; abstract",
            paper_value="energy per MAC ∝ 1/d",
            metric="energy_exponent",
            # exponent −1 ± 0.5, the band fixed when this finding was first declared and kept
            # (issue 16): the paper states the 1/d law from its fits without an error bar we
            # could use instead; ±0.5 separates 1/d from 1/√d (−0.5) and from no gain (0)
            rule=Between(-1.5, -0.5),
            unit="log-log slope of photons/MAC needed vs d (one fit per seed)",
            kind="finding",
            gates=(
                learned_gate("every width", metric="every_width_below_unigram"),
                inside_grid_gate("photon grid", metric="every_crossing_inside_grid"),
            ),
        ),
        Claim(
            id="energy-exponent-at-one-lr",
            statement="the same fall holds among the widths trained at one learning rate (the "
            "widest width's), so it does not come from the widths' different learning rates",
            source="§5, Fig. 5 (a control of ours)",
            paper_value="energy per MAC ∝ 1/d",
            metric="energy_exponent_one_lr",
            # added after the first full run (issue 16): an off-run control on seed 0 found the
            # needed photons nearly flat in width at a common rate, so the headline exponent may
            # come from width 32's larger rate; the band is the headline's, unchanged
            rule=Between(-1.5, -0.5),
            unit="log-log slope of photons/MAC needed vs d over the widths sharing the widest "
            "width's rate (one fit per seed)",
            kind="finding",
            gates=(
                learned_gate("every width", metric="every_width_below_unigram"),
                inside_grid_gate("photon grid", metric="every_crossing_inside_grid"),
            ),
        ),
        Claim(
            id="eight-bit-keeps-accuracy",
            statement="8-bit operands without shot noise leave the loss unchanged within the "
            "tolerance (equivalence)",
            source="§4–5",
            paper_value="Transformers run at 8-bit precision without loss of accuracy",
            metric="max_quantization_gap",
            # "without loss of accuracy" is an equivalence claim: ±0.05 nats/token, the same
            # tolerance the energy search uses to define "keeps the loss" (the paper gives no
            # number at our scale)
            rule=Equivalent(0.05),
            unit="8-bit − float loss at the width where it is largest in size (nats/token, "
            "per seed)",
            kind="finding",
            gates=(learned_gate("every width", metric="every_width_below_unigram"),),
        ),
    ),
    timeout_s=600,
)
