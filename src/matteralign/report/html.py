"""One self-contained HTML page: figures inlined as base64 PNG, tables inline, no network requests.

An inline script counts the figures that decoded, so a headless browser can check the page.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["ReportFigure", "ReportSection", "render_html"]


@dataclass
class ReportFigure:
    """A rendered figure: its id (file stem), caption and PNG bytes."""

    id: str
    caption: str
    png: bytes
    wide: bool = False


@dataclass
class ReportSection:
    """One analysis of the report."""

    key: str
    title: str
    intro: str
    figures: list[ReportFigure] = field(default_factory=list)
    tables: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)  # (id, caption, df)
    notes: list[str] = field(default_factory=list)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#243447;color:#fff;padding:18px 32px}
header h1{margin:0 0 4px 0;font-size:22px} header p{margin:0;color:#cfd8e3;font-size:13px}
nav{padding:8px 32px;background:#e9eef3;font-size:13px;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#243447;text-decoration:none} nav a:hover{text-decoration:underline}
main{padding:8px 32px 40px 32px;max-width:1300px}
section{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:12px 20px;margin:18px 0}
h2{font-size:18px;margin:6px 0 8px 0} p.intro{font-size:14px;color:#444;max-width:980px}
div.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:8px 0;flex:0 1 auto;max-width:min(100%,610px)} figure.wide{max-width:100%}
figure img{max-width:100%;max-height:760px;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#555}
.note{background:#fff6e0;border-left:4px solid #e0a800;padding:6px 10px;margin:6px 0;font-size:13px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right} th{background:#f0f3f6}
td:first-child,th:first-child{text-align:left}
details{margin:6px 0} summary{cursor:pointer;font-size:13px;color:#243447}
pre{background:#f4f6f8;padding:8px;font-size:12px;overflow-x:auto}
"""

_CHECK = """
<script>
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img.figure');
  var ok = 0;
  imgs.forEach(function (im) { if (im.complete && im.naturalWidth > 0) ok += 1; });
  document.body.setAttribute('data-figures-total', String(imgs.length));
  document.body.setAttribute('data-figures-loaded', String(ok));
});
</script>
"""


def _table_html(frame: pd.DataFrame, max_rows: int = 40) -> str:
    shown = frame.head(max_rows)
    body = shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–", border=0,
                         escape=True)
    more = (f"<p class='intro'>first {max_rows} of {len(frame)} rows; the full table is in "
            "tables/</p>" if len(frame) > max_rows else "")
    return body + more


def render_html(
    title: str, subtitle: str, sections: list[ReportSection], appendix: list[tuple[str, str]]
) -> str:
    """The whole page.

    Parameters
    ----------
    title, subtitle : str
    sections : list of ReportSection
    appendix : list of (heading, html) pairs
        Raw HTML blocks (already escaped) for the run-metadata appendix.
    """
    esc = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
             f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>"]
    parts += [f"<a href='#{s.key}'>{esc(s.title)}</a>" for s in sections]
    parts.append("<a href='#appendix'>Run metadata</a></nav><main>")
    for s in sections:
        parts.append(f"<section id='{s.key}' data-analysis='{s.key}'><h2>{esc(s.title)}</h2>")
        parts.append(f"<p class='intro'>{esc(s.intro)}</p>")
        parts += [f"<div class='note'>{esc(n)}</div>" for n in s.notes]
        parts.append("<div class='figs'>")
        for f in s.figures:
            data = base64.b64encode(f.png).decode()
            wide = " class='wide'" if f.wide else ""
            parts.append(f"<figure id='fig-{f.id}'{wide}>"
                         f"<img class='figure' alt='{esc(f.caption)}' "
                         f"src='data:image/png;base64,{data}'><figcaption>{esc(f.caption)} "
                         f"(figures/{f.id}.png)</figcaption></figure>")
        parts.append("</div>")
        for table_id, caption, frame in s.tables:
            parts.append(f"<details{' open' if len(frame) <= 12 else ''}><summary>{esc(caption)}"
                         f" — tables/{table_id}.csv</summary>{_table_html(frame)}</details>")
        parts.append("</section>")
    parts.append("<section id='appendix'><h2>Run metadata</h2>")
    for heading, block in appendix:
        parts.append(f"<h3 style='font-size:15px'>{esc(heading)}</h3>{block}")
    parts.append("</section></main>")
    parts.append(_CHECK)
    parts.append("</body></html>")
    return "\n".join(parts)
