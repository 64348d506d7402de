"""What the MkDocs hook renders: card headers, claim tables, citation links, result figures.

``hooks/repro_hook.py`` only forwards MkDocs events here. The knowledge base is loaded and
validated once per build; a card with problems fails the build (``strict``) with the same
one-line messages ``repro check`` prints. Everything taken from card metadata or results files
is HTML-escaped before it reaches the page.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.plugins.repro")

_STATE: dict[str, Any] = {}


class SiteError(Exception):
    pass


# --------------------------------------------------------------------------- loading
def load_state(root: Path) -> dict[str, Any]:
    from repro import cards
    from repro.registry import discover
    from repro.results import best_result, latest_results

    reps, rep_problems = discover()
    kb = cards.load(root, registered=list(reps))
    problems = [str(p) for p in kb.errors] + list(rep_problems)
    if problems:
        raise SiteError("the cards have problems (run `repro check`):\n  " + "\n  ".join(problems))
    results_base = root / "results"
    by_card: dict[str, Any] = {}
    warnings: list[str] = []
    for rep in reps.values():
        res, warns = latest_results(rep.id, results_base)
        warnings += warns
        for pid in rep.papers:
            by_card.setdefault(pid, (rep, res, best_result(res)))
    for card in kb.cards.values():
        if card.meta.repro and card.id not in by_card and card.meta.repro in reps:
            rep = reps[card.meta.repro]
            res, _ = latest_results(rep.id, results_base)
            by_card[card.id] = (rep, res, best_result(res))
    cited_by: dict[str, list[str]] = {cid: [] for cid in kb.cards}
    for card in kb.cards.values():
        for target in card.meta.cites:
            if target in cited_by:
                cited_by[target].append(card.id)
    for w in warnings:
        log.warning(w)
    return {
        "root": root,
        "kb": kb,
        "reps": reps,
        "by_card": by_card,
        "cited_by": cited_by,
        "results_base": results_base,
        "warnings": warnings,
    }


def state() -> dict[str, Any]:
    if not _STATE:
        raise SiteError("repro.site used before on_config")
    return _STATE


# --------------------------------------------------------------------------- helpers
def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def md_cell(x: Any) -> str:
    """Text for a Markdown table cell: HTML-escaped, pipes and newlines neutralised."""
    return esc(x).replace("|", "&#124;").replace("\n", " ")


def bibtex(card) -> str:
    """One card's BibTeX entry (pybtex, LaTeX-escaped; see repro.bib)."""
    from repro.bib import to_bibtex

    return to_bibtex([card.meta]).strip()


