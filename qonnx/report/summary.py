"""Reading a results document: which row to ship, and how runs differ from each other."""
from qonnx.config.choices import REFERENCES
from qonnx.report.columns import span, value

# the quality budget a run is read against when it set none itself
DEFAULT_BUDGET = {"classification": ("max_accuracy_drop", 0.01), "lm": ("max_perplexity_increase", 5.0),
                  "embeddings": ("max_accuracy_drop", 0.05),  # embeddings: 1 - top-10 overlap
                  "tokens": ("max_accuracy_drop", 0.01), "qa": ("max_accuracy_drop", 0.01)}  # the f1 drop
DEFAULT_BUDGET["images"] = DEFAULT_BUDGET["classification"]  # image classifiers: top-1 accuracy
DEFAULT_BUDGET["seq2seq"] = ("max_accuracy_drop", 0.05)  # seq2seq: 1 - exact match with the reference's text

# (key, label, format, better, threshold): a change counts where it passes the threshold,
# relative ("5%") or absolute (a number), so noise is not marked
KEY_MEASURES = {
    "classification": [("accuracy", "accuracy", ".4f", "higher", 0.005),
                       ("latency_ms.p50", "p50 ms", ".2f", "lower", "5%"),
                       ("throughput_per_s", "throughput /s", ".1f", "higher", "5%"),
                       ("model_memory_mb", "model MiB", ".0f", "lower", "5%"),
                       ("size_mb", "size MiB", ".1f", "lower", "1%")],
    "lm": [("perplexity", "perplexity", ".2f", "lower", "1%"),
           ("decode_tokens_per_s", "decode tok/s", ".1f", "higher", "5%"),
           ("ttft_ms.p50", "TTFT p50 ms", ".1f", "lower", "5%"),
           ("model_memory_mb", "model MiB", ".0f", "lower", "5%"),
           ("size_mb", "size MiB", ".1f", "lower", "1%")],
    "embeddings": [("topk_overlap", "top-10 overlap", ".4f", "higher", 0.005),
                   ("cosine_mean", "cosine mean", ".5f", "higher", 0.0005),
                   ("latency_ms.p50", "p50 ms", ".2f", "lower", "5%"),
                   ("throughput_per_s", "throughput /s", ".1f", "higher", "5%"),
                   ("model_memory_mb", "model MiB", ".0f", "lower", "5%"),
                   ("size_mb", "size MiB", ".1f", "lower", "1%")],
}
KEY_MEASURES["tokens"] = KEY_MEASURES["qa"] = [("f1", "F1", ".4f", "higher", 0.005)] + KEY_MEASURES["classification"][1:]
F1_KINDS = ("tokens", "qa")
KEY_MEASURES["images"] = KEY_MEASURES["classification"][:1] + [("top5_accuracy", "top-5 accuracy", ".4f", "higher", 0.005)] \
    + KEY_MEASURES["classification"][1:]
KEY_MEASURES["seq2seq"] = [("exact_match", "exact match", ".4f", "higher", 0.005),
                           *KEY_MEASURES["lm"][1:]]
THRESHOLDS_TEXT = ("0.005 accuracy, 1 % perplexity or size, 5 % for timings and memory "
                   "(differences below those are noise on a busy machine)")
# settings that name where a run went, not what it measured
NOT_COMPARED = {"output", "resume", "created", "dataset_source"}


def budget(doc):
    """(settings key, limit, whether the run set it)."""
    kind = doc["settings"]["kind"]
    key, default = DEFAULT_BUDGET[kind]
    given = doc["settings"].get(key)
    return key, (given if given is not None else default), given is not None


