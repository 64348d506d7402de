"""Root Mean Square Layer Normalization (Zhang & Sennrich 2019), arXiv:1910.07467, and its use
in Gopher (Rae et al. 2021, arXiv:2112.11446, which swaps LayerNorm for RMSNorm).

RMSNorm drops LayerNorm's re-centring: ā = a / RMS(a) · g with RMS(a) = sqrt(mean(a²) + ε).
The paper's hypothesis is that re-scaling invariance is what matters, so this should train as
well as LayerNorm while doing less work (one reduction instead of two, no bias).

Claims checked:
  * our RMSNorm equals ``torch.nn.RMSNorm`` (output and gradients) to float tolerance (peer);
  * Table 1's invariance properties: both norms ignore a re-scaling of their input, only
    LayerNorm ignores a re-centring;
  * a small pre-norm GPT trained on the Brown corpus with RMSNorm in every norm slot reaches
    the validation loss of the same model with LayerNorm, within seed noise (several seeds,
    same initial weights and batches per seed);
  * speed: the abstract's 7–64% lower running time. We time the layer alone (forward, and
    forward+backward, several widths) and one training step of the GPT, LayerNorm against
    RMSNorm written from the same tensor operations (``norms.py`` says why that is the fair
    race), interleaved so machine load hits both alike. ``repro bench rmsnorm`` prints the
    full table, PyTorch's own modules included.

Kinds and seeds: the peer agreement and the invariances are *checks* of our code. The loss
comparison is a *finding*: the per-seed paired difference RMSNorm − LayerNorm over ``seeds`` (3
in quick, 5 in full; one seed = the same initial weights and batches for both), judged as an
equivalence (two-sided margin) and gated on both arms having learned. The three speed claims
are *findings* on wall-clock behaviour (``verify_rtol=None``): their sample is the interleaved
timing rounds (round k's ratio; for the layer, the median over widths of round k's ratios),
since repeated rounds, not seeds, are what varies in a timing.

No peak-memory helper lives here (memory is not among the claims), so
``repro.common.memory.peak_bytes`` has nothing to replace.

Left out: pRMSNorm (the RMS estimated from the first p% of the entries), the paper's tasks
(machine translation with RNNSearch and Transformer, reading comprehension, image-caption
retrieval, CIFAR-10) and GPU timings; Gopher itself (280B parameters).
"""

from dataclasses import dataclass

from repro.claims import AtLeast, AtMost, Claim, Equivalent, IsTrue, Reproduction, learned_gate


@dataclass(frozen=True)
class Config:
    vocab_size: int = 512  # BPE vocabulary trained on the Brown training documents
    max_docs: int | None = None  # all 500 Brown documents
    seq_len: int = 64  # tokens per window
    batch_size: int = 16  # windows per step
    d_model: int = 64  # GPT width
    n_layer: int = 2  # GPT depth (5 norms: two per block and the final one)
    n_head: int = 4
    steps: int = 300  # training steps per run (cosine schedule, 5% warm-up)
    # AdamW peak rate, same for both norms, inside the good region: calibrated at 300 steps,
    # seed 0, LayerNorm ends 0.76 nats below unigram at 1e-3 and 0.70 at 1e-2, more at 3e-3
    # (the quick run's margin); RMSNorm at 1e-2 ends 0.73, LayerNorm 0.70
    lr: float = 3e-3
    weight_decay: float = 0.0
    seeds: int = 3  # runs per norm, paired by seed (same initial weights and batches)
    evals: int = 5  # validation points along each run (for the curves)
    eval_batches: int = 12  # validation: 12 × 16 windows of seq_len tokens
    widths: tuple[int, ...] = (256, 512, 1024, 2048)  # layer timing widths
    rows: int = 512  # vectors normalised per timed call
    timing_rounds: int = 11  # interleaved rounds per timing (median ratio)


# "Comparable quality" as an equivalence margin on the paired loss difference, in nats. The
# paper gives no loss differences (its tables report BLEU / accuracy, where RMSNorm sits within
# a few tenths of a point of LayerNorm: e.g. Table 4, Transformer on WMT14 En-De, 26.6 vs 26.8
# BLEU), so we take ±0.05 nats (about 5% perplexity) as the largest gap still "comparable".
# The margin is a fixed number declared before the run (it does not scale with the measured
# seed noise, so a noisier run cannot pass more easily); the 95% t-interval of the per-seed
# differences must lie inside it (TOST). It replaced the earlier data-dependent rule (|gap|
# within twice the seed standard deviation).
SAME_LOSS_MARGIN = 0.05
# The abstract's smallest speed-up (7%), as a ratio of running times.
PAPER_LOW_SPEEDUP = 1.07

