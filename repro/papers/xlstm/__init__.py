"""xLSTM: Extended Long Short-Term Memory (Beck et al. 2024, arXiv:2405.04517).

xLSTM gives the LSTM exponential input gates, normalised by a running sum, and two cells: the
sLSTM (scalar memory, recurrent connections, heads) and the mLSTM (a matrix memory updated by
a value–key outer product and read with a query, no recurrent connections, so it can also be
computed in parallel like linear attention with a decay mask).

Claims checked. Three implementation checks (pass/fail) of our own cells, and two findings on a
formal language, trained over ``seeds`` seeds (3 in quick, 5 in full); seed ctx.seed + i
initialises each model and draws the same training strings for both arms, so the arms are
paired by seed.

Checks:
  * §2.3 and the appendix's parallel formulation: the mLSTM's parallel form equals its
    recurrent form (float64, gate pre-activations spread up to ±10³).
  * §2.2 (stabilised exponential gating): with the running maximum m_t the sLSTM and both
    mLSTM forms stay finite and accurate in float32, while the same cells without it
    overflow (e^ĩ beyond float32's range).

Findings (§4.1, Fig. 4, the parity column; state tracking needs the sLSTM's memory mixing):
running parity of a bit string, the target at every position the parity of the bits so far,
trained on strings of ``train_len`` bits and tested on strings of ``test_len``. Accuracy is
rescaled as in Fig. 4 (chance 0, perfect 1).
  * an sLSTM solves parity and keeps solving it at lengths it was not trained on (scaled
    accuracy on positions train_len+1 .. test_len);
  * it does so where a Transformer (Llama-style, rotary positions, as the paper's Llama
    baseline) of the same width does not: paired difference of scaled accuracy beyond the
    training length.
  Gates: on the trained lengths the sLSTM reaches 0.9 scaled accuracy and the Transformer 0.5
  (it has learned the training task well beyond chance, so a collapse beyond the training
  length is a failure to extrapolate, not a failure to train); each arm's learning rate is the
  best (dev accuracy on fresh training-length strings, first seed; the smallest rate on a tie)
  of the same grid and not on its edge.

Dropped (session 7): the Brown-corpus LM findings "lm-beats-unigram" and "on-par-with-
transformer" (last quick run: 1.01 nats below unigram, reproduced; relative difference −0.046,
inconclusive against a ±5% equivalence margin). Their quick preset alone took ~170 s, the whole
CPU budget, and a full run at the widths that pass the 1.0-nat learned gate would take far more
than the budget; the CPU went to the formal-language finding the issue asks for.

Left out: the paper's scale (125M–1.3B parameters, 15B–300B tokens of SlimPajama), its fused
CUDA kernels, the other formal languages of Fig. 4 and the associative-recall tasks, the mLSTM
and Mamba/RWKV arms of Fig. 4, block-diagonal q/k/v projections (ours are dense; see
model.py), and the `xlstm` package as a peer (it is not installed here).
"""

from dataclasses import dataclass

from repro.claims import (
    AtLeast,
    AtMost,
    Claim,
    IsTrue,
    Reproduction,
    baseline_gate,
    inside_grid_gate,
)


@dataclass(frozen=True)
class Config:
    # cell checks
    cell_len: int = 64
    cell_heads: int = 2
    cell_dim: int = 8
    gate_scales: tuple[float, ...] = (1.0, 10.0, 30.0, 100.0, 300.0, 1000.0)  # spread of ĩ
    # running parity (formal language)
    train_len: int = 8  # bits per training string
    test_len: int = 32  # bits per test string: positions 9..32 measure extrapolation
    parity_d_model: int = 32  # both arms
    parity_heads: int = 4
    slstm_layers: int = 1  # sLSTM blocks (cell + gated feed-forward)
    transformer_layers: int = 2  # Llama-style blocks (attention + SwiGLU)
    parity_steps: int = 600  # AdamW steps, both arms
    parity_batch: int = 32  # strings per step
    # The same grid for both arms, a factor ~3 apart; each arm takes the rate with the best
    # dev accuracy on the first seed (the smallest on a tie). Pilot (seed 0, train_len 8,
    # 600 steps unless said; dev scaled accuracy): Transformer 0.73 / 0.86 / 0.66 / 0.30 at
    # 1e-3 / 3e-3 / 1e-2 / 3e-2; sLSTM 0.68 at 3e-4 (1000 steps), 1.00 at every rate from 1e-3
    # to 1e-1, with dev loss falling as the rate grows (8.7e-4 at 1e-3, 2e-5 at 1e-2), so
    # ranking by loss would pin the sLSTM to the grid's top edge. The tie rule was chosen
    # after that pilot, which also showed the sLSTM extrapolating less at the smallest solving
    # rate (scaled 0.82 at 1e-3 against 1.00 at 3e-3 and above): it is the choice least
    # favourable to the sLSTM findings, and 3e-4 was added so that 1e-3 is not an edge.
    parity_lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
    parity_eval_sequences: int = 512
    seeds: int = 3  # paired seeds


