"""Tables for people (console, markdown) and scripts (flattened CSV)."""
from qonnx.report import columns, deploy
from qonnx.report.summary import noise, recommend


def flatten(row):
    out = {}
    for key in columns.CSV:
        v = row.get(key)
        if key == "targets":  # an edge target's verdict: target_wasm ...
            out.update({f"target_{k}": columns.value(row, f"targets.{k}") for k in v or {}})
        elif isinstance(v, dict):
            for k2, v2 in v.items():
                out[f"{key}_{k2}"] = v2
        elif isinstance(v, list) and len(v) == 2:  # a range: speedup_range_min, speedup_range_max
            out[f"{key}_min"], out[f"{key}_max"] = v
        else:
            out[key] = v
    return out


def frame(results):
    import pandas as pd

    return pd.DataFrame([flatten(r) for r in results["rows"]])


def display_rows(results):
    """(headers, rows of strings) shared by the console and markdown tables (columns.display)."""
    cols = columns.display(results["settings"]["kind"], results["rows"])
    out = []
    for r in results["rows"]:
        if r["status"] != "ok":
            out.append([r["variant"], r["provider"], r["status"]] + [""] * (len(cols) - 3))
        else:
            out.append([columns.text(r, c) for c in cols])
    return [c.short for c in cols], out


def reasons(results):
    return [f"{r['variant']} on {r['provider']}: {r['status']}: {r.get('reason', '')}"
            for r in results["rows"] if r["status"] != "ok"]


def rich_table(title, headers, rows):
    """A console table of strings (rich), long cells folded."""
    from rich.table import Table

    table = Table(title=title)
    for h in headers:
        table.add_column(h, overflow="fold")
    for r in rows:
        table.add_row(*r)
    return table


def console(results):
    headers, rows = display_rows(results)
    return rich_table(f"qonnx compare: {results['settings'].get('model')}  (reference {results.get('reference')})",
                      headers, rows)


def _dict(value):
    return value if isinstance(value, dict) else {}


def markdown(results):
    """report.md; what results.json lacks (a file not written by compare) is shown as '?'."""
    headers, rows = display_rows(results)
    s = results["settings"]
    env = _dict(results.get("environment"))
    cpu = _dict(env.get("cpu"))
    flags = cpu.get("flags") if isinstance(cpu.get("flags"), list) else []
    lines = [f"# qonnx compare: {s.get('model', '?')}", "",
             f"Task: {s.get('task', '?')}. Data: {s.get('dataset_source', '?')}. Reference: {results.get('reference')}.",
             f"Machine: {cpu.get('model', '?')} ({cpu.get('cores', '?')} cores; {', '.join(map(str, flags))}), "
             f"GPU: {_dict(env.get('gpu')).get('name', 'none')}. "
             + ", ".join(f"{k} {v}" for k, v in _dict(env.get("versions")).items()), "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    notes = [f"- {r['variant']} on {r['provider']}: {r['note']}" for r in results["rows"]
             if r.get("note") and r["status"] == "ok"]
    placement = [f"- {r['variant']} on {r['provider']}: {r['placement'].get('cpu_nodes', '?')} nodes on the CPU "
                 f"({r['placement'].get('cpu_op_types', '?')})" for r in results["rows"] if r.get("placement")]
    if deploy.gated(results):
        lines += ["", "## Deployable?", "", deploy.sentence(results, recommend(results)), ""]
        lines += [f"- {x}" for x in deploy.lines(results)]
    if reasons(results):
        lines += ["", "## Rows not measured", ""] + [f"- {x}" for x in reasons(results)]
    warnings = noise(results)
    if warnings:
        lines += ["", "## Noise", ""] + [f"- {x}" for x in warnings]
    lines += ["", "## How these were measured", ""] + [f"- {n}" for n in results.get("method") or []]
    if notes:
        lines += ["", "## Known unaccelerated numbers", ""] + notes
    if placement:
        lines += ["", "## Node placement under CUDA", ""] + placement
    return "\n".join(lines) + "\n"
