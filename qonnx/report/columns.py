"""The one column spec of a results table: the console table, report.md, report.html and
results.csv all read it. A Column names the row field it shows, its short header (console,
Markdown), its long header with the unit (HTML), its number format and what it means."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    key: str          # the row field; "a.b" reads row[a][b]
    short: str        # console and Markdown header
    long: str         # HTML header, with its unit
    fmt: str          # format spec; "s" text, "d" whole number
    meaning: str = ""
    suffix: str = ""  # appended to the console/Markdown value (speedup 2.00x)


def value(row, key):
    """row[key], or row[a][b] for a key 'a.b' (latency_ms.p50); None where absent. An edge target's
    entry (targets.wasm) is shown by its verdict."""
    a, _, b = key.partition(".")
    v = (row or {}).get(a)
    v = v.get(b) if b and isinstance(v, dict) else (None if b else v)
    return v.get("verdict") if a == "targets" and isinstance(v, dict) else v


NAME = [Column("variant", "variant", "variant", "s", "the row: runtime and method"),
        Column("provider", "provider", "provider", "s", "cpu or cuda"),
        Column("status", "status", "status", "s", "ok, failed or skipped (reason in the row)")]
QUALITY = {
    "classification": [
        Column("accuracy", "accuracy", "accuracy", ".4f", "fraction correct on the eval rows"),
        Column("accuracy_drop", "drop", "drop vs ref", "+.4f", "the reference's accuracy minus the row's")],
    "lm": [
        Column("perplexity", "ppl", "perplexity", ".2f", "perplexity on the eval text"),
        Column("perplexity_change_pct", "ppl Δ%", "ppl change %", "+.2f", "percent above the reference"),
        Column("perplexity_change_se_pct", "± SE", "its standard error (points)", ".2f",
               "the change's standard error, from its spread over blocks of 512+ eval tokens (an eighth of a shorter text): a change within "
               "about two of these of a budget may fall on either side of it on other text")],
    "embeddings": [
        Column("topk_overlap", "top-10", "top-10 overlap", ".4f", "share of each text's top-10 neighbours that are "
                                                                     "the reference's"),
        Column("cosine_mean", "cos mean", "cosine mean", ".5f", "mean cosine of each text's embedding with the "
                                                               "reference's"),
        Column("cosine_p5", "cos p5", "cosine p5", ".5f", "5th percentile of those cosines"),
        Column("cosine_min", "cos min", "cosine min", ".5f", "the worst text's cosine"),
        Column("similarity_spearman", "sim ρ", "similarity Spearman", ".4f", "rank correlation of every pair's "
                                                                             "similarity with the reference's")],
}
F1_DROP = Column("f1_drop", "F1 drop", "F1 drop vs ref", "+.4f", "the reference's F1 minus the row's")
QUALITY["tokens"] = [
    Column("f1", "F1", "entity F1", ".4f", "entity-level F1 (seqeval): an entity counts with its type, start and end"),
    F1_DROP,
    Column("precision", "prec", "entity precision", ".4f", "share of predicted entities that are gold entities"),
    Column("recall", "recall", "entity recall", ".4f", "share of gold entities found")]
QUALITY["qa"] = [
    Column("f1", "F1", "SQuAD F1", ".4f", "token overlap with the best reference answer (SQuAD's normalization)"),
    F1_DROP,
    Column("exact_match", "EM", "exact match", ".4f", "share of answers equal to a reference answer, normalized")]
LABELS = Column("label_spearman", "label ρ", "label Spearman", ".4f", "pair cosines against the pair file's scores")
ROBUST = [Column("robust_accuracy", "typo acc", "typo accuracy", ".4f", "accuracy with typos (--robustness-rate)"),
          Column("robust_drop", "typo drop", "typo drop vs ref", "+.4f", "the reference's typo accuracy minus the row's")]
AGREEMENT = Column("agreement", "agree", "agreement", ".3f", "top-1 agreement with the reference's outputs "
                   "(embeddings: the same nearest neighbour; token classifiers: each word's label; QA: the "
                   "answer span)")
SPEED = {
    "classification": [
        Column("latency_ms.p50", "p50 ms", "p50 ms", ".2f", "batch-1 latency, median"),
        Column("latency_ms.p90", "p90 ms", "p90 ms", ".2f", "batch-1 latency, 90th percentile"),
        Column("latency_ms.p99", "p99 ms", "p99 ms", ".2f", "batch-1 latency, 99th percentile"),
        Column("latency_ms.n", "n", "n", "d", "timed calls"),
        Column("speedup", "speedup", "speedup ×", ".2f",
               "torch-fp32's time over the row's: the median per-round ratio (or the p50s without rounds)", "x"),
        Column("speedup_range", "range", "speedup range", "range", "the lowest and highest per-round ratio"),
        Column("throughput_per_s", "thru/s", "throughput /s", ".1f", "samples per second in the accuracy pass")],
    "lm": [
        Column("ttft_ms.p50", "TTFT p50 ms", "TTFT p50 ms", ".1f", "time to first token, median"),
        Column("decode_tokens_per_s", "decode tok/s", "decode tok/s", ".1f", "greedy decode tokens per second"),
        Column("speedup", "speedup", "speedup ×", ".2f",
               "decode tokens/s over torch-fp32's: the median per-round ratio (or of the passes without rounds)", "x"),
        Column("speedup_range", "range", "speedup range", "range", "the lowest and highest per-round ratio")],
}
SPEED["embeddings"] = SPEED["tokens"] = SPEED["qa"] = SPEED["classification"]
SPEED["embeddings"] = SPEED["images"] = SPEED["classification"]
QUALITY["images"] = [QUALITY["classification"][0],
                     Column("top5_accuracy", "top-5", "top-5 accuracy", ".4f", "fraction whose label is among the 5 "
                            "highest logits (models with more than 5 classes)"), QUALITY["classification"][1]]
QUALITY["seq2seq"] = [Column("exact_match", "exact", "exact match", ".4f", "share of texts generated exactly as the "
                             "reference row's"),
                      Column("rouge_l", "ROUGE-L", "ROUGE-L F1", ".4f", "against --target-column's references")]
SPEED["seq2seq"] = SPEED["lm"]
TAIL = [Column("model_memory_mb", "model MiB", "model MiB", ".0f",
               "steady-state memory: the inference peak minus the worker's baseline (loading excluded)"),
        Column("load_peak_mb", "load peak MiB", "load peak MiB", ".0f", "the worker's peak while loading"),
        Column("size_mb", "size MiB", "size MiB", ".1f", "the model's files (torch: its saved state_dict)"),
        Column("size_reduction", "size red.", "size red. ×", ".2f", "same-runtime FP32 size over the row's", "x")]

# results.csv: these row fields, nested ones flattened (latency_ms_p50 ...)
CSV = ["variant", "provider", "status", "reason", "accuracy", "accuracy_drop", "robust_accuracy", "robust_drop",
       "perplexity", "perplexity_change_pct", "perplexity_change_se_pct", "agreement", "max_logit_diff", "latency_ms", "ttft_ms",
       "speedup", "speedup_range", "timing", "throughput_per_s", "decode_tokens_per_s", "peak_memory_mb", "peak_increment_mb",
       "model_memory_mb", "memory_note", "load_peak_mb", "inference_peak_mb", "baseline_mb", "weight_memory_mb",
       "cuda_peak_mb", "device_memory_mb",
       "memory_reduction", "size_mb", "size_reduction", "load_s", "threads", "note", "artifact",
       "topk_overlap", "cosine_mean", "cosine_p5", "cosine_min", "similarity_spearman", "label_spearman",
       "f1", "f1_drop", "precision", "recall", "exact_match", "top5_accuracy", "rouge_l", "targets"]


DEVICE = Column("device_memory_mb", "GPU MiB", "GPU MiB", ".0f", "GPU memory the worker holds (NVML), CUDA rows")
THREADS = Column("threads", "threads", "threads", "d", "torch and ORT threads of the row (Ray: its node's cores)")


def targets(rows) -> list:
    """One column per edge target a row was gated on (compare --targets), in the gate's order."""
    names = [n for r in rows for n in (r.get("targets") or {})]
    return [Column(f"targets.{n}", n, f"{n} (edge)", "s", f"the edge gate's verdict for {n} (pass, warn, fail; "
                                                          "n/a for a PyTorch row)") for n in dict.fromkeys(names)]


