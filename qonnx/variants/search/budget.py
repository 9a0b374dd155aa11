"""An accuracy budget, enforced by search: keep the most damaging units in FP32, fewest first.

1. Quantize everything; measure the accuracy drop against the FP32 graph on a validation split
   (neither the calibration data nor the eval set). Within the budget: done. For int8-static,
   each other calibration choice (method x per-channel weights) is tried the same way, and the
   best (lowest KL divergence) carries on. For int8-dynamic, per-tensor weights where they hold,
   finer where they do not: first per-tensor everywhere (the fastest), then the units that
   per-tensor damages most (alone, by KL) per-channel, 1, 2, 4 ... of them, up to all of them
   (the plain build); the step with the lowest KL carries on.
2. Otherwise rank the units by the damage each does alone (the sensitivity analysis's `only`
   view, KL divergence against FP32), then keep the top 1, 2, 3 ... units in FP32 until the drop
   is within the budget. Every step is recorded; the model of the first step within the budget is
   the result. No step within it, or the time limit reached: BudgetNotMet, saying what the best
   step reached.
"""
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from qonnx import data, models
from qonnx.config.parts import demo_split
from qonnx.errors import ConfigError, QonnxError
from qonnx.measure.quality import classification_metrics, classify
from qonnx.store import work_dir
from qonnx.tasks.classification import encode
from qonnx.variants import int8_dynamic, int8_static
from qonnx.variants.graph import fuse, name_fused_nodes, save
from qonnx.variants.partial import quantize_nodes
from qonnx.variants.units import units

log = logging.getLogger(__name__)


class BudgetNotMet(QonnxError):
    """No step met the budget; `record` holds every step the search measured."""
    exit_code = 2

    def __init__(self, message, record=None):
        super().__init__(message)
        self.record = record


