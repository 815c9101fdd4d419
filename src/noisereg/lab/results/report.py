"""The reproduction report: the verdicts first, then each experiment's text and plots.

The headline counts the claims taken from the papers and the ones this library derives, with
three-way verdicts (reproduced, inconclusive, not reproduced); exploratory findings and sanity
checks are listed apart. A failed sanity check voids its experiment's other verdicts.
``report.md`` links the PNG files; ``report.html`` embeds them, so it can be mailed alone. Every
piece of text that comes from a results file is escaped, and only files inside the results
folder are embedded or linked.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from noisereg._atomic import atomic_write_text
from noisereg.lab.experiments.claims import shown_verdict, void_verdicts
from noisereg.lab.results.store import ResultsError, read_summary

KINDS = {
    "paper": "what the paper states, in this library's words",
    "derived": "a consequence this library derives from the paper's theory (derivation named)",
    "exploratory": "a question this library asks; the answer is a finding, not a verdict on "
                   "the paper",
    "sanity": "the run is valid (training fits, nothing diverged); a failure voids the "
              "experiment's other verdicts",
}
RULES = ("Verdicts come from the seeds: a claim is reproduced when the whole 95% interval over "
         "seeds (Student t on per-seed values, paired where seeds share data and "
         "initialization) lies on the claimed side of its threshold, not reproduced when it lies "
         "wholly on the other side, inconclusive otherwise; claims checked against an exact "
         "oracle are decided by the worst seed against a tolerance.")
HEADER = ["experiment", "source", "claim", "threshold from", "measured", "95% interval", "seeds",
          "expected", "verdict"]


def load_summaries(root: Path, order: list[str] | None = None) -> list[dict[str, Any]]:
    """Every ``root/*/summary.json``, validated, in ``order`` (then alphabetical)."""
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"{root}: no such results directory")
    paths = sorted(root.glob("*/summary.json"))
    if not paths:
        raise ResultsError(f"{root}: no experiment results (no */summary.json)")
    rank = {name: i for i, name in enumerate(order or [])}
    summaries = []
    for path in paths:
        summary = read_summary(path)
        if summary["experiment"] != path.parent.name:
            raise ResultsError(f"{path}: the summary names experiment "
                               f"{summary['experiment']!r}, not its folder's")
        summaries.append(summary)
    return sorted(summaries, key=lambda s: (rank.get(s["experiment"], len(rank)), s["experiment"]))


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _interval(claim: dict[str, Any]) -> str:
    interval = claim["interval"]
    if interval is None:
        return "–"
    word = "range" if claim["rule"] == "worst" else ""
    return f"{word} [{_fmt(interval[0])}, {_fmt(interval[1])}]".strip()


def _claim_rows(summaries: list[dict[str, Any]], sources: tuple[str, ...]) -> list[list[str]]:
    rows = []
    for s in summaries:
        void = void_verdicts(s["claims"])
        for c in s["claims"]:
            if c["source"] in sources:
                source = c["source"] if c["source"] in ("exploratory", "sanity") else \
                    f"{c['source']} ({s['paper']})"
                rows.append([s["experiment"], source, c["statement"], c["basis"],
                             _fmt(c["measured"]), _interval(c), str(c["seeds"]), c["expected"],
                             shown_verdict(c, void)])
    return rows


