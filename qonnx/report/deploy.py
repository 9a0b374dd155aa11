"""The 'Deployable?' part of a compare report (compare --targets): each ONNX row's edge verdicts
with the reason that set each, and which row is accurate, fast and deployable at once."""
from qonnx.report.summary import within_budget

ORDER = {"pass": 0, "warn": 1, "fail": 2}


def gated(doc) -> list:
    """The ok rows the edge gate checked (not the PyTorch rows' n/a)."""
    return [r for r in doc["rows"] if r["status"] == "ok" and r.get("targets")
            and any(t.get("verdict") in ORDER for t in r["targets"].values())]


def why(t) -> str:
    """The first sentence that set a target's verdict (its first FAIL, else its first WARN)."""
    for level in ("FAIL", "WARN"):
        hit = next((x for x in t.get("reasons") or [] if x.startswith(level)), None)
        if hit:
            return hit.split(": ", 1)[-1].rstrip(".")
    return ""


def lines(doc) -> list:
    """One line per gated row: each target's verdict, how it was checked, and why where it is not a pass."""
    out = []
    for r in gated(doc):
        parts = []
        for name, t in r["targets"].items():
            reason = why(t) if t.get("verdict") != "pass" else ""
            parts.append(f"{name} {t.get('verdict')} ({t.get('how', '')}){': ' + reason if reason else ''}")
        out.append(f"{r['variant']} on {r['provider']}: " + "; ".join(parts))
    return out


def speed_key(doc):
    if doc["settings"]["kind"] == "lm":
        return lambda r: -(r.get("decode_tokens_per_s") or 0)
    return lambda r: (r.get("latency_ms") or {}).get("p50") or float("inf")


def sentence(doc, pick) -> str:
    """Which row is accurate, fast and deployable ('' where the run set no --targets)."""
    rows = gated(doc)
    if not rows:
        return ""
    names = ", ".join(dict.fromkeys(n for r in rows for n in r["targets"]))
    best = pick.get("row")
    if best and best.get("targets") and all(t.get("verdict") in ("pass", "warn") for t in best["targets"].values()):
        return f"Deployable: {best['variant']} passes or warns on every edge target ({names})."
    within, _ = within_budget(doc)
    ok = [r for r in within if r in rows and all(t.get("verdict") != "fail" for t in r["targets"].values())]
    head = ""
    if best:
        failed = [n for n, t in (best.get("targets") or {}).items() if t.get("verdict") == "fail"]
        head = (f"{best['variant']} is not deployable on {', '.join(failed)}. " if failed else
                f"{best['variant']} has no edge verdicts (a PyTorch row: no ONNX file to deploy). ")
    if not ok:
        return (head + f"No row within the quality budget passes every edge target ({names}); each row's reasons are "
                       f"listed. {per_target(doc, [r for r in within if r in rows])}")
    fast = min(ok, key=speed_key(doc))
    speed = (f"{fast.get('decode_tokens_per_s') or 0:.1f} decode tokens/s" if doc["settings"]["kind"] == "lm" else
             f"p50 {(fast.get('latency_ms') or {}).get('p50') or 0:.2f} ms")
    return (head + f"Accurate, fast and deployable: {fast['variant']} on {fast['provider']} ({speed}), the fastest "
                   f"row within the quality budget that no edge target ({names}) fails.")


def per_target(doc, rows) -> str:
    """Per target, the fastest of rows that passes or warns on it, or 'none'."""
    parts = []
    for name in dict.fromkeys(n for r in rows for n in r["targets"]):
        fit = [r for r in rows if (r["targets"].get(name) or {}).get("verdict") in ("pass", "warn")]
        parts.append(f"{name}: {min(fit, key=speed_key(doc))['variant'] if fit else 'none'}")
    return f"Fastest within the budget per target: {'; '.join(parts)}." if parts else ""
