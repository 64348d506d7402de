"""Claims, the rules that judge them, and the declaration every reproduction makes.

A reproduction's ``__init__.py`` builds one :class:`Reproduction` and nothing else: no torch,
no work at import time, so that ``repro list`` and ``repro check`` stay fast. The measuring
code lives in the entry point (``"run:main"`` by default), which the runner imports only when
it runs the reproduction.

Two kinds of claim, never added together:

* a **finding** is an empirical result of the paper that the run re-measures by training or
  evaluating models. Its metric is a *sample* (one value per seed, or per paired seed
  difference); the verdict comes from a confidence interval (scipy.stats) judged by the rule:
  ``reproduced`` / ``not reproduced`` / ``inconclusive`` (the interval straddles the limit, a
  validity gate failed, or fewer than 3 seeds) / ``not checked at this scale``.
* a **check** is a property of our own implementation: an identity, agreement with a peer
  library, a count of our own tensors. It is a correctness test: ``pass`` / ``fail``.

Metrics are measurements and verdicts are judgements: results store the metrics, and
:func:`judge` re-derives every verdict from them and the current declaration, so a changed rule
re-judges without re-running (``repro rejudge``).

Rules are data, not lambdas, so that a reader sees the threshold on the card and a change of
threshold shows up in review as a change of the declaration.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


# --------------------------------------------------------------------------- verdicts
class Verdict(StrEnum):
    """The one vocabulary of verdicts: the CLI, the site and the graph all use it."""

    REPRODUCED = "reproduced"
    NOT_REPRODUCED = "not reproduced"
    INCONCLUSIVE = "inconclusive"
    NOT_CHECKED = "not checked at this scale"
    PASS = "pass"
    FAIL = "fail"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def css(self) -> str:
        """A class name for the site (``not-reproduced``, ...)."""
        return self.name.lower().replace("_", "-")

    @property
    def short(self) -> str:
        """A label that fits a narrow column."""
        return {Verdict.NOT_CHECKED: "not checked"}.get(self, self.value)


_SYMBOLS = {
    Verdict.REPRODUCED: "✔",
    Verdict.NOT_REPRODUCED: "✘",
    Verdict.INCONCLUSIVE: "?",
    Verdict.NOT_CHECKED: "–",
    Verdict.PASS: "✔",
    Verdict.FAIL: "✘",
}

FINDING, CHECK = "finding", "check"
KINDS = (FINDING, CHECK)
FINDING_VERDICTS = (
    Verdict.REPRODUCED,
    Verdict.NOT_REPRODUCED,
    Verdict.INCONCLUSIVE,
    Verdict.NOT_CHECKED,
)
CHECK_VERDICTS = (Verdict.PASS, Verdict.FAIL, Verdict.NOT_CHECKED)

# Kept for old imports; new code uses Verdict.
REPRODUCED, NOT_REPRODUCED, NOT_CHECKED = (
    Verdict.REPRODUCED.value,
    Verdict.NOT_REPRODUCED.value,
    Verdict.NOT_CHECKED.value,
)
VERDICTS = tuple(v.value for v in Verdict)

# A finding needs this many independent seeds before it can be decided (DESIGN.md: 3 in the
# quick preset, 5 in the full one); other presets (one-off overrides) use the quick minimum.
MIN_SEEDS = {"quick": 3, "full": 5}
DEFAULT_LEVEL = 0.95


# --------------------------------------------------------------------------- samples
@dataclass(frozen=True)
class Estimate:
    """What a finding's metric became: a point estimate and a confidence interval.

    values: per-seed values (empty when the metric carried its own interval)
    method: how the interval was made ("t-interval", "bootstrap (BCa)", or the run's own)
    """

    estimate: float
    low: float
    high: float
    n: int
    level: float
    method: str
    values: tuple[float, ...] = ()

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


def own_interval(
    estimate: float, low: float, high: float, method: str, level: float = DEFAULT_LEVEL, n: int = 0
) -> dict[str, Any]:
    """A metric that carries its own interval (e.g. a fit's confidence interval).

    The run returns this dict as the metric's value; the framework records it as such and
    judges the interval directly, without the n ≥ 3 seeds rule.
    """
    return {
        "estimate": float(estimate),
        "interval": [float(low), float(high)],
        "level": float(level),
        "method": method,
        "n": int(n),
    }


def _num(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")
    return float(value)


def sample_of(value: Any) -> list[Any] | None:
    """The per-seed values of a metric, or None when it is one value or its own interval."""
    if isinstance(value, Mapping) and "values" in value:
        value = value["values"]
    if isinstance(value, list | tuple):
        return list(value)
    return None


def estimate_of(value: Any, level: float = DEFAULT_LEVEL, method: str = "t") -> Estimate:
    """Turn a finding's metric into an :class:`Estimate` with scipy.stats.

    ``method="t"``: Student-t interval of the mean (right for the small n of seeds);
    ``method="bootstrap"``: BCa bootstrap of the mean (scipy.stats.bootstrap, seeded).
    One value gives n = 1 and no interval.
    """
    if isinstance(value, Mapping) and "interval" in value:
        lo, hi = value["interval"]
        return Estimate(
            estimate=_num(value["estimate"]),
            low=_num(lo),
            high=_num(hi),
            n=int(value.get("n", 0)),
            level=float(value.get("level", level)),
            method=f"own: {value.get('method', 'interval given by the run')}",
        )
    sample = sample_of(value)
    if sample is None:
        x = _num(value)
        return Estimate(x, math.nan, math.nan, 1, level, "single value", (x,))
    # None is "not measured on this seed" (the run says why in its metrics): the interval
    # is over the seeds that were measured, and the method says how many were not.
    missing = sum(v is None for v in sample)
    xs = [_num(v) for v in sample if v is not None]
    n = len(xs)
    if missing:
        est = estimate_of(xs, level, method)
        return dataclasses.replace(est, method=f"{est.method}; {missing} seed(s) not measured")
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, level, "no values")
    mean = math.fsum(xs) / n
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n, level, "single value", tuple(xs))
    if any(not math.isfinite(x) for x in xs):
        return Estimate(mean, math.nan, math.nan, n, level, "non-finite values", tuple(xs))
    spread = max(xs) - min(xs)
    if spread == 0.0:
        # Every seed gave the same value: the interval is that value (scipy would return NaN).
        return Estimate(mean, mean, mean, n, level, "t-interval (all seeds equal)", tuple(xs))
    from scipy import stats

    if method == "bootstrap":
        res = stats.bootstrap(
            (xs,), _mean, confidence_level=level, method="BCa", rng=0, n_resamples=4999
        )
        lo, hi = res.confidence_interval.low, res.confidence_interval.high
        name = "bootstrap (BCa)"
    else:
        lo, hi = stats.t.interval(level, n - 1, loc=mean, scale=stats.sem(xs))
        name = "t-interval"
    return Estimate(mean, float(lo), float(hi), n, level, name, tuple(xs))


def _mean(x, axis=-1):
    import numpy as np

    return np.mean(x, axis=axis)


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """Decides a claim: ``holds`` on one value (checks), ``on_interval`` on an interval
    (findings: True = reproduced, False = not reproduced, None = inconclusive)."""

    def holds(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_interval(self, low: float, high: float) -> bool | None:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class AtMost(Rule):
    limit: float

    def holds(self, value: Any) -> bool:
        return _num(value) <= self.limit

    def on_interval(self, low: float, high: float) -> bool | None:
        if high <= self.limit:
            return True
        if low > self.limit:
            return False
        return None

    def describe(self) -> str:
        return f"≤ {self.limit:g}"


@dataclass(frozen=True)
class AtLeast(Rule):
    limit: float

    def holds(self, value: Any) -> bool:
        return _num(value) >= self.limit

    def on_interval(self, low: float, high: float) -> bool | None:
        if low >= self.limit:
            return True
        if high < self.limit:
            return False
        return None

    def describe(self) -> str:
        return f"≥ {self.limit:g}"


@dataclass(frozen=True)
class Between(Rule):
    low: float
    high: float

    def holds(self, value: Any) -> bool:
        return self.low <= _num(value) <= self.high

    def on_interval(self, low: float, high: float) -> bool | None:
        if self.low <= low and high <= self.high:
            return True
        if high < self.low or low > self.high:
            return False
        return None

    def describe(self) -> str:
        return f"in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Near(Rule):
    """|value - target| ≤ atol + rtol·|target| (for a finding: the whole interval inside)."""

    target: float
    rtol: float = 0.0
    atol: float = 0.0

    @property
    def tol(self) -> float:
        return self.atol + self.rtol * abs(self.target)

    def holds(self, value: Any) -> bool:
        return abs(_num(value) - self.target) <= self.tol

    def on_interval(self, low: float, high: float) -> bool | None:
        return Between(self.target - self.tol, self.target + self.tol).on_interval(low, high)

    def describe(self) -> str:
        parts = []
        if self.rtol:
            parts.append(f"±{self.rtol:.0%}")
        if self.atol:
            parts.append(f"±{self.atol:g}")
        return f"≈ {self.target:g} ({', '.join(parts) or 'exact'})"


@dataclass(frozen=True)
class Equivalent(Rule):
    """ "On par", "matches", "no loss": an equivalence claim with a two-sided margin.

    Reproduced only if the whole confidence interval of the difference lies inside
    ``center ± margin`` (two one-sided tests, each at (1 − level)/2); not reproduced if the
    interval lies wholly outside the margin; otherwise inconclusive. The margin is declared
    before the run and comes from the paper (its error bars or stated effect). This is the only
    rule allowed for an equivalence claim: a one-sided "no worse than" passes large harms.
    """

    margin: float
    center: float = 0.0

    def holds(self, value: Any) -> bool:
        return abs(_num(value) - self.center) <= self.margin

    def on_interval(self, low: float, high: float) -> bool | None:
        lo, hi = self.center - self.margin, self.center + self.margin
        if lo <= low and high <= hi:
            return True
        if high < lo or low > hi:
            return False
        return None

    def describe(self) -> str:
        c = f"{self.center:g} " if self.center else ""
        return f"within {c}± {self.margin:g} (equivalence)"


@dataclass(frozen=True)
class IsTrue(Rule):
    """The metric is a boolean the run computed (e.g. 'every comparison agreed').

    For a finding, one boolean per seed: reproduced if true on every seed, not reproduced if
    false on every seed, inconclusive if the seeds disagree."""

    def holds(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true/false, got {type(value).__name__} {value!r}")
        return value

    def on_interval(self, low: float, high: float) -> bool | None:
        if low >= 1.0:
            return True
        if high <= 0.0:
            return False
        return None

    def describe(self) -> str:
        return "is true"


# --------------------------------------------------------------------------- gates
@dataclass(frozen=True)
class Gate:
    """A validity condition: the comparison means nothing unless it holds.

    name:   shown in the verdict's reason ("learned (transformer)")
    metric: the measured value it looks at (per seed: it must hold on every seed)
    rule:   the condition; ``full`` replaces it for the full preset (stricter margins there)
    """

    name: str
    metric: str
    rule: Rule
    full: Rule | None = None

    def rule_for(self, preset: str) -> Rule:
        return self.full if (preset == "full" and self.full is not None) else self.rule

    def evaluate(self, metrics: Mapping[str, Any], preset: str) -> dict[str, Any]:
        rule = self.rule_for(preset)
        out: dict[str, Any] = {
            "name": self.name,
            "metric": self.metric,
            "rule": rule.describe(),
        }
        value = lookup(metrics, self.metric)
        if value is None:
            out.update(measured=None, holds=None)
            return out
        values = sample_of(value)
        values = values if values is not None else [value]
        try:
            ok = all(
                isinstance(v, int | float) and math.isfinite(float(v)) and rule.holds(v)
                for v in values
            )
        except TypeError:
            ok = False
        out.update(measured=value, holds=ok)
        return out


def learned_gate(arm: str, metric: str | None = None) -> Gate:
    """The *learned* gate for one language-model arm: its held-out loss is below the unigram
    entropy of its tokenizer on that split by 0.5 nats (quick) / 1.0 nats (full).

    The run reports ``<arm>_below_unigram`` = unigram entropy − held-out loss, in nats, per seed
    (``repro.common.unigram_entropy`` computes the entropy)."""
    # 0.5 / 1.0 nats: DESIGN.md; the project's TinyLM at width 64 gets 1.0 below unigram in
    # 300 steps, so an arm short of this margin has not left the unigram plateau.
    return Gate(
        name=f"learned ({arm})",
        metric=metric or f"{arm}_below_unigram",
        rule=AtLeast(0.5),
        full=AtLeast(1.0),
    )


def inside_grid_gate(arm: str, metric: str | None = None) -> Gate:
    """A tuned learning rate (or other hyper-parameter) is not on the edge of its grid.

    The run reports ``<arm>_lr_inside_grid`` = True when the best value is an interior point."""
    return Gate(
        name=f"not on grid edge ({arm})", metric=metric or f"{arm}_lr_inside_grid", rule=IsTrue()
    )


def baseline_gate(name: str, metric: str, rule: Rule) -> Gate:
    """A baseline reaches its own sanity level (e.g. a copy task solved, a loss below a bound)."""
    return Gate(name=f"baseline sane ({name})", metric=metric, rule=rule)


def lookup(metrics: Mapping[str, Any], key: str) -> Any:
    """``metrics[key]``, or a dotted path into nested dicts (``"val_loss.transformer"``)."""
    if key in metrics:
        return metrics[key]
    cur: Any = metrics
    for part in key.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return None
    return cur


# --------------------------------------------------------------------------- claims
@dataclass(frozen=True)
class Claim:
    """One concrete, checkable statement.

    id:          short kebab-case name, unique within the reproduction
    statement:   what the paper claims (finding) or what our code must satisfy (check)
    source:      where in the paper (``"Table 2"``, ``"Fig. 3"``, ``"§3.2.1, footnote 4"``)
    paper_value: the paper's own number or finding, as text (``"2-4x faster"``)
    metric:      key of the measured value in the run's metrics (dotted for nested dicts)
    rule:        decides the verdict
    unit:        shown next to the measured value
    gpu_only:    on a CPU the run cannot measure it; verdict "not checked at this scale"
    kind:        "finding" or "check" (required; see the module docstring)
    gates:       validity gates of a finding; a failed one makes the verdict inconclusive
    level:       confidence level of a finding's interval
    interval:    "t" (Student-t, the default for a few seeds) or "bootstrap"
    verify_rtol: ``repro verify`` re-runs and compares this metric within this relative
                 tolerance; None for values that depend on the machine (wall-clock timings)
    """

    id: str
    statement: str
    source: str
    paper_value: str
    metric: str
    rule: Rule
    unit: str = ""
    gpu_only: bool = False
    kind: str = ""
    gates: tuple[Gate, ...] = ()
    level: float = DEFAULT_LEVEL
    interval: str = "t"
    verify_rtol: float | None = 1e-2

    @property
    def is_finding(self) -> bool:
        return self.kind == FINDING

    def fingerprint(self) -> str:
        """A short hash of what decides the verdict; a stored verdict made under another
        fingerprint is re-judged when loaded."""
        spec = {
            "kind": self.kind,
            "metric": self.metric,
            "rule": repr(self.rule),
            "gates": [repr(g) for g in self.gates],
            "level": self.level,
            "interval": self.interval,
            "gpu_only": self.gpu_only,
            "v": JUDGE_VERSION,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]

    def evaluate(
        self,
        metrics: Mapping[str, Any],
        skipped: Mapping[str, str],
        preset: str = "quick",
    ) -> dict[str, Any]:
        """The claim's row in the results: what was measured and the verdict."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "statement": self.statement,
            "source": self.source,
            "paper_value": self.paper_value,
            "metric": self.metric,
            "rule": self.rule.describe(),
            "unit": self.unit,
            "fingerprint": self.fingerprint(),
        }
        value = lookup(metrics, self.metric)
        if self.id in skipped or value is None:
            out["measured"] = None
            out["verdict"] = Verdict.NOT_CHECKED.value
            out["reason"] = skipped.get(self.id) or f"metric {self.metric!r} was not measured"
            return out
        if self.kind == CHECK:
            return {**out, **self._judge_check(value)}
        return {**out, **self._judge_finding(value, metrics, preset)}

    def _judge_check(self, value: Any) -> dict[str, Any]:
        values = sample_of(value)
        values = values if values is not None else [value]
        out: dict[str, Any] = {"measured": value}
        bad = [v for v in values if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            out.update(verdict=Verdict.FAIL.value, reason=f"measured value is {bad[0]}")
            return out
        try:
            ok = all(self.rule.holds(v) for v in values)
        except TypeError as e:
            out.update(verdict=Verdict.FAIL.value, reason=str(e))
            return out
        out["verdict"] = (Verdict.PASS if ok else Verdict.FAIL).value
        return out

    def _judge_finding(self, value: Any, metrics: Mapping[str, Any], preset: str) -> dict[str, Any]:
        try:
            est = estimate_of(value, self.level, self.interval)
        except TypeError as e:
            return {"measured": value, "verdict": Verdict.INCONCLUSIVE.value, "reason": str(e)}
        out: dict[str, Any] = {
            "measured": est.estimate,
            "values": list(est.values),
            "n": est.n,
            "interval": [est.low, est.high] if est.has_interval else None,
            "level": est.level,
            "method": est.method,
        }
        gates = [g.evaluate(metrics, preset) for g in self.gates]
        if gates:
            out["gates"] = gates

        def verdict(v: Verdict, reason: str | None = None) -> dict[str, Any]:
            out["verdict"] = v.value
            if reason:
                out["reason"] = reason
            return out

        need = MIN_SEEDS.get(preset, MIN_SEEDS["quick"])
        own = est.method.startswith("own:")
        if not own and est.n < need:
            return verdict(
                Verdict.INCONCLUSIVE,
                f"n = {est.n} < {need}: a finding needs {need} seeds in the {preset} preset",
            )
        failed = [g for g in gates if g["holds"] is not True]
        if failed:
            g = failed[0]
            why = "not measured" if g["holds"] is None else f"{g['rule']} does not hold"
            return verdict(Verdict.INCONCLUSIVE, f"gate {g['name']}: {g['metric']} {why}")
        # After the gates: a diverged arm that learned nothing says nothing about the claim.
        if not math.isfinite(est.estimate):
            return verdict(Verdict.NOT_REPRODUCED, f"measured value is {est.estimate}")
        if isinstance(self.rule, IsTrue):
            lo, hi = min(est.values or (est.low,)), max(est.values or (est.high,))
        else:
            lo, hi = est.low, est.high
        decided = self.rule.on_interval(lo, hi)
        if decided is None:
            return verdict(
                Verdict.INCONCLUSIVE,
                f"the {est.level:.0%} interval [{lo:.4g}, {hi:.4g}] straddles the rule "
                f"{self.rule.describe()}",
            )
        return verdict(Verdict.REPRODUCED if decided else Verdict.NOT_REPRODUCED)


# Bumped when the judging logic itself changes, so stored verdicts are re-judged.
JUDGE_VERSION = 3


def judge(
    claims: Sequence[Claim],
    metrics: Mapping[str, Any],
    skipped: Mapping[str, str],
    *,
    preset: str,
    device: str | None,
    status: str,
) -> list[dict[str, Any]]:
    """Every claim's row, from the stored metrics and the current declarations.

    Used when a run ends and again whenever a stored verdict was made under another
    declaration (``repro rejudge``, and at load time)."""
    rows = []
    for claim in claims:
        skip = dict(skipped)
        if claim.gpu_only and not (device or "").startswith("cuda") and claim.id not in skip:
            skip[claim.id] = "needs a GPU; this run was on the CPU"
        row = claim.evaluate(metrics, skip, preset)
        if status != "ok" and row["verdict"] != Verdict.NOT_CHECKED:
            # Values measured before a failure are kept, but a failed run decides nothing.
            row["verdict"] = Verdict.NOT_CHECKED.value
            row["reason"] = f"run {status}; value measured before the failure"
        rows.append(row)
    return rows


def count_verdicts(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """{"finding": {verdict: n}, "check": {verdict: n}}: the two kinds, never summed."""
    out = {
        FINDING: {v.value: 0 for v in FINDING_VERDICTS},
        CHECK: {v.value: 0 for v in CHECK_VERDICTS},
    }
    for r in rows:
        kind = r.get("kind") if r.get("kind") in KINDS else FINDING
        v = r.get("verdict")
        if v in out[kind]:
            out[kind][v] += 1
    return out


def add_counts(total: dict[str, dict[str, int]], counts: Mapping[str, Mapping[str, int]]) -> None:
    """Add one result's counts (``count_verdicts``) into a running total, kind by kind."""
    for kind, by_verdict in counts.items():
        for v, n in by_verdict.items():
            total[kind][v] += n


def summarize_counts(counts: Mapping[str, Mapping[str, int]]) -> str:
    """'12 findings: 5 reproduced, 2 not, 4 inconclusive, 1 not checked · 20 checks pass'."""
    f, c = counts[FINDING], counts[CHECK]
    nf, nc = sum(f.values()), sum(c.values())
    parts = []
    if nf:
        bits = [
            f"{f[Verdict.REPRODUCED]} reproduced",
            f"{f[Verdict.NOT_REPRODUCED]} not",
            f"{f[Verdict.INCONCLUSIVE]} inconclusive",
        ]
        if f[Verdict.NOT_CHECKED]:
            bits.append(f"{f[Verdict.NOT_CHECKED]} not checked")
        parts.append(f"{nf} finding{'s' if nf != 1 else ''}: " + ", ".join(bits))
    else:
        parts.append("no findings")
    if nc:
        bits = [f"{c[Verdict.PASS]} pass"]
        if c[Verdict.FAIL]:
            bits.append(f"{c[Verdict.FAIL]} fail")
        if c[Verdict.NOT_CHECKED]:
            bits.append(f"{c[Verdict.NOT_CHECKED]} not run")
        parts.append(f"{nc} implementation check{'s' if nc != 1 else ''}: " + ", ".join(bits))
    return " · ".join(parts)


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
    entry:     "module:function" inside the folder; called as ``fn(cfg, ctx)``, which measures
               into ``ctx.metrics`` (it may also return a dict of metrics)
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
            if c.kind not in KINDS:
                errs.append(
                    f"claims.{c.id}: kind: {c.kind!r} is not a kind; declare kind='finding' "
                    "(an empirical result of the paper, measured on models) or kind='check' "
                    "(a property of our implementation)"
                )
            if c.kind == CHECK and c.gates:
                errs.append(f"claims.{c.id}: gates: only a finding has validity gates")
            if c.interval not in ("t", "bootstrap"):
                errs.append(f"claims.{c.id}: interval: {c.interval!r}; use 't' or 'bootstrap'")
            if not 0.5 < c.level < 1:
                errs.append(f"claims.{c.id}: level: {c.level} should be in (0.5, 1), e.g. 0.95")
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
