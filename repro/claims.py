"""Claims, the rules that decide them, and the declaration every reproduction makes.

A reproduction's ``__init__.py`` builds one :class:`Reproduction` and nothing else: no torch,
no work at import time, so that ``repro list`` and ``repro check`` stay fast. The measuring
code lives in the entry point (``"run:main"`` by default), which the runner imports only when
it runs the reproduction.

The verdict of a claim is decided by its :class:`Rule` applied to one measured metric:

* ``reproduced``       the metric was measured and the rule holds;
* ``not reproduced``   the metric was measured and the rule does not hold;
* ``not checked at this scale``  the run did not measure it (no GPU, quick preset, ...), with
  the reason the run gave.

Rules are data, not lambdas, so that a reader sees the threshold on the card and a change of
threshold shows up in review.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_CHECKED = "not checked at this scale"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_CHECKED)


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """Decides whether a measured value supports the claim."""

    def holds(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _num(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")
    return float(value)


@dataclass(frozen=True)
class AtMost(Rule):
    limit: float

    def holds(self, value: Any) -> bool:
        return _num(value) <= self.limit

    def describe(self) -> str:
        return f"≤ {self.limit:g}"


@dataclass(frozen=True)
class AtLeast(Rule):
    limit: float

    def holds(self, value: Any) -> bool:
        return _num(value) >= self.limit

    def describe(self) -> str:
        return f"≥ {self.limit:g}"


@dataclass(frozen=True)
class Between(Rule):
    low: float
    high: float

    def holds(self, value: Any) -> bool:
        return self.low <= _num(value) <= self.high

    def describe(self) -> str:
        return f"in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Near(Rule):
    """|value - target| ≤ atol + rtol·|target|."""

    target: float
    rtol: float = 0.0
    atol: float = 0.0

    def holds(self, value: Any) -> bool:
        return abs(_num(value) - self.target) <= self.atol + self.rtol * abs(self.target)

    def describe(self) -> str:
        parts = []
        if self.rtol:
            parts.append(f"±{self.rtol:.0%}")
        if self.atol:
            parts.append(f"±{self.atol:g}")
        return f"≈ {self.target:g} ({', '.join(parts) or 'exact'})"


@dataclass(frozen=True)
class IsTrue(Rule):
    """The metric is a boolean that the run computed (e.g. 'every comparison agreed')."""

    def holds(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true/false, got {type(value).__name__} {value!r}")
        return value

    def describe(self) -> str:
        return "is true"


# --------------------------------------------------------------------------- claims
@dataclass(frozen=True)
class Claim:
    """One concrete, checkable statement of the paper.

    id:          short kebab-case name, unique within the reproduction
    statement:   what the paper claims, in our words
    source:      where in the paper (``"Table 2"``, ``"Fig. 3"``, ``"§3.2.1, footnote 4"``)
    paper_value: the paper's own number or finding, as text (``"2-4x faster"``)
    metric:      key of the measured value in the dict the run returns
    rule:        decides the verdict from that value
    unit:        shown next to the measured value
    gpu_only:    on a CPU the run cannot measure it; verdict "not checked at this scale"
    """

    id: str
    statement: str
    source: str
    paper_value: str
    metric: str
    rule: Rule
    unit: str = ""
    gpu_only: bool = False

    def evaluate(self, metrics: Mapping[str, Any], skipped: Mapping[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "statement": self.statement,
            "source": self.source,
            "paper_value": self.paper_value,
            "metric": self.metric,
            "rule": self.rule.describe(),
            "unit": self.unit,
        }
        if self.id in skipped or self.metric not in metrics or metrics[self.metric] is None:
            out["measured"] = None
            out["verdict"] = NOT_CHECKED
            out["reason"] = skipped.get(self.id) or f"metric {self.metric!r} was not measured"
            return out
        value = metrics[self.metric]
        out["measured"] = value
        if isinstance(value, float) and not math.isfinite(value):
            out["verdict"] = NOT_REPRODUCED
            out["reason"] = f"measured value is {value}"
            return out
        out["verdict"] = REPRODUCED if self.rule.holds(value) else NOT_REPRODUCED
        return out


# --------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Reproduction:
    """What a reproduction folder declares in its ``__init__.py`` as ``REPRO``.

    id:        the reproduction's name on the command line (kebab-case; usually the card id)
    papers:    card ids this reproduction checks (the first is the main one)
    title:     one line for tables
    claims:    the claims, in the order a reader should see them
    config:    a frozen dataclass type; its defaults are the smallest sensible run
    presets:   name -> overrides of ``config``; must contain "quick" (CI) and "full"
    entry:     "module:function" inside the folder; called as ``fn(cfg, ctx) -> dict``
    bench:     optional "module:function" for ``repro bench``
    timeout_s: how long ``repro all`` lets the quick preset run before calling it hung
    """

    id: str
    papers: tuple[str, ...]
    title: str
    claims: tuple[Claim, ...]
    config: type
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    entry: str = "run:main"
    bench: str | None = None
    timeout_s: float = 300.0
    module: str = ""  # filled in by the registry: the dotted package name

    def problems(self) -> list[str]:
        """Everything wrong with the declaration, one message each (used by ``repro check``)."""
        errs: list[str] = []
        if not dataclasses.is_dataclass(self.config):
            errs.append("config: must be a dataclass type")
            return errs
        names = {f.name for f in dataclasses.fields(self.config)}
        for preset in ("quick", "full"):
            if preset not in self.presets:
                errs.append(f"presets: missing {preset!r} (every reproduction has quick and full)")
        for pname, overrides in self.presets.items():
            for key in overrides:
                if key not in names:
                    errs.append(
                        f"presets.{pname}: {key!r} is not a config field; fields: {sorted(names)}"
                    )
        seen: set[str] = set()
        for c in self.claims:
            if c.id in seen:
                errs.append(f"claims: duplicate claim id {c.id!r}")
            seen.add(c.id)
            if not isinstance(c.rule, Rule):
                errs.append(f"claims.{c.id}: rule must be a Rule (AtMost, AtLeast, ...)")
        if not self.claims:
            errs.append("claims: a reproduction declares at least one claim")
        if ":" not in self.entry:
            errs.append(f"entry: {self.entry!r} should look like 'run:main'")
        return errs

    def make_config(self, preset: str, overrides: Mapping[str, str] | None = None) -> Any:
        """Build the config for a preset plus ``--key=value`` overrides (strings, type-checked)."""
        from repro.config import build_config

        if preset not in self.presets:
            raise ValueError(
                f"unknown preset {preset!r}; choose one of {', '.join(sorted(self.presets))}"
            )
        return build_config(self.config, dict(self.presets[preset]), overrides or {})
