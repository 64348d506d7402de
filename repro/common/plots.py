"""Small plotting helpers shared by reproductions (matplotlib is imported by the caller)."""

from __future__ import annotations

from collections.abc import Sequence


def block_means(values: Sequence[float], points: int = 50) -> tuple[list[int], list[float]]:
    """A long per-step curve reduced to about ``points`` means of consecutive blocks.

    Returns (first step of each block, block mean); the last block may be shorter.
    """
    k = max(1, len(values) // points)
    starts = list(range(0, len(values), k))
    return starts, [sum(values[i : i + k]) / len(values[i : i + k]) for i in starts]


def lm_loss_panel(ax, curves: dict[str, Sequence[float]], unigram: float, title: str) -> None:
    """Training-loss curves of language models on one axis, with the unigram entropy marked."""
    for name, losses in curves.items():
        ax.plot(*block_means(losses), label=name)
    ax.axhline(unigram, color="k", ls=":", lw=1, label="unigram cross-entropy")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (nats/token)")
    ax.set_title(title)
    ax.legend(fontsize=8)