REPRO = Reproduction(
    id="rmsnorm",
    papers=("rmsnorm", "gopher"),
    title="RMSNorm: same loss as LayerNorm, less work",
    config=Config,
    presets={
        # 6 runs of 300 steps at batch 16 × 64 (3 seeds) and a few seconds of timing; issue 16
        # changed it from batch 8, 250 steps, where LayerNorm stayed short of the learned gate
        "quick": {},
        # twice as deep (9 norm slots), longer, five seeds, wider timing sweep; issue 16
        # changed it from 128 wide, batch 8, 1500 steps (never run, about 25 CPU-minutes) to
        # 600 steps, where LayerNorm stayed short of the 1.0-nat learned gate on seeds 3 and 4
        # (results at commit a76fae1), then to 1000 steps (about 12 CPU-minutes)
        "full": {
            "n_layer": 4,
            "steps": 1000,
            "seeds": 5,
            "evals": 5,
            "eval_batches": 40,
            "widths": (128, 256, 512, 1024, 2048, 4096),
            "timing_rounds": 21,
        },
    },
    claims=(
        Claim(
            id="matches-torch-rmsnorm",
            statement="our RMSNorm gives the outputs and gradients of torch.nn.RMSNorm",
            source="eq. (4); peer: torch.nn.RMSNorm",
            paper_value="ā = a / RMS(a) · g",
            metric="peer_max_rel_err_fp32",
            kind="check",
            rule=AtMost(1e-5),  # a few float32 roundings (2^-23 ≈ 1.2e-7 each) over a reduction
            unit="max relative difference, float32",
        ),
        Claim(
            id="invariances",
            statement="RMSNorm's output ignores a re-scaling of its input but not a re-centring; "
            "LayerNorm's ignores both",
            source="§4, Table 1",
            paper_value="RMSNorm: re-scaling invariant, not re-centring invariant",
            metric="invariances_as_in_table1",
            kind="check",
            rule=IsTrue(),
            unit="all four checks as in Table 1",
        ),
        Claim(
            id="same-loss-as-layernorm",
            statement="a small GPT with RMSNorm reaches the validation loss of the same GPT "
            "with LayerNorm (equivalent within a declared margin)",
            source="§6 (Tables 2–7: comparable quality across tasks); Gopher §2",
            paper_value="comparable quality to LayerNorm on every task",
            metric="loss_gap_rms_minus_ln",
            kind="finding",
            rule=Equivalent(SAME_LOSS_MARGIN),  # margin: see SAME_LOSS_MARGIN
            gates=(learned_gate("layernorm"), learned_gate("rmsnorm")),
            unit="val loss RMSNorm − LayerNorm (nats/token), per seed",
        ),
        Claim(
            id="layer-faster-fwd",
            statement="the RMSNorm layer runs faster than LayerNorm (forward; median over widths)",
            source="Abstract; §6",
            paper_value="7%–64% less running time",
            metric="layer_speedup_fwd_median",
            kind="finding",
            verify_rtol=None,  # a timing: depends on the machine
            rule=AtLeast(PAPER_LOW_SPEEDUP),
            unit="time(LN)/time(RMS), per timing round",
        ),
        Claim(
            id="layer-faster-fwd-bwd",
            statement="the RMSNorm layer runs faster than LayerNorm (forward+backward; median "
            "over widths)",
            source="Abstract; §6",
            paper_value="7%–64% less running time",
            metric="layer_speedup_fwd_bwd_median",
            kind="finding",
            verify_rtol=None,  # a timing: depends on the machine
            rule=AtLeast(PAPER_LOW_SPEEDUP),
            unit="time(LN)/time(RMS), per timing round",
        ),
        Claim(
            id="model-step-faster",
            statement="a training step (forward+backward) of the whole small GPT is faster with "
            "RMSNorm",
            source="Abstract; §6 (model running times)",
            paper_value="7%–64% less running time, depending on the model",
            metric="model_step_speedup",
            kind="finding",
            verify_rtol=None,  # a timing: depends on the machine
            rule=AtLeast(PAPER_LOW_SPEEDUP),
            unit="time(LN)/time(RMS), per timing round",
        ),
    ),
    bench="bench:main",
    timeout_s=180,
)