def display(kind, rows=()) -> list:
    """The columns of a results table of `kind`; the typo, speedup range, perplexity change's standard
    error and GPU columns only where a row has them, the threads column only where rows ran at different thread counts (Ray nodes of other sizes)."""
    robust = ROBUST if kind == "classification" and any(r.get("robust_accuracy") is not None for r in rows) else []
    labels = [LABELS] if any(r.get("label_spearman") is not None for r in rows) else []
    device = [DEVICE] if any(r.get("device_memory_mb") is not None for r in rows) else []
    threads = [THREADS] if len({r.get("threads") for r in rows if r.get("threads")}) > 1 else []
    ranged = any(r.get("speedup_range") for r in rows)
    speed = [c for c in SPEED[kind] if ranged or c.key != "speedup_range"]
    spread = any(r.get("perplexity_change_se_pct") is not None for r in rows)  # runs before qonnx kept windows: none
    quality = [c for c in QUALITY[kind] if spread or c.key != "perplexity_change_se_pct"]
    return NAME + quality + labels + robust + [AGREEMENT] + speed + threads + device + TAIL + targets(rows)


def span(v) -> str:
    """A [min, max] range as a cell shows it ('' where there is none)."""
    return f"{v[0]:.2f}-{v[1]:.2f}" if isinstance(v, list) and len(v) == 2 else ""


def text(row, col) -> str:
    """A cell as the console and Markdown show it ('' where there is no value)."""
    v = value(row, col.key)
    if col.fmt == "range":
        return span(v)
    if col.fmt == "s":
        return "" if v is None else str(v)
    if v is None or v == "":
        return ""
    return (str(v) if col.fmt == "d" else format(v, col.fmt)) + col.suffix
