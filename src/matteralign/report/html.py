"""One self-contained HTML page: interactive plotly figures, static PNGs, sortable tables.

The page makes no network request. plotly.js is embedded once, gzip-compressed and base64-encoded
(4.8 MB of JavaScript become about 2 MB), and unpacked by the browser's ``DecompressionStream``;
the interactive figures' JSON is packed the same way in one block (about a sixth of its size), and
each figure is drawn when it scrolls into view, so a page with many figures opens fast. Figures
without an interactive version are inlined as base64 PNG. An inline script records on ``<body>``
how many figures decoded and how many plots were drawn, so a headless browser can check the page.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["ModelPicker", "ReportFigure", "ReportSection", "render_html"]


@dataclass
class ReportFigure:
    """A figure of the page.

    Attributes
    ----------
    id : str
        Element id in the page (``fig-<id>``).
    caption : str
        What a number means and which direction is better.
    png : bytes, optional
        Static rendering, inlined when there is no interactive version.
    plotly : str, optional
        A plotly figure as JSON (``fig.to_json()``); drawn in the page when given.
    wide : bool
    static : str, optional
        File stem under figures/ of the static PNG and SVG export of this figure's content.
    """

    id: str
    caption: str
    png: bytes | None = None
    plotly: str | None = None
    wide: bool = False
    static: str | None = None


@dataclass
class ReportSection:
    """One analysis of the report."""

    key: str
    title: str
    intro: str
    figures: list[ReportFigure] = field(default_factory=list)
    tables: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)  # (id, caption, df)
    notes: list[str] = field(default_factory=list)


@dataclass
class ModelPicker:
    """One model's row across datasets: for each dataset, its score to every other model.

    Attributes
    ----------
    label : str
        What the numbers are (e.g. "calibrated cknna-k25" or "cknna-k25 (raw)").
    higher_is_more_similar : bool
    rows : dict
        dataset -> model -> other model -> score (rounded).
    """

    label: str
    higher_is_more_similar: bool
    rows: dict[str, dict[str, dict[str, float]]]


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;
background:#fafafa;font-size:14px}
header{background:#243447;color:#fff;padding:16px 32px}
header h1{margin:0 0 4px 0;font-size:22px} header p{margin:2px 0;color:#d8e0ea;font-size:13px}
header ul{margin:4px 0 0 18px;padding:0;color:#d8e0ea;font-size:13px}
nav{padding:8px 32px;background:#e9eef3;font-size:13px;position:sticky;top:0;z-index:5}
nav a{margin-right:14px;color:#243447;text-decoration:none} nav a:hover{text-decoration:underline}
main{padding:8px 32px 40px 32px;max-width:1400px}
section{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:12px 20px;margin:18px 0}
h2{font-size:18px;margin:6px 0 8px 0} p.intro{color:#444;max-width:1000px}
#summary li{margin:3px 0} #summary ul{max-width:1100px}
div.figs{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:8px 0;flex:1 1 560px;max-width:100%;min-width:0} figure.wide{flex-basis:100%}
figure img{max-width:100%;height:auto;border:1px solid #eee}
div.plot{width:100%;min-height:200px}
figcaption{font-size:13px;color:#444;max-width:900px}
figcaption a{color:#3b6ea5}
.note{background:#fff6e0;border-left:4px solid #e0a800;padding:6px 10px;margin:6px 0;font-size:13px}
.caveat{background:#fdecea;border-left:4px solid #d1495b;padding:6px 10px;margin:6px 0}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right} th{background:#f0f3f6}
td:first-child,th:first-child{text-align:left}
table.sortable th{cursor:pointer;user-select:none} table.sortable th:hover{background:#dde4ec}
th[data-dir='asc']::after{content:' ▲'} th[data-dir='desc']::after{content:' ▼'}
details{margin:6px 0} summary{cursor:pointer;font-size:13px;color:#243447}
pre{background:#f4f6f8;padding:8px;font-size:12px;overflow-x:auto}
#picker select{font-size:14px;padding:2px 4px}
"""

