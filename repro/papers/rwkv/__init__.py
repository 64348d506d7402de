"""RWKV: Reinventing RNNs for the Transformer Era (Peng et al. 2023, arXiv:2305.13048).

RWKV-4 replaces attention by the WKV operator: a per-channel weighted average of past values
whose weights decay exponentially with distance (rate w) plus a bonus u for the current token.
The same numbers come out of a T×T "attention-like" form (training) and of a recurrence that
carries a fixed-size state (inference).

Claims checked. One finding (trained LMs over ``seeds`` seeds: 3 in quick, 5 in full; seed
ctx.seed + i initialises both models and draws the same training batches, so the arms are
paired by seed) and nine implementation checks (pass/fail) of our own code: identities
between its forms, sizes of its own tensors, how its decoding time grows (two timing checks,
not compared by ``repro verify``; the RWKV slope once measured 0.108 against the ≤ 0.1 rule on
a loaded machine), and the equal parameter count of the two trained arms.

Checks:
  * §4.1–4.3: the parallel (training) WKV equals the recurrent (inference) WKV for any
    inputs — float64, keys spread up to ±10³.
  * Appendix (the time-mixing block as an RNN cell): tracking a shared exponent p keeps the
    recurrence finite in float32 where the recurrence written with raw e^k overflows.
  * Table 1: our RWKV's inference state is O(d), constant in sequence length, and its time
    per token is constant, while our Transformer's key/value cache and per-token time grow
    with the context (measured side by side, our own small untrained models, CPU).
  * §4.2–4.3: the trained LM gives the same logits from the parallel, scan and token-by-token
    paths.
  * the two trained LMs have the same non-embedding parameter count (the GPT's feed-forward
    width is set to match RWKV's channel mixing, ``model.matched_ffn_hidden``).

Finding (abstract, Fig. 1; at a tiny scale): a small RWKV LM trained on the Brown corpus
(BPE-512) is on par with a GPT of the same width, depth and non-embedding parameters trained on
the same batches: the per-seed relative difference of held-out (test-half) losses lies within a
two-sided equivalence margin. Each arm picks its learning rate from the same grid on the first
seed, on the dev half of the held-out text; the verdict counts only if neither pick sits on the
grid's edge (inside-grid gates) and both arms left the unigram plateau (learned gates: 0.5 nats
below the unigram cross-entropy in quick, 1.0 in full). The former finding "lm-beats-unigram"
(RWKV ≥ 0.5 nats below unigram) is now the learned gate of the RWKV arm, so it is no longer a
claim of its own.

Peer check: the issue asks for the ``rwkv`` pip package's own time mixing on shared weights;
that package is not installed in this environment, so no peer check is run.

Left out: the paper's scale (169M–14B parameters on the Pile), its zero-shot benchmarks and
its custom CUDA kernel; on a CPU our training path runs the stable recurrence as a loop over
time (what the paper's kernel computes per channel), the T×T form is checked against it.
"""

from dataclasses import dataclass

from repro.claims import (
    AtLeast,
    AtMost,
    Claim,
    Equivalent,
    IsTrue,
    Near,
    Reproduction,
    inside_grid_gate,
    learned_gate,
)

# Fixed from one-seed calibration runs (seed 0, 130-200 steps) before the first run of these
# presets: RWKV costs ~0.13 CPU-s a step and the GPT ~0.035 at batch 16×64, one thread. The GPT
# did best at 1.5e-3 (130 steps) or 3e-3 (200 steps); RWKV at 1.2e-2 and 2.4e-2 alike (1.2e-2
# beat 3e-3). So one ×2 grid spans both arms' optima with a value on either side of each.
LRS = (7.5e-4, 1.5e-3, 3e-3, 6e-3, 1.2e-2, 2.4e-2)
# quick: (6 grid + 2 seeds) runs per arm in ~3 CPU-min; full: (6 + 4) runs in ~12 CPU-min
STEPS_QUICK = 120
STEPS_FULL = 400


@dataclass(frozen=True)
class Config:
    # WKV forms
    wkv_len: int = 128  # sequence length for the form comparisons
    wkv_channels: int = 32
    key_scales: tuple[float, ...] = (1.0, 10.0, 30.0, 100.0, 300.0, 1000.0)  # spread of k
    # language model (both arms share these)
    vocab_size: int = 512  # byte-level BPE trained on the Brown training split
    max_docs: int | None = None  # Brown documents used (None: all 500)
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4  # Transformer arm only
    seq_len: int = 64
    batch_size: int = 16
    steps: int = STEPS_QUICK
    lrs: tuple[float, ...] = LRS  # the one grid both arms pick from (first seed, dev half)
    seeds: int = 3  # LM seeds ctx.seed + i, each arm trained once per seed
    weight_decay: float = 0.0
    eval_batches: int = 10  # windows scored = eval_batches · batch_size, on each half
    # decoding cost (separate, wider models so attention over the cache is visible)
    decode_d: int = 256
    decode_layers: int = 2
    decode_heads: int = 4
    decode_lengths: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192, 16384)
    decode_tokens: int = 8  # tokens per timing
    decode_repeats: int = 5  # timings per length; the median is kept