def _squash(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def verdict_html(v: str) -> str:
    from repro.claims import Verdict

    try:
        verdict = Verdict(v)
    except ValueError:
        return f'<span class="verdict verdict-unknown">? {esc(v)}</span>'
    return (
        f'<span class="verdict verdict-{verdict.css}">{verdict.symbol} {esc(verdict.value)}</span>'
    )


def badge_html(card_id: str) -> str:
    """A compact verdict badge for lists of cards: '✔ 2 ✘ 1 ? 3' (findings) and 'checks 4/4';
    '' for a card without a reproduction. The full sentence is in the tooltip."""
    from repro.claims import CHECK, FINDING, FINDING_VERDICTS, Verdict, summarize_counts
    from repro.results import verdict_counts

    entry = state()["by_card"].get(card_id)
    if entry is None:
        return ""
    best = entry[2]
    if best is None:
        return '<span class="vbadge vbadge-none" title="reproduction not run yet">not run</span>'
    counts = verdict_counts(best)
    f, c = counts[FINDING], counts[CHECK]
    bits = [
        f'<span class="verdict-{v.css}">{v.symbol}{f[v]}</span>' for v in FINDING_VERDICTS if f[v]
    ]
    if sum(c.values()):
        bits.append(
            f'<span class="vbadge-checks">checks {c[Verdict.PASS]}/{sum(c.values())}</span>'
        )
    title = summarize_counts(counts) + f" (preset {best.get('preset')})"
    return f'<span class="vbadge" title="{esc(title)}">' + " ".join(bits) + "</span>"


_CARD_LINK = re.compile(r'(<a href="(?:\.\./)*papers/([a-z0-9-]+)/"[^>]*>.*?</a>)', re.S)


def add_badges(html_text: str) -> str:
    """A verdict badge after each link to a card (collection, roundup and tags pages)."""
    cards = state()["kb"].cards

    def one(m: re.Match) -> str:
        badge = badge_html(m.group(2)) if m.group(2) in cards else ""
        return m.group(1) + (" " + badge if badge else "")

    return _CARD_LINK.sub(one, html_text)


def counts_html(result: dict | None) -> str:
    """'findings ✔ 2 ✘ 1 ? 3 – 0 · checks 5/5 pass' for one result (kinds never summed)."""
    from repro.claims import summarize_counts
    from repro.results import verdict_counts

    return esc(summarize_counts(verdict_counts(result)))


# --------------------------------------------------------------------------- card page
def card_header(card) -> str:
    m = card.meta
    title = esc(m.title)
    if m.short and _squash(m.short) not in _squash(m.title):
        # The name readers search for ("Chinchilla", "GPT-1") when the title lacks it.
        title += f' <span class="card-short">({esc(m.short)})</span>'
    parts = [f"# {title}", ""]
    if m.tldr:
        parts += [f'<p class="card-tldr">{esc(m.tldr)}</p>', ""]
    meta_bits = [esc(", ".join(m.authors)), esc(str(m.year))]
    if m.venue:
        meta_bits.append(esc(m.venue))
    line = " · ".join(meta_bits)
    if m.arxiv:
        line += f' · <a href="https://arxiv.org/abs/{esc(m.arxiv)}">arXiv:{esc(m.arxiv)}</a>'
    elif m.url:
        line += f' · <a href="{esc(m.url)}">paper</a>'
    parts.append(f'<p class="card-meta">{line}</p>')
    parts.append("")
    parts.append('??? quote "BibTeX"')
    parts.append("")
    parts.append("    ```bibtex")
    for bl in bibtex(card).splitlines():
        parts.append(f"    {bl}")
    parts.append("    ```")
    parts.append("")
    return "\n".join(parts)


GLOSSARY = {
    "finding": "a result of the paper, re-measured over several seeds and judged on a 95% "
    "confidence interval",
    "check": "an implementation check: a property of our own code (a test), not a reproduction",
    "quick": "preset quick: small models and at least 3 seeds, minutes on a laptop CPU",
    "full": "preset full: larger models and at least 5 seeds, closer to the paper's scale",
    "fresh": "the result was produced by the code as it is now",
    "stale": "the code or the claims changed since this result was produced; re-run to refresh",
}


def _walkthrough(rep_id: str | None, card_id: str) -> str | None:
    root = state()["root"] / "notes" / "walkthroughs"
    for name in (rep_id, card_id):
        if name and (root / f"{name}.ipynb").is_file():
            return name
    return None


def code_url(rep, result: dict | None) -> str | None:
    """The reproduction's folder in the repository at the commit its result recorded
    (``repo_url`` in mkdocs.yml); None without a repo_url or a commit."""
    base = (state().get("repo_url") or "").rstrip("/")
    commit = (result or {}).get("commit")
    if not base or not commit or not rep.module:
        return None
    return f"{base}/tree/{commit}/{rep.module.replace('.', '/')}"


def code_ref(rep, result: dict | None) -> str:
    """HTML naming the code that measured a result: a link at the result's commit where the
    site knows the repository (``repo_url``), else the folder and commit as text."""
    if not rep.module:
        return ""
    folder = rep.module.replace(".", "/")
    commit = ((result or {}).get("commit") or "")[:10]
    url = code_url(rep, result)
    tip = "the code that measured it, at the commit of this result"
    if url:
        return f'<a href="{esc(url)}" title="{esc(tip)}">code</a>'
    at = f"@{esc(commit)}" if commit else ""
    return f'<span title="{esc(tip)}">code: <code>{esc(folder)}/</code>{at}</span>'


def verdict_strip(card_id: str) -> str:
    """One line under the title: the findings by verdict, the checks, and which run said so."""
    from repro.claims import CHECK, FINDING, FINDING_VERDICTS, Verdict
    from repro.results import verdict_counts

    st = state()
    entry = st["by_card"].get(card_id)
    card = st["kb"].cards[card_id]
    walk = _walkthrough(entry[0].id if entry else None, card_id)
    extra = []
    if walk:
        extra.append(f'<a class="vs-link" href="../../walkthroughs/{esc(walk)}/">walkthrough</a>')
    if card.meta.code:
        extra.append(f'<a class="vs-link" href="{esc(card.meta.code)}">authors\' code</a>')
    if entry is None:
        bits = ['<span class="vs-none">No reproduction checks this paper yet.</span>', *extra]
        return '<div class="verdict-strip vs-empty" markdown="0">' + " ".join(bits) + "</div>"
    rep, _results, best = entry
    if best is None:
        bits = [
            f'<span class="vs-none">Reproduction <code>{esc(rep.id)}</code> not run yet.</span>',
            '<a class="vs-link" href="#what-we-measured">its claims ↓</a>',
            *extra,
        ]
        return '<div class="verdict-strip vs-empty" markdown="0">' + " ".join(bits) + "</div>"
    counts = verdict_counts(best)
    f, c = counts[FINDING], counts[CHECK]
    chips = []
    labels = {
        Verdict.REPRODUCED: "reproduced",
        Verdict.NOT_REPRODUCED: "not reproduced",
        Verdict.INCONCLUSIVE: "inconclusive",
        Verdict.NOT_CHECKED: "not checked",
    }
    for v in FINDING_VERDICTS:
        if f[v] or v in (Verdict.REPRODUCED, Verdict.NOT_REPRODUCED, Verdict.INCONCLUSIVE):
            chips.append(
                f'<span class="vs-chip verdict-{v.css}" data-verdict="{esc(v.value)}" '
                f'title="findings {esc(v.value)}">{v.symbol} {f[v]} {labels[v]}</span>'
            )
    nf = sum(f.values())
    nc = sum(c.values())
    findings = (
        f'<span class="vs-group"><abbr title="{esc(GLOSSARY["finding"])}">'
        f"{nf} finding{'s' if nf != 1 else ''}</abbr>: " + " ".join(chips) + "</span>"
        if nf
        else '<span class="vs-group">no findings</span>'
    )
    checks = ""
    if nc:
        fail = f", {c[Verdict.FAIL]} fail" if c[Verdict.FAIL] else ""
        checks = (
            f'<span class="vs-group vs-checks"><abbr title="{esc(GLOSSARY["check"])}">checks'
            f"</abbr> {c[Verdict.PASS]}/{nc} pass{fail}</span>"
        )
    preset = str(best.get("preset", "?"))
    stale = best.get("stale")
    fresh = (
        f'<abbr class="stale" title="{esc(GLOSSARY["stale"])}: {esc(stale)}">stale</abbr>'
        if stale
        else f'<abbr title="{esc(GLOSSARY["fresh"])}">fresh</abbr>'
    )
    status = best.get("status")
    run = [
        f'<abbr title="{esc(GLOSSARY.get(preset, "a named set of run settings"))}">'
        f"preset {esc(preset)}</abbr>",
        esc(best.get("device_name") or best.get("device") or "?"),
        esc((best.get("started") or "?")[:10]),
        fresh,
    ]
    if status != "ok":
        run.append(f'<strong class="stale">run {esc(status)}</strong>')
    bits = [
        findings,
        checks,
        '<span class="vs-run">' + " · ".join(run) + "</span>",
        '<a class="vs-link" href="#what-we-measured">claims table ↓</a>',
        *extra,
    ]
    return '<div class="verdict-strip" markdown="0">' + " ".join(b for b in bits if b) + "</div>"


def repro_block(card_id: str) -> str:
    from repro.forest import forest_svg

    st = state()
    entry = st["by_card"].get(card_id)
    if entry is None:
        return (
            "## What we measured\n\nNo reproduction checks this paper yet. "
            "[How to add one](../contributing.md).\n"
        )
    rep, results, best = entry
    out = ["## What we measured", ""]
    cmd = f"repro run {rep.id}"
    if best is None:
        out.append(f"Reproduction `{esc(rep.id)}` has not been run yet. Run it with `{cmd}`.")
        out.append("")
        out.append("| claim | source | paper says | rule |")
        out.append("|---|---|---|---|")
        for c in rep.claims:
            out.append(
                f"| {md_cell(c.statement)} | {md_cell(c.source)} | {md_cell(c.paper_value)} "
                f"| {md_cell(c.rule.describe())} |"
            )
        return "\n".join(out) + "\n"
    out.append(result_meta_line(best))
    out.append("")
    out.append(f'<p class="claim-counts">{counts_html(best)}</p>')
    out.append("")
    rows = best.get("claims", [])
    findings = [c for c in rows if c.get("kind") != "check"]
    checks = [c for c in rows if c.get("kind") == "check"]
    code = code_ref(rep, best)
    if findings:
        out.append("### Findings: the paper's results, re-measured")
        out.append("")
        out.append(
            "Measured over seeds; *ours* is the estimate with its 95% confidence interval. "
            "The verdict judges the whole interval against the rule fixed before the run "
            "(hover *rule* or open *Rules and units* below); a finding whose models did not learn "
            "(a failed gate) is *inconclusive*."
        )
        out.append("")
        out.append(claim_table(findings, code))
        out.append("")
        svg = forest_svg(findings, {c.id: c.rule for c in rep.claims})
        if svg:
            out.append('<figure class="forest-plot" markdown="0">')
            out.append(svg)
            out.append(
                "<figcaption>Each finding's 95% interval (bar) and estimate (dot, coloured by "
                "verdict) against the region its rule accepts (shaded; dashed edges are the "
                "thresholds from the paper; a diamond marks the paper's value). Each row has "
                "its own scale.</figcaption></figure>"
            )
            out.append("")
    if checks:
        out.append("")
        out.append("### Implementation checks: properties of our code")
        out.append("")
        out.append("Correctness tests (pass/fail), not reproductions of the paper.")
        out.append("")
        out.append(claim_table(checks, code))
    out.append("")
    card = st["kb"].cards[card_id]
    figs = shown_figures(rep.id, best)
    if figs:
        out.append("### Figures")
        out.append("")
        out.append("Click a figure to enlarge it.")
        out.append("")
    for fig, default in figs:
        caption = card.meta.figures.get(Path(fig).name) or default
        out.append(figure_md(f"../results/{rep.id}/{fig}", caption))
        out.append("")
    others = [p for p in results if p != best.get("preset")]
    for p in others:
        r = results[p]
        out.append(
            f"Also on record: preset `{esc(p)}` ({esc(r.get('status'))}, "
            f"{esc(r.get('started', '?'))[:10]}, {esc(r.get('device_name') or r.get('device'))})."
        )
        out.append("")
    out.append(f"Re-run it: `{cmd} --preset {esc(best.get('preset', 'quick'))}`")
    out.append("")
    return "\n".join(out)


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's header (IHDR), without an imaging library."""
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def shown_figures(rep_id: str, best: dict | None) -> list[tuple[str, str]]:
    """The figures a card shows, as (path under results/<rep>/, default caption): the best
    result's figures, then the benchmark plots (results/<rep>/bench/<device>.png)."""
    base: Path = state()["results_base"] / rep_id
    out: list[tuple[str, str]] = []
    if best is not None:
        when = (best.get("started") or "?")[:10]
        dev = best.get("device_name") or best.get("device") or "?"
        for fig in best.get("figures", []):
            if (base / fig).is_file():
                words = Path(fig).stem.replace("_", " ").replace("-", " ")
                out.append(
                    (
                        fig,
                        f"{words[:1].upper()}{words[1:]}: from our {rep_id} run "
                        f"(preset {best.get('preset')}, {dev}, {when}).",
                    )
                )
    bench = base / "bench"
    if bench.is_dir():
        import json

        for png in sorted(bench.glob("*.png")):
            meta: dict[str, Any] = {}
            try:
                meta = json.loads(png.with_suffix(".json").read_text())
            except (OSError, ValueError):
                pass
            what = meta.get("memory_method") or "speed and memory"
            out.append(
                (
                    f"bench/{png.name}",
                    f"Benchmark on {meta.get('device_name') or png.stem}"
                    f" ({(meta.get('date') or '?')[:10]}): {what}.",
                )
            )
    return out


def figure_md(url: str, caption: str) -> str:
    """A figure with its caption as alt text and figcaption; a wide multi-panel figure keeps
    a legible size inside a box that scrolls sideways (and enlarges on click, figures.js)."""
    path = state()["root"] / "results" / url.split("results/", 1)[1]
    size = _png_size(path)
    wide = bool(size and size[0] > 2.4 * size[1])
    alt = re.sub(r"[\[\]\n]", " ", caption)
    cls = "result-fig fig-wide" if wide else "result-fig"
    hint = ' <span class="fig-hint">(wide figure: scroll sideways, or click to enlarge)</span>'
    return (
        f'<figure class="{cls}" markdown="span">\n'
        f"![{esc(alt)}]({url}){{ loading=lazy }}\n"
        f"<figcaption>{esc(caption)}{hint if wide else ''}</figcaption>\n</figure>"
    )


def claim_table(rows: list[dict], code: str = "") -> str:
    """claim | paper | ours | verdict, as one HTML block that fits the content column: the
    source and code link under the claim, the rule, unit and gates in a tooltip and in a
    'Rules and units' list below the table (for touch screens)."""
    from repro.format import fmt_interval, fmt_value

    kind = "check" if rows and all(r.get("kind") == "check" for r in rows) else "finding"
    body, notes = [], []
    for c in rows:
        cid = str(c.get("id", ""))
        anchor = f"rule-{kind}-{cid}"
        unit = c.get("unit") or ""
        rule = str(c.get("rule", ""))
        gates = c.get("gates") or []
        tip = f"rule: {rule}" + (f"; unit: {unit}" if unit else "")
        for g in gates:
            mark = "holds" if g.get("holds") else ("fails" if g.get("holds") is False else "–")
            tip += f"; gate {g.get('name')}: {g.get('rule')} ({mark})"
        value = c.get("measured")
        if value is None:
            ours = "—"
        else:
            ours = f'<span class="ours-est">{esc(fmt_value(value))}</span>'
            iv = fmt_interval(c)
            if iv:
                n = c.get("n")
                ours += f' <span class="ours-ci">{esc(iv)}{f" n={esc(n)}" if n else ""}</span>'
        ours += f' <a class="rule-tip" href="#{esc(anchor)}" title="{esc(tip)}">rule</a>'
        src = esc(c.get("source", ""))
        if code:
            src += f" · {code}"
        verdict = verdict_html(c.get("verdict", "?"))
        if c.get("reason"):
            verdict += f'<br><small class="verdict-reason">{esc(c["reason"])}</small>'
        body.append(
            f'<tr id="claim-{esc(cid)}" data-verdict="{esc(c.get("verdict", ""))}">'
            f'<td data-label="claim">{esc(c.get("statement", cid))}'
            f'<br><small class="claim-src">{src}</small></td>'
            f'<td data-label="paper">{esc(c.get("paper_value", ""))}</td>'
            f'<td data-label="ours">{ours}</td>'
            f'<td data-label="verdict">{verdict}</td></tr>'
        )
        gate_txt = "".join(
            f"; gate <em>{esc(g.get('name'))}</em>: {esc(g.get('rule'))} "
            f"{'✔' if g.get('holds') else ('✘' if g.get('holds') is False else '–')}"
            for g in gates
        )
        notes.append(
            f'<li id="{esc(anchor)}"><code>{esc(cid)}</code>: rule {esc(rule)}'
            f"{'; unit: ' + esc(unit) if unit else ''}{gate_txt}</li>"
        )
    return (
        f'<div class="claims-block" markdown="0"><table class="claims-table claims-{kind}">'
        "<thead><tr><th>claim</th><th>paper</th><th>ours</th><th>verdict</th></tr></thead>"
        "<tbody>" + "".join(body) + "</tbody></table>"
        '<details class="claims-rules"><summary>Rules and units</summary><ul>'
        + "".join(notes)
        + "</ul></details></div>"
    )


def result_meta_line(r: dict) -> str:
    commit = (r.get("commit") or "unknown")[:10]
    status = r.get("status", "?")
    preset = str(r.get("preset"))
    bits = [
        f'<abbr title="{esc(GLOSSARY.get(preset, "a named set of run settings"))}">preset '
        f"<strong>{esc(preset)}</strong></abbr>",
        "completed" if status == "ok" else f"run {esc(status)}",
        f"on {esc(r.get('device_name') or r.get('device') or '?')}",
        f"{esc((r.get('started') or '?')[:10])}",
        f"commit <code>{esc(commit)}</code>",
        f"{esc(r.get('duration_s', '?'))} s",
        f"seed {esc(r.get('seed'))}",
    ]
    if r.get("stale"):
        bits.append(f'<strong class="stale">stale: {esc(r["stale"])}</strong>')
    return '<p class="run-meta">' + " · ".join(bits) + "</p>"


def links_block(card_id: str) -> str:
    st = state()
    kb = st["kb"]
    card = kb.cards[card_id]

    def link(cid: str) -> str:
        c = kb.cards[cid]
        return f"[{esc(c.meta.title)}]({cid}.md) ({c.meta.year})"

    out = ["## Citations within this knowledge base", ""]
    cites = [c for c in card.meta.cites if c in kb.cards]
    cited = sorted(st["cited_by"].get(card_id, []), key=lambda c: (kb.cards[c].meta.year, c))
    out.append("**Cites:** " + ("; ".join(link(c) for c in cites) if cites else "none here."))
    out.append("")
    out.append("**Cited by:** " + ("; ".join(link(c) for c in cited) if cited else "none here."))
    out.append("")
    cols = kb.collections_of(card_id)
    if cols:
        out.append(
            "**In collections:** "
            + ", ".join(
                f"[{esc(kb.collections[c].meta.title)}]({collection_url_from_card(kb.collections[c])})"
                for c in cols
            )
        )
        out.append("")
    svg = neighbourhood(card_id)
    if svg:
        out.append('<div class="card-graph" markdown="0">')
        out.append(svg)
        out.append("</div>")
        out.append("")
    return "\n".join(out)


def collection_url_from_card(col) -> str:
    kb_root = state()["root"] / "notes"
    rel = col.path.resolve().relative_to(kb_root.resolve())
    return "../" + rel.as_posix()


def neighbourhood(card_id: str) -> str:
    from repro.graph import draw

    fn = draw.neighbourhood_svg
    return fn(graph(), card_id, lambda cid: f"../{cid}/")


def expand_quotes(markdown: str, where: str) -> str:
    """``{{ result: ... }}`` references become the values in the results files."""
    from mkdocs.exceptions import PluginError

    from repro.quote import expand, results_loader

    if "{{" not in markdown:
        return markdown
    st = state()
    if "quotes" not in st:
        st["quotes"] = results_loader(st["results_base"])
    text, errors = expand(markdown, st["quotes"])
    if errors:
        raise PluginError(f"{where}: " + f"\n{where}: ".join(errors))
    return text


def render_card(markdown: str, card_id: str) -> str:
    card = state()["kb"].cards[card_id]
    body = markdown
    # The card's own notes may not start with an H1: the header provides it.
    header = card_header(card)
    # The verdict strip goes right under the title (and TL;DR), before the authors line.
    head, sep, rest = header.partition('<p class="card-meta">')
    header = head + verdict_strip(card_id) + "\n\n" + sep + rest
    return "\n\n".join([header, body.strip(), repro_block(card_id), links_block(card_id)])


# --------------------------------------------------------------------------- hook events
def on_config(config) -> Any:
    from mkdocs.exceptions import PluginError

    root = Path(config["config_file_path"]).resolve().parent
    _STATE.clear()
    try:
        _STATE.update(load_state(root))
        _STATE["repo_url"] = config.get("repo_url")
    except SiteError as e:  # MkDocs prints a PluginError as one clean message, no traceback
        raise PluginError(str(e)) from None
    return config


def on_files(files, config) -> Any:
    """Add papers.bib and the result figures the cards show (strict mode checks the links)."""
    from mkdocs.structure.files import File

    kb = state()["kb"]
    from repro.bib import to_bibtex

    metas = [c.meta for c in sorted(kb.cards.values(), key=lambda c: (c.meta.year, c.id))]
    files.append(File.generated(config, "papers.bib", content=to_bibtex(metas)))
    # Only the figures a card shows: other presets' and archived figures stay out of the site.
    base: Path = state()["results_base"]
    seen: set[str] = set()
    for rep, _results, best in state()["by_card"].values():
        for fig, _caption in shown_figures(rep.id, best):
            rel = f"{rep.id}/{fig}"
            if rel not in seen:
                seen.add(rel)
                files.append(File.generated(config, f"results/{rel}", abs_src_path=str(base / rel)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    src = page.file.src_uri
    m = re.fullmatch(r"papers/([a-z0-9-]+)\.md", src)
    if m:
        card_id = m.group(1)
        if card_id not in state()["kb"].cards:
            from mkdocs.exceptions import PluginError

            raise PluginError(f"notes/{src}: page under papers/ is not a valid card")
        # Cards rank above pages that merely mention a paper (Material's per-page boost).
        page.meta.setdefault("search", {}).setdefault("boost", 4)
        return render_card(expand_quotes(markdown, f"notes/{src}"), card_id)
    for marker, render in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render(page))
    return markdown


def _graph_html(page) -> str:
    from repro.graph import draw

    fn = draw.full_html
    depth = page.file.src_uri.count("/")
    prefix = "../" * (depth + 1)  # from the page's URL folder back to the site root
    return fn(graph(), lambda cid: f"{prefix}papers/{cid}/")


def graph():
    """The citation graph, built once per site build from the same results the pages show."""
    st = state()
    if "graph" not in st:
        from repro.graph.build import build_graph

        st["graph"] = build_graph(st["kb"], st["results_base"])
    return st["graph"]


def _totals_html(page) -> str:
    from repro.claims import (
        CHECK,
        FINDING,
        FINDING_VERDICTS,
        Verdict,
        add_counts,
        count_verdicts,
    )
    from repro.results import verdict_counts

    st = state()
    totals = count_verdicts([])
    latest, commits = "", set()
    seen = set()
    for rep, _results, best in st["by_card"].values():
        if best is None or rep.id in seen:
            continue
        seen.add(rep.id)
        add_counts(totals, verdict_counts(best))
        latest = max(latest, best.get("started") or "")
        if best.get("commit"):
            commits.add(best["commit"][:10])
    when = latest[:10] or "never"
    commit = ", ".join(sorted(commits)[:3]) + (" …" if len(commits) > 3 else "")
    f, c = totals[FINDING], totals[CHECK]
    findings = " · ".join(f"{verdict_html(v)} {f[v]}" for v in FINDING_VERDICTS)
    checks = " · ".join(f"{verdict_html(v)} {c[v]}" for v in (Verdict.PASS, Verdict.FAIL))
    return (
        f'<div class="totals" markdown="0"><p><strong>{len(st["kb"].cards)}</strong> paper cards, '
        f"<strong>{len(st['reps'])}</strong> reproductions.</p>"
        f"<p><strong>{sum(f.values())}</strong> findings (the papers' results, re-measured "
        f"over seeds): {findings}</p>"
        f"<p><strong>{sum(c.values())}</strong> implementation checks (tests of our own code, "
        f"not reproductions): {checks}</p>"
        f'<p class="run-meta">latest run {esc(when)}; commit(s) {esc(commit or "unknown")}</p></div>'
    )


def _timeline_md(page) -> str:
    """Cards grouped by year, newest first, each with its collections and verdict summary."""
    st = state()
    kb = st["kb"]
    years: dict[int, list] = {}
    for card in kb.cards.values():
        years.setdefault(card.meta.year, []).append(card)
    prefix = "../" * page.file.src_uri.count("/")
    out = []
    for year in sorted(years, reverse=True):
        out.append(f"## {year}")
        out.append("")
        for card in sorted(years[year], key=lambda c: c.meta.title.lower()):
            badge = badge_html(card.id)
            badge = f" {badge}" if badge else ""
            first = card.meta.authors[0].split()[-1]
            more = " et al." if len(card.meta.authors) > 1 else ""
            out.append(
                f"- [{esc(card.meta.title)}]({prefix}papers/{card.id}.md) "
                f"<small>{esc(first)}{more}</small>{badge}"
            )
        out.append("")
    return "\n".join(out)


def _collections_md(page) -> str:
    """The collections, each with its size, for the home page."""
    kb = state()["kb"]
    prefix = "../" * page.file.src_uri.count("/")
    order = sorted(
        kb.collections.values(),
        key=lambda c: (
            c.meta.order if c.meta.order is not None else 99,
            c.meta.date or "",
            c.meta.title,
        ),
    )
    out = []
    for col in order:
        rel = col.path.resolve().relative_to((state()["root"] / "notes").resolve()).as_posix()
        when = f" ({esc(col.meta.date)})" if col.meta.date else ""
        also = sum(
            len(s.members)
            for s in col.meta.sections
            if s.title.lower().startswith("also mentioned")
        )
        size = _n_papers(len(col.meta.all_members()) - also)
        if also:
            size += f" and {also} also mentioned"
        out.append(f"- [{esc(col.meta.title)}]({prefix}{rel}){when} — {size}")
    return "\n".join(out) if out else "No collections yet."


def _mini_graph_html(page) -> str:
    from repro.graph import draw

    fn = draw.mini_svg
    prefix = "../" * page.file.src_uri.count("/")
    return fn(graph(), lambda cid: f"{prefix}papers/{cid}/")


def _walkthroughs_md(page) -> str:
    root = state()["root"] / "notes" / "walkthroughs"
    items = sorted(root.glob("*.ipynb")) if root.is_dir() else []
    if not items:
        return "No walkthroughs yet."
    return "\n".join(f"- [{esc(p.stem.replace('-', ' ').title())}]({p.name})" for p in items)


def claim_rows() -> list[dict[str, Any]]:
    """One row per claim of every reproduction: its paper (the first card the reproduction
    checks), the result's verdict and measurement, or 'not run' from the declaration."""
    from repro.format import fmt_interval, fmt_value

    st = state()
    kb = st["kb"]
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for cid, (rep, _results, best) in sorted(st["by_card"].items()):
        if rep.id in seen:
            continue
        seen.add(rep.id)
        pid = next((p for p in rep.papers if p in kb.cards), cid)
        card = kb.cards[pid]
        base = {
            "card": pid,
            "paper": card.meta.short or short_title(card.meta.title),
            "title": card.meta.title,
            "year": card.meta.year,
            "tags": list(card.meta.tags),
            "preset": (best or {}).get("preset", ""),
        }
        if best is None:
            for c in rep.claims:
                rows.append(
                    {
                        **base,
                        "id": c.id,
                        "kind": c.kind or "finding",
                        "statement": c.statement,
                        "paper_value": c.paper_value,
                        "ours": "",
                        "verdict": "not run",
                    }
                )
            continue
        for c in best.get("claims", []):
            value = c.get("measured")
            ours = fmt_value(value) if value is not None else ""
            if ours and fmt_interval(c):
                ours += " " + fmt_interval(c)
            rows.append(
                {
                    **base,
                    "id": c.get("id", ""),
                    "kind": "check" if c.get("kind") == "check" else "finding",
                    "statement": c.get("statement", ""),
                    "paper_value": c.get("paper_value", ""),
                    "ours": ours,
                    "verdict": c.get("verdict", "?"),
                }
            )
    return rows


def short_title(title: str) -> str:
    head = title.split(":", 1)[0].strip()
    return head if len(head) <= 40 else head[:39] + "…"


def _claims_html(page) -> str:
    """The claims explorer: one table, filter selects (hidden until claims.js runs) and
    sortable headings. Everything is in the page; the script only hides and reorders rows."""
    from repro.claims import VERDICTS

    rows = claim_rows()
    prefix = "../" * (page.file.src_uri.count("/") + 1)

    def options(name: str, values) -> str:
        opts = "".join(f'<option value="{esc(v)}">{esc(label)}</option>' for v, label in values)
        return (
            f'<label>{esc(name)} <select data-cx-filter="{esc(name)}">'
            f'<option value="">all</option>{opts}</select></label>'
        )

    present = {r["verdict"] for r in rows}
    verdicts = [(v, v) for v in (*VERDICTS, "not run") if v in present]
    tags = sorted({t for r in rows for t in r["tags"]})
    years = sorted({r["year"] for r in rows}, reverse=True)
    papers = sorted({(r["card"], r["paper"]) for r in rows}, key=lambda p: p[1].lower())
    body = []
    for r in rows:
        from repro.claims import Verdict

        try:
            v = Verdict(r["verdict"])
            vcell = f'<span class="verdict verdict-{v.css}">{v.symbol} {esc(v.short)}</span>'
        except ValueError:
            vcell = f'<span class="verdict verdict-unknown">{esc(r["verdict"])}</span>'
        href = f"{prefix}papers/{r['card']}/#claim-{r['id']}"
        body.append(
            f'<tr data-verdict="{esc(r["verdict"])}" data-kind="{r["kind"]}" '
            f'data-tag="{esc(" ".join(r["tags"]))}" data-year="{r["year"]}" '
            f'data-paper="{esc(r["card"])}">'
            f'<td data-label="paper"><a href="{esc(href)}" title="{esc(r["title"])}">'
            f"{esc(r['paper'])}</a></td>"
            f'<td data-label="year">{r["year"]}</td>'
            f'<td data-label="claim">{esc(r["statement"])}</td>'
            f'<td data-label="kind">{r["kind"]}</td>'
            f'<td data-label="paper says">{esc(r["paper_value"])}</td>'
            f'<td data-label="ours">{esc(r["ours"]) or "—"}</td>'
            f'<td data-label="verdict">{vcell}</td></tr>'
        )
    n_f = sum(r["kind"] == "finding" for r in rows)
    return (
        '<div class="claims-explorer" markdown="0">'
        '<form class="cx-controls" hidden="">'
        + options("verdict", verdicts)
        + options("kind", [("finding", "finding"), ("check", "check")])
        + options("tag", [(t, t) for t in tags])
        + options("year", [(str(y), str(y)) for y in years])
        + options("paper", papers)
        + '<label>text <input type="search" data-cx-text="" placeholder="word"></label>'
        '<output class="cx-count"></output></form>'
        f'<p class="cx-total">{len(rows)} claims: {n_f} findings, {len(rows) - n_f} '
        "implementation checks.</p>"
        '<table class="explorer-table"><thead><tr>'
        + "".join(
            f'<th><button type="button" data-cx-sort="{i}">{h}</button></th>'
            for i, h in enumerate(
                ["paper", "year", "claim", "kind", "paper says", "ours", "verdict"]
            )
        )
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


MARKERS = {
    "<!-- repro:claims -->": _claims_html,
    "<!-- repro:graph -->": _graph_html,
    "<!-- repro:totals -->": _totals_html,
    "<!-- repro:timeline -->": _timeline_md,
    "<!-- repro:collections -->": _collections_md,
    "<!-- repro:mini-graph -->": _mini_graph_html,
    "<!-- repro:walkthroughs -->": _walkthroughs_md,
}


# --------------------------------------------------------------------------- math
_MATH_INLINE = re.compile(r'<span class="arithmatex">\\\((.+?)\\\)</span>', re.S)
_MATH_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.+?)\\\]</div>', re.S)


def render_math(html_text: str) -> str:
    """TeX (from pymdownx.arithmatex, generic mode) to MathML at build time: no JavaScript
    renderer and no CDN at view time; browsers draw MathML natively."""
    if "arithmatex" not in html_text:
        return html_text
    from latex2mathml.converter import convert

    def conv(display: bool):
        def inner(m: re.Match) -> str:
            tex = html.unescape(m.group(1)).strip()
            try:
                return convert(tex, display="block" if display else "inline")
            except Exception:  # noqa: BLE001 - keep the TeX visible rather than fail the build
                log.warning("could not render math %r; shown as TeX", tex[:60])
                return f"<code>{esc(tex)}</code>"

        return inner

    html_text = _MATH_BLOCK.sub(conv(True), html_text)
    return _MATH_INLINE.sub(conv(False), html_text)


# Text where TeX is code, not maths: code blocks, scripts, styles, and the MathML we wrote.
_VERBATIM = re.compile(r"(<(pre|code|script|style|textarea|math)\b.*?</\2\s*>)", re.S | re.I)
_DOLLAR_BLOCK = re.compile(r"(?<![\\$])\$\$(.+?)(?<!\\)\$\$", re.S)
_DOLLAR_INLINE = re.compile(r"(?<![\\$\w])\$(?![\s$])([^$<>\n]+?)(?<![\s\\])\$(?![\w$])")
_PAREN_INLINE = re.compile(r"\\\((.+?)\\\)", re.S)
_BRACKET_BLOCK = re.compile(r"\\\[(.+?)\\\]", re.S)


def _outside_verbatim(html_text: str, fn) -> str:
    parts = _VERBATIM.split(html_text)
    # split() yields text, whole match, group 2, text, ...: transform the text pieces only
    out = []
    i = 0
    while i < len(parts):
        out.append(fn(parts[i]))
        if i + 1 < len(parts):
            out.append(parts[i + 1])
        i += 3
    return "".join(out)


def render_dollar_math(html_text: str) -> str:
    """TeX written with dollars or \\( \\) in rendered HTML (Jupyter Markdown cells, which
    mkdocs-jupyter leaves for a JavaScript renderer) to MathML, outside code and scripts."""

    def tex(m: re.Match, display: bool) -> str:
        return (
            f'<div class="arithmatex">\\[{m.group(1)}\\]</div>'
            if display
            else f'<span class="arithmatex">\\({m.group(1)}\\)</span>'
        )

    def fn(text: str) -> str:
        if "$" not in text and "\\(" not in text and "\\[" not in text:
            return text
        # \\[ \\( first: the dollar forms are rewritten into them
        text = _BRACKET_BLOCK.sub(lambda m: tex(m, True), text)
        text = _PAREN_INLINE.sub(lambda m: tex(m, False), text)
        text = _DOLLAR_BLOCK.sub(lambda m: tex(m, True), text)
        return _DOLLAR_INLINE.sub(lambda m: tex(m, False), text)

    return render_math(_outside_verbatim(html_text, fn))


def raw_tex(html_text: str) -> list[str]:
    """TeX left unrendered in a page's text (outside code, scripts and MathML): what a reader
    would see as dollars and backslashes."""
    found: list[str] = []

    def fn(text: str) -> str:
        text = re.sub(r"<[^>]+>", " ", text)  # tags and their attributes are not text
        for rx in (_DOLLAR_BLOCK, _DOLLAR_INLINE, _PAREN_INLINE, _BRACKET_BLOCK):
            for m in rx.finditer(text):
                if re.search(r"[\\^_{}=]|^[A-Za-z]$", m.group(1).strip()):
                    found.append(m.group(0)[:80])
        return text

    _outside_verbatim(html_text, fn)
    return found


def on_page_content(html_text: str, page, config, files) -> str:
    src = page.file.src_uri
    if src.startswith("collections/") or src == "tags.md":
        html_text = add_badges(html_text)
    if src.endswith(".ipynb"):
        return render_dollar_math(html_text)
    return render_math(html_text)


def on_post_build(config) -> None:
    """Graph exports beside the pages (node-link JSON, GraphML)."""
    from repro.graph.export import write_exports

    write_exports(graph(), Path(config["site_dir"]) / "graph")


def on_nav(nav, config, files) -> Any:
    """Readable navigation: papers by year then title (the file names are ids), collections in
    their declared order, and the top level in reading order."""
    st = state()
    kb = st["kb"]
    top_order = [
        "Transformer papers, re-measured",
        "Collections",
        "Papers",
        "Claims explorer",
        "Citation graph",
        "Timeline",
        "Tags",
        "Walkthroughs",
        "Contributing",
    ]

    def page_id(item) -> str | None:
        f = getattr(item, "file", None)
        return f.src_uri if f is not None else None

    col_by_uri = {
        c.path.resolve().relative_to((st["root"] / "notes").resolve()).as_posix(): c
        for c in kb.collections.values()
    }

    def col_key(item):
        col = col_by_uri.get(page_id(item) or "")
        if col is not None:
            return (0, col.meta.order if col.meta.order is not None else 99, col.meta.date or "")
        if getattr(item, "is_section", False):
            return (0, 50, str(item.title))
        return (1, 0, str(item.title))

    for item in nav.items:
        if getattr(item, "is_section", False) and item.title == "Papers":

            def paper_key(child):
                uri = page_id(child) or ""
                card = kb.cards.get(Path(uri).stem)
                return (card.meta.year, card.meta.title.lower()) if card else (9999, uri)

            item.children.sort(key=paper_key)
        if getattr(item, "is_section", False) and item.title == "Collections":
            item.children.sort(key=col_key)
            for child in item.children:
                if getattr(child, "is_section", False):
                    child.children.sort(key=col_key)

    # A page's title is not known yet when the navigation is built (MkDocs reads the pages
    # later), so top-level pages are placed by their file, sections by their title.
    top_files = {
        "index.md": "Transformer papers, re-measured",
        "claims.md": "Claims explorer",
        "graph.md": "Citation graph",
        "timeline.md": "Timeline",
        "tags.md": "Tags",
        "contributing.md": "Contributing",
    }

    def top_key(item):
        title = top_files.get(page_id(item) or "", str(item.title))
        return top_order.index(title) if title in top_order else len(top_order)

    nav.items.sort(key=top_key)
    return nav


def _n_papers(n: int) -> str:
    return f"{n} paper" if n == 1 else f"{n} papers"
