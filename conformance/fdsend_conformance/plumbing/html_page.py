"""The report as one self-contained HTML page (``--html PATH``), for a CI artifact.

No script, no external file: the style is inline, so the page opens as it
is from a CI job's artifacts. It shows the backend and the kernel, the
failing clauses first, each with the contract's why and source, the first
failure of each failing test function and every failing test, then the
clause table coloured by status. Labels are the terminal's (:func:`terminal.label`).
"""

from __future__ import annotations

import html
from collections import Counter

from fdsend_conformance.backend import Backend
from fdsend_conformance.outcome import Outcome, Status
from fdsend_conformance.plumbing.contract import CONTRACT_PATH
from fdsend_conformance.plumbing.expected import id_in_suite
from fdsend_conformance.plumbing.report import ClauseReport, TestResult, Verdict, conforming
from fdsend_conformance.plumbing.report import environment as run_environment
from fdsend_conformance.plumbing.terminal import by_function, label

__all__ = ["COLOURS", "page"]

#: Background colour of each label's table rows (and of its total).
COLOURS = {
    "PASS": "#c8ecc9",
    "FAIL": "#f7b9b4",
    "NON-STRICT": "#fbdc9b",
    "XFAIL": "#d9cdf2",
    "UNSUPPORTED": "#dadde2",
    "SKIPPED": "#eceef1",
    "NOT-RUN": "#ffffff",
}

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2125; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
h2 { font-size: 1.2em; margin: 1em 0 .4em; }
h3 { font-size: 1.05em; margin: .5em 0 .3em; }
section p { margin: .3em 0; }
.verdict { font-size: 1.1em; font-weight: 600; }
.env { color: #444; margin: .2em 0 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #fff; }
th { background: #1d2125; color: #fff; }
td.id { font-family: monospace; white-space: nowrap; }
.totals span { display: inline-block; padding: .15em .6em; margin-right: .4em;
  border-radius: .3em; }
section { border-left: .4em solid; padding: .1em 1em; margin: 1em 0; }
pre { background: #f5f6f8; padding: .5em; white-space: pre-wrap; margin: .3em 0; }
.more { color: #555; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _anchor(clause_id: str) -> str:
    return f"clause-{clause_id}"


def _row(v: Verdict) -> str:
    name = label(v)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(v.counts.items())) or "no test ran"
    failing = v.status in (Status.FAIL, Status.NON_STRICT)
    ident = f'<a href="#{_anchor(v.clause.id)}">{_e(v.clause.id)}</a>' if failing else v.clause.id
    return (
        f'<tr style="background:{COLOURS[name]}" title="{_e(v.clause.why)}">'
        f'<td class="id">{ident}</td><td>{_e(name)}</td><td>{_e(v.clause.keyword)}</td>'
        f"<td>{_e(v.clause.title)}</td><td>{_e(counts)}</td></tr>"
    )


def _failures(failures: list[tuple[str, TestResult]]) -> list[str]:
    out = []
    for cases in by_function(failures):
        nodeid, result = cases[0]
        out.append(f"<p>First failure: <code>{_e(id_in_suite(nodeid))}</code></p>")
        out.append(f"<pre>{_e(result.reason or '(no reason given)')}</pre>")
        if len(cases) > 1:
            out.append(f'<p class="more">and {len(cases) - 1} more like it</p>')
    return out


def _section(v: Verdict, tests: dict[str, TestResult]) -> str:
    name = label(v)
    mine = [(t, tests[t]) for t in v.failures]
    parts = [
        f'<section id="{_anchor(v.clause.id)}" style="border-color:{COLOURS[name]}">',
        f"<h3>{_e(v.clause.id)} {_e(name)}: {_e(v.clause.title)}</h3>",
        f"<p><b>Why</b> ({_e(v.clause.keyword)}): {_e(v.clause.why)}</p>",
        f"<p><b>Source</b>: {_e(v.clause.source)}</p>",
    ]
    if v.expected:
        reasons = dict.fromkeys(r.reason or "" for _, r in mine)
        parts += [f"<p>Expected: {_e(reason)}</p>" for reason in reasons]
    else:
        parts += _failures([(t, r) for t, r in mine if r.outcome != Outcome.EXPECTED])
    items = "".join(f"<li><code>{_e(id_in_suite(t))}</code></li>" for t, _ in mine)
    parts.append(f"<details><summary>{len(mine)} failing test(s)</summary><ul>{items}</ul>")
    parts.append("</details></section>")
    return "\n".join(parts)


def page(report: ClauseReport, backend: Backend, level: str) -> str:
    """The whole page: header, environment, totals, clause table, failing clauses."""
    verdicts = report.verdicts()
    env = run_environment()
    ok = conforming(verdicts, level)
    totals = Counter(label(v) for v in verdicts)
    chips = "".join(
        f'<span style="background:{COLOURS[name]}">{n} {_e(name)}</span>'
        for name, n in sorted(totals.items())
    )
    sections = [
        _section(v, report.tests) for v in verdicts if v.status in (Status.FAIL, Status.NON_STRICT)
    ]
    expected = sum(v.expected for v in verdicts)
    title = f"fdsend conformance: {backend.name} {backend.version}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{_e(title)}</h1>",
            f'<p class="verdict">{"Conforming" if ok else "Not conforming"} '
            f"at level {_e(level)}</p>",
            f'<p class="env">backend {_e(backend.name)} {_e(backend.version)} '
            f"({_e(backend.origin)}); truncation {_e(backend.truncation)}; "
            f"unsupported: {_e(', '.join(sorted(backend.unsupported)) or 'none')}<br>"
            f"{_e(env['kernel'])} ({_e(env['machine'])}); {_e(env['python'])}</p>",
            f'<p class="totals">{chips}</p>',
            f'<p>The clauses are those of <a href="{_e(CONTRACT_PATH.as_uri())}">CONTRACT.md</a>'
            " (shipped in the fdsend_conformance package); hover a row for its why.</p>",
            f"<h2>Failing clauses ({len(sections)}, {expected} of them expected)</h2>"
            if sections
            else "",
            *sections,
            "<h2>Every clause</h2>",
            "<table><tr><th>Clause</th><th>Status</th><th>Level</th><th>Title</th>"
            "<th>Tests</th></tr>",
            *[_row(v) for v in verdicts],
            "</table>",
            "</body></html>",
            "",
        ]
    )
