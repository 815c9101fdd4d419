"""The reproduction report: a claims table first, then each experiment's text and plots.

``report.md`` links the PNG files; ``report.html`` embeds them, so it can be mailed alone.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from noisereg.results.store import ResultsError, atomic_write_text, read_summary


def load_summaries(root: Path, order: list[str] | None = None) -> list[dict[str, Any]]:
    """Every ``root/*/summary.json``, validated, in ``order`` (then alphabetical)."""
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"{root}: no such results directory")
    paths = sorted(root.glob("*/summary.json"))
    if not paths:
        raise ResultsError(f"{root}: no experiment results (no */summary.json)")
    rank = {name: i for i, name in enumerate(order or [])}
    summaries = [read_summary(p) for p in paths]
    return sorted(summaries, key=lambda s: (rank.get(s["experiment"], len(rank)), s["experiment"]))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _verdict(passed: bool) -> str:
    return "reproduced" if passed else "not reproduced"


def _rows(summaries: list[dict[str, Any]]) -> list[list[str]]:
    return [[s["experiment"], s["paper"], c["statement"], _fmt(c["measured"]), c["expected"],
             _verdict(c["passed"])] for s in summaries for c in s["claims"]]


HEADER = ["experiment", "paper", "claim", "measured", "expected", "verdict"]


def _tally(summaries: list[dict[str, Any]]) -> str:
    claims = [c for s in summaries for c in s["claims"]]
    passed = sum(c["passed"] for c in claims)
    return f"{passed} of {len(claims)} claims reproduced in {len(summaries)} experiments."


def render_markdown(summaries: list[dict[str, Any]], descriptions: dict[str, str]) -> str:
    lines = ["# noisereg reproduction report", "", _tally(summaries), "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
              for row in _rows(summaries)]
    for s in summaries:
        lines += ["", f"## {s['experiment']}", "", f"*{s['paper']}*: {s['claim']}", ""]
        if descriptions.get(s["experiment"]):
            lines += [descriptions[s["experiment"]], ""]
        lines += [f"Preset `{s['preset']}`, seeds {s['seeds']}, "
                  f"config hash `{s['config_hash']}`.", ""]
        lines += [f"- **{_verdict(c['passed'])}**: {c['statement']} "
                  f"(measured {_fmt(c['measured'])}, expected {c['expected']})"
                  for c in s["claims"]]
        lines += [""] + [f"![{p}]({s['experiment']}/{p})" for p in s["plots"]]
    return "\n".join(lines) + "\n"


def render_html(summaries: list[dict[str, Any]], descriptions: dict[str, str], root: Path) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>noisereg report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
             ".ok{color:#070}.no{color:#b00}img{max-width:100%}</style></head><body>",
             "<h1>noisereg reproduction report</h1>", f"<p>{esc(_tally(summaries))}</p>",
             "<table><tr>" + "".join(f"<th>{h}</th>" for h in HEADER) + "</tr>"]
    for row in _rows(summaries):
        cls = "ok" if row[-1] == "reproduced" else "no"
        cells = "".join(f"<td>{esc(c)}</td>" for c in row[:-1])
        parts.append(f"<tr>{cells}<td class='{cls}'>{row[-1]}</td></tr>")
    parts.append("</table>")
    for s in summaries:
        parts += [f"<h2 id='{esc(s['experiment'])}'>{esc(s['experiment'])}</h2>",
                  f"<p><em>{esc(s['paper'])}</em>: {esc(s['claim'])}</p>"]
        if descriptions.get(s["experiment"]):
            parts.append(f"<p>{esc(descriptions[s['experiment']])}</p>")
        parts.append(f"<p>Preset <code>{esc(s['preset'])}</code>, "
                     f"seeds {esc(str(s['seeds']))}.</p>")
        for plot in s["plots"]:
            data = base64.b64encode((root / s["experiment"] / plot).read_bytes()).decode()
            parts.append(f"<img alt='{esc(plot)}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(root: Path, order: list[str] | None = None,
                 descriptions: dict[str, str] | None = None) -> list[Path]:
    """Build ``root/report.md`` and ``root/report.html`` from the stored summaries."""
    root = Path(root)
    summaries = load_summaries(root, order)
    descriptions = descriptions or {}
    md, page = root / "report.md", root / "report.html"
    atomic_write_text(md, render_markdown(summaries, descriptions))
    atomic_write_text(page, render_html(summaries, descriptions, root))
    return [md, page]
