"""Mamba-2 / SSD: the quadratic, recurrent and chunked forms agree and the matrices have the
semiseparable ranks the paper says."""

import math

import pytest
import torch

from repro.papers.mamba_2.run import loglog_slope, random_inputs
from repro.papers.mamba_2.ssd import (
    max_lower_rank,
    segsum,
    ssd_chunked,
    ssd_mask,
    ssd_matrix,
    ssd_quadratic,
    ssd_scan,
)


def inputs(seed, T=48, H=2, P=3, N=4, B=2):
    return random_inputs(B, T, H, P, N, torch.Generator().manual_seed(seed))


def test_segsum_matches_products():
    la = -torch.rand(7, dtype=torch.float64)
    s = segsum(la)
    for t in range(7):
        for j in range(7):
            if j > t:
                assert s[t, j] == float("-inf")
            else:
                assert math.isclose(s[t, j].item(), la[j + 1 : t + 1].sum().item(), abs_tol=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_quadratic_equals_scan(seed):
    x, la, b, c = inputs(seed)
    torch.testing.assert_close(ssd_quadratic(x, la, b, c), ssd_scan(x, la, b, c))


@pytest.mark.parametrize("chunk", [1, 4, 16, 48])
def test_chunked_equals_scan_any_chunk(chunk):
    x, la, b, c = inputs(5)
    y, h = ssd_chunked(x, la, b, c, chunk)
    torch.testing.assert_close(y, ssd_scan(x, la, b, c))


def test_chunked_state_continues_a_sequence():
    x, la, b, c = inputs(6)
    whole, h_whole = ssd_chunked(x, la, b, c, 8)
    y1, h1 = ssd_chunked(x[:, :24], la[:, :24], b[:, :24], c[:, :24], 8)
    y2, h2 = ssd_chunked(x[:, 24:], la[:, 24:], b[:, 24:], c[:, 24:], 8, initial_state=h1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), whole)
    torch.testing.assert_close(h2, h_whole)


def test_quadratic_is_a_matrix_times_x():
    x, la, b, c = inputs(7, B=1, H=1)
    m = ssd_matrix(la, b, c)[0, 0]
    torch.testing.assert_close(ssd_quadratic(x, la, b, c)[0, :, 0], m @ x[0, :, 0])
    assert torch.all(m.triu(1) == 0)


def test_semiseparable_ranks():
    x, la, b, c = inputs(8, T=40, B=1, H=1, N=3)
    assert max_lower_rank(ssd_mask(la)[0, 0]) == 1
    assert max_lower_rank(ssd_matrix(la, b, c)[0, 0]) == 3
    # a generic lower-triangular matrix is not low-rank below the diagonal
    g = torch.randn(40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert max_lower_rank(torch.tril(g)) > 10


def test_decay_one_is_unmasked_linear_attention():
    x, la, b, c = inputs(9)
    la = torch.zeros_like(la)  # a_t = 1: no forgetting
    y = ssd_quadratic(x, la, b, c)
    scores = torch.einsum("bthn,bshn->bhts", c, b).tril()
    torch.testing.assert_close(y, torch.einsum("bhts,bshp->bthp", scores, x))


def test_loglog_slope_skips_missing_points():
    x = [256, 512, 1024, 2048]
    assert math.isclose(loglog_slope(x, [v**2 for v in x[:3]] + [None]), 2.0, rel_tol=1e-12)


def test_declaration_is_consistent():
    from repro.papers.mamba_2 import REPRO

    assert REPRO.problems() == []
    assert {c.kind for c in REPRO.claims} == {"check"}
    timing = {c.id for c in REPRO.claims if c.verify_rtol is None}
    assert timing == {"quadratic-form-quadratic-cost", "scan-linear-cost", "chunked-linear-cost"}
