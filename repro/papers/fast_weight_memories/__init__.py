"""Fast-weight memories are linear attention.

Papers:
  * Schmidhuber, "Learning to control fast-weight memories: an alternative to dynamic
    recurrent networks", Neural Computation 4(1), 1992 (technical report 1991): a slow net
    writes outer products of its outputs into the weight matrix of a fast net.
  * Schlag, Irie & Schmidhuber, "Linear Transformers Are Secretly Fast Weight Programmers",
    ICML 2021, https://arxiv.org/abs/2102.11174: unnormalised causal linear attention is
    exactly that fast-weight programmer.

All four claims are implementation checks (pass/fail), no findings: two code paths of ours
agreeing (an algebraic identity) and byte counts of the tensors our decoders hold. Nothing is
trained, so no seeds. The papers' empirical results (language modelling and retrieval with
linear and delta-rule fast-weight Transformers) are not re-measured here; see "Left out".

  * check, Schlag et al. §2: the sequential update W_t = W_{t-1} + v_t φ(k_t)ᵀ, read out as
    y_t = W_t φ(q_t), gives the same outputs as causal linear attention computed in parallel,
    Y = (tril(φ(Q) φ(K)ᵀ)) V, for any inputs. Checked in float64 and float32 for three
    feature maps (ELU+1 of Katharopoulos et al. 2020, DPFP-1 and DPFP-2 of Schlag et al.),
    with and without the normalising denominator z_t = Σ φ(k_τ), for random inputs of
    several scales and tails, and lengths from 1 to 1024.
  * check, Schlag et al. §2 (and Katharopoulos et al. 2020 §3.4): the recurrent form carries a state
    of fixed size (W and z) from step to step, while softmax attention must keep every past
    key and value. Measured as the bytes of the tensors each decoder actually holds between
    steps during autoregressive decoding.

Left out: the delta-rule update and the language-modelling and retrieval experiments of
Schlag et al. (they need training runs far beyond a CPU minute); the 1991 paper's own
gradient-based training of the slow net.
"""

from dataclasses import dataclass

from repro.claims import AtMost, Claim, Near, Reproduction


@dataclass(frozen=True)
class Config:
    batch: int = 2  # sequences per trial
    heads: int = 2  # independent heads per sequence
    d_key: int = 16  # key/query width before the feature map
    d_value: int = 16  # value width
    lengths: tuple[int, ...] = (1, 2, 7, 64, 256, 1024)  # sequence lengths for the equivalence
    feature_maps: tuple[str, ...] = ("elu1", "dpfp1", "dpfp2")  # φ to check
    input_scales: tuple[float, ...] = (0.1, 1.0, 10.0)  # std of q, k, v; 10 stresses rounding
    heavy_tails: bool = True  # also draw Student-t (3 dof) inputs
    decode_lengths: tuple[int, ...] = (16, 64, 256, 1024, 4096)  # where decoder state is read
    d_model: int = 64  # width of the decoders whose state is measured


REPRO = Reproduction(
    id="fast-weight-memories",
    papers=("fast-weight-memories", "linear-transformers-fast-weights"),
    title="Fast-weight updates are causal linear attention",
    config=Config,
    presets={
        # Every combination above takes ~10 s on one thread.
        "quick": {},
        # Longer sequences, more heads and wider ones, a longer decode (~2 min on one thread;
        # the parallel form's T×T float64 matrix at T=2048 is what bounds the batch).
        "full": {
            "batch": 2,
            "heads": 4,
            "d_key": 32,
            "d_value": 32,
            "lengths": (1, 2, 7, 64, 256, 1024, 2048),
            "decode_lengths": (16, 64, 256, 1024, 4096, 8192),
            "d_model": 128,
        },
    },
    claims=(
        Claim(
            id="recurrent-equals-parallel-fp64",
            statement="our fast-weight recurrence W_t = W_{t-1} + v_t φ(k_t)ᵀ, y_t = W_t φ(q_t) "
            "and our causal linear attention computed in parallel give the same outputs "
            "(float64)",
            source="Schlag et al. 2021, §2",
            paper_value="identical (algebraic identity)",
            metric="max_rel_err_fp64",
            # float64 rounding (1.1e-16) accumulated over ≤ 4096 terms stays below 1e-12;
            # 1e-10 leaves margin while being 6 orders under any real difference.
            rule=AtMost(1e-10),
            unit="max ‖y_rec − y_par‖/‖y_par‖ (float64)",
            kind="check",
        ),
        Claim(
            id="recurrent-equals-parallel-fp32",
            statement="our two forms agree to float32 tolerance",
            source="Schlag et al. 2021, §2",
            paper_value="identical (algebraic identity)",
            metric="max_rel_err_fp32",
            # float32 unit roundoff 6e-8 times the longest sum (1024-4096 terms) is ≤ 2.5e-4
            # in the worst case; typical error grows like √T, so 1e-4 is float tolerance.
            rule=AtMost(1e-4),
            unit="max ‖y_rec − y_par‖/‖y_par‖ (float32)",
            kind="check",
        ),
        Claim(
            id="recurrent-state-constant",
            statement="our fast-weight decoder holds the same state bytes at every decode length",
            source="Schlag et al. 2021, §2; Katharopoulos et al. 2020, §3.4",
            paper_value="O(1) memory per step",
            metric="fast_weight_state_growth",
            # constant means exactly the same bytes at every length
            rule=AtMost(1.0),
            unit="state bytes at longest / shortest decode length",
            kind="check",
        ),
        Claim(
            id="kv-cache-grows-linearly",
            statement="our softmax-attention decoder's key/value state grows linearly with the "
            "decode length",
            source="Schlag et al. 2021, §2; Katharopoulos et al. 2020, §3.4",
            paper_value="O(T) memory",
            metric="kv_state_loglog_slope",
            # linear growth is slope 1 on log-log axes; 0.05 allows a constant offset
            rule=Near(1.0, atol=0.05),
            unit="slope of log(state bytes) vs log(length)",
            kind="check",
        ),
    ),
    timeout_s=120,
)
