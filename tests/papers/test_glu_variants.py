"""GLU variants: the rank statistics, the published tables and the planted-effect summary."""

import itertools
import math

import pytest
import torch

from repro.common.tinylm import LMConfig, TinyLM
from repro.papers.glu_variants import RHO_CRIT_N8
from repro.papers.glu_variants.run import (
    GATED,
    TABLE1_65K,
    ranks,
    spearman,
    summarise,
    transfer_table,
)


def test_ranks_share_ties():
    assert ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # d = (0, 0, 1, -1): ρ = 1 − 6·2 / (4·15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)


def test_critical_value_is_the_one_sided_5_percent_point():
    """Over all 8! orderings, ρ ≥ 9/14 happens at most 5% of the time, and the next lower
    attainable ρ would exceed 5%."""
    base = list(range(8))
    rhos = [
        1 - 6 * sum((a - b) ** 2 for a, b in zip(base, p)) / (8 * 63)
        for p in itertools.permutations(base)
    ]
    n = len(rhos)
    assert sum(r >= RHO_CRIT_N8 - 1e-12 for r in rhos) / n <= 0.05
    below = max(r for r in rhos if r < RHO_CRIT_N8 - 1e-12)
    assert sum(r >= below for r in rhos) / n > 0.05


def test_transfer_table_rows():
    tab = transfer_table()
    assert set(tab) == set(TABLE1_65K)
    assert tab["swiglu"] == pytest.approx(1.788)
    assert tab["relu"] == pytest.approx(1.838)


def test_summary_finds_a_planted_gated_advantage():
    """Losses that copy Table 1 (scaled up) plus small seed noise: every claim holds, per seed."""
    losses = {k: [v * 2 + 0.002, v * 2 - 0.002, v * 2] for k, v in TABLE1_65K.items()}
    s = summarise(losses)
    assert s["best_gated"] == "geglu" and s["best_plain"] == "gelu"
    assert s["gated_margin"] == pytest.approx([(1.983 - 1.942) * 2] * 3)
    assert s["geglu_swiglu_margin"] == pytest.approx([(1.997 - 1.944) * 2] * 3)
    assert s["spearman_table1"] == pytest.approx([1.0] * 3)
    assert all(r > RHO_CRIT_N8 for r in s["spearman_transfer_table"])


def test_summary_reports_a_reversed_ordering():
    losses = {k: [-v, -v + 0.01] for k, v in TABLE1_65K.items()}
    s = summarise(losses)
    assert all(m < 0 for m in s["gated_margin"])
    assert s["spearman_table1"] == pytest.approx([-1.0, -1.0])


def test_every_finding_is_gated_on_the_kinds_it_compares():
    from repro.papers.glu_variants import REPRO

    assert not REPRO.problems()
    for c in REPRO.claims:
        assert c.kind == "finding" and c.gates
        assert all(g.metric.endswith("_below_unigram") for g in c.gates)


@pytest.mark.parametrize("d", [32, 64, 96])
def test_gated_and_plain_ffns_have_equal_parameters(d):
    counts = {}
    for ffn in TABLE1_65K:
        m = TinyLM(
            LMConfig(vocab_size=16, seq_len=4, d_model=d, n_layer=1, n_head=2, ffn=ffn, bias=False)
        )
        counts[ffn] = sum(p.numel() for p in m.blocks[0].mlp.parameters())
    plain = counts["relu"]
    for ffn in GATED:
        assert math.isclose(counts[ffn], plain, rel_tol=0.01)


def test_gated_ffn_computes_the_gated_product():
    """FFN_GEGLU(x) = (GELU(xW) ⊙ xV) W₂ (Shazeer eq. 6)."""
    torch.manual_seed(0)
    m = TinyLM(
        LMConfig(vocab_size=16, seq_len=4, d_model=12, n_layer=1, n_head=2, ffn="geglu", bias=False)
    )
    ffn = m.blocks[0].mlp
    x = torch.randn(3, 12)
    w, v = ffn.w_in.weight.chunk(2, dim=0)
    expected = (torch.nn.functional.gelu(x @ w.T) * (x @ v.T)) @ ffn.w_out.weight.T
    torch.testing.assert_close(ffn(x), expected)
