"""Longformer / BigBird: the blockwise sparse attention equals dense masked attention for
every pattern, and the masks are the patterns the papers describe."""

import pytest
import torch

from repro.common.memory import peak_bytes
from repro.papers.longformer.run import loglog_slope
from repro.papers.longformer.sparse import (
    Pattern,
    dense_masked_attention,
    pattern_mask,
    random_block_choice,
    sparse_attention,
)

PATTERNS = [
    Pattern(8, 4),
    Pattern(8, 8),
    Pattern(8, 3, dilation=3),
    Pattern(8, 4, globals_=(0, 1)),
    Pattern(8, 4, globals_=(0, 9, 63), random_blocks=2, seed=1),
    Pattern(4, 2, dilation=2, globals_=(5,), random_blocks=3, seed=2),
]


@pytest.mark.parametrize("p", PATTERNS)
def test_sparse_equals_dense_masked(p):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 64, 5, generator=g, dtype=torch.float64) for _ in range(3))
    ref = dense_masked_attention(q, k, v, pattern_mask(64, p))
    torch.testing.assert_close(sparse_attention(q, k, v, p), ref, rtol=1e-12, atol=1e-12)


def test_window_mask_is_a_band():
    m = pattern_mask(32, Pattern(8, 3))
    i, j = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    assert torch.equal(m, (i - j).abs() <= 3)


def test_dilated_mask_has_gaps():
    m = pattern_mask(32, Pattern(8, 2, dilation=3))
    assert m[10, 13] and m[10, 16] and m[10, 4] and not m[10, 11] and not m[10, 19]


def test_global_rows_and_columns_are_full():
    m = pattern_mask(32, Pattern(8, 1, globals_=(0, 7)))
    assert m[:, 0].all() and m[0, :].all() and m[:, 7].all() and m[7, :].all()
    assert not m[20, 3]


def test_random_blocks_avoid_the_window_and_repeat_nothing():
    p = Pattern(4, 4, random_blocks=3, seed=5)
    r = random_block_choice(p, 20)
    for i, row in enumerate(r.tolist()):
        assert len(set(row)) == 3
        assert all(abs(j - i) > p.span for j in row)
    m = pattern_mask(80, p)
    assert m.view(20, 4, 20, 4).all(dim=(1, 3)).sum(-1).ge(3).all()  # ≥ r whole blocks per row


def test_changing_a_key_outside_the_pattern_changes_nothing():
    p = Pattern(8, 4, globals_=(0,))
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(1, 1, 64, 4, generator=g, dtype=torch.float64) for _ in range(3))
    y = sparse_attention(q, k, v, p)
    k2, v2 = k.clone(), v.clone()
    k2[..., 40, :] += 5
    v2[..., 40, :] += 5
    y2 = sparse_attention(q, k2, v2, p)
    changed = (y2 - y).abs().amax(-1)[0, 0] > 0
    assert torch.equal(changed, pattern_mask(64, p)[:, 40])


def test_sparse_memory_does_not_hold_an_n_by_n_matrix():
    p = Pattern(16, 16, globals_=(0,), random_blocks=1)
    peaks = []
    for n in (1024, 2048):
        q, k, v = (torch.randn(1, 1, n, 8) for _ in range(3))
        peaks.append(peak_bytes(sparse_attention, q, k, v, p))
        assert peaks[-1] < peak_bytes(dense_masked_attention, q, k, v, pattern_mask(n, p)) / 2
    assert 1.8 < peaks[1] / peaks[0] < 2.2  # twice the length, twice the memory


def test_loglog_slope_from():
    assert abs(loglog_slope([1, 2, 4, 8], [5, 5, 10, 20], from_x=2) - 1.0) < 1e-12


def test_declaration_is_consistent():
    from repro.papers.longformer import REPRO

    assert REPRO.problems() == []
    # every claim tests our own code: all checks, no findings
    assert {c.kind for c in REPRO.claims} == {"check"}
    timing = {c.id for c in REPRO.claims if c.verify_rtol is None}
    assert timing == {"sparse-time-linear"}