def search(method, src, out, limit, batches, labels, ctx, threads=None, on_step=None, time_limit=None) -> dict:
    """Write the model that meets the budget to `out`; return the search record."""
    import onnx

    src = Path(src)
    start = time.monotonic()
    graph_units = units(onnx.load(str(src), load_external_data=False), fused=ctx.get("fused_ops", False))
    for u in ctx.get("fp32_units", ()):  # never quantized by the variant (int8-dynamic's classifier head)
        graph_units.pop(u, None)
    all_nodes = [n for ns in graph_units.values() for n in ns]
    ref = classify(src, batches, threads)
    record = {"budget": {"max_accuracy_drop": limit}, "validation_rows": int(len(labels)),
              "reference_accuracy": float((ref.argmax(-1) == labels).mean()), "steps": [], "ranking": []}
    if time_limit:
        record["budget"]["search_time_limit_s"] = time_limit
    # inside the build's own folder: a killed search leaves its steps where the next build removes them
    with work_dir(Path(out).parent, "budget") as tmp:
        def build(nodes, name, c):
            dst = Path(tmp) / f"{name}.onnx"
            quantize_nodes(method, src, dst, nodes, all_nodes, False, c)
            return dst, classification_metrics(ref, classify(dst, batches, threads), labels)

        def out_of_time():
            if time_limit and time.monotonic() - start > time_limit:
                record["stopped"] = f"time limit of {time_limit:g} s reached"
                return True
            return False

        def step(kept, c, choice=None):
            """choice: {"calibration": ...} (int8-static) or granularity(...) (int8-dynamic)."""
            keep = {n for u in kept for n in graph_units[u]}
            dst, m = build([n for n in all_nodes if n not in keep], f"step{len(record['steps'])}", c)
            entry = {"kept_fp32": list(kept), **(choice or {}), **m}
            record["steps"].append(entry)
            log.info("budget search: %d unit(s) kept FP32%s, accuracy drop %+.4f (budget %.4f)", len(kept),
                     describe(choice), m["accuracy_drop"], limit)
            if on_step:
                on_step(entry)
            if m["accuracy_drop"] <= limit + 1e-9:
                shutil.copyfile(dst, out)
                record.update(kept_fp32=list(kept), kept_nodes=sorted(keep), accuracy_drop=m["accuracy_drop"],
                              **(choice or {}))
                return True
            dst.unlink()
            return False

        def rank(c, into):
            """Units by the damage each does alone under ctx c, most damaging first."""
            for u, ns in graph_units.items():
                if out_of_time():
                    break
                dst, m = build(ns, "only", c)
                into.append({"unit": u, **m})
                dst.unlink()
            return [r["unit"] for r in sorted(into, key=lambda r: (-r["kl"], -r["accuracy_drop"]))]

        # 1. everything quantized: int8-static under each calibration choice (the configured first);
        #    int8-dynamic per-tensor, then per-channel for the units per-tensor damages most
        if method == "int8-dynamic":
            n, weights = len(graph_units), ctx.get("weights", "search")  # or --per-channel / --per-tensor
            tried = []  # (kl, ctx, choice) of each granularity step: the best carries on
            coarse = {**ctx, "per_tensor": set(all_nodes)}
            first = (ctx, granularity(list(graph_units), n)) if weights == "per-channel" else (coarse, granularity([], n))
            if step([], *first):
                return record
            tried.append((record["steps"][-1]["kl"], *first))
            if weights == "search":
                record["ranking_per_tensor"] = []
                finer = rank(coarse, record["ranking_per_tensor"])
                for k in (steps(len(finer))[1:] if "stopped" not in record else []):
                    if out_of_time():
                        break
                    c = {**ctx, "per_tensor": {x for u in finer[k:] for x in graph_units[u]}}
                    if step([], c, granularity(finer[:k], n)):
                        return record
                    tried.append((record["steps"][-1]["kl"], c, granularity(finer[:k], n)))
            best = min(tried, key=lambda t: t[0])[1:]
        else:
            choices = calibration_choices(ctx) if method == "int8-static" else [None]
            best = None
            for calib in choices:
                if best is not None and out_of_time():
                    break
                c = with_calibration(ctx, calib)
                if step([], c, calib and {"calibration": calib}):
                    return record
                if best is None or record["steps"][-1]["kl"] < best[1]:
                    best = (c, record["steps"][-1]["kl"], calib)
            best = (best[0], best[2] and {"calibration": best[2]})
        ctx, choice = best
        # 2. the damage of each unit alone, under the best choice; then the top k kept FP32
        ranked = rank(ctx, record["ranking"])
        for k in range(1, len(ranked) if "stopped" not in record else 0):  # all kept would be FP32 itself
            if out_of_time() or step(ranked[:k], ctx, choice):
                break
        if "kept_fp32" in record:
            return record
    best = min(record["steps"], key=lambda s: s["accuracy_drop"])
    why = f" ({record['stopped']})" if "stopped" in record else ""
    raise BudgetNotMet(f"no set of FP32 units meets --max-accuracy-drop {limit}{why}: the best step kept "
                       f"{len(best['kept_fp32'])} unit(s) in FP32 and lost {best['accuracy_drop']:.4f} on "
                       f"{len(labels)} validation rows (FP32 accuracy {record['reference_accuracy']:.4f}). "
                       "Nothing was written.", record)


def steps(n):
    """Step sizes of a search over n ranked units (refined, or kept at 8 bits): 0, 1, 2, 4, ... n."""
    k, out = 1, [0]
    while k < n:
        out.append(k)
        k *= 2
    return out + [n]


def granularity(per_channel_units, n) -> dict:
    """int8-dynamic's weight granularity at a step: the units with per-channel weights."""
    weights = "per-tensor" if not per_channel_units else "per-channel" if len(per_channel_units) == n else "mixed"
    return {"weights": weights, "per_channel_units": list(per_channel_units)}


def describe(choice) -> str:
    if not choice:
        return ""
    if "calibration" in choice:
        c = choice["calibration"]
        return f" ({c['method']}, per-{'channel' if c['per_channel'] else 'tensor'})"
    if choice["weights"] == "mixed":
        return f" (per-channel weights in {len(choice['per_channel_units'])} unit(s), per-tensor in the rest)"
    return f" ({choice['weights']} weights everywhere)"


def calibration_choices(ctx) -> list:
    """int8-static's calibration choices, the configured one first: methods x per-channel weights."""
    first = {"method": ctx["method"], "per_channel": ctx["per_channel"]}
    if "ranges_for" not in ctx:
        return [first]
    return [first] + [{"method": m, "per_channel": pc} for m in int8_static.METHODS for pc in (True, False)
                      if {"method": m, "per_channel": pc} != first]


def with_calibration(ctx, calib) -> dict:
    if calib is None or "ranges_for" not in ctx:
        return ctx
    return {**ctx, **calib, "ranges": ctx["ranges_for"](calib["method"])}


