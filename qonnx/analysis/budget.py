"""An accuracy budget, enforced by search: keep the most damaging units in FP32, fewest first.

1. Quantize everything; measure the accuracy drop against the FP32 export on a validation split
   (neither the calibration data nor the eval set). Within the budget: done.
2. Otherwise rank the units by the damage each does alone (the sensitivity analysis's `only`
   view, KL divergence against FP32), then keep the top 1, 2, 3 ... units in FP32 until the drop
   is within the budget. Every step is recorded; the model of the first step within the budget is
   the result. No step within it: BudgetNotMet, saying what the best step reached.
"""
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import QonnxError
from . import sensitivity as S
from .units import units

log = logging.getLogger(__name__)


class BudgetNotMet(QonnxError):
    exit_code = 2


def search(method, src, out, limit, batches, labels, ctx, threads=None, on_step=None) -> dict:
    """Write the model that meets the budget to `out`; return the search record."""
    import onnx

    src = Path(src)
    graph_units = units(onnx.load(str(src), load_external_data=False))
    all_nodes = [n for ns in graph_units.values() for n in ns]
    ref = S.classify(src, batches, threads)
    record = {"budget": {"max_accuracy_drop": limit}, "validation_rows": int(len(labels)),
              "reference_accuracy": float((ref.argmax(-1) == labels).mean()), "steps": [], "ranking": []}
    with tempfile.TemporaryDirectory(prefix="qonnx-budget-") as tmp:
        def build(nodes, name):
            dst = Path(tmp) / f"{name}.onnx"
            S.quantize_nodes(method, src, dst, nodes, all_nodes, False, ctx)
            return dst, S.classification_metrics(ref, S.classify(dst, batches, threads), labels)

        def step(kept):
            keep = {n for u in kept for n in graph_units[u]}
            dst, m = build([n for n in all_nodes if n not in keep], f"step{len(kept)}")
            entry = {"kept_fp32": list(kept), **m}
            record["steps"].append(entry)
            log.info("budget search: %d unit(s) kept FP32, accuracy drop %+.4f (budget %.4f)",
                     len(kept), m["accuracy_drop"], limit)
            if on_step:
                on_step(entry)
            if m["accuracy_drop"] <= limit + 1e-9:
                shutil.copyfile(dst, out)
                record["kept_fp32"] = list(kept)
                record["kept_nodes"] = sorted(keep)
                record["accuracy_drop"] = m["accuracy_drop"]
                return True
            dst.unlink()
            return False

        if step([]):
            return record
        for u, ns in graph_units.items():  # the damage of each unit alone
            dst, m = build(ns, "only")
            record["ranking"].append({"unit": u, **m})
            dst.unlink()
        ranked = [r["unit"] for r in sorted(record["ranking"], key=lambda r: (-r["kl"], -r["accuracy_drop"]))]
        for k in range(1, len(ranked)):  # all units kept would be the FP32 model, not a variant
            if step(ranked[:k]):
                return record
    best = min(record["steps"], key=lambda s: s["accuracy_drop"])
    raise BudgetNotMet(f"no set of FP32 units meets --max-accuracy-drop {limit}: the best step kept "
                       f"{len(best['kept_fp32'])} unit(s) in FP32 and lost {best['accuracy_drop']:.4f} on "
                       f"{len(labels)} validation rows (FP32 accuracy {record['reference_accuracy']:.4f}). "
                       "Nothing was written.")


def validation_batches(spec, tok, label2id, cfg, batch_size=1):
    """(batches, labels) of the validation split: a seeded stratified sample, encoded once. Batch 1
    by default: dynamic INT8 scales activations over the whole input tensor, padding included, so
    its answers depend on which texts share a batch; one text per call is how it is deployed."""
    from .. import data
    from ..tasks.classification import encode

    d = data.load(spec, lm=False, label2id=label2id, text_column=cfg.validation_text_column,
                  label_column=cfg.validation_label_column, max_samples=cfg.validation_samples, seed=cfg.seed)
    batches = [encode(tok, d.texts[i:i + batch_size]) for i in range(0, len(d.texts), batch_size)]
    return batches, np.asarray(d.labels), d


def budgeted(method, src, out, cfg, validation, ctx=None) -> dict:
    """The variant build under --max-accuracy-drop: the searched model, and its record. For
    int8-static, ctx is the variant's context (graph, ranges, recipe; int8_static.context)."""
    batches, labels, _ = validation
    ctx = ctx or {"block_size": cfg.block_size}
    record = search(method, src, out, cfg.max_accuracy_drop, batches, labels, ctx)
    if method == "int8-static":
        return {"budget_search": record}
    return {"graph": "unfused export graph (node names map to units)",
            "scheme": "per-channel weights with reduce_range", "budget_search": record}