def recommend(doc) -> dict:
    """The fastest ok row within the quality budget, first on the CPU provider: {'row', 'text'}."""
    kind = doc["settings"]["kind"]
    key, limit, given = budget(doc)
    lm = kind in ("lm", "seq2seq")  # seq2seq: generation figures as an LM's, exact match as its quality
    within, loss = within_budget(doc)
    which = (f"the run's budget ({key.replace('_', ' ')} {limit}{' %' if lm else ''})" if given else
             f"the default budget ({'perplexity +' + format(limit, 'g') + ' %' if lm else f'{limit * 100:g} accuracy point'} "
             "against the reference; this run set none)")
    if kind == "embeddings":
        which = (f"the budget of top-10 overlap with the reference >= {1 - limit:g} ("
                 + (f"the run's --max-accuracy-drop {limit:g})" if given else "the default; this run set none)"))
    if kind in F1_KINDS:
        which = (f"the budget of an F1 drop against the reference <= {limit:g} ("
                 + (f"the run's --max-accuracy-drop {limit:g})" if given else "the default; this run set none)"))
    if kind == "seq2seq":
        which = (f"the budget of exact match with the reference's text >= {1 - limit:g} ("
                 + (f"the run's --max-accuracy-drop {limit:g})" if given else "the default; this run set none)"))
    ok = [r for r in doc["rows"] if r["status"] == "ok"]
    if not within and ok and all(loss(r) is None for r in ok):  # nothing to judge by: no reference row
        return {"row": None, "text": f"no row could be judged against {which}: the run has no reference row "
                                     f"({', else '.join(REFERENCES)}) to measure quality changes against; add one to "
                                     "--variants."}
    if not within:
        return {"row": None, "text": f"no measured row is within {which}."}
    providers = sorted({r["provider"] for r in within}, key=lambda p: p != "cpu")
    rows_p = [r for r in within if r["provider"] == providers[0]]
    noise = ""
    if all(r.get("speedup_range") and r.get("speedup") for r in rows_p):  # timed in interleaved rounds
        fastest = max(rows_p, key=lambda r: r["speedup"])
        # rows whose per-round ratios overlap the fastest's are as fast as far as this run can tell:
        # of those, the smallest (then the most accurate) is the one to ship
        tied = [r for r in rows_p if overlap(r["speedup_range"], fastest["speedup_range"])]
        best = min(tied, key=lambda r: (r.get("size_mb") or float("inf"), loss(r)))
        if best is not fastest:
            noise = (f" (within the noise of {fastest['variant']}'s {fastest['speedup']:.2f}x: their per-round "
                     "ratios overlap; this one is smaller)")
        speed = (f"{best['decode_tokens_per_s'] or 0:.1f} decode tokens/s" if lm else
                 f"p50 {(best.get('latency_ms') or {}).get('p50', 0):.2f} ms at batch 1") + noise
    elif lm:
        fastest = max(rows_p, key=lambda r: r.get("decode_tokens_per_s") or 0)
        # rows whose decode passes overlap the fastest's are as fast as far as this run can tell:
        # of those, the smallest (then the most accurate) is the one to ship
        tied = [r for r in rows_p if overlap(r.get("decode_range"), fastest.get("decode_range"))] or [fastest]
        best = min(tied, key=lambda r: (r.get("size_mb") or float("inf"), r.get("perplexity") or float("inf")))
        if best is not fastest:
            noise = (f" (within the noise of {fastest['variant']}'s {fastest['decode_tokens_per_s']:.1f} tokens/s: "
                     "their decode passes overlap; this one is smaller)")
        speed = f"{best.get('decode_tokens_per_s') or 0:.1f} decode tokens/s{noise}"
    else:
        best = min(rows_p, key=lambda r: (r.get("latency_ms") or {}).get("p50") or float("inf"))
        speed = f"p50 {(best.get('latency_ms') or {}).get('p50', 0):.2f} ms at batch 1"
    quality = (f"exact match {best['exact_match']:.4f}" if kind == "seq2seq" else
               f"perplexity {best['perplexity']:.2f} ({best['perplexity_change_pct']:+.2f} %{se_text(best)})" if lm else
               embedding_quality(best) if kind == "embeddings" else
               f"F1 {best['f1']:.4f} ({0 - best['f1_drop']:+.4f} vs reference)" if kind in F1_KINDS else
               f"accuracy {best['accuracy']:.4f} ({-best['accuracy_drop']:+.4f} vs reference)")
    extra = f", {best['speedup']:.2f}x torch-fp32" if best.get("speedup") else ""
    if best.get("speedup_range"):
        extra += f" (per round {span(best['speedup_range'])}x)"
    size = f", {best['size_mb']:.1f} MiB" if best.get("size_mb") else ""
    return {"row": best, "text": f"{best['variant']} on {best['provider']}: the fastest row within {which}; "
                                 f"{speed}{extra}, {quality}{size}."}