def validation_batches(spec, tok, label2id, cfg, batch_size=1):
    """(batches, labels) of the validation split: a seeded stratified sample, encoded once. Batch 1
    by default: dynamic INT8 scales activations over the whole input tensor, padding included, so
    its answers depend on which texts share a batch; one text per call is how it is deployed."""
    d = data.load(spec, lm=False, label2id=label2id, text_column=cfg.validation_text_column,
                  label_column=cfg.validation_label_column, max_samples=cfg.validation_samples, seed=cfg.seed)
    batches = [encode(tok, d.texts[i:i + batch_size]) for i in range(0, len(d.texts), batch_size)]
    return batches, np.asarray(d.labels), d


def validation(cfg, src_manifest, src_dir, config):
    """(batches, labels, data) of the budget's validation split: --validation, else the demo's
    validation split (rows the demo model was not fine-tuned on, neither calibration nor test rows)."""
    spec = demo_split(cfg.validation, src_manifest.get("source", {}).get("demo"), "validation")
    if not spec:
        raise ConfigError("--max-accuracy-drop needs --validation: labelled rows that are neither the calibration "
                          "data nor the set you will evaluate on.")
    return validation_batches(spec, models.load_tokenizer(src_dir), config.get("label2id") or {}, cfg)


def budgeted(method, src, out, cfg, validation, ctx=None) -> dict:
    """The search under --max-accuracy-drop: the searched model written to out, and its record.
    For int8-static, ctx is the variant's context (graph, ranges, recipe; int8_static.context)."""
    batches, labels, rows = validation
    ctx = ctx or {"block_size": cfg.block_size}
    record = search(method, src, out, cfg.max_accuracy_drop, batches, labels, ctx, threads=cfg.threads,
                    time_limit=cfg.search_time_limit)
    if rows is not None:  # which data the budget was checked on, and which rows of it (their hash)
        record["validation"] = {"source": rows.source, **rows.selection}
    return {"budget_search": record}


def build_int8_dynamic(src, out, cfg, config, validation):
    """int8-dynamic within the budget: the search runs on the same fused graph as the plain build,
    its fused nodes named by layer so units map (QAttention and the embeddings are units too).
    Weights per-tensor where that holds the budget, per-channel where it does not (search), unless
    --per-channel or --per-tensor fixes them."""
    model, fusion = fuse(src, config)
    if fusion["fused"]:
        name_fused_nodes(model)
    weights = {None: "search", True: "per-channel", False: "per-tensor"}[cfg.per_channel]
    with work_dir(Path(out).parent) as tmp:
        graph = Path(tmp) / "graph.onnx"
        save(model, graph)
        found = budgeted("int8-dynamic", graph, out, cfg, validation,
                         {"block_size": cfg.block_size, "fused_ops": fusion["fused"], "weights": weights,
                          "fp32_units": ["head"]})
    search = found["budget_search"]
    per_channel = {"per-channel": True, "per-tensor": False}.get(search["weights"], "mixed")
    return {"scheme": "fused", "weight_type": "int8", "per_channel": per_channel, "reduce_range": per_channel,
            "per_channel_units": search["per_channel_units"], "fp32_nodes": int8_dynamic.head_nodes(model),
            **fusion, **found}


def build_int8_static(src, out, cfg, config, validation, tokenizer=None, lm=False, texts=None, provenance=None):
    """int8-static within the budget: the variant's own graph, ranges and recipe (its context);
    the search may choose another calibration method or weight granularity."""
    int8_static.check_texts(texts)
    with work_dir(out.parent) as tmp:
        ctx = int8_static.context(src, tmp, cfg, config, tokenizer, texts, lm)
        found = budgeted("int8-static", ctx["pre"], out, cfg, validation, ctx)
        chosen = found["budget_search"].get("calibration")
        if chosen:
            ctx = {**ctx, **chosen}
        return {**int8_static.settings(cfg, ctx), **found, "calibration": provenance}


def build(src, out, cfg, config, lm=False, validation=None, **kw) -> dict:
    """The accuracy-budgeted build of cfg.method (int8-dynamic or int8-static): its settings."""
    src, out = Path(src).resolve(), Path(out).resolve()  # the ORT calls run in a scratch cwd
    if cfg.method == "int8-dynamic":
        return build_int8_dynamic(src, out, cfg, config, validation)
    return build_int8_static(src, out, cfg, config, validation, lm=lm, **kw)
