"""Cards quote results, never type them: ``{{ result: ... }}`` references in a card's prose.

A number our runs measured is written in a card as a reference that the site expands from the
results file at build time, so the page always says what the committed results say::

    {{ result: rwkv/quick #on-par }}            the claim's value, interval and n
    {{ result: rwkv/quick #on-par.verdict }}    its verdict (also .value .interval .n .paper)
    {{ result: rwkv/quick @val_loss.rwkv }}     a metric (dotted path into nested values)
    {{ result: rwkv/quick @val_loss.rwkv | .2f }}   ... with a Python format spec

``repro check`` reports every reference to a reproduction, preset, claim or metric that the
committed results do not have, with the card file and what exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from repro.format import fmt_interval, fmt_measured, fmt_number, fmt_value

PATTERN = re.compile(
    r"\{\{\s*result:\s*(?P<rep>[a-z0-9][a-z0-9-]*)/(?P<preset>[a-z0-9_-]+)\s+"
    r"(?P<sigil>[#@])(?P<name>[A-Za-z0-9_.\-]+?)"
    r"(?:\.(?P<field>verdict|value|interval|n|paper|unit))?"
    r"\s*(?:\|\s*(?P<spec>[^}\s]+)\s*)?\}\}"
)
# Anything that looks like a reference but does not parse is an error too.
LOOSE = re.compile(r"\{\{\s*result\b[^}]*\}\}")

FIELDS = ("verdict", "value", "interval", "n", "paper", "unit")


class QuoteError(ValueError):
    pass


@dataclass(frozen=True)
class Ref:
    rep: str
    preset: str
    sigil: str
    name: str
    field: str | None
    spec: str | None
    text: str

    def describe(self) -> str:
        return self.text


def find_refs(text: str) -> tuple[list[Ref], list[str]]:
    """(references, malformed snippets)."""
    refs = []
    good_spans = set()
    for m in PATTERN.finditer(text):
        refs.append(
            Ref(
                m["rep"],
                m["preset"],
                m["sigil"],
                m["name"],
                m["field"],
                m["spec"],
                m.group(0),
            )
        )
        good_spans.add(m.span())
    bad = [m.group(0) for m in LOOSE.finditer(text) if m.span() not in good_spans]
    return refs, bad


def resolve(ref: Ref, results: Callable[[str, str], Mapping[str, Any] | None]) -> str:
    """The text a reference stands for; QuoteError naming what is missing otherwise."""
    from repro.claims import lookup

    res = results(ref.rep, ref.preset)
    if res is None:
        raise QuoteError(f"{ref.text}: no results file results/{ref.rep}/{ref.preset}.json")
    if ref.sigil == "#":
        rows = {c.get("id"): c for c in res.get("claims", [])}
        row = rows.get(ref.name)
        if row is None:
            have = ", ".join(sorted(str(k) for k in rows)) or "none"
            raise QuoteError(
                f"{ref.text}: {ref.rep}/{ref.preset} has no claim {ref.name!r}; claims: {have}"
            )
        return _claim_field(row, ref.field, ref.spec)
    # A metric path may itself end in a word like ".n": for @ references it is part of the path.
    path = f"{ref.name}.{ref.field}" if ref.field else ref.name
    value = lookup(res.get("metrics") or {}, path)
    if value is None:
        have = ", ".join(sorted(res.get("metrics") or {})[:30]) or "none"
        raise QuoteError(
            f"{ref.text}: {ref.rep}/{ref.preset} has no metric {path!r}; metrics: {have}"
        )
    try:
        return fmt_value(value, spec=ref.spec, limit=12)
    except (ValueError, TypeError) as e:
        raise QuoteError(
            f"{ref.text}: format spec {ref.spec!r} does not fit {value!r}: {e}"
        ) from None


def _claim_field(row: Mapping[str, Any], field: str | None, spec: str | None) -> str:
    try:
        if field is None:
            return fmt_measured(row, spec)
        if field == "verdict":
            return str(row.get("verdict"))
        if field == "value":
            v = row.get("measured")
            return "—" if v is None else fmt_number(v, spec)
        if field == "interval":
            return fmt_interval(row, spec) or "(no interval)"
        if field == "n":
            return str(row.get("n", "—"))
        if field == "paper":
            return str(row.get("paper_value", ""))
        return str(row.get("unit", ""))
    except (ValueError, TypeError) as e:
        raise QuoteError(f"format spec {spec!r} does not fit: {e}") from None


def expand(
    text: str, results: Callable[[str, str], Mapping[str, Any] | None]
) -> tuple[str, list[str]]:
    """Replace every reference; returns (text, errors). A failed reference stays visible."""
    errors: list[str] = []
    refs, bad = find_refs(text)
    for b in bad:
        errors.append(
            f"{b}: not a result reference; write {{{{ result: <reproduction>/<preset> #<claim> }}}}"
            " or @<metric>"
        )

    def sub(m: re.Match) -> str:
        ref = Ref(m["rep"], m["preset"], m["sigil"], m["name"], m["field"], m["spec"], m.group(0))
        try:
            return resolve(ref, results)
        except QuoteError as e:
            errors.append(str(e))
            return m.group(0)

    del refs
    return PATTERN.sub(sub, text), errors


def results_loader(base=None) -> Callable[[str, str], Mapping[str, Any] | None]:
    """A cached ``(reproduction, preset) -> results`` reader over the results folder."""
    from repro.results import load_result

    cache: dict[tuple[str, str], Any] = {}

    def get(rep: str, preset: str):
        key = (rep, preset)
        if key not in cache:
            cache[key] = load_result(rep, preset, base)
        return cache[key]

    return get
