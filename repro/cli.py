"""The ``repro`` command.

    repro list                      cards and their reproduction status
    repro show <paper>              metadata, claims, last results
    repro run <paper> [opts]        run one reproduction (also: ``repro <paper>``)
    repro all [--preset quick]      every reproduction, each in its own process
    repro check                     validate cards, collections, declarations, graph
    repro graph stats|path|lineage|export
    repro bench <paper>             speed / memory tables
    repro new <arXiv id | title>    scaffold a card (and a reproduction with --repro)
    repro schema                    the card's JSON Schema

``list``, ``show``, ``check``, ``schema`` and ``graph`` never import torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

COMMANDS = (
    "list",
    "show",
    "run",
    "all",
    "check",
    "rejudge",
    "verify",
    "graph",
    "bench",
    "new",
    "schema",
    "submit",
    "results",
)


def _console(stderr: bool = False):
    import os

    from rich.console import Console

    # Wide tables stay readable in CI logs and pipes, where rich would assume 80 columns.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", 160))
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def _err(msg: str) -> int:
    print(f"repro: error: {msg}", file=sys.stderr)
    return 2


def _split_overrides(extra: list[str]) -> tuple[dict[str, str], list[str]]:
    """``--key=value``, ``--key value`` or bare ``--flag`` (= true) left over by argparse."""
    out: dict[str, str] = {}
    bad: list[str] = []
    i = 0
    while i < len(extra):
        tok = extra[i]
        if tok.startswith("--") and "=" in tok:
            k, v = tok[2:].split("=", 1)
            out[k] = v
        elif tok.startswith("--") and i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            out[tok[2:]] = extra[i + 1]
            i += 1
        elif tok.startswith("--") and len(tok) > 2:
            # a bare flag (``--resume``) switches a bool field on; the config type check
            # still rejects it, with the field's name, if the field is not a bool
            out[tok[2:]] = "true"
        else:
            bad.append(tok)
        i += 1
    return out, bad


def _kb(registered: bool = False):
    from repro import cards

    reg = None
    if registered:
        from repro.registry import all_reproductions

        reg = list(all_reproductions())
    return cards.load(registered=reg)


def _arxiv_map(kb) -> dict[str, str]:
    return {c.meta.arxiv: c.id for c in kb.cards.values() if c.meta.arxiv}


def _resolve(name: str, kb=None):
    from repro.registry import resolve

    return resolve(name, _arxiv_map(kb) if kb else None)


# --------------------------------------------------------------------------- list / show
def cmd_list(args) -> int:
    from repro.claims import CHECK, FINDING, FINDING_VERDICTS, Verdict
    from repro.frontmatter import load_light
    from repro.provenance import staleness
    from repro.registry import all_reproductions
    from repro.results import best_result, latest_local_run, latest_results, verdict_counts

    metas, unparsable = load_light()
    reps = all_reproductions()
    by_paper = {p: r for r in reps.values() for p in r.papers}
    rows = []
    warnings: list[str] = []
    for meta in sorted(metas, key=lambda m: (m["year"], m["id"])):
        rep = reps.get(meta["repro"] or "") or by_paper.get(meta["id"])
        status, counts, stale = "-", None, None
        if rep:
            res, warns = latest_results(rep.id)
            warnings += warns
            best = best_result(res)
            if best is None:
                status = "not run"
            else:
                counts = verdict_counts(best)
                status = best["preset"] if best.get("status") == "ok" else best.get("status", "?")
                stale = staleness(rep, best)
                local = latest_local_run(rep.id, best["preset"])
                if local and local.get("started", "") > best.get("started", ""):
                    status += " (newer local run)"
        rows.append((meta, rep, status, counts, stale))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": m["id"],
                        "title": m["title"],
                        "year": m["year"],
                        "reproduction": r.id if r else None,
                        "status": s,
                        "stale": st,
                        "findings": n[FINDING] if n else None,
                        "checks": n[CHECK] if n else None,
                    }
                    for m, r, s, n, st in rows
                ],
                indent=2,
            )
        )
    else:
        from rich.table import Table

        table = Table(
            title=f"{len(rows)} cards, {len(reps)} reproductions "
            "(findings: ✔ reproduced ✘ not ? inconclusive – not checked; checks: pass/fail)",
            title_justify="left",
        )
        con = _console()
        narrow = con.width < WIDE
        cols = ("card", "year", "title", "reproduction", "last run", "findings", "checks")
        if narrow:  # the card id names the paper; the title would wrap over several lines
            cols = ("card", "year", "last run", "findings", "checks")
        for col in cols:
            table.add_column(col, overflow="ellipsis", no_wrap=col in ("card", "title", "findings"))
        for meta, rep, status, c, stale in rows:
            f = g = ""
            if c:
                fc, cc = c[FINDING], c[CHECK]
                f = " ".join(f"{v.symbol}{fc[v]}" for v in FINDING_VERDICTS)
                g = f"{cc[Verdict.PASS]}/{sum(cc.values())}" + (
                    f" ({cc[Verdict.FAIL]} fail)" if cc[Verdict.FAIL] else ""
                )
            title = meta["title"] if len(meta["title"]) < 50 else meta["title"][:47] + "…"
            shown = status + (" (stale)" if stale else "")
            if narrow:
                table.add_row(meta["id"], str(meta["year"]), shown, f, g)
            else:
                table.add_row(
                    meta["id"], str(meta["year"]), title, rep.id if rep else "", shown, f, g
                )
        con.print(table)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if unparsable:
        print(f"{unparsable} card file(s) do not parse; run `repro check`", file=sys.stderr)
    return 0


WIDE = 120  # below this many columns, claims are stacked blocks instead of a table


def _claims_table(result: dict[str, Any] | None, rep, title: str, width: int | None = None):
    """The claims as a table on a wide terminal, as stacked blocks on a narrow one."""
    if (width or WIDE) < WIDE:
        return _claims_blocks(result, rep, title)
    return _claims_wide(result, rep, title)


def _claims_blocks(result: dict[str, Any] | None, rep, title: str):
    """One block per claim: verdict and id, then the paper's value, ours and the rule, each
    on its own wrapped line, readable at 80 columns."""
    from rich.console import Group
    from rich.text import Text

    from repro.claims import Verdict
    from repro.format import fmt_measured

    rows = {c["id"]: c for c in (result or {}).get("claims", [])}
    color = {
        Verdict.REPRODUCED: "green",
        Verdict.PASS: "green",
        Verdict.NOT_REPRODUCED: "red",
        Verdict.FAIL: "red",
    }
    from rich.table import Table

    parts: list[Any] = [Text(title, style="bold")]
    for claim in rep.claims:
        row = rows.get(claim.id)
        head = Text()
        if row is None:
            head.append("(not run)", style="yellow")
        else:
            v = Verdict(row["verdict"])
            head.append(f"{v.symbol} {v.value}", style=color.get(v, "yellow"))
        head.append(f"  {claim.id}", style="bold")
        head.append(f"  ({claim.kind})")
        parts.append(Text(""))
        parts.append(head)
        lines = [
            ("claim", claim.statement),
            ("paper", f"{claim.paper_value} [{claim.source}]"),
        ]
        if row is not None and row.get("measured") is not None:
            lines.append(("ours", fmt_measured(row)))
        lines.append(("rule", claim.rule.describe()))
        preset = (result or {}).get("preset", "quick")
        for g in claim.gates:
            lines.append(("gate", f"{g.name}: {g.rule_for(preset).describe()}"))
        if row is not None and row.get("reason"):
            lines.append(("why", row["reason"]))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for label, text in lines:
            grid.add_row(f"  {label}", str(text))
        parts.append(grid)
    return Group(*parts)


def _claims_wide(result: dict[str, Any] | None, rep, title: str):
    from rich.table import Table

    from repro.claims import Verdict
    from repro.format import fmt_measured

    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("claim", "kind", "source", "paper says", "we measured", "rule", "verdict"):
        table.add_column(col, overflow="fold")
    rows = {c["id"]: c for c in (result or {}).get("claims", [])}
    style = {
        Verdict.REPRODUCED: "green",
        Verdict.PASS: "green",
        Verdict.NOT_REPRODUCED: "red",
        Verdict.FAIL: "red",
    }
    for claim in rep.claims:
        row = rows.get(claim.id)
        measured = "" if row is None else fmt_measured(row)
        verdict = "(not run)" if row is None else row["verdict"]
        if row is not None and row.get("reason"):
            verdict += f" — {row['reason']}"
        color = style.get(Verdict(row["verdict"]), "yellow") if row else "yellow"
        table.add_row(
            f"{claim.id}: {claim.statement}",
            claim.kind,
            claim.source,
            claim.paper_value,
            measured,
            claim.rule.describe()
            + "".join(
                f"; gate {g.name}: {g.rule_for(result.get('preset', 'quick') if result else 'quick').describe()}"
                for g in claim.gates
            ),
            f"[{color}]{verdict}[/]",
        )
    return table


def cmd_show(args) -> int:
    from rich.panel import Panel

    from repro.registry import UnknownReproduction
    from repro.results import latest_results

    kb = _kb()
    card = kb.cards.get(args.paper)
    rep = None
    try:
        rep = _resolve(args.paper, kb)
    except UnknownReproduction as e:
        if card is None:
            import difflib

            close = difflib.get_close_matches(args.paper, list(kb.cards), n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            return _err(f"no card or reproduction called {args.paper!r}{hint}")
        if args.json:
            print(json.dumps({"card": card.meta.model_dump(), "reproduction": None}, indent=2))
            return 0
        del e
    if card is None and rep is not None:
        card = kb.cards.get(rep.papers[0])
    results: dict[str, dict] = {}
    if rep:
        results, warns = latest_results(rep.id)
        for w in warns:
            print(f"warning: {w}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "card": card.meta.model_dump() if card else None,
                    "reproduction": rep.id if rep else None,
                    "results": results,
                },
                indent=2,
            )
        )
        return 0
    con = _console()
    if card:
        m = card.meta
        lines = [
            f"[bold]{m.title}[/]",
            ", ".join(m.authors),
            f"{m.year}" + (f" · {m.venue}" if m.venue else ""),
        ]
        if m.arxiv:
            lines.append(f"arXiv:{m.arxiv}  https://arxiv.org/abs/{m.arxiv}")
        lines.append("tags: " + ", ".join(m.tags))
        if m.cites:
            lines.append("cites: " + ", ".join(m.cites))
        cols = kb.collections_of(card.id)
        if cols:
            lines.append("in: " + ", ".join(cols))
        con.print(Panel("\n".join(lines), title=card.id, title_align="left"))
    if rep is None:
        con.print("No reproduction checks this paper yet.")
        return 0
    if not results:
        con.print(f"Reproduction [bold]{rep.id}[/] has not been run here: `repro run {rep.id}`")
        con.print(_claims_table(None, rep, "claims", con.width))
        return 0
    for preset, res in sorted(results.items()):
        meta = (
            f"preset {preset} · {res.get('status')} · {res.get('device_name') or res.get('device')}"
            f" · {res.get('started')} · commit {(res.get('commit') or '?')[:10]}"
            f" · {res.get('duration_s')} s"
            + (f" ({res['cpu_s']} CPU-s)" if res.get("cpu_s") is not None else "")
        )
        from repro.claims import summarize_counts
        from repro.provenance import staleness
        from repro.results import verdict_counts

        con.print(_claims_table(res, rep, meta, con.width))
        con.print(summarize_counts(verdict_counts(res)))
        why = staleness(rep, res)
        if why:
            con.print(f"[yellow]stale[/]: {why}; re-run: repro run {rep.id} --preset {preset}")
        from repro.results import latest_local_run

        local = latest_local_run(rep.id, preset)
        if local and local.get("started", "") > res.get("started", "") and local.get("run_dir"):
            bits = [local.get("status", "?")]
            if local.get("overrides"):
                bits.append(
                    "overrides " + " ".join(f"--{k}={v}" for k, v in local["overrides"].items())
                )
            con.print(
                f"a newer local run differs from these results ({', '.join(bits)}): "
                f"{local['run_dir']}/{preset}.json"
            )
        for f in res.get("figures", []):
            con.print(f"  figure: results/{rep.id}/{f}")
    return 0


# --------------------------------------------------------------------------- run / all / bench
def cmd_run(args, extra: list[str]) -> int:
    from repro.config import ConfigError, describe_fields
    from repro.registry import UnknownReproduction

    overrides, bad = _split_overrides(extra)
    if bad:
        return _err(f"unexpected argument(s) {' '.join(bad)}; overrides look like --key=value")
    try:
        kb = _kb()
        rep = _resolve(args.paper, kb)
    except UnknownReproduction as e:
        return _err(str(e))
    import dataclasses as _dc

    miss = _option_near_miss(overrides, [f.name for f in _dc.fields(rep.config)])
    if miss:
        return _err(miss)
    try:
        cfg = rep.make_config(args.preset, overrides)
    except (ConfigError, ValueError) as e:
        return _err(f"{rep.id}: {e}")
    problem = _device_problem(args.device, check_available=not args.dry_run)
    if problem:
        return _err(problem)
    if args.dry_run:
        print(f"{rep.id} ({args.preset}) would run with:")
        for name, tp, _default in describe_fields(rep.config):
            print(f"  --{name}={getattr(cfg, name)!r}  ({tp})")
        return 0
    from repro.runner import exit_code_for, run_one

    if not args.quiet:
        print(f"running {rep.id} --preset {args.preset} (seed {args.seed}) ...", file=sys.stderr)
    try:
        result = run_one(
            rep,
            preset=args.preset,
            overrides=overrides,
            device=args.device,
            seed=args.seed,
            show_progress=not args.no_progress,
        )
    except ConfigError as e:
        return _err(f"{rep.id}: {e}")
    con = _console()
    status = result["status"]
    title = (
        f"{rep.title} — preset {args.preset} on {result['device_name']}, {result['duration_s']} s"
        + (f", {result['cpu_s']} CPU-s" if result.get("cpu_s") is not None else "")
    )
    con.print(_claims_table(result, rep, title, con.width))
    if status != "ok":
        con.print(f"[red]run {status}[/]: {(result.get('error') or '').strip()}")
    for f in result.get("figures", []):
        con.print(f"figure: results/{rep.id}/{f}")
    from repro.results import result_path

    if result.get("promoted"):
        con.print(f"results: {result_path(rep.id, args.preset)}")
    else:
        why = f"run {status}" if status != "ok" else "run with overrides"
        con.print(
            f"local run only ({why}): {result['run_dir']}/{args.preset}.json; the committed "
            f"results/{rep.id}/{args.preset}.json is unchanged"
        )
    return exit_code_for(status)


def cmd_all(args) -> int:
    from rich.table import Table

    from repro.paths import project_root
    from repro.registry import UnknownReproduction, all_reproductions
    from repro.runner import run_all

    reps = list(all_reproductions().values())
    if args.only:
        try:
            reps = [_resolve(n) for n in args.only.split(",")]
        except UnknownReproduction as e:
            return _err(str(e))
    if args.exclude:
        skip = set(args.exclude.split(","))
        reps = [r for r in reps if r.id not in skip]
    lacking = [r.id for r in reps if args.preset not in r.presets]
    if lacking:
        have = sorted(set.intersection(*(set(r.presets) for r in reps))) if reps else []
        return _err(
            f"--preset {args.preset}: not declared by {', '.join(lacking[:5])}"
            f"{' …' if len(lacking) > 5 else ''}; choose one of {', '.join(have)}"
        )
    problem = _device_problem(args.device, check_available=True)
    if problem:
        return _err(problem)
    if args.stale:
        from repro.provenance import staleness
        from repro.results import load_result

        def wants(rep) -> bool:
            res = load_result(rep.id, args.preset)
            return (
                res is None
                or res.get("status") != "ok"
                or bool(res.get("dirty"))
                or staleness(rep, res) is not None
            )

        reps = [r for r in reps if wants(r)]
        print(
            f"--stale: {len(reps)} reproduction(s) with a missing, failed, dirty or stale "
            f"{args.preset} result" + (f": {', '.join(r.id for r in reps)}" if reps else ""),
            file=sys.stderr,
        )
        if not reps:
            return 0
    # Longest first, so that two workers finish together.
    reps.sort(key=lambda r: -r.timeout_s)
    if args.shard:
        from repro.shard import parse_shard, select

        try:
            i, n = parse_shard(args.shard)
        except ValueError as e:
            return _err(str(e))
        reps, loads = select(reps, args.preset, i, n)
        print(
            f"--shard {i}/{n}: {len(reps)} reproduction(s), about {loads[i - 1]:.0f} s "
            f"(shards: {', '.join(f'{x:.0f}' for x in loads)} s)",
            file=sys.stderr,
        )
    cluster = None
    if args.executor != "local":
        from repro.cluster import ClusterError, load_options

        try:
            cluster = load_options(args.cluster_config, _cluster_flags(args))
        except ClusterError as e:
            return _err(str(e))
    elif (
        args.no_wait
        or args.cluster_config
        or any(v is not None for v in _cluster_flags(args).values())
    ):
        return _err(
            "cluster options (--partition, --cpus, --cluster-config, --no-wait, ...) need "
            "--executor slurm (or submitit-local)"
        )
    if args.dry_run:
        from repro.shard import estimate_s

        for r in reps:
            print(f"{r.id}\t{args.preset}\t~{estimate_s(r, args.preset):.0f} s")
        print(f"dry run: {len(reps)} reproduction(s) would run ({args.executor})", file=sys.stderr)
        return 0
    done = [0]

    def on_done(o):
        done[0] += 1
        mark = "ok" if o.status == "ok" else o.status.upper()
        print(
            f"[{done[0]}/{len(reps)}] {o.id}: {mark} in {o.duration_s:.1f} s"
            + (f" — {o.message}" if o.message else ""),
            file=sys.stderr,
            flush=True,
        )

    if cluster is not None:
        from repro.cluster import ClusterError, run_on_cluster

        def on_submit(rid: str, job_id: str) -> None:
            print(f"submitted {rid} as job {job_id}", file=sys.stderr, flush=True)

        try:
            outcomes = run_on_cluster(
                reps,
                kind=args.executor,
                opts=cluster,
                preset=args.preset,
                timeout=args.timeout,
                device=args.device,
                seed=args.seed,
                root=project_root(),
                on_done=on_done,
                wait=not args.no_wait,
                on_submit=on_submit,
            )
        except ClusterError as e:
            return _err(str(e))
        if args.no_wait:
            print(
                f"{len(reps)} job(s) submitted; each writes its own record (runs/) and, when "
                "complete, results/. `repro list` shows them as they land.",
                file=sys.stderr,
            )
            return 0
    else:
        outcomes = run_all(
            reps,
            preset=args.preset,
            timeout=args.timeout,
            jobs=args.jobs,
            device=args.device,
            seed=args.seed,
            root=project_root(),
            on_done=on_done,
        )
    from repro.claims import add_counts, count_verdicts, summarize_counts

    table = Table(title=f"repro all --preset {args.preset}", title_justify="left")
    for col in ("reproduction", "status", "seconds", "verdicts", "message"):
        table.add_column(col, overflow="fold")
    total = count_verdicts([])
    for o in sorted(outcomes, key=lambda o: o.id):
        c = o.counts or count_verdicts([])
        add_counts(total, c)
        table.add_row(o.id, o.status, f"{o.duration_s:.1f}", summarize_counts(c), o.message[:120])
    _console().print(table)
    failed = [o for o in outcomes if o.status != "ok"]
    print(
        f"{len(outcomes)} reproductions: {len(outcomes) - len(failed)} ran, {len(failed)} failed"
        f" ({', '.join(f'{o.id}: {o.status}' for o in failed) or 'none'}); "
        + summarize_counts(total)
    )
    return 1 if failed else 0


_CLUSTER_FLAGS = {
    # flag dest -> ClusterOptions field
    "partition": "partition",
    "time_min": "time_min",
    "cpus": "cpus",
    "gpus": "gpus",
    "mem_gb": "mem_gb",
    "account": "account",
    "qos": "qos",
    "constraint": "constraint",
    "nodes": "nodes",
    "tasks_per_node": "tasks_per_node",
    "job_folder": "folder",
}


def _cluster_flags(args) -> dict[str, Any]:
    return {field: getattr(args, dest, None) for dest, field in _CLUSTER_FLAGS.items()}


def cmd_submit(args) -> int:
    """``repro submit -- CMD ...``: one job, one process per task, torch.distributed's variables set."""
    from repro.cluster import ClusterError, load_options, submit_command
    from repro.paths import project_root

    argv = list(args.cmd)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    try:
        opts = load_options(args.cluster_config, _cluster_flags(args))
        job_id, code = submit_command(
            argv, kind=args.executor, opts=opts, root=project_root(), wait=not args.no_wait
        )
    except ClusterError as e:
        return _err(str(e))
    if code is None:
        print(f"submitted as job {job_id}")
        return 0
    print(f"job {job_id} ended with exit code {code}")
    return code