def se_text(row) -> str:
    se = row.get("perplexity_change_se_pct")
    return f", standard error {se:.2f} points" if se else ""


def within_budget(doc):
    """(the ok rows within the run's quality budget, the loss function it is read with)."""
    kind = doc["settings"]["kind"]
    _, limit, _ = budget(doc)
    loss = {"lm": lambda r: r.get("perplexity_change_pct"), "embeddings": topk_loss,
            # seq2seq: 1 - exact match with the reference's text; token classifiers and QA: the f1 drop
            "seq2seq": lambda r: None if r.get("exact_match") is None else 1 - r["exact_match"],
            **dict.fromkeys(F1_KINDS, lambda r: r.get("f1_drop"))}.get(kind, lambda r: r.get("accuracy_drop"))
    rows = [r for r in doc["rows"] if r["status"] == "ok"]
    return [r for r in rows if loss(r) is not None and loss(r) <= limit + 1e-9], loss  # 0.885 - 0.875 is 1 point


def topk_loss(row):
    """An embedding row's loss against the budget: 1 - top-10 overlap with the reference."""
    return None if row.get("topk_overlap") is None else 1 - row["topk_overlap"]


def embedding_quality(row) -> str:
    return (f"top-10 overlap {row['topk_overlap']:.4f}, cosine mean {row['cosine_mean']:.5f} "
            f"(min {row['cosine_min']:.5f})")


def overlap(a, b) -> bool:
    """Two [min, max] ranges (a row's decode passes) share a value; False where either is unknown."""
    return bool(a and b) and a[0] <= b[1] and b[0] <= a[1]


def row_change(base_row, row, key, better, threshold) -> str:
    """change() of one figure of two rows; '' where their decode passes overlap (within noise)."""
    if key == "decode_tokens_per_s" and overlap((base_row or {}).get("decode_range"), (row or {}).get("decode_range")):
        return ""
    a, b = (value(r, key) if r and r.get("status") == "ok" else None for r in (base_row, row))
    return change(a, b, better, threshold)


def change(base, value, better, threshold) -> str:
    """'better', 'worse' or '' for value against base."""
    if base is None or value is None:
        return ""
    diff = value - base
    limit = abs(base) * float(threshold[:-1]) / 100 if isinstance(threshold, str) else threshold
    if abs(diff) <= limit:
        return ""
    return "better" if (diff > 0) == (better == "higher") else "worse"


def settings_diff(settings, names):
    """'key: a (run A), b (run B)' for each setting that differs between runs."""
    keys = sorted({k for s in settings for k in s} - NOT_COMPARED)
    out = []
    for k in keys:
        vals = [s.get(k) for s in settings]
        if any(v != vals[0] for v in vals[1:]):
            out.append(f"{k}: " + ", ".join(f"{v!r} ({n})" for v, n in zip(vals, names)))
    return out


NOISY_SPREAD = 0.10  # decode passes of one row more than 10 % apart
NOISY_RATIOS = 0.25  # a row's per-round ratios spread over more than 25 % of its median
NOISY_DRIFT = 0.20   # the reference's round figures moved more than 20 % from the first rounds to the last


def noise(doc) -> list:
    """Sentences warning that the run's figures are within their noise ([] if not): speed_noise, and
    LM rows whose perplexity change is within two standard errors of the budget (budget_noise)."""
    return speed_noise(doc) + budget_noise(doc)


