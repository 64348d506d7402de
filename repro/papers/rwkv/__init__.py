"""RWKV: Reinventing RNNs for the Transformer Era (Peng et al. 2023, arXiv:2305.13048).

RWKV-4 replaces attention by the WKV operator: a per-channel weighted average of past values
whose weights decay exponentially with distance (rate w) plus a bonus u for the current token.
The same numbers come out of a T×T "attention-like" form (training) and of a recurrence that
carries a fixed-size state (inference).

Claims checked:
  * §4.1–4.3: the parallel (training) WKV equals the recurrent (inference) WKV for any
    inputs — float64, keys spread up to ±10³.
  * Appendix (the time-mixing block as an RNN cell): tracking a shared exponent p keeps the
    recurrence finite in float32 where the recurrence written with raw e^k overflows.
  * Table 1: inference state is O(d), constant in sequence length, and time per token is
    constant, while a Transformer's key/value cache and per-token time grow with the
    context (measured side by side, our own small models, CPU).
  * Abstract/§5: a small RWKV LM trains like a Transformer: on the Brown corpus its held-out
    loss falls well below the unigram cross-entropy and is on par with a GPT of the same width
    and depth trained identically. Also checked: the trained LM gives the same logits from the
    parallel, scan and token-by-token paths.

Left out: the paper's scale (169M–14B parameters on the Pile), its zero-shot benchmarks and
its custom CUDA kernel; on a CPU our training path runs the stable recurrence as a loop over
time (what the paper's kernel computes per channel), the T×T form is checked against it.
"""

from dataclasses import dataclass

from repro.claims import AtLeast, AtMost, Claim, IsTrue, Near, Reproduction


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
    steps: int = 120
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
            "decode_lengths": (256, 512, 1024, 2048, 4096, 8192, 16384, 32768),
            "decode_repeats": 9,
        },
    },
    claims=(
        Claim(
            id="parallel-equals-recurrent",
            statement="the WKV operator computed as a T×T weighted sum equals its recurrent form",
            source="§4.2–4.3",
            paper_value="the same model trains in parallel and runs as an RNN",
            metric="wkv_parallel_vs_recurrent_f64",
            # float64 rounding over a few hundred accumulation steps stays below 1e-12
            rule=AtMost(1e-9),
            unit="max |Δ| (float64, keys up to ±10³)",
        ),
        Claim(
            id="stable-recurrence-finite",
            statement="the shared-exponent recurrence stays finite and accurate in float32 for any key spread",
            source="Appendix (time-mixing block as an RNN cell)",
            paper_value="exponent p kept in the state avoids overflow",
            metric="wkv_stable_f32_max_err",
            # exponents reach ~10³ and float32 keeps ~7 digits of them: we ask for 3 correct digits
            rule=AtMost(1e-3),
            unit="max |Δ| vs float64 over all spreads",
        ),
        Claim(
            id="naive-recurrence-overflows",
            statement="the recurrence written with raw e^k overflows where the stable one does not",
            source="Appendix (time-mixing block as an RNN cell)",
            paper_value="e^k overflows without the shared exponent",
            metric="naive_overflows_where_stable_finite",
            rule=IsTrue(),
            unit="naive non-finite while stable finite",
        ),
        Claim(
            id="lm-forms-agree",
            statement="the trained LM gives the same logits in parallel, scan and token-by-token mode",
            source="§4.2–4.3",
            paper_value="Transformer-like training, RNN-like inference of one model",
            metric="lm_forms_max_rel_diff",
            # float32 sums of the same terms in another order: ~1e-6 relative, 1e-4 leaves room
            rule=AtMost(1e-4),
            unit="max |Δlogit| / max |logit|",
        ),
        Claim(
            id="constant-state",
            statement="the state carried between tokens does not grow with the context",
            source="Table 1",
            paper_value="space O(d) (Transformer O(T·d) with a cache)",
            metric="rwkv_state_growth",
            rule=Near(1.0),
            unit="state bytes at longest / shortest context",
        ),
        Claim(
            id="kv-cache-linear",
            statement="the Transformer peer's key/value cache grows linearly with the context",
            source="Table 1",
            paper_value="O(T·d)",
            metric="kv_cache_bytes_slope",
            # linear growth is slope 1 on log-log axes; 0.02 allows the one extra token held
            rule=Near(1.0, atol=0.02),
            unit="log-log slope of cache bytes vs t",
        ),
        Claim(
            id="constant-time-per-token",
            statement="RWKV's decoding time per token does not grow with the context",
            source="Table 1; §4.3",
            paper_value="time per token O(d), constant in T",
            metric="rwkv_time_slope",
            # linear growth would be slope 1; 0.1 allows timing noise on a shared machine
            rule=AtMost(0.1),
            unit="log-log slope of ms/token vs t",
        ),
        Claim(
            id="transformer-time-per-token-grows",
            statement="the Transformer's decoding time per token grows with the context",
            source="Table 1",
            paper_value="time per token O(T·d)",
            metric="transformer_time_growth",
            # over a 32× longer context a linear cost at least doubles even if fixed
            # per-token work is half the time at the shortest context
            rule=AtLeast(2.0),
            unit="ms/token at longest / shortest context",
        ),
        Claim(
            id="lm-beats-unigram",
            statement="a small RWKV LM trained on the Brown corpus ends well below the unigram cross-entropy",
            source="§5 (language modelling)",
            paper_value="RWKV trains to Transformer-level loss",
            metric="rwkv_gain_over_unigram",
            # 0.5 nats = 40% lower perplexity than knowing token frequencies alone
            rule=AtLeast(0.5),
            unit="nats/token below unigram (held-out)",
        ),
        Claim(
            id="on-par-with-transformer",
            statement="at equal width, depth, data and steps RWKV's held-out loss is on par with a Transformer's",
            source="Fig. 1; §5",
            paper_value="performance on par with similarly sized Transformers",
            metric="rwkv_over_transformer_loss",
            # "on par": no more than 5% worse
            rule=AtMost(1.05),
            unit="RWKV / Transformer held-out loss",
        ),
    ),
    timeout_s=180,
)
