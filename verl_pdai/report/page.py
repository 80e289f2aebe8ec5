"""index.html of a report: a small self-contained page (inline style, images next to it, no scripts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from verl_pdai.report.plans import Plan
from verl_pdai.report.series import SummaryRow

_STYLE = """
body { font-family: sans-serif; max-width: 980px; margin: 2em auto; color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; font-family: monospace; }
figure { margin: 1.5em 0; border-top: 1px solid #ddd; padding-top: 1em; }
figure img { max-width: 100%; }
figcaption p { margin: 0.3em 0; }
code { background: #f4f4f4; padding: 0 0.2em; }
.note { color: #a33; }
"""


@dataclass(frozen=True)
class Page:
    title: str
    run: Mapping[str, str]  # about the run and its inputs
    summary: Sequence[SummaryRow]
    drawn: Sequence[Plan]
    skipped: Sequence[Plan]
    missing: Sequence[str]  # metrics / ledger columns the pictures wanted and did not find


def _number(value: float | None) -> str:
    if value is None:
        return "&mdash;"
    return f"{value:.4g}"


def _table(rows: Sequence[SummaryRow]) -> str:
    head = "<tr><th>metric</th><th>points</th><th>first</th><th>last (step)</th><th>best (step)</th></tr>"
    body = [
        f"<tr><td>{escape(r.metric)}</td><td>{r.points}</td><td>{_number(r.first)}</td>"
        f"<td>{_number(r.last)} ({r.last_step})</td>"
        f"<td>{_number(r.best)}{'' if r.best_step is None else f' ({r.best_step})'}</td></tr>"
        for r in rows
    ]
    return f"<table>{head}{''.join(body)}</table>"


def _figure(plan: Plan) -> str:
    return (
        f'<figure id="{escape(plan.file)}"><img src="{escape(plan.file)}" alt="{escape(plan.title)}">'
        f"<figcaption><p><b>{escape(plan.title)}.</b> {escape(plan.caption)}</p>"
        f"<p><i>How to read it:</i> {escape(plan.read)}</p></figcaption></figure>"
    )


def render_page(page: Page) -> str:
    run = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in page.run.items())
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(page.title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{escape(page.title)}</h1>",
        f"<h2>Run</h2><table>{run}</table>",
        "<h2>Summary</h2>" + (_table(page.summary) if page.summary else "<p>None of the key metrics was logged.</p>"),
        "<h2>Pictures</h2>",
        *(_figure(plan) for plan in page.drawn),
    ]
    if page.skipped:
        items = "".join(
            f"<li><b>{escape(p.title)}</b> ({escape(p.file)}): not drawn, its inputs are absent</li>"
            for p in page.skipped
        )
        parts.append(f"<h2>Skipped pictures</h2><ul class='note'>{items}</ul>")
    if page.missing:
        items = "".join(f"<li><code>{escape(name)}</code></li>" for name in page.missing)
        parts.append(
            f"<h2 id='missing'>Missing metrics</h2><p>Wanted by a picture, not found in the inputs:</p><ul>{items}</ul>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)
