"""xLSTM: Extended Long Short-Term Memory (Beck et al. 2024, arXiv:2405.04517).

xLSTM gives the LSTM exponential input gates, normalised by a running sum, and two cells: the
sLSTM (scalar memory, recurrent connections, heads) and the mLSTM (a matrix memory updated by
a value–key outer product and read with a query, no recurrent connections, so it can also be
computed in parallel like linear attention with a decay mask).

Claims checked. Three implementation checks (pass/fail) of our own cells, and two findings
(trained LMs, one value per seed over ``seeds`` seeds: 3 in quick, 5 in full; seed
ctx.seed + i initialises both models and draws the same training batches, so the arms are
paired by seed).

Checks:
  * §2.3 and the appendix's parallel formulation: the mLSTM's parallel form equals its
    recurrent form (float64, gate pre-activations spread up to ±10³).
  * §2.2 (stabilised exponential gating): with the running maximum m_t the sLSTM and both
    mLSTM forms stay finite and accurate in float32, while the same cells without it
    overflow (e^ĩ beyond float32's range).

Findings (§4, at a tiny scale): a small xLSTM LM (an mLSTM block and an sLSTM block) trained
on the Brown corpus
  * ends well below the unigram cross-entropy on held-out text, and
  * is on par with a Transformer of the same width and depth trained identically (per-seed
    relative difference of held-out losses, two-sided equivalence margin), valid only if both
    arms left the unigram plateau (learned gates). The paper claims more (xLSTM ahead of the
    Transformer); a gap beyond the margin in either direction is "not reproduced" here.

Left out: the paper's scale (125M–1.3B parameters, 15B–300B tokens of SlimPajama), its fused
CUDA kernels, the synthetic formal-language and associative-recall tasks, and block-diagonal
q/k/v projections (ours are dense; see model.py).
"""

from dataclasses import dataclass

from repro.claims import AtLeast, AtMost, Claim, Equivalent, IsTrue, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    # cell checks
    cell_len: int = 64
    cell_heads: int = 2
    cell_dim: int = 8
    gate_scales: tuple[float, ...] = (1.0, 10.0, 30.0, 100.0, 300.0, 1000.0)  # spread of ĩ
    # language model (xLSTM and its Transformer peer share these)
    vocab_size: int = 2048  # byte-level BPE trained on the training split
    max_docs: int = 200  # Brown documents used (500 = all)
    d_model: int = 64
    blocks: str = "ms"  # xLSTM blocks in order: m = mLSTM, s = sLSTM
    heads: int = 4
    seq_len: int = 64
    batch_size: int = 16
    # 120 steps left both models just past the unigram plateau; 200 left the Transformer
    # 0.42-0.60 nats below unigram over 3 seeds, short of the learned gate on two of them
    steps: int = 300
    lr: float = 3e-3
    eval_batches: int = 10  # held-out windows = eval_batches · batch_size
    seeds: int = 3  # LM training runs per arm, paired by seed


REPRO = Reproduction(
    id="xlstm",
    papers=("xlstm",),
    title="mLSTM parallel = recurrent, stabilised exponential gates, Brown LM",
    config=Config,
    presets={
        "quick": {},
        # full: the whole corpus, xLSTM[3:1]-style depth, longer training
        "full": {
            "cell_len": 256,
            "vocab_size": 4096,
            "max_docs": 500,
            "d_model": 128,
            "blocks": "mmsm",
            "seq_len": 128,
            "batch_size": 16,
            "steps": 500,
            "lr": 2e-3,
            "eval_batches": 40,
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
            id="lm-beats-unigram",
            kind="finding",
            statement="a small xLSTM LM trained on the Brown corpus ends well below the unigram cross-entropy",
            source="§4 (language modelling)",
            paper_value="xLSTM trains as a competitive LM",
            metric="xlstm_below_unigram",
            # 0.5 nats = 40% lower perplexity than knowing token frequencies alone
            rule=AtLeast(0.5),
            unit="nats/token below unigram (held-out)",
        ),
        Claim(
            id="on-par-with-transformer",
            kind="finding",
            statement="at equal width, depth, data and steps xLSTM's held-out loss is on par with a Transformer's",
            source="§4.2, Table 1",
            paper_value="lower validation perplexity than a same-size Transformer (Llama) at 15B tokens",
            metric="xlstm_vs_transformer_rel_diff",
            # "On par", two-sided: the paired relative difference of held-out losses within
            # ±5%. The paper reports no seed error bars; 5% is the bound this reproduction
            # declared before the conversion (then one-sided, AtMost(1.05) on the loss ratio),
            # and in the paper's Table 1 xLSTM and the Transformer (Llama) of the same size
            # differ by a few percent of perplexity, so a gap beyond 5% of the loss is not
            # what the paper saw in either direction.
            rule=Equivalent(0.05),
            unit="(xLSTM − Transformer) / Transformer held-out loss",
            gates=(learned_gate("xlstm"), learned_gate("transformer")),
        ),
    ),
    timeout_s=240,  # a hang guard, 5-6x the quick preset's CPU time
)
