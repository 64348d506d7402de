"""RWKV: Reinventing RNNs for the Transformer Era (Peng et al. 2023, arXiv:2305.13048).

RWKV-4 replaces attention by the WKV operator: a per-channel weighted average of past values
whose weights decay exponentially with distance (rate w) plus a bonus u for the current token.
The same numbers come out of a T×T "attention-like" form (training) and of a recurrence that
carries a fixed-size state (inference).

Claims checked. Two are findings (trained LMs, one value per seed over ``seeds`` seeds: 3 in
quick, 5 in full; seed ctx.seed + i initialises both models and draws the same training
batches, so the arms are paired by seed); the other eight are implementation checks
(pass/fail) of our own code: identities between its forms, sizes of its own tensors, and how
its decoding time grows (two timing checks, not compared by ``repro verify``; the RWKV slope
once measured 0.108 against the ≤ 0.1 rule on a loaded machine).

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

Findings (abstract/§5, at a tiny scale): a small RWKV LM trained on the Brown corpus
  * ends well below the unigram cross-entropy on held-out text, and
  * is on par with a GPT of the same width and depth trained identically (per-seed relative
    difference of held-out losses, two-sided equivalence margin), valid only if both arms
    left the unigram plateau (learned gates).

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
    learned_gate,
)


@dataclass(frozen=True)
class Config:
    # WKV forms
    wkv_len: int = 128  # sequence length for the form comparisons
    wkv_channels: int = 32
    key_scales: tuple[float, ...] = (1.0, 10.0, 30.0, 100.0, 300.0, 1000.0)  # spread of k
    # language model (both models share these)
    vocab_size: int = 2048  # byte-level BPE trained on the training split
    max_docs: int = 200  # Brown documents used (None-like: 500 = all)
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4  # Transformer peer only
    seq_len: int = 64
    batch_size: int = 16
    # 120 steps left the Transformer 0.13 nats below unigram, 250 steps 0.46 (seed 0): short of
    # the 0.5-nat learned gate; 300 steps give it 0.74 (RWKV 1.58) in ~55 CPU-s per seed
    steps: int = 300
    seeds: int = 3  # LM training runs per arm, paired by seed
    lr: float = 3e-3
    weight_decay: float = 0.0
    eval_batches: int = 10  # held-out windows = eval_batches · batch_size
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
    title="WKV: parallel = recurrent, constant-state decoding, Brown LM",
    config=Config,
    presets={
        "quick": {},
        # full: the whole corpus, a deeper model with longer context, decoding out to 32k
        "full": {
            "wkv_len": 512,
            "vocab_size": 4096,
            "max_docs": 500,
            "d_model": 128,
            "n_layer": 4,
            "seq_len": 128,
            "batch_size": 16,
            "steps": 500,
            "lr": 2e-3,
            "eval_batches": 40,
            "seeds": 5,
            "decode_lengths": (256, 512, 1024, 2048, 4096, 8192, 16384, 32768),
            "decode_repeats": 9,
        },
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
            id="lm-beats-unigram",
            kind="finding",
            statement="a small RWKV LM trained on the Brown corpus ends well below the unigram cross-entropy",
            source="§5 (language modelling)",
            paper_value="RWKV trains to Transformer-level loss",
            metric="rwkv_below_unigram",
            # 0.5 nats = 40% lower perplexity than knowing token frequencies alone
            rule=AtLeast(0.5),
            unit="nats/token below unigram (held-out)",
        ),
        Claim(
            id="on-par-with-transformer",
            kind="finding",
            statement="at equal width, depth, data and steps RWKV's held-out loss is on par with a Transformer's",
            source="Fig. 1; §5",
            paper_value="performance on par with similarly sized Transformers",
            metric="rwkv_vs_transformer_rel_diff",
            # "On par", two-sided: the paired relative difference of held-out losses within
            # ±5%. The paper gives no seed error bars for its comparison; 5% is the bound this
            # reproduction declared before the conversion (then one-sided, AtMost(1.05) on the
            # loss ratio), and at the paper's resolution (Fig. 1: RWKV's zero-shot average
            # among Pythia, OPT and BLOOM of equal compute) a few percent is "on par".
            rule=Equivalent(0.05),
            unit="(RWKV − Transformer) / Transformer held-out loss",
            gates=(learned_gate("rwkv"), learned_gate("transformer")),
        ),
    ),
    timeout_s=600,  # a hang guard, ~4x the quick preset's CPU time
)