def headline(summaries: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Counts of each verdict: the paper and derived lines, then the other kinds' lines."""
    lines = []
    for source in ("paper", "derived"):
        verdicts = [row[-1] for row in _claim_rows(summaries, (source,))]
        if not verdicts:
            continue
        void = sum(v.startswith("void") for v in verdicts)
        text = (f"{verdicts.count('reproduced')} of {len(verdicts)} {source} claims reproduced, "
                f"{verdicts.count('inconclusive')} inconclusive, "
                f"{verdicts.count('not reproduced')} not reproduced")
        lines.append(text + (f", {void} void (sanity check failed)." if void else "."))
    rest = []
    findings = _claim_rows(summaries, ("exploratory",))
    if findings:
        answers = [row[-1] for row in findings]
        rest.append(f"{len(findings)} exploratory questions: {answers.count('yes')} yes, "
                     f"{answers.count('no')} no, {answers.count('inconclusive')} inconclusive"
                     + (f", {sum(a.startswith('void') for a in answers)} void." if any(
                         a.startswith("void") for a in answers) else "."))
    checks = [row[-1] for row in _claim_rows(summaries, ("sanity",))]
    if checks:
        rest.append(f"{checks.count('pass')} of {len(checks)} sanity checks pass.")
    rest.append(f"{len(summaries)} experiment{'s' * (len(summaries) != 1)}.")
    return lines, rest


def _plot_path(root: Path, experiment: str, plot: str) -> Path:
    """The plot file, refused when it resolves outside the experiment's folder."""
    folder = (root / experiment).resolve()
    path = (folder / plot).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise ResultsError(f"{root / experiment / 'summary.json'}: plot {plot!r} is not a file "
                           "inside the experiment's folder")
    return path


def _md(text: Any) -> str:
    """Result text for a Markdown table cell or paragraph: HTML escaped, pipes escaped."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]


SECTIONS = (("Paper and derived claims", ("paper", "derived")),
            ("Exploratory findings", ("exploratory",)),
            ("Sanity checks", ("sanity",)))


def render_markdown(summaries: list[dict[str, Any]], descriptions: dict[str, str],
                    root: Path) -> str:
    lines = ["# noisereg reproduction report", ""]
    main, rest = headline(summaries)
    lines += [f"**{line}**  " for line in main] + [f"{line}  " for line in rest]
    lines += ["", RULES, ""] + [f"- *{k}*: {v}" for k, v in KINDS.items()]
    for title, sources in SECTIONS:
        rows = _claim_rows(summaries, sources)
        if rows:
            lines += ["", f"## {title}", "", *_md_table(HEADER, rows)]
    for s in summaries:
        name = s["experiment"]
        lines += ["", f"## {_md(name)}", "", f"*{_md(s['paper'])}*: {_md(s['claim'])}", ""]
        if descriptions.get(name):
            lines += [_md(descriptions[name]), ""]
        lines += [f"Preset `{_md(s['preset'])}`, seeds {_md(s['seeds'])}, "
                  f"config hash `{_md(s['config_hash'])}`.", ""]
        void = void_verdicts(s["claims"])
        lines += [f"- **{_md(shown_verdict(c, void))}** ({_md(c['source'])}): "
                  f"{_md(c['statement'])} (measured {_md(_fmt(c['measured']))}, "
                  f"{_md(_interval(c))}, {c['seeds']} seeds; expected {_md(c['expected'])}, "
                  f"threshold from {_md(c['basis'])})"
                  + (f". {_md(c['note'])}" if c["note"] else "")
                  for c in s["claims"]]
        lines += [""] + [f"![{_md(p)}]({_plot_path(root, name, p).relative_to(root.resolve())})"
                         for p in s["plots"]]
    return "\n".join(lines) + "\n"


def _css_class(verdict: str) -> str:
    if verdict in ("reproduced", "pass", "yes"):
        return "ok"
    if verdict in ("not reproduced", "fail", "no"):
        return "no"
    return "mid"


def render_html(summaries: list[dict[str, Any]], descriptions: dict[str, str], root: Path) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>noisereg report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
             ".ok{color:#070}.no{color:#b00}.mid{color:#a60}img{max-width:100%}</style>"
             "</head><body>", "<h1>noisereg reproduction report</h1>"]
    main, rest = headline(summaries)
    parts += [f"<p><strong>{esc(line)}</strong></p>" for line in main]
    parts += [f"<p>{esc(line)}</p>" for line in rest]
    parts += [f"<p>{esc(RULES)}</p>", "<ul>"]
    parts += [f"<li><em>{esc(k)}</em>: {esc(v)}</li>" for k, v in KINDS.items()] + ["</ul>"]
    for title, sources in SECTIONS:
        rows = _claim_rows(summaries, sources)
        if not rows:
            continue
        parts += [f"<h2>{esc(title)}</h2>",
                  "<table><tr>" + "".join(f"<th>{h}</th>" for h in HEADER) + "</tr>"]
        for row in rows:
            cells = "".join(f"<td>{esc(c)}</td>" for c in row[:-1])
            parts.append(f"<tr>{cells}<td class='{_css_class(row[-1])}'>{esc(row[-1])}</td></tr>")
        parts.append("</table>")
    for s in summaries:
        name = s["experiment"]
        parts += [f"<h2 id='{esc(name)}'>{esc(name)}</h2>",
                  f"<p><em>{esc(s['paper'])}</em>: {esc(s['claim'])}</p>"]
        if descriptions.get(name):
            parts.append(f"<p>{esc(descriptions[name])}</p>")
        parts.append(f"<p>Preset <code>{esc(s['preset'])}</code>, "
                     f"seeds {esc(str(s['seeds']))}.</p>")
        for plot in s["plots"]:
            data = base64.b64encode(_plot_path(root, name, plot).read_bytes()).decode()
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
    text, page_text = (render_markdown(summaries, descriptions, root),
                       render_html(summaries, descriptions, root))
    atomic_write_text(md, text)
    atomic_write_text(page, page_text)
    return [md, page]
