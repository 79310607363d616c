"""Self-contained HTML pages: the run's ``report.html`` and ``spinbench compare --html``.

One file a reader opens without a network: the figures inline as base64 PNG, the style and a
few lines of script inline. Tables whose class is ``sortable`` sort by any column when its
header is clicked (numbers as numbers, blanks last). Every piece of text is escaped
(:func:`html.escape`): a reason or an option string from a cell is data, never markup.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Block", "figure", "format_value", "page", "table"]

#: A piece of a page: HTML already escaped.
Block = str

STYLE = """
:root { --ink: #1d232b; --muted: #5b6670; --line: #d5dbe0; --head: #eef2f5;
        --bad: #fde2e1; --bad-ink: #8f1d16; --warn: #fff3cd; --good: #e3f4e5; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1400px; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: .4rem 0; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; }
p.note, .muted { color: var(--muted); font-size: .9rem; max-width: 60rem; }
nav { font-size: .9rem; margin: .5rem 0 1rem; }
nav a { margin-right: 1rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; vertical-align: top; }
th { background: var(--head); text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #9aa5ae; }
table.sortable th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--ink); }
table.sortable th[aria-sort="descending"]::after { content: " \\2193"; color: var(--ink); }
tr.failed td, tr.worse td, tr.newly-failed td { background: var(--bad); }
tr.flagged td, tr.newly-flagged td { background: var(--warn); }
tr.better td, tr.fixed td { background: var(--good); }
.badge { display: inline-block; padding: 0 .4rem; border-radius: .6rem; font-size: .8rem; }
.badge.bad { background: var(--bad); color: var(--bad-ink); }
.badge.warn { background: var(--warn); }
.badge.good { background: var(--good); }
ul.reasons li { margin: .2rem 0; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .85rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; font-size: .8rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav, table.sortable th::after { display: none; content: none; }
  .scroll { overflow: visible; }
  section.model, figure { break-inside: avoid; }
  h2 { break-after: avoid; }
  details { display: block; }
  details > pre { white-space: pre-wrap; }
  a { color: inherit; text-decoration: none; }
}
"""

#: Click a header of a ``sortable`` table: sort its rows by that column, numbers by value
#: (``data-value``), blanks last, again to reverse.
SCRIPT = """
(function () {
  function key(cell) {
    var v = cell.getAttribute("data-value");
    if (v === null) { return { blank: cell.textContent.trim() === "", text: cell.textContent }; }
    if (v === "") { return { blank: true }; }
    return { number: parseFloat(v) };
  }
  function compare(a, b) {
    if (a.blank || b.blank) { return (a.blank ? 1 : 0) - (b.blank ? 1 : 0); }
    if (a.number !== undefined && b.number !== undefined) { return a.number - b.number; }
    return String(a.text).localeCompare(String(b.text), undefined, { numeric: true });
  }
  function sort(table, column, header) {
    var descending = header.getAttribute("aria-sort") === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r, s) {
      var a = key(r.cells[column]), b = key(s.cells[column]);
      var order = compare(a, b);
      if (a.blank || b.blank) { return order; }
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.title = "Sort by this column";
      header.addEventListener("click", function () { sort(table, column, header); });
    });
  });
})();
"""


def escape(value: Any) -> str:
    """Text of any value, escaped for HTML."""
    return html.escape(str(value), quote=True)


def format_value(column: str, value: Any) -> str:
    """A cell's text: numbers to 3-4 significant digits, NaN and None as ``–``."""
    if value is None:
        return "–"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if column.startswith("wall time") or column.endswith("(s)"):
            return f"{value:.1f}"
        return f"{value:.4g}"
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _cell(column: str, value: Any) -> str:
    if _is_number(value):
        number = float(value)
        sort_key = "" if math.isnan(number) else repr(number)
        if math.isinf(number):
            sort_key = "1e308" if number > 0 else "-1e308"
        return f'<td class="num" data-value="{sort_key}">{escape(format_value(column, value))}</td>'
    return f"<td>{escape(format_value(column, value))}</td>"


def table(
    frame: pd.DataFrame,
    *,
    table_id: str | None = None,
    sortable: bool = True,
    row_class: Callable[[Mapping[Any, Any]], str] | None = None,
    caption: str | None = None,
) -> Block:
    """A frame as an HTML table, sortable by a click on any header; ``row_class`` gives each
    row a CSS class (``failed``, ``flagged``, ``worse``, ...) to highlight it."""
    columns = [str(c) for c in frame.columns]
    attributes = ' class="sortable"' if sortable else ""
    if table_id:
        attributes += f' id="{escape(table_id)}"'
    out = [f'<div class="scroll"><table{attributes}>']
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr></thead>")
    out.append("<tbody>")
    for record in frame.to_dict(orient="records"):
        css = row_class(record) if row_class else ""
        opening = f'<tr class="{escape(css)}">' if css else "<tr>"
        out.append(opening + "".join(_cell(c, record[c]) for c in columns) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def figure(path: Path, caption: str) -> Block:
    """A PNG file inline (base64), with its caption as the image's alternative text."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def paragraph(text: str, css: str = "note") -> Block:
    return f'<p class="{css}">{escape(text)}</p>'


def items(lines: Iterable[str], css: str = "reasons") -> Block:
    """An escaped bullet list (empty text when there is nothing to list)."""
    entries = [f"<li>{escape(line)}</li>" for line in lines]
    return f'<ul class="{css}">' + "".join(entries) + "</ul>" if entries else ""


def facts(pairs: Sequence[tuple[str, Any]]) -> Block:
    """A definition list of ``(name, value)`` pairs."""
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs)
    return f'<dl class="facts">{body}</dl>'


def json_block(summary: str, value: Any) -> Block:
    """A folded block with ``value`` as indented JSON."""
    text = json.dumps(value, indent=2, default=str)
    return f"<details><summary>{escape(summary)}</summary><pre>{escape(text)}</pre></details>"


def page(title: str, blocks: Iterable[Block], *, nav: Sequence[tuple[str, str]] = ()) -> str:
    """A whole HTML document: ``blocks`` in order, a navigation line of ``(anchor, label)``
    links, and the inline style and sorting script."""
    links = "".join(f'<a href="#{escape(a)}">{escape(label)}</a>' for a, label in nav)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head><body>",
            f"<h1>{escape(title)}</h1>",
            f"<nav>{links}</nav>" if links else "",
            *blocks,
            f"<script>{SCRIPT}</script>",
            "</body></html>",
            "",
        ]
    )