# Unpack plotly.js, then draw each plot when it comes near the viewport.
_PLOTLY_LOADER = """
<script>
(function () {
  var failed = function (why) {
    document.querySelectorAll('div.plot').forEach(function (d) {
      d.textContent = 'interactive figure unavailable (' + why + '); see figures/ for the PNG';
    });
    document.body.setAttribute('data-plotly', 'failed');
  };
  if (!window.DecompressionStream) { failed('this browser cannot unpack plotly.js'); return; }
  var unpack = function (id) {  // base64 gzip text of a script element -> Promise of the text
    var bin = atob(document.getElementById(id).textContent.trim());
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text();
  };
  window.matteralignPlotly = unpack('plotly-gz').then(function (code) {
    window.PlotlyConfig = {MathJaxConfig: 'local'};
    var s = document.createElement('script');
    s.textContent = code;
    document.head.appendChild(s);
    document.body.setAttribute('data-plotly', 'ready');
    return window.Plotly;
  });
  var figures = unpack('figures-gz').then(JSON.parse);
  // one plot per task, so the browser paints between plots and the first one shows early
  var rendered = 0, queue = [], busy = false;
  var pump = function () {
    if (busy || !queue.length) { return; }
    busy = true;
    var div = queue.shift();
    Promise.all([window.matteralignPlotly, figures]).then(function (ready) {
      var Plotly = ready[0], fig = ready[1][div.id];
      var config = {displaylogo: false, responsive: true, displayModeBar: 'hover',
                    toImageButtonOptions: {format: 'svg', filename: div.id}};
      return Plotly.newPlot(div, fig.data, fig.layout || {}, config);
    }).then(function () {
      div.setAttribute('data-state', 'drawn');
      rendered += 1;
      document.body.setAttribute('data-plots-rendered', String(rendered));
    }).catch(function (e) { div.textContent = 'figure failed: ' + e; console.error(e); })
      .then(function () { busy = false; setTimeout(pump, 0); });
  };
  var draw = function (div) {
    if (div.getAttribute('data-state')) { return; }
    div.setAttribute('data-state', 'queued');
    queue.push(div);
    pump();
  };
  window.matteralignDraw = draw;
  var plots = document.querySelectorAll('div.plot');
  document.body.setAttribute('data-plots-total', String(plots.length));
  document.body.setAttribute('data-plots-rendered', '0');
  if (window.IntersectionObserver) {
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) { seen.unobserve(e.target);
                                                              draw(e.target); } });
    }, {rootMargin: '800px 0px'});
    plots.forEach(function (d) { seen.observe(d); });
  } else { plots.forEach(draw); }
  window.matteralignPlotly.catch(function (e) { failed(String(e)); });
})();
</script>
"""