def cmd_results(args) -> int:
    from repro.merge import MergeError, merge
    from repro.paths import results_dir

    dest = Path(args.into) if args.into else results_dir()
    try:
        lines = merge([Path(d) for d in args.dirs], dest)
    except MergeError as e:
        print(str(e), file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def cmd_bench(args, extra: list[str]) -> int:
    import importlib

    from repro.config import ConfigError
    from repro.registry import UnknownReproduction

    overrides, bad = _split_overrides(extra)
    if bad:
        return _err(f"unexpected argument(s) {' '.join(bad)}")
    try:
        rep = _resolve(args.paper, _kb())
    except UnknownReproduction as e:
        return _err(str(e))
    problem = _device_problem(args.device, check_available=True)
    if problem:
        return _err(problem)
    if not rep.bench:
        with_bench = sorted(
            r.id
            for r in __import__("repro.registry").registry.all_reproductions().values()
            if r.bench
        )
        return _err(f"{rep.id} has no benchmark; these do: {', '.join(with_bench) or 'none'}")
    mod_name, fn_name = rep.bench.split(":")
    fn = getattr(importlib.import_module(f"{rep.module}.{mod_name}"), fn_name)
    try:
        return int(fn(overrides=overrides, device=args.device) or 0)
    except ConfigError as e:
        return _err(f"{rep.id} bench: {e}")


# --------------------------------------------------------------------------- check / schema
def cmd_check(args) -> int:
    import time

    t0 = time.perf_counter()
    torch_before = "torch" in sys.modules
    from repro.registry import discover

    reps, rep_problems = discover()
    kb = _kb(registered=True)
    problems = [str(p) for p in kb.errors] + list(rep_problems)
    warnings = [str(p) for p in kb.warnings]
    from repro import consistency
    from repro.paths import results_dir

    problems += consistency.cards_vs_reproductions(kb, reps)
    res_problems, res_warnings = consistency.committed_results(reps, results_dir())
    problems += res_problems
    warnings += res_warnings
    problems += consistency.card_quotes(kb, results_dir())
    try:
        from repro.graph import checks as graph_checks

        g_errors, g_warnings = graph_checks.run_checks(kb)
        problems += g_errors
        warnings += g_warnings
    except ImportError:
        pass
    if "torch" in sys.modules and not torch_before:
        problems.append(
            "internal: `repro check` imported torch; a reproduction's __init__.py "
            "imports its measuring code at import time"
        )
    for line in warnings:
        print(line)
    for line in problems:
        print(line)
    dt = time.perf_counter() - t0
    if problems:
        print(
            f"{len(problems)} problem(s) in {len(kb.cards)} cards, {len(kb.collections)} "
            f"collections, {len(reps)} reproductions",
            file=sys.stderr,
        )
        return 1
    print(
        f"ok: {len(kb.cards)} cards, {len(kb.collections)} collections, {len(reps)} "
        f"reproductions, {len(warnings)} warning(s) ({dt:.2f} s)"
    )
    return 0


def cmd_rejudge(args) -> int:
    """Verdicts are judgements of stored metrics: re-derive them under the current rules."""
    from repro.paths import results_dir
    from repro.registry import UnknownReproduction, all_reproductions
    from repro.results import read_result, rejudge, write_result

    reps = all_reproductions()
    try:
        chosen = [_resolve(i) for i in args.ids] if args.ids else list(reps.values())
    except UnknownReproduction as e:
        return _err(str(e))
    changed = 0
    for rep in chosen:
        for path in sorted((results_dir() / rep.id).glob("*.json")):
            data, warn = read_result(path)
            if data is None:
                if warn:
                    print(f"warning: {warn}", file=sys.stderr)
                continue
            new = rejudge(rep, data)
            before = {c["id"]: c.get("verdict") for c in data.get("claims", [])}
            after = {c["id"]: c.get("verdict") for c in new["claims"]}
            if new != data:
                write_result(new)
                changed += 1
                for cid, v in after.items():
                    if before.get(cid) != v:
                        print(f"{rep.id}/{path.stem} {cid}: {before.get(cid)} -> {v}")
    print(f"rejudged; {changed} results file(s) rewritten")
    return 0


def cmd_verify(args) -> int:
    from repro.registry import UnknownReproduction, all_reproductions
    from repro.verify import draw, verify

    reps = all_reproductions()
    try:
        chosen = (
            [_resolve(i) for i in args.ids]
            if args.ids
            else draw(reps, args.sample, args.preset, args.draw_seed)
        )
    except UnknownReproduction as e:
        return _err(str(e))
    if not chosen:
        return _err(f"no committed {args.preset} results to verify")
    print(f"verify ({args.preset}): re-running {', '.join(r.id for r in chosen)}", file=sys.stderr)
    failures = verify(chosen, args.preset, jobs=args.jobs)
    for line in failures:
        print(line)
    if failures:
        print(f"verify: {len(failures)} difference(s) from the committed results", file=sys.stderr)
        return 1
    print(f"verify: {len(chosen)} reproduction(s) match their committed results")
    return 0


def cmd_schema(args) -> int:
    from repro.cards import card_json_schema, load_tags
    from repro.paths import notes_dir

    tags, _ = load_tags(notes_dir())
    text = json.dumps(card_json_schema(tags or None), indent=2) + "\n"
    if args.output:
        from repro.results import atomic_write_text

        atomic_write_text(Path(args.output), text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


# --------------------------------------------------------------------------- parser
class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: what is wrong, and where the help is."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


DEVICES = "auto, cpu, cuda, cuda:N or mps"


def _device_problem(device: str, check_available: bool) -> str | None:
    """Why ``--device`` cannot be used, or None."""
    import re

    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        return f"--device {device}: unknown device; use {DEVICES}"
    if check_available and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return f"--device {device}: no CUDA device is available here; use --device cpu"
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            return f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here"
    if check_available and device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            return "--device mps: MPS is not available here; use --device cpu"
    return None


RUN_OPTIONS = ("preset", "device", "seed", "dry-run", "no-progress", "quiet")


def _option_near_miss(overrides: dict[str, str], fields: list[str]) -> str | None:
    """``--presets=full`` is a mistyped option, not a config field: say which option."""
    import difflib

    for key in overrides:
        if key.replace("-", "_") in fields:
            continue
        close = difflib.get_close_matches(key, RUN_OPTIONS, n=1, cutoff=0.75)
        if close:
            return f"--{key}: no such option or config field; did you mean --{close[0]}?"
    return None


def build_parser() -> argparse.ArgumentParser:
    from repro import __version__

    p = _Parser(prog="repro", description="Paper cards whose claims are re-measured by code.")
    p.add_argument("--version", action="version", version=f"repro {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("list", help="cards and reproduction status (fast, no torch)")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("show", help="a card, its claims and its last results")
    s.add_argument("paper")
    s.add_argument("--json", action="store_true")

    def run_opts(s):
        s.add_argument("--preset", default="quick", help="quick (CI, minutes on a CPU) or full")
        s.add_argument("--device", default="auto", help="auto, cpu or cuda")
        s.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("run", help="run one reproduction; extra --key=value set config fields")
    s.add_argument("paper", help="card id, reproduction id, arXiv id or unique prefix")
    run_opts(s)
    s.add_argument("--dry-run", action="store_true", help="print the config and stop")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--quiet", action="store_true")

    def cluster_opts(s, all_cmd: bool) -> None:
        from repro.cluster import EXECUTORS

        g = s.add_argument_group("cluster (submitit)")
        g.add_argument(
            "--executor",
            choices=EXECUTORS if all_cmd else EXECUTORS[1:],
            default="local" if all_cmd else "slurm",
            help="local: subprocesses here; slurm: one Slurm job per reproduction; "
            "submitit-local: the Slurm code path with jobs as local processes (for trying it)",
        )
        g.add_argument("--cluster-config", metavar="FILE", help="TOML with a [slurm] table")
        g.add_argument("--partition")
        g.add_argument("--time-min", type=float, help="the job's time limit in minutes")
        g.add_argument("--cpus", type=int, help="CPUs per task (default 2)")
        g.add_argument("--gpus", type=int, help="GPUs per node (default: 1 with --device cuda)")
        g.add_argument("--mem-gb", type=float)
        g.add_argument("--account")
        g.add_argument("--qos")
        g.add_argument("--constraint")
        g.add_argument("--nodes", type=int)
        g.add_argument("--tasks-per-node", type=int)
        g.add_argument("--job-folder", help="submitit's logs (default runs/_submitit)")
        g.add_argument("--no-wait", action="store_true", help="submit and exit")

    s = sub.add_parser("all", help="run every reproduction, each in its own process")
    s.add_argument("--preset", default="quick")
    s.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per reproduction (default: each one's own limit for quick, none otherwise)",
    )
    s.add_argument("-j", "--jobs", type=int, default=2)
    s.add_argument("--device", default="cpu")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--only", help="comma-separated reproduction ids")
    s.add_argument("--exclude", help="comma-separated reproduction ids")
    s.add_argument(
        "--stale",
        action="store_true",
        help="only those whose result is missing, failed, from a dirty tree, or stale",
    )
    s.add_argument(
        "--shard",
        metavar="I/N",
        help="run only the I-th of N disjoint shards, balanced by recorded durations",
    )
    s.add_argument("--dry-run", action="store_true", help="print what would run, one per line")
    cluster_opts(s, all_cmd=True)

    s = sub.add_parser(
        "rejudge", help="re-derive stored verdicts from stored metrics and current rules"
    )
    s.add_argument("ids", nargs="*", help="reproduction ids (default: all)")

    s = sub.add_parser(
        "verify",
        help="re-run some reproductions and compare with their committed results",
    )
    s.add_argument("ids", nargs="*", help="reproduction ids (default: a sample, see --sample)")
    s.add_argument("--sample", type=int, default=3, help="how many to draw when no ids given")
    s.add_argument("--preset", default="quick")
    s.add_argument("--draw-seed", help="seed of the draw (default: the current commit)")
    s.add_argument("-j", "--jobs", type=int, default=2)

    sub.add_parser("check", help="validate cards, collections, reproductions and the graph")

    s = sub.add_parser(
        "submit",
        help="run a command as a cluster job, one process per task, with torch.distributed's "
        "variables (e.g. DDP training under Slurm)",
    )
    cluster_opts(s, all_cmd=False)
    s.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command")

    s = sub.add_parser("results", help="results folders: merge those made on other machines")
    rs = s.add_subparsers(dest="results_command", metavar="merge", required=True)
    m = rs.add_parser("merge", help="combine results folders (CI shards, cluster downloads)")
    m.add_argument("dirs", nargs="+", metavar="DIR", help="folders in the results/ layout")
    m.add_argument("--into", help="destination (default: the project's results/)")

    s = sub.add_parser("schema", help="print the card's JSON Schema")
    s.add_argument("-o", "--output")

    s = sub.add_parser("bench", help="speed/memory benchmark of a reproduction")
    s.add_argument("paper")
    s.add_argument("--device", default="auto")

    s = sub.add_parser(
        "graph", help="the citation graph: stats, path, lineage, export", add_help=False
    )
    s.add_argument("graph_args", nargs=argparse.REMAINDER)

    s = sub.add_parser("new", help="scaffold a card from an arXiv id or title", add_help=False)
    s.add_argument("new_args", nargs=argparse.REMAINDER)
    return p


def _command_near_miss(word: str) -> str | None:
    """`repro lsit`: a mistyped command, unless it names a reproduction."""
    import difflib

    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.75)
    if not close:
        return None
    from repro.registry import UnknownReproduction, resolve

    try:
        resolve(word)
        return None
    except UnknownReproduction:
        return f"no command or reproduction called {word!r}; did you mean `repro {close[0]}`?"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `graph` and `new` parse their own arguments (and their own --help)
    if argv and argv[0] in ("graph", "new"):
        try:
            if argv[0] == "graph":
                from repro.graph.cli import main as graph_main

                return graph_main(argv[1:])
            from repro.scaffold import main as new_main

            return new_main(argv[1:])
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    # `repro <paper> ...` is short for `repro run <paper> ...`
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        hint = _command_near_miss(argv[0])
        if hint:
            return _err(hint)
        argv = ["run", *argv]
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command in ("run", "bench"):
            return (cmd_run if args.command == "run" else cmd_bench)(args, extra)
        if extra:
            return _err(f"unexpected argument(s): {' '.join(extra)}")
        if args.command == "graph":
            from repro.graph.cli import main as graph_main

            return graph_main(args.graph_args)
        if args.command == "new":
            from repro.scaffold import main as new_main

            return new_main(args.new_args)
        return {
            "list": cmd_list,
            "show": cmd_show,
            "all": cmd_all,
            "check": cmd_check,
            "rejudge": cmd_rejudge,
            "verify": cmd_verify,
            "schema": cmd_schema,
            "submit": cmd_submit,
            "results": cmd_results,
        }[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
