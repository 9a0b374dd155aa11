"""Tables for people (console, markdown) and scripts (flattened CSV)."""
import pandas as pd


def flatten(row):
    out = {}
    from . import COLUMNS

    for key in COLUMNS:
        v = row.get(key)
        if isinstance(v, dict):
            for k2, v2 in v.items():
                out[f"{key}_{k2}"] = v2
        else:
            out[key] = v
    return out


def frame(results):
    return pd.DataFrame([flatten(r) for r in results["rows"]])


def _f(v, fmt):
    return "" if v is None or v == "" else format(v, fmt)


def _x(v):
    return _f(v, ".2f") + "x" if v is not None else ""


def display_rows(results):
    """(headers, rows of strings) shared by the console and markdown tables."""
    kind = results["settings"]["kind"]
    if kind == "classification":
        headers = ["variant", "provider", "status", "accuracy", "drop", "agree", "p50 ms", "p90 ms", "p99 ms",
                   "n", "speedup", "thru/s", "peak MiB", "model MiB", "size MiB", "size red."]
    else:
        headers = ["variant", "provider", "status", "ppl", "ppl Δ%", "agree", "TTFT p50 ms", "decode tok/s",
                   "speedup", "weights MiB", "peak MiB", "model MiB", "size MiB", "size red."]
    robust = kind == "classification" and any(r.get("robust_accuracy") is not None for r in results["rows"])
    if robust:  # compare --robustness-rate: accuracy on the same rows with typos
        headers[5:5] = ["typo acc", "typo drop"]
    out = []
    for r in results["rows"]:
        if r["status"] != "ok":
            out.append([r["variant"], r["provider"], r["status"]] + [""] * (len(headers) - 3))
            continue
        lat = r.get("latency_ms") or {}
        red = _f(r.get("size_reduction"), ".2f")
        common_tail = [_f(r.get("size_mb"), ".1f"), red + "x" if red else ""]
        if kind == "classification":
            out.append([r["variant"], r["provider"], "ok", _f(r.get("accuracy"), ".4f"),
                        _f(r.get("accuracy_drop"), "+.4f"), _f(r.get("agreement"), ".3f"),
                        _f(lat.get("p50"), ".2f"), _f(lat.get("p90"), ".2f"), _f(lat.get("p99"), ".2f"),
                        str(lat.get("n", "")), _x(r.get("speedup")),
                        _f(r.get("throughput_per_s"), ".1f"), _f(r.get("peak_memory_mb"), ".0f"),
                        _f(r.get("peak_increment_mb"), ".0f")] + common_tail)
            if robust:
                out[-1][5:5] = [_f(r.get("robust_accuracy"), ".4f"), _f(r.get("robust_drop"), "+.4f")]
        else:
            out.append([r["variant"], r["provider"], "ok", _f(r.get("perplexity"), ".2f"),
                        _f(r.get("perplexity_change_pct"), "+.2f"), _f(r.get("agreement"), ".3f"),
                        _f((r.get("ttft_ms") or {}).get("p50"), ".1f"),
                        _f(r.get("decode_tokens_per_s"), ".1f"), _x(r.get("speedup")),
                        _f(r.get("weight_memory_mb"), ".0f"), _f(r.get("peak_memory_mb"), ".0f"),
                        _f(r.get("peak_increment_mb"), ".0f")] + common_tail)
    return headers, out


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
    return rich_table(f"qonnx compare: {results['settings']['model']}  (reference {results['reference']})",
                      headers, rows)


def markdown(results):
    headers, rows = display_rows(results)
    s = results["settings"]
    env = results["environment"]
    lines = [f"# qonnx compare: {s['model']}", "",
             f"Task: {s['task']}. Data: {s['dataset_source']}. Reference: {results['reference']}.",
             f"Machine: {env['cpu']['model']} ({env['cpu']['cores']} cores; {', '.join(env['cpu']['flags'])}), "
             f"GPU: {(env.get('gpu') or {}).get('name', 'none')}. "
             + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    notes = [f"- {r['variant']} on {r['provider']}: {r['note']}" for r in results["rows"]
             if r.get("note") and r["status"] == "ok"]
    placement = [f"- {r['variant']} on {r['provider']}: {r['placement']['cpu_nodes']} nodes on the CPU "
                 f"({r['placement']['cpu_op_types']})" for r in results["rows"] if r.get("placement")]
    if reasons(results):
        lines += ["", "## Rows not measured", ""] + [f"- {x}" for x in reasons(results)]
    lines += ["", "## How these were measured", ""] + [f"- {n}" for n in results["method"]]
    if notes:
        lines += ["", "## Known unaccelerated numbers", ""] + notes
    if placement:
        lines += ["", "## Node placement under CUDA", ""] + placement
    return "\n".join(lines) + "\n"