_TABLES_AND_CHECK = """
<script>
(function () {
  var key = function (text) {
    var t = text.trim().replace(/,/g, '');
    var v = parseFloat(t);
    return (t !== '' && !isNaN(v) && /^[-+]?[0-9.]/.test(t)) ? v : null;
  };
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.querySelectorAll('thead th');
    heads.forEach(function (th, col) {
      th.title = 'click to sort';
      th.addEventListener('click', function () {
        var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
        heads.forEach(function (h) { h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent, y = b.cells[col].textContent;
          var kx = key(x), ky = key(y), out;
          if (kx !== null && ky !== null) { out = kx - ky; }
          else if (kx !== null) { out = -1; } else if (ky !== null) { out = 1; }
          else { out = x.localeCompare(y); }
          return dir === 'asc' ? out : -out;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var picker = document.getElementById('picker-data');
  if (picker) {
    var data = JSON.parse(picker.textContent);
    var select = document.getElementById('picker-model');
    var out = document.getElementById('picker-table');
    var show = function () {
      var model = select.value, others = [], rows = [];
      Object.keys(data.rows).forEach(function (d) {
        var row = data.rows[d][model];
        if (!row) { return; }
        Object.keys(row).forEach(function (o) { if (others.indexOf(o) < 0) { others.push(o); } });
        rows.push(d);
      });
      var esc = function (s) { var e = document.createElement('span'); e.textContent = s;
                               return e.innerHTML; };
      var h = '<table><thead><tr><th>dataset</th><th>mean</th>';
      others.forEach(function (o) { h += '<th>' + esc(o) + '</th>'; });
      h += '</tr></thead><tbody>';
      rows.forEach(function (d) {
        var row = data.rows[d][model], vals = Object.keys(row).map(function (o) { return row[o]; });
        var mean = vals.reduce(function (a, b) { return a + b; }, 0) / vals.length;
        h += '<tr><td>' + esc(d) + '</td><td><b>' + mean.toFixed(3) + '</b></td>';
        others.forEach(function (o) {
          var v = row[o];
          if (v === undefined || v === null) { h += '<td>–</td>'; return; }
          var t = Math.max(0, Math.min(1, data.higher ? v : 1 - v));
          h += '<td style="background:hsl(210,60%,' + (97 - 40 * t).toFixed(0) + '%)">' +
               v.toFixed(3) + '</td>';
        });
        h += '</tr>';
      });
      out.innerHTML = rows.length ? h + '</tbody></table>' : '<p>no scores for this model</p>';
    };
    select.addEventListener('change', show);
    show();
  }
  window.addEventListener('load', function () {
    var imgs = document.querySelectorAll('img.figure');
    var ok = 0;
    imgs.forEach(function (im) { if (im.complete && im.naturalWidth > 0) { ok += 1; } });
    document.body.setAttribute('data-figures-total', String(imgs.length));
    document.body.setAttribute('data-figures-loaded', String(ok));
  });
})();
</script>
"""


def _json_script(element_id: str, payload: str) -> str:
    """A JSON payload in a non-executed script element (``</`` escaped so it cannot close it)."""
    safe = payload.replace("</", "<\\/")
    return f"<script type='application/json' id='{element_id}'>{safe}</script>"


def _table_html(frame: pd.DataFrame, max_rows: int = 60) -> str:
    """A sortable HTML table of the first ``max_rows`` rows (numbers to 4 significant digits)."""
    shown = frame.head(max_rows)
    body = shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="–", border=0,
                         escape=True, classes="sortable")
    more = (f"<p class='intro'>first {max_rows} of {len(frame)} rows; the full table is in "
            "tables/</p>" if len(frame) > max_rows else "")
    return body + more


def _packed(text: str) -> str:
    """``text`` gzip-compressed and base64-encoded, for the page to unpack."""
    return base64.b64encode(gzip.compress(text.encode(), 9, mtime=0)).decode()


def _plotly_bundle() -> str:
    """plotly.js (the version plotly.py ships), packed."""
    from plotly.offline import get_plotlyjs

    return _packed(get_plotlyjs())


def _figure_html(f: ReportFigure) -> str:
    esc = html.escape
    wide = " class='wide'" if f.wide else ""
    files = (f" Static: <a href='figures/{f.static}.png'>PNG</a>, "
             f"<a href='figures/{f.static}.svg'>SVG</a>." if f.static else "")
    caption = f"<figcaption>{esc(f.caption)}{files}</figcaption>"
    if f.plotly is not None:
        return (f"<figure id='fig-{f.id}'{wide}><div class='plot' id='plot-{f.id}'></div>"
                f"{caption}</figure>")
    data = base64.b64encode(f.png or b"").decode()
    return (f"<figure id='fig-{f.id}'{wide}><img class='figure' alt='{esc(f.caption)}' "
            f"src='data:image/png;base64,{data}'>{caption}</figure>")


