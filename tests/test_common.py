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