NEAR = 2.0  # standard errors: a perplexity change nearer the budget than this may fall on its other side


def near_budget(row, limit) -> bool:
    """Whether the row's perplexity change is within NEAR of its standard errors of `limit`."""
    change, se = row.get("perplexity_change_pct"), row.get("perplexity_change_se_pct")
    return limit is not None and change is not None and bool(se) and abs(change - limit) < NEAR * se


def budget_noise(doc) -> list:
    """A sentence naming the LM rows whose perplexity change on the eval text is within NEAR standard
    errors of the budget (the run's, else the default): on other text they may be on its other side."""
    if doc["settings"]["kind"] != "lm":
        return []
    _, limit, _ = budget(doc)
    near = [r for r in doc["rows"] if r.get("status") == "ok" and near_budget(r, limit)]
    if not near:
        return []
    named = ", ".join(f"{r['variant']} {r['perplexity_change_pct']:+.2f} % (standard error {r['perplexity_change_se_pct']:.2f})"
                      for r in near)
    return [f"Within the eval text's noise of the perplexity budget (+{limit:g} %): {named}. A change within "
            f"{NEAR:g} standard errors of the budget may fall on its other side on other text; --eval-tokens "
            f"(this run: {doc['settings'].get('eval_tokens')}) scores more text and narrows it."]


def speed_noise(doc) -> list:
    """Sentences warning that the machine was too noisy for the ratios the run shows ([] if not),
    from the run's own measure of its noise: with interleaved rounds, the spread of each row's
    per-round ratios and the drift of the reference's round figures from start to end; without,
    the spread of one row's repeated decode passes (LMs). A classifier's batch-1 latencies vary with
    each text's length, so their spread is not noise."""
    rows = [r for r in doc["rows"] if r.get("status") == "ok"]
    out = []
    ranged = [((r["speedup_range"][1] - r["speedup_range"][0]) / r["speedup"], r) for r in rows
              if r.get("speedup_range") and r.get("speedup")]
    if ranged:
        worst, r = max(ranged, key=lambda x: x[0])
        if worst > NOISY_RATIOS:
            out.append(f"Noisy machine: {r['variant']}'s per-round speedups ranged {span(r['speedup_range'])}x "
                       f"({100 * worst:.0f} % of its median); speed differences smaller than that are within noise.")
        for ref in (r for r in rows if r["variant"] == "torch-fp32" and r.get("rounds")):
            drift = drift_of(ref["rounds"])
            if drift is not None and abs(drift) > NOISY_DRIFT:
                out.append(f"The machine's load changed during the rounds: {ref['variant']} on {ref['provider']} "
                           f"ran {100 * abs(drift):.0f} % {'slower' if (drift > 0) != (doc['settings']['kind'] == 'lm') else 'faster'} "
                           "in the last rounds than in the first. Ratios are taken within each round, so a change "
                           "shared by every row cancels, but its spread is in the ranges.")
        return out
    spreads = [((r["decode_range"][1] - r["decode_range"][0]) / r["decode_tokens_per_s"], r) for r in rows
               if r.get("decode_range") and r.get("decode_tokens_per_s")]
    if spreads:
        worst, r = max(spreads, key=lambda x: x[0])
        if worst > NOISY_SPREAD:
            lo, hi = r["decode_range"]
            out.append(f"Noisy machine: {r['variant']}'s decode passes ranged {lo:.1f}-{hi:.1f} tokens/s "
                       f"({100 * worst:.0f} % of its median); speed differences smaller than that are within noise. "
                       "Time rows against each other in interleaved rounds (--rounds) before trusting a ratio.")
    return out


def drift_of(figures):
    """The median of the last third of the rounds over the first third's, minus 1 (None: too few)."""
    kept = [f for f in figures if f]
    third = len(kept) // 3
    if third < 1:
        return None
    first, last = sorted(kept[:third]), sorted(kept[-third:])
    return last[len(last) // 2] / first[len(first) // 2] - 1
