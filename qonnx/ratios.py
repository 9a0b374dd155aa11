"""The derived figures of a row: the one place their formulas live (schema reads results through
them, report.derive fills them in, validate recomputes them). Quality against the reference; speed
and memory against torch-fp32 on the row's provider and machine; size against the same runtime's
FP32. Rows are schema.Row objects (read by attribute). Also the spread of a perplexity change along
its text (spread): compare's standard error of each LM row's change, and the LM budget search's of
its validation increase."""
import numpy as np

from qonnx.config.choices import REFERENCES

# figures of a row against the reference, worked out from the measured ones (derived), never read
DERIVED = ("accuracy_drop", "perplexity_change_pct", "perplexity_change_se_pct", "speedup", "speedup_range",
           "memory_reduction", "size_reduction", "f1_drop")
F1_KINDS = ("tokens", "qa")  # token classification (entity F1) and extractive QA (SQuAD F1): f1 is the budget's
CHANGE_BLOCK = 512  # scored tokens per block of the eval text whose spread gives a perplexity change's standard error
MIN_ROUNDS = 3  # per-round ratios needed for a ratio from rounds; fewer: the sequential figures


def machine(row):
    """The node a row was measured on (--executor ray), or None: this machine."""
    return (row.node or {}).get("node_id") or (row.node or {}).get("hostname")


def measured(rows, variant, provider=None, node=None):
    """The ok row of `variant` (on `provider`, or on any; on `node` where given), or None."""
    return next((r for r in rows if r.variant == variant and r.ok and provider in (None, r.provider)
                 and (node is None or machine(r) == node)), None)


def reference(rows):
    """The row every figure is compared with: torch-fp32 (on the CPU first), else onnx-fp32 (REFERENCES)."""
    first, then = REFERENCES
    return measured(rows, first, "cpu") or measured(rows, first) or measured(rows, then)


def _ratio(a, b):
    return float(a) / float(b) if a and b else None


def round_ratios(row, base, kind) -> list:
    """The row's speed over base's in each interleaved round both kept a figure of (higher: faster)."""
    pairs = [(a, b) for a, b in zip(row.rounds or [], base.rounds or []) if a and b]
    return [a / b if kind in ("lm", "seq2seq") else b / a for a, b in pairs]


def median(values):
    s, n = sorted(values), len(values)
    return (s[n // 2] + s[(n - 1) // 2]) / 2


def spread(parts, ref, block) -> dict:
    """Pure arithmetic, no model: how much the perplexity increase of `parts` over `ref` (the same windows: tasks.lm.perplexity's parts)
    moves along the text: windows grouped into blocks of at least `block` scored tokens (a tail of
    less than half a block joins the last), each block's increase, and the standard error of the
    whole increase in percentage points from the blocks' spread (None with one block). A budget met
    within one standard error may be missed on other text (docs/benchmarks.md, 2026-12-07)."""
    groups, cur = [], [0.0, 0]
    for (a, n), (b, _) in zip(parts, ref):
        cur = [cur[0] + a - b, cur[1] + n]
        if cur[1] >= block:
            groups.append(cur)
            cur = [0.0, 0]
    if cur[1]:
        if groups and cur[1] < block / 2:
            groups[-1] = [groups[-1][0] + cur[0], groups[-1][1] + cur[1]]
        else:
            groups.append(cur)
    diff, n = np.array([g[0] for g in groups]), np.array([g[1] for g in groups], dtype=np.float64)
    mean = diff.sum() / n.sum()
    se = None
    if len(groups) > 1:
        w = n / n.sum()
        se = 100 * float(np.exp(mean) * np.sqrt((w ** 2 * (diff / n - mean) ** 2).sum() * len(n) / (len(n) - 1)))
    return {"block_tokens": block, "blocks_pct": [100 * float(np.expm1(d)) for d in diff / n], "se_pct": se}


def change_se(row, ref):
    """The standard error (percentage points) of the row's perplexity change over ref's, from how the
    change moves over blocks of CHANGE_BLOCK+ scored tokens of the eval text (an eighth of it where
    that is less: a short text still has blocks enough to spread; spread); None
    unless both rows kept the same windows (runs before qonnx kept them; another eval text)."""
    a, b = row.perplexity_windows, ref.perplexity_windows
    if not a or not b or len(a) != len(b) or any(x[1] != y[1] for x, y in zip(a, b)):
        return None
    return spread(a, b, min(CHANGE_BLOCK, max(1, sum(n for _, n in a) // 8)))["se_pct"]


def derive(row, rows, kind, ref) -> dict:
    """The DERIVED fields of an ok row from measured fields alone: quality against `ref`, speed and
    memory against torch-fp32 on the row's provider and machine (a Ray node: never a ratio of two
    machines' figures), size against the same runtime's FP32 (or ref). Speed: the median of the
    per-round ratios, with their range, where both rows were timed in the same interleaved rounds."""
    base = measured(rows, "torch-fp32", row.provider, machine(row))
    same_rt_fp32 = measured(rows, "torch-fp32" if row.runtime == "torch" else "onnx-fp32") or ref
    out = dict.fromkeys(DERIVED)
    if kind in ("classification", "embeddings", "images", *F1_KINDS):  # speed as a classifier's
        if ref and ref.accuracy is not None and row.accuracy is not None:
            out["accuracy_drop"] = ref.accuracy - row.accuracy
        if kind in F1_KINDS and ref and ref.f1 is not None and row.f1 is not None:
            out["f1_drop"] = ref.f1 - row.f1
        if base:
            out["speedup"] = _ratio((base.latency_ms or {}).get("p50"), (row.latency_ms or {}).get("p50"))
    else:
        if ref and ref.perplexity and row.perplexity is not None:
            out["perplexity_change_pct"] = 100.0 * (row.perplexity / ref.perplexity - 1)
            out["perplexity_change_se_pct"] = change_se(row, ref)
        if base:
            out["speedup"] = _ratio(row.decode_tokens_per_s, base.decode_tokens_per_s)
    ratios = round_ratios(row, base, kind) if base else []
    if len(ratios) >= MIN_ROUNDS:
        out["speedup"], out["speedup_range"] = median(ratios), [min(ratios), max(ratios)]
    if base and row.provider == "cuda":  # on the GPU the memory that counts is the device's
        out["memory_reduction"] = _ratio(base.device_memory_mb, row.device_memory_mb)
    elif base:  # the model's steady-state memory above the worker's baseline, not the interpreter's
        out["memory_reduction"] = _ratio(base.model_memory_mb, row.model_memory_mb)
    if same_rt_fp32:
        out["size_reduction"] = _ratio(same_rt_fp32.size_mb, row.size_mb)
    return out
