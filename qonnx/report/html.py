"""report.html: one self-contained page per run (or several runs side by side).

Everything is inline (CSS, the sorting script, the plots as data URIs, the trade-off chart as SVG
with hover titles), so the file opens offline, on an air-gapped machine or as a CI artifact.
Every figure comes from results.json; nothing here measures.
"""
import base64
import json
import math
from html import escape
from pathlib import Path

from qonnx.report import deploy, summary, tables
from qonnx.report.columns import display, span
from qonnx.report.columns import value as get

GENERATOR = "qonnx report"
PLOTS = ("latency.png", "decode.png", "accuracy.png", "size.png", "memory.png", "curves.png")

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1500px;color:#1c1c1c;padding:0 16px}
h1{font-size:22px;margin-bottom:2px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.sub{color:#555}.ship{background:#eef6ee;border:1px solid #9c9;padding:10px 14px;border-radius:6px}
.ship.none{background:#fbeeee;border-color:#d99}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;user-select:none}th.sorted-asc::after{content:" ▲"}
th.sorted-desc::after{content:" ▼"}td.t,th.t{text-align:left}tr.failed td{color:#a33}
tr.skipped td{color:#888}.better{background:#e3f4e3}.worse{background:#f8e0e0}
img{max-width:100%;border:1px solid #eee;margin:6px 0}.plots{display:grid;
grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:10px}
details{margin:4px 0}code,pre{font-size:12px;background:#f6f6f6}pre{padding:8px;overflow:auto}
svg text{font-size:11px;font-family:system-ui,sans-serif}.wide{overflow-x:auto}
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th, col){
    th.addEventListener('click', function(){
      var asc = !th.classList.contains('sorted-asc');
      table.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc');});
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      var body = table.tBodies[0], rows = Array.from(body.rows);
      function key(r){var c = r.cells[col], v = c.getAttribute('data-v');
        if (v === null || v === '') return null; var n = Number(v); return isNaN(n) ? v : n;}
      rows.sort(function(a, b){var x = key(a), y = key(b);
        if (x === null) return y === null ? 0 : 1; if (y === null) return -1;
        var d = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
        return asc ? d : -d;});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
"""


def fmt(v, spec):
    if spec == "range":
        return span(v)
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return "" if v is None else escape(str(v))
    return format(int(v), spec) if spec == "d" else format(v, spec)


def columns(kind, rows=()):
    return [(c.key, c.long, c.fmt) for c in display(kind, rows)]


def _cell(row, key, spec):
    v = get(row, key)
    cls = ' class="t"' if spec == "s" else ""
    data = "" if v is None else escape(str(v[0] if isinstance(v, list) and v else v), quote=True)
    return f'<td{cls} data-v="{data}">{fmt(v, spec) if spec != "s" else escape(str(v or ""))}</td>'


def table(doc):
    cols = columns(doc["settings"]["kind"], doc["rows"])
    head = "".join(f'<th{" class=t" if s == "s" else ""}>{escape(h)}</th>' for _, h, s in cols)
    body = "".join(f'<tr class="{escape(r["status"])}" data-row="{escape(r["variant"])}@{escape(r["provider"])}">'
                   + "".join(_cell(r, k, s) for k, _, s in cols) + "</tr>" for r in doc["rows"])
    return (f'<div class="wide"><table class="sortable" id="results"><thead><tr>{head}</tr></thead>'
            f'<tbody>{body}</tbody></table></div>')


def _img(path):
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def ticks(lo, hi, count=5):
    """Round tick values inside [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step) + 1)]


def tradeoff_svg(doc, width=760, height=420):
    """Quality against speed, one point per ok row, hover for its figures (inline SVG)."""
    lm = doc["settings"]["kind"] in ("lm", "seq2seq")
    xkey, xlabel = ("decode_tokens_per_s", "decode tokens/s (higher is faster)") if lm else \
                   ("latency_ms.p50", "latency p50 at batch 1, ms (lower is faster)")
    ykey, ylabel = ("perplexity", "perplexity (lower is better)") if lm else ("accuracy", "accuracy")
    if doc["settings"]["kind"] == "embeddings":
        ykey, ylabel = "topk_overlap", "top-10 overlap with the reference"
    if doc["settings"]["kind"] in ("tokens", "qa"):
        ykey, ylabel = "f1", "F1 (entity level)" if doc["settings"]["kind"] == "tokens" else "SQuAD F1"
    if doc["settings"]["kind"] == "seq2seq":
        ykey, ylabel = "exact_match", "exact match with the reference's text"
    pts = [(get(r, xkey), get(r, ykey), r) for r in doc["rows"] if r["status"] == "ok"]
    pts = [p for p in pts if isinstance(p[0], (int, float)) and isinstance(p[1], (int, float))]
    if not pts:
        return ""
    left, right, top, bottom = 70, 220, 20, 50
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]

    def span(vals):
        lo, hi = min(vals), max(vals)
        pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1
        return lo - pad, hi + pad

    (x0, x1), (y0, y1) = span(xs), span(ys)
    sx = lambda v: left + (v - x0) / (x1 - x0) * (width - left - right)
    sy = lambda v: height - bottom - (v - y0) / (y1 - y0) * (height - top - bottom)
    parts = [f'<svg id="tradeoff" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(ylabel)} against speed">',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             'fill="#fafafa" stroke="#ccc"/>']
    for xv in ticks(x0, x1):
        parts.append(f'<text x="{sx(xv):.1f}" y="{height - bottom + 16}" text-anchor="middle">{xv:g}</text>')
    for yv in ticks(y0, y1):
        parts.append(f'<text x="{left - 6}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:g}</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">{escape(xlabel)}</text>')
    parts.append(f'<text transform="translate(14,{(top + height - bottom) / 2}) rotate(-90)" '
                 f'text-anchor="middle">{escape(ylabel)}</text>')
    palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
               "#CCB974", "#64B5CD", "#1B9E77", "#D95F02", "#7570B3", "#E7298A", "#66A61E", "#A6761D"]
    # (16 colours: an LM run with the genai rows has 12)
    for i, (x, y, r) in enumerate(pts):
        c = palette[i % len(palette)]
        name = f'{r["variant"]} ({r["provider"]})'
        tip = f'{name}: {ylabel.split(" (")[0]} {y:.4g}, {xlabel.split(",")[0].split(" (")[0]} {x:.4g}'
        shape = (f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="6"' if r.get("runtime") == "torch" else
                 f'<rect x="{sx(x) - 5.5:.1f}" y="{sy(y) - 5.5:.1f}" width="11" height="11"')
        parts.append(f'<g class="point" data-row="{escape(name)}"><title>{escape(tip)}</title>'
                     f'{shape} fill="{c}" stroke="#222" stroke-width="0.6"/></g>')
        ly = top + 14 + 16 * i
        parts.append(f'<rect x="{width - right + 12}" y="{ly - 9}" width="10" height="10" fill="{c}"/>'
                     f'<text x="{width - right + 28}" y="{ly}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _env(env):
    cpu = env.get("cpu") or {}
    gpu = env.get("gpu") or {}
    items = [("CPU", f'{cpu.get("model", "?")} ({cpu.get("arch", "?")}, {cpu.get("cores", "?")} cores)'),
             ("CPU flags", ", ".join(cpu.get("flags") or []) or "none of note"),
             ("GPU", gpu.get("name") or gpu.get("error") or "none"),
             ("ORT providers", ", ".join(env.get("onnxruntime_providers") or [])),
             ("Versions", ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items()))]
    return "<table>" + "".join(f'<tr><td class="t">{escape(k)}</td><td class="t">{escape(str(v))}</td></tr>'
                               for k, v in items) + "</table>"


def _artifacts(doc):
    out = []
    for r in doc["rows"]:
        art = r.get("artifact")
        if not art:
            continue
        manifest = Path(art) / "manifest.json"
        body = ""
        if manifest.is_file():
            try:
                m = json.loads(manifest.read_text())
                shown = {k: m[k] for k in ("method", "key", "created", "source", "settings", "parity", "versions") if k in m}
                body = f"<pre>{escape(json.dumps(shown, indent=1, default=str)[:4000])}</pre>"
            except (OSError, ValueError) as e:
                body = f"<p>manifest.json unreadable: {escape(str(e))}</p>"
        out.append(f'<details><summary>{escape(r["variant"])} on {escape(r["provider"])}: '
                   f'<code>{escape(art)}</code></summary>{body or "<p>no manifest.json (a model folder)</p>"}'
                   "</details>")
    return "".join(out)


def _lists(title, items):
    return f"<h2>{escape(title)}</h2><ul>" + "".join(f"<li>{escape(x)}</li>" for x in items) + "</ul>" if items else ""


def _page(title, body):
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="generator" content="{GENERATOR}">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}"
            f"<script>{SORT_SCRIPT}</script></body></html>")


def _summary(doc):
    pick = summary.recommend(doc)
    cls = "ship" if pick["row"] else "ship none"
    warn = "".join(f'<p class="noise"><b>{escape(w)}</b></p>' for w in summary.noise(doc))
    edge = deploy.sentence(doc, pick)
    edge = f'<p id="deployable"><b>{escape(edge)}</b></p>' if edge else ""
    return f'<div class="{cls}" id="summary"><b>Ship this:</b> {escape(pick["text"])}{edge}{warn}</div>'


def render(doc, run_dir) -> str:
    """The page of one run (a results document as results.json holds it)."""
    s, run_dir = doc["settings"], Path(run_dir)
    head = (f"<h1>qonnx compare: {escape(str(s.get('model')))}</h1>"
            f'<p class="sub">Task {escape(str(s.get("task")))}; data {escape(str(s.get("dataset_source")))}; '
            f'reference {escape(str(doc.get("reference")))}; run folder <code>{escape(str(run_dir.resolve()))}</code></p>')
    notes = [f'{r["variant"]} on {r["provider"]}: {r["note"]}' for r in doc["rows"] if r.get("note") and r["status"] == "ok"]
    placement = [f'{r["variant"]} on {r["provider"]}: {r["placement"].get("cpu_nodes", "?")} nodes on the CPU '
                 f'({r["placement"].get("cpu_op_types", "?")})' for r in doc["rows"] if r.get("placement")]
    plots = "".join(_img(run_dir / p) for p in PLOTS if (run_dir / p).is_file())
    body = [head, _summary(doc), "<h2>Results</h2><p class=sub>Click a column to sort. Sizes and memory in MiB "
            "(2<sup>20</sup> bytes); ratios against the reference or torch-fp32 on the same provider.</p>",
            table(doc), _lists("Deployable? (the edge gate, compare --targets)", deploy.lines(doc)),
            _lists("Rows not measured", tables.reasons(doc)),
            "<h2>Quality against speed</h2><p class=sub>Hover a point for its figures; squares are ONNX "
            "Runtime, circles PyTorch.</p>", tradeoff_svg(doc),
            f'<h2>Plots</h2><div class="plots">{plots}</div>' if plots else "",
            _lists("How these were measured", doc.get("method") or []),
            _lists("Known unaccelerated numbers", notes), _lists("Node placement under CUDA", placement),
            "<h2>Environment</h2>", _env(doc.get("environment") or {}),
            "<h2>Artifacts</h2>", _artifacts(doc),
            "<h2>Settings</h2>", f"<pre>{escape(json.dumps(s, indent=1, default=str))}</pre>"]
    return _page(f"qonnx: {s.get('model')}", "".join(body))


def write(run_dir, doc) -> Path:
    path = Path(run_dir) / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(render(doc, run_dir))
    tmp.replace(path)
    return path


def render_many(named_docs) -> str:
    """Several runs side by side: each (variant, provider) with its figures per run, each run's
    change against the first marked better or worse where it passes a noise threshold."""
    names = [n for n, _ in named_docs]
    kinds = {d["settings"]["kind"] for _, d in named_docs}
    kind = kinds.pop() if len(kinds) == 1 else None
    measures = summary.KEY_MEASURES[kind] if kind else []
    keys = []
    for _, d in named_docs:
        keys += [(r["variant"], r["provider"]) for r in d["rows"] if (r["variant"], r["provider"]) not in keys]
    head = '<th class="t">variant</th><th class="t">provider</th>' + "".join(
        f"<th>{escape(label)}<br>{escape(n)}</th>" for _, label, _, _, _ in measures for n in names)
    body = []
    for v, p in keys:
        rows = [next((r for r in d["rows"] if (r["variant"], r["provider"]) == (v, p)), None) for _, d in named_docs]
        cells = [f'<td class="t">{escape(v)}</td><td class="t">{escape(p)}</td>']
        for key, _, spec, better, threshold in measures:
            for i, r in enumerate(rows):
                val = get(r, key) if r and r["status"] == "ok" else None
                mark = summary.row_change(rows[0], r, key, better, threshold) if i else ""
                text = fmt(val, spec) if val is not None else escape(r["status"] if r else "absent")
                cells.append(f'<td class="{mark}" data-v="{"" if val is None else val}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    envs = "".join(f"<h3>{escape(n)}</h3>{_env(d.get('environment') or {})}" for n, d in named_docs)
    diff = summary.settings_diff([d["settings"] for _, d in named_docs], names)
    page = [f"<h1>qonnx: {len(names)} runs side by side</h1>",
            "<p class=sub>Each run's figure against the first run's: green better, red worse, where the change "
            f"passes {summary.THRESHOLDS_TEXT}.</p>",
            "" if kind else "<p><b>These runs measure different kinds of task; only rows are listed.</b></p>",
            "" if len({str(d["settings"].get("dataset_selection")) for _, d in named_docs}) == 1 else
            '<p id="rows-differ"><b>These runs scored different rows (see the settings below): their accuracy '
            "or perplexity differences are not quantization or runtime effects alone.</b></p>",
            f'<div class="wide"><table class="sortable" id="runs"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>',
            _lists("Settings that differ", diff), "<h2>Environments</h2>", envs]
    return _page("qonnx: runs side by side", "".join(page))