def _picker_html(picker: ModelPicker) -> str:
    models = sorted({m for rows in picker.rows.values() for m in rows})
    options = "".join(f"<option>{html.escape(m)}</option>" for m in models)
    payload = json.dumps({"higher": picker.higher_is_more_similar, "rows": picker.rows})
    return (f"<section id='picker'><h2>One model across datasets</h2><p class='intro'>Pick a "
            f"model: its {html.escape(picker.label)} to every other model on each dataset "
            "(darker = more similar; – = not scored together).</p>"
            f"<label>model <select id='picker-model'>{options}</select></label>"
            f"<div id='picker-table'></div>{_json_script('picker-data', payload)}</section>")


def render_html(
    title: str,
    header: list[str],
    sections: list[ReportSection],
    appendix: list[tuple[str, str]],
    summary: list[str] | None = None,
    picker: ModelPicker | None = None,
) -> str:
    """The whole page.

    Parameters
    ----------
    title : str
    header : list of str
        Lines under the title (plain text; escaped here).
    sections : list of ReportSection
    appendix : list of (heading, html) pairs
        Raw HTML blocks (already escaped) for the run-metadata appendix.
    summary : list of str, optional
        Raw HTML bullet points (already escaped) answering the study's question in numbers.
    picker : ModelPicker, optional
    """
    esc = html.escape
    interactive = any(f.plotly is not None for s in sections for f in s.figures)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
             f"<header><h1>{esc(title)}</h1>"]
    parts.append(f"<p>{esc(header[0])}</p>" if header else "")
    if len(header) > 1:
        parts.append("<ul>" + "".join(f"<li>{esc(line)}</li>" for line in header[1:]) + "</ul>")
    parts.append("</header><nav>")
    if summary:
        parts.append("<a href='#summary'>Summary</a>")
    if picker is not None:
        parts.append("<a href='#picker'>Model picker</a>")
    parts += [f"<a href='#{s.key}'>{esc(s.title)}</a>" for s in sections]
    parts.append("<a href='#appendix'>Run metadata</a></nav><main>")
    if summary:
        parts.append("<section id='summary'><h2>Summary</h2><ul>"
                     + "".join(f"<li>{line}</li>" for line in summary) + "</ul></section>")
    if picker is not None:
        parts.append(_picker_html(picker))
    for s in sections:
        parts.append(f"<section id='{s.key}' data-analysis='{s.key}'><h2>{esc(s.title)}</h2>")
        parts.append(f"<p class='intro'>{esc(s.intro)}</p>")
        parts += [f"<div class='note'>{esc(n)}</div>" for n in s.notes]
        parts.append("<div class='figs'>")
        parts += [_figure_html(f) for f in s.figures]
        parts.append("</div>")
        for table_id, caption, frame in s.tables:
            parts.append(f"<details{' open' if len(frame) <= 12 else ''}><summary>{esc(caption)}"
                         f" — tables/{table_id}.csv</summary>{_table_html(frame)}</details>")
        parts.append("</section>")
    parts.append("<section id='appendix'><h2>Run metadata</h2>")
    for heading, block in appendix:
        parts.append(f"<h3 style='font-size:15px'>{esc(heading)}</h3>{block}")
    parts.append("</section></main>")
    if interactive:
        payload = ",".join(f"{json.dumps('plot-' + f.id)}:{f.plotly}" for sec in sections
                           for f in sec.figures if f.plotly is not None)
        parts.append(f"<script type='application/octet-stream' id='plotly-gz'>{_plotly_bundle()}"
                     "</script>")
        parts.append(f"<script type='application/octet-stream' id='figures-gz'>"
                     f"{_packed('{' + payload + '}')}</script>")
        parts.append(_PLOTLY_LOADER)
    parts.append(_TABLES_AND_CHECK)
    parts.append("</body></html>")
    return "\n".join(parts)
