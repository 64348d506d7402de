"""Front matter: split a Markdown file into YAML metadata and body, parse it safely, and know
which line each field is on. No pydantic here, so fast listings (``repro list``) can use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# libyaml's safe loader when present: the same safe subset of YAML, about 10x faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, order=True)
class Problem:
    path: str
    line: int
    field: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        kind = "warning: " if self.warning else ""
        fld = f"{self.field}: " if self.field else ""
        return f"{where}: {kind}{fld}{self.message}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def split_front_matter(text: str) -> tuple[str, str, int] | str:
    """Return (yaml text, body, body start line) or an error message."""
    if not text.startswith("---"):
        return "no front matter: the file must start with a line '---', then YAML, then '---'"
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return "the first line must be exactly '---'"
    for i in range(1, len(lines)):
        if lines[i].rstrip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    return "front matter is not closed: add a line '---' after the metadata"


def _key_lines(yaml_text: str, offset: int) -> dict[str, int]:
    """Map top-level keys (and 'key[i]' for list items) to 1-based file lines."""
    out: dict[str, int] = {}
    try:
        node = yaml.compose(yaml_text, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        return out
    if not isinstance(node, yaml.MappingNode):
        return out
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode):
            out[k.value] = k.start_mark.line + offset
            if isinstance(v, yaml.SequenceNode):
                for i, item in enumerate(v.value):
                    out[f"{k.value}[{i}]"] = item.start_mark.line + offset
    return out


def _yaml_error(e: yaml.YAMLError, offset: int) -> tuple[int, str]:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    line = mark.line + offset if mark is not None else 0
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    msg = f"YAML error: {problem}"
    if context:
        msg += f" ({context})"
    if isinstance(e, yaml.constructor.ConstructorError):
        msg = (
            f"YAML error: {problem}; only plain YAML (strings, numbers, lists, maps) is allowed "
            "in front matter"
        )
    return line, msg


def parse_front(
    text: str, rel: str
) -> tuple[dict[str, Any] | None, str, int, dict[str, int], list[Problem]]:
    """Front matter as a dict, body, body line, key lines, problems. Never raises."""
    split = split_front_matter(text)
    if isinstance(split, str):
        return None, "", 1, {}, [Problem(rel, 1, "", split)]
    ytext, body, body_line = split
    offset = 2  # the YAML starts on file line 2; marks are 0-based
    try:
        data = yaml.load(ytext, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        line, msg = _yaml_error(e, offset)
        return None, body, body_line, {}, [Problem(rel, line, "", msg)]
    except Exception as e:  # noqa: BLE001 - the loader must not crash on any text
        return None, body, body_line, {}, [Problem(rel, 1, "", f"YAML error: {e}")]
    if not isinstance(data, dict):
        got = "nothing" if data is None else type(data).__name__
        return (
            None,
            body,
            body_line,
            {},
            [
                Problem(
                    rel, 2, "", f"front matter must be a mapping of fields (key: value), got {got}"
                )
            ],
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        return (
            None,
            body,
            body_line,
            {},
            [Problem(rel, 2, "", f"field names must be text, got {bad_keys[0]!r}")],
        )
    return data, body, body_line, _key_lines(ytext, offset), []


def load_light(root: Path | None = None) -> tuple[list[dict[str, Any]], int]:
    """Front matter of every card, unvalidated, for fast listings (``repro list``).

    Returns (metadata dicts with at least id/title/year, number of files that did not parse).
    Validation is ``load``'s job; this path skips pydantic to keep ``repro list`` quick.
    """
    from repro.paths import project_root

    root = root or project_root()
    out, bad = [], 0
    for path in sorted((root / "notes" / "papers").glob("*.md")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            bad += 1
            continue
        data, _body, _line, _lines, problems = parse_front(text, path.name)
        if data is None or problems:
            bad += 1
            continue
        title = data.get("title")
        year = data.get("year")
        out.append(
            {
                "id": str(data.get("id", path.stem)),
                "title": str(title or "?"),
                "year": year if isinstance(year, int) else 0,
                "repro": data.get("repro") if isinstance(data.get("repro"), str) else None,
            }
        )
    return out, bad