REPRO = Reproduction(
    id="rwkv",
    papers=("rwkv",),
    title="WKV: parallel = recurrent, constant-state decoding, Brown LM vs a Transformer",
    config=Config,
    presets={
        # 3 seeds; each arm: the grid on the first seed, then 2 more seeds at its pick
        "quick": {},
        # 5 seeds, trained longer to clear the 1-nat learned gate; a longer WKV form check
        "full": {"wkv_len": 512, "steps": STEPS_FULL, "seeds": 5, "eval_batches": 20},
    },
    claims=(
        Claim(
            id="parallel-equals-recurrent",
            kind="check",
            statement="our WKV operator computed as a T×T weighted sum equals our recurrent form",
            source="§4.2–4.3",
            paper_value="the same model trains in parallel and runs as an RNN",
            metric="wkv_parallel_vs_recurrent_f64",
            # float64 rounding over a few hundred accumulation steps stays below 1e-12
            rule=AtMost(1e-9),
            unit="max |Δ| (float64, keys up to ±10³)",
        ),
        Claim(
            id="stable-recurrence-finite",
            kind="check",
            statement="our shared-exponent recurrence stays finite and accurate in float32 for any key spread",
            source="Appendix (time-mixing block as an RNN cell)",
            paper_value="exponent p kept in the state avoids overflow",
            metric="wkv_stable_f32_max_err",
            # exponents reach ~10³ and float32 keeps ~7 digits of them: we ask for 3 correct digits
            rule=AtMost(1e-3),
            unit="max |Δ| vs float64 over all spreads",
        ),
        Claim(
            id="naive-recurrence-overflows",
            kind="check",
            statement="our recurrence written with raw e^k overflows where the stable one does not",
            source="Appendix (time-mixing block as an RNN cell)",
            paper_value="e^k overflows without the shared exponent",
            metric="naive_overflows_where_stable_finite",
            rule=IsTrue(),
            unit="naive non-finite while stable finite",
        ),
        Claim(
            id="lm-forms-agree",
            kind="check",
            statement="our trained LM gives the same logits in parallel, scan and token-by-token mode",
            source="§4.2–4.3",
            paper_value="Transformer-like training, RNN-like inference of one model",
            metric="lm_forms_max_rel_diff",
            # float32 sums of the same terms in another order: ~1e-6 relative, 1e-4 leaves room
            rule=AtMost(1e-4),
            unit="max |Δlogit| / max |logit|",
        ),
        Claim(
            id="constant-state",
            kind="check",
            statement="the state our RWKV carries between tokens does not grow with the context",
            source="Table 1",
            paper_value="space O(d) (Transformer O(T·d) with a cache)",
            metric="rwkv_state_growth",
            rule=Near(1.0),
            unit="state bytes at longest / shortest context",
        ),
        Claim(
            id="kv-cache-linear",
            kind="check",
            statement="our Transformer peer's key/value cache grows linearly with the context",
            source="Table 1",
            paper_value="O(T·d)",
            metric="kv_cache_bytes_slope",
            # linear growth is slope 1 on log-log axes; 0.02 allows the one extra token held
            rule=Near(1.0, atol=0.02),
            unit="log-log slope of cache bytes vs t",
        ),
        Claim(
            id="constant-time-per-token",
            kind="check",
            statement="our RWKV's decoding time per token does not grow with the context",
            source="Table 1; §4.3",
            paper_value="time per token O(d), constant in T",
            metric="rwkv_time_slope",
            # linear growth would be slope 1; 0.1 allows timing noise on a shared machine
            rule=AtMost(0.1),
            unit="log-log slope of ms/token vs t",
            verify_rtol=None,  # a timing: depends on the machine and its load
        ),
        Claim(
            id="transformer-time-per-token-grows",
            kind="check",
            statement="our Transformer's decoding time per token grows with the context",
            source="Table 1",
            paper_value="time per token O(T·d)",
            metric="transformer_time_growth",
            # over a 32× longer context a linear cost at least doubles even if fixed
            # per-token work is half the time at the shortest context
            rule=AtLeast(2.0),
            unit="ms/token at longest / shortest context",
            verify_rtol=None,  # a timing: depends on the machine and its load
        ),
        Claim(
            id="arms-equal-params",
            kind="check",
            statement="our RWKV and Transformer LMs have the same non-embedding parameter count",
            source="Fig. 1 (models compared at equal size)",
            paper_value="RWKV compared with Transformers of similar size",
            metric="arms_equal_params",
            rule=IsTrue(),
            unit="equal (token embedding, positions and head excluded)",
        ),
        Claim(
            id="on-par-with-transformer",
            kind="finding",
            statement="at equal non-embedding parameters, data and steps, with each arm's "
            "learning rate tuned on the same grid, RWKV's held-out loss is on par with a "
            "Transformer's",
            source="abstract; Fig. 1",
            paper_value="performance on par with similarly sized Transformers",
            metric="rwkv_vs_transformer_rel_diff",
            # "On par", two-sided: the paired relative difference of held-out losses within
            # ±5%. Source: Fig. 1 (and Fig. 5, per task) place RWKV's zero-shot accuracy
            # among Pythia, OPT and BLOOM of equal compute, with no error bars and no loss gap
            # printed beside it; ±5% of the loss is the margin this reproduction declared
            # before its first comparison run and is kept, not re-picked, for this one.
            rule=Equivalent(0.05),
            unit="(RWKV − Transformer) / Transformer held-out loss",
            gates=(
                learned_gate("rwkv"),
                learned_gate("transformer"),
                inside_grid_gate("rwkv"),
                inside_grid_gate("transformer"),
            ),
        ),
    ),
    timeout_s=900,  # a hang guard, ~4x the quick preset's CPU time
)
