"""Shared helpers in repro.common that several reproductions lean on."""

from __future__ import annotations

import pytest

from repro.common.plots import block_means


def test_block_means_reduces_a_curve_to_block_averages():
    steps, means = block_means([float(i) for i in range(100)], points=10)
    assert steps == list(range(0, 100, 10))
    assert means == pytest.approx([4.5 + 10 * j for j in range(10)])
    # a ragged tail is averaged over what is there; short curves are kept as they are
    steps, means = block_means([1.0, 2.0, 3.0, 4.0, 5.0], points=2)
    assert steps == [0, 2, 4] and means == [1.5, 3.5, 5.0]
    assert block_means([7.0, 8.0], points=50) == ([0, 1], [7.0, 8.0])


def test_lm_config_like_reads_only_the_shape_fields():
    from dataclasses import dataclass

    from repro.common.tinylm import LMConfig

    @dataclass(frozen=True)
    class Cfg:
        vocab_size: int = 300
        seq_len: int = 16
        d_model: int = 24
        n_layer: int = 3
        n_head: int = 2
        ffn: tuple[str, ...] = ("relu", "gelu")  # same name, another meaning: not read

    c = LMConfig.like(Cfg(), bias=False)
    assert (c.vocab_size, c.seq_len, c.d_model, c.n_layer, c.n_head) == (300, 16, 24, 3, 2)
    assert c.ffn == LMConfig().ffn and c.bias is False
    assert LMConfig.like(Cfg(), d_model=48, n_head=3).d_model == 48  # overrides win
