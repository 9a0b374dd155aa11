"""An edge gate's document on the console: one table row per target, then each target's reasons."""
from rich.table import Table

COLOURS = {"pass": "green", "warn": "yellow", "fail": "red"}
COLUMNS = ("target", "verdict", "how", "p50 ms", "CPU EP p50 ms", "peak MiB", "parity max|diff|", "partitions",
           "on accelerator", "unsupported ops")


def _num(v, fmt=".2f"):
    return "" if v is None else format(v, fmt)


def table(doc) -> Table:
    threads = str(doc["threads"])
    t = Table(title=f"edge targets (latency: batch 1, {threads} thread(s), this machine)")
    for col in COLUMNS:
        t.add_column(col)
    for name, r in doc["targets"].items():
        lat = (r.get("latency_ms") or {}).get(threads, {}).get("p50")
        cpu = (r.get("cpu_ep_latency_ms") or {}).get(threads, {}).get("p50")
        parity = (r.get("parity") or {}).get("max_abs_diff")
        share = f"{r['supported_pct']:.1f} % of nodes" if r.get("supported_pct") is not None else ""
        ops = ", ".join(r["unsupported_ops"][:6]) + (" ..." if len(r["unsupported_ops"]) > 6 else "")
        t.add_row(name, f"[{COLOURS[r['verdict']]}]{r['verdict']}[/]", r["how"], _num(lat), _num(cpu),
                  _num(r.get("peak_memory_mb"), ".0f"), _num(parity, ".2g"),
                  "" if r["partitions"] is None else str(r["partitions"]), share, ops)
    return t


def lines(doc) -> list:
    """What comes before the table (the model, fixed shapes) and after it (reasons, the verdict)."""
    m, fixed = doc["model"], doc["fixed_shapes"]
    head = []
    if fixed:
        head.append(f"fixed shapes {fixed['shapes']} -> {fixed['folder']}{' (reused)' if fixed['reused'] else ''}")
    head.append(f"{doc['validated']}: {m['size_mb']:.1f} MiB, opset {m['opset']}, IR {m['ir_version']}, "
                f"{len(m['ops'])} op types, dynamic inputs: {m['dynamic']}")
    tail = []
    for name, r in doc["targets"].items():
        tail.append(f"[bold]{name}[/] ({r['how']}): [{COLOURS[r['verdict']]}]{r['verdict']}[/]")
        tail += [f"  - {line}" for line in r["reasons"]]
    failed = [n for n, r in doc["targets"].items() if r["verdict"] == "fail"]
    tail.append(f"FAILED: {', '.join(failed)}" if failed else "PASSED")
    return head, tail
