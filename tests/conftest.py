"""Shared fixtures: a throw-away project root with cards, and the fake reproductions."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

TAGS = "attention: a\nefficiency: b\narchitecture: c\n"


def write_card(
    root: Path,
    cid: str,
    *,
    title: str = "A Paper Title",
    year: int = 2020,
    tags: str = "[attention]",
    cites: str = "[]",
    extra: str = "",
    body: str = "Notes.",
    arxiv: str = '"2001.00001"',
) -> Path:
    path = root / "notes" / "papers" / f"{cid}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        textwrap.dedent(f"""\
        ---
        id: {cid}
        title: "{title}"
        authors: [Ada Lovelace]
        year: {year}
        arxiv: {arxiv}
        tags: {tags}
        cites: {cites}
        """)
        + extra
        + "---\n"
        + body
        + "\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def kb_root(tmp_path: Path) -> Path:
    """A minimal project: tags vocabulary and two good cards."""
    (tmp_path / "notes" / "papers").mkdir(parents=True)
    (tmp_path / "notes" / "tags.yml").write_text(TAGS, encoding="utf-8")
    write_card(tmp_path, "transformer", year=2017)
    write_card(tmp_path, "bert", year=2018, cites="[transformer]")
    return tmp_path


@pytest.fixture
def fake_repros(kb_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Register tests/fakepapers and point the runner at a throw-away root."""
    from repro import registry

    for name in ("fake-good", "fake-crash", "fake-hang", "fake-nan-metrics"):
        write_card(kb_root, name, year=2021, extra=f"repro: {name}\n")
    monkeypatch.setenv("REPRO_PAPERS", "fakepapers")
    monkeypatch.setenv("REPRO_ROOT", str(kb_root))
    monkeypatch.delenv("REPRO_RESULTS", raising=False)
    monkeypatch.delenv("REPRO_RUNS", raising=False)
    monkeypatch.delenv("REPRO_RUN_DIR", raising=False)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    registry.discover.cache_clear()
    yield kb_root
    registry.discover.cache_clear()