REPRO = Reproduction(
    id="xlstm",
    papers=("xlstm",),
    title="mLSTM parallel = recurrent, stabilised exponential gates, parity state tracking",
    config=Config,
    presets={
        "quick": {},
        # full: longer cell checks, five seeds, longer training
        "full": {
            "cell_len": 256,
            "parity_steps": 1000,
            "seeds": 5,
        },
    },
    claims=(
        Claim(
            id="mlstm-parallel-equals-recurrent",
            kind="check",
            statement="our mLSTM's parallel form equals our recurrent form",
            source="§2.3; appendix (parallel mLSTM)",
            paper_value="the same cell, computed in parallel for training",
            metric="mlstm_parallel_vs_recurrent_f64",
            # float64 rounding; the max(|nᵀq|, 1) normaliser can amplify it by a few decades
            rule=AtMost(1e-9),
            unit="max |Δ| / max |h| (float64)",
        ),
        Claim(
            id="stabilised-gates-finite",
            kind="check",
            statement="with the stabiliser, our sLSTM and both our mLSTM forms stay finite and accurate in float32",
            source="§2.2 (stabilised exponential gating)",
            paper_value="the running max m_t prevents overflow without changing the output",
            metric="stable_f32_max_rel_err",
            # exponents reach ~10³ and float32 keeps ~7 digits of them: we ask for 3 correct digits
            rule=AtMost(1e-3),
            unit="max |Δ| / max |h| vs float64, all spreads and cells",
        ),
        Claim(
            id="unstabilised-gates-overflow",
            kind="check",
            statement="our same cells with raw exp(ĩ) overflow where the stabilised ones do not",
            source="§2.2",
            paper_value="exponential gates overflow without stabilisation",
            metric="unstabilised_overflows_where_stable_finite",
            rule=IsTrue(),
            unit="every unstabilised form non-finite while stabilised finite",
        ),
        Claim(
            id="slstm-parity-extrapolates",
            kind="finding",
            statement="an sLSTM trained on running parity of short strings solves it on longer "
            "strings too",
            source="§4.1, Fig. 4 (parity)",
            paper_value="sLSTM-based models solve parity at test lengths beyond training (scaled "
            "accuracy near 1)",
            metric="slstm_parity_extrap",
            # Fig. 4 shades parity near 1 for models with sLSTM blocks; 0.8 scaled accuracy (90%
            # of positions right) is what we call solved, fixed before the first run.
            rule=AtLeast(0.8),
            unit="scaled accuracy at positions train_len+1..test_len",
            gates=(
                baseline_gate("sLSTM, trained lengths", "slstm_parity_in_dist", AtLeast(0.9)),
                inside_grid_gate("slstm"),
            ),
        ),
        Claim(
            id="slstm-beats-transformer-on-parity",
            kind="finding",
            statement="on strings longer than the training strings the sLSTM tracks parity and a "
            "Transformer of the same width does not",
            source="§4.1, Fig. 4 (parity)",
            paper_value="Llama near chance on parity, sLSTM-based models near 1",
            metric="parity_slstm_minus_transformer_extrap",
            # Fig. 4's gap on parity spans most of the scale; 0.5 (half of it) is the margin,
            # fixed before the first run.
            rule=AtLeast(0.5),
            unit="scaled accuracy, sLSTM − Transformer, beyond the training length, per seed",
            gates=(
                baseline_gate("sLSTM, trained lengths", "slstm_parity_in_dist", AtLeast(0.9)),
                baseline_gate(
                    "Transformer, trained lengths", "transformer_parity_in_dist", AtLeast(0.5)
                ),
                inside_grid_gate("slstm"),
                inside_grid_gate("transformer"),
            ),
        ),
    ),
    timeout_s=600,  # a hang guard, ~5x the quick preset's CPU time
)
