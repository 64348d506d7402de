"""Attention Is All You Need (Vaswani et al. 2017, arXiv:1706.03762).

Claims checked:
  * §3.2.1, footnote 4: for q, k with independent zero-mean unit-variance components, q·k has
    variance d_k; dividing by √d_k brings it back to 1, and without it the softmax saturates
    (its largest probability goes to 1) as d_k grows.
  * §3.5: with sinusoidal encodings, PE(pos + k) is a linear function of PE(pos) for every
    fixed offset k (a rotation per frequency pair), measured as a least-squares residual.

Left out here: the translation results (BLEU on WMT'14) need days of GPU time.
"""

from dataclasses import dataclass

from repro.claims import AtLeast, AtMost, Claim, Reproduction


@dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)  # d_k values to measure
    samples: int = 20000        # q, k pairs per d_k for the variance estimate
    seq_len: int = 64           # keys per softmax for the saturation measurement
    softmax_rows: int = 2000    # softmax rows per d_k
    d_model: int = 512          # width of the positional encoding
    positions: int = 2048       # positions used to fit PE(pos + k) from PE(pos)
    offsets: tuple[int, ...] = (1, 2, 5, 17, 100, 500)


REPRO = Reproduction(
    id="attention-is-all-you-need",
    papers=("attention-is-all-you-need",),
    title="Scaled dot products and sinusoidal positions",
    config=Config,
    presets={
        "quick": {},
        "full": {"samples": 200000, "softmax_rows": 20000, "positions": 8192,
                 "offsets": (1, 2, 3, 5, 8, 17, 64, 100, 500, 1000)},
    },
    claims=(
        Claim(
            id="dot-product-variance",
            statement="q·k has variance d_k for unit-variance components, so q·k/√d_k has variance 1",
            source="§3.2.1, footnote 4",
            paper_value="Var(q·k) = d_k",
            metric="max_rel_err_var",
            rule=AtMost(0.05),
            unit="max |Var/d_k − 1|",
        ),
        Claim(
            id="softmax-saturation",
            statement="unscaled logits push the softmax into saturation as d_k grows; scaled ones do not",
            source="§3.2.1",
            paper_value="small gradients from saturated softmax for large d_k",
            metric="saturation_gap_at_max_dk",
            rule=AtLeast(0.3),
            unit="mean max-prob (unscaled − scaled) at largest d_k",
        ),
        Claim(
            id="relative-position-linear",
            statement="PE(pos+k) is a linear function of PE(pos) for any fixed k",
            source="§3.5",
            paper_value="PE(pos+k) = M_k · PE(pos)",
            metric="max_relative_residual",
            rule=AtMost(1e-6),
            unit="max ‖residual‖/‖target‖ over k",
        ),
    ),
    timeout_s=120,
)
