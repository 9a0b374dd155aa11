"""A perplexity budget for a decoder LM, enforced by search: mixed 4/8-bit MatMulNBits.

1. One calibration pass collects each weighted MatMul's input statistics (X^T X); every MatMul gets
   8-bit codes (round to nearest, symmetric) and 4-bit codes by each recipe of variants.gptq.FOUR_BIT
   (GPTQ, round to nearest; asymmetric), all in blocks of BLOCK along the input.
2. Units are transformer layers (all their MatMuls) and the head. Each is measured at 4 bits by
   each recipe with everything else at 8 bits: KL divergence of the logits from FP32 on the first
   window of the validation text. A unit keeps its recipe with the lowest KL, and that KL ranks it
   (higher: the unit is more useful at 8 bits).
3. Steps keep the 1, 2, 4, 8 ... most useful units at 8 bits and the rest at 4, and measure
   perplexity on a validation text (neither the calibration text nor the evaluation corpus)
   against the FP32 graph on the same text. The first step within the budget (the most units at 4
   bits) is the result; every step is recorded. None within it: BudgetNotMet, saying what the best
   step reached.

The ranking is measured on one window; the budget itself is always checked by the perplexity of
the whole validation text.
"""
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from qonnx import calibration, data
from qonnx.cache import cache_dir, write_json
from qonnx.config.parts import demo_split
from qonnx.errors import ConfigError
from qonnx.runners.ort import OrtRunner
from qonnx.store import digest, tree_digest, work_dir
from qonnx.tasks.lm import log_softmax
from qonnx.tasks.lm import perplexity as ppl
from qonnx.variants.graph import materialize_transposed_weights
from qonnx.variants.int4_weight import ACCURACY_LEVEL, fp32_gemms
from qonnx.variants.search import kernels
from qonnx.variants.search.budget import BudgetNotMet, steps
from qonnx.variants.search.mixed import BLOCK, MixedBuilder
from qonnx.variants.units import role

log = logging.getLogger(__name__)

def layer_units(names):
    """{unit: MatMul names}: one unit per transformer layer (all its MatMuls), the head, other."""
    out = {}
    for n in names:
        layer, r = role(n)
        out.setdefault(f"layer {layer}" if layer is not None else r, []).append(n)
    return out


def kl(ref_logits, logits):
    p, q = log_softmax(ref_logits), log_softmax(logits)
    return float((np.exp(p) * (p - q)).sum(-1).mean())


def perplexity(path, ids, window, stride, threads, config):

    with OrtRunner(str(path), "cpu", threads, config) as r:
        return ppl(r, ids, window, stride)[0]


def window_logits(path, ids, threads, config):
    x = np.asarray(ids, dtype=np.int64)[None]
    with OrtRunner(str(path), "cpu", threads, config) as r:
        return r.step(x, np.ones_like(x))[0][0]


RANKINGS = "lm-budget-rankings"  # under the user cache: per-unit rankings, by ranking_key


def ranking_key(model_digest, calib_ids, probe, block, samples, length, recipes) -> str:
    """What the per-unit ranking depends on: the model, the calibration and probe tokens, the codes'
    settings and recipes, and the runtime that computes the logits."""
    import onnxruntime as ort

    ids = hashlib.sha256(np.asarray(calib_ids, dtype=np.int64).tobytes() + b"|" +
                         np.asarray(probe, dtype=np.int64).tobytes()).hexdigest()
    return digest({"model": model_digest, "ids": ids, "block": block, "samples": samples, "length": length,
                   "recipes": list(recipes), "accuracy_level": ACCURACY_LEVEL, "onnxruntime": ort.__version__})


def cached_ranking(path):
    """The ranking a previous search saved at path, or None (absent, or damaged: then measured again)."""
    if path is None or not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        if isinstance(saved.get("four_bit_recipes"), dict) and isinstance(saved.get("ranking"), list):
            return saved
    except (OSError, ValueError, AttributeError):
        pass
    log.warning("budget search: %s is damaged; measuring the ranking again", path)
    return None


def search(src, out, limit_pct, calib_ids, val_ids, config, block=BLOCK, window=512, stride=256,
           threads=None, samples=8, length=512, on_step=None, model_digest=None) -> dict:
    """Write the first mixed build within limit_pct (perplexity increase in percent on val_ids)
    to `out` (model.onnx + its .data); return the search record. With model_digest (the source
    model's content hash) the per-unit ranking is kept beside `out`'s folder and reused by a later
    search on the same model, calibration and validation text (in the user cache: RANKINGS)."""
    import onnx

    src, out = Path(src).resolve(), Path(out).resolve()
    positions = (config or {}).get("max_position_embeddings") or (config or {}).get("n_positions")
    if positions and positions < max(window, length):  # a model that takes fewer positions (GPT-2: 1024)
        window = length = positions
        stride = min(stride, max(1, positions // 2))
    reference = perplexity(src, val_ids, window, stride, threads, config)
    probe = val_ids[:window]
    ref_logits = window_logits(src, probe, threads, config)
    t0 = time.monotonic()
    log.info("budget search: FP32 perplexity %.3f on %d validation tokens; 4- and 8-bit codes next", reference,
             len(val_ids))
    builder = MixedBuilder(onnx.load(str(src)), calib_ids, config, block, samples, length)
    units = layer_units(builder.nodes)
    table = kernels.measure(kernels.counts(builder.shapes), kernels.formats(block), threads)

    def predicted(eight):  # microseconds of MatMul per decoded token, from the kernel table
        formats = {n: f"8-bit/{block}" if n in eight else f"4-bit/{block}" for n in builder.nodes}
        return kernels.predict_us(table, formats, builder.shapes)

    anchor = kernels.predict_us(table, dict.fromkeys(builder.nodes, "4-bit/32"), builder.shapes)
    log.info("budget search: kernel table of %d shapes timed on this CPU; MatMul time per token: all 4-bit/32 "
             "%.0f us, all 4-bit/%d %.0f us, all 8-bit/%d %.0f us", len(kernels.counts(builder.shapes)),
             anchor, block, predicted(set()), block, predicted(set(builder.nodes)))
    log.info("budget search: codes of %d MatMuls (4-bit: %s; 8-bit) after %.0f s", len(builder.nodes),
             ", ".join(builder.recipes), time.monotonic() - t0)
    record = {"budget": {"max_perplexity_increase_pct": limit_pct}, "validation_tokens": len(val_ids),
              "window": window, "stride": stride, "gemm_left_fp32": fp32_gemms(builder.model),
              "calibration": {"samples": samples, "tokens_per_sample": length},
              "reference_perplexity": reference,
              "four_bit": f"asymmetric, blocks of {block} (K padded); per unit, the recipe in four_bit_recipes "
                          "with the lowest KL",
              "four_bit_recipes": {},
              "eight_bit": f"round to nearest, symmetric, blocks of {block} (K padded)",
              "ranking_view": f"everything 8-bit but this unit at 4 bits (by each recipe; the lowest counts); KL "
                              f"divergence from FP32 on the first {len(probe)} validation tokens (higher: the unit "
                              "matters more)",
              "ranking": [], "steps": [],
              "kernels": table,
              "predicted_matmul_us": {"all 4-bit/32 (genai-int4's format)": anchor, f"all 4-bit/{block}": predicted(set()),
                                      f"all 8-bit/{block}": predicted(set(builder.nodes))}}
    # the steps' builds live beside `out` (an atomic .partial folder): a killed search leaves them
    # where qonnx's clean-up of partial folders finds them, not in /tmp
    with work_dir(out.parent, "lmbudget") as tmp:
        path = Path(tmp) / out.name  # the data file's name is written into the graph

        def build(eight_units):
            eight = [n for u in eight_units for n in units[u]]
            return builder.build([n for n in builder.nodes if n not in set(eight)], eight, path), eight

        # each unit alone at 4 bits by each recipe, everything else 8-bit: the unit keeps the recipe
        # with the lowest KL from FP32, and that KL ranks it
        key = model_digest and ranking_key(model_digest, calib_ids, probe, block, samples, length, builder.recipes)
        saved_at = cache_dir() / RANKINGS / f"{key}.json" if key else None
        saved = cached_ranking(saved_at)
        if saved and set(saved["four_bit_recipes"]) == set(units):
            record.update({k: saved[k] for k in ("eight_bit_kl", "four_bit_recipes", "ranking")})
            record["ranking_reused"] = str(saved_at)
            for u, trials in saved["four_bit_recipes"].items():
                builder.use(units[u], min(trials, key=trials.get))
            log.info("budget search: per-unit ranking reused from %s", saved_at)
        else:
            record["eight_bit_kl"] = kl(ref_logits, window_logits(build(units)[0], probe, threads, config))
        for u in ([] if "ranking_reused" in record else units):
            trials = {}
            for r in builder.recipes:
                builder.use(units[u], r)
                trials[r] = kl(ref_logits, window_logits(build([v for v in units if v != u])[0], probe, threads,
                                                         config))
            builder.use(units[u], min(trials, key=trials.get))
            record["four_bit_recipes"][u] = trials
            record["ranking"].append({"unit": u, "kl": min(trials.values())})
            if on_step:
                on_step({"ranked": u, **record["ranking"][-1]})
            done = len(record["ranking"])
            if done % max(1, len(units) // 4) == 0 or done == len(units):
                log.info("budget search: ranked %d/%d units, %.0f s elapsed", done, len(units), time.monotonic() - t0)
        if saved_at and "ranking_reused" not in record:
            saved_at.parent.mkdir(parents=True, exist_ok=True)
            write_json(saved_at, {k: record[k] for k in ("eight_bit_kl", "four_bit_recipes", "ranking")})
        record["four_bit_recipe"] = {u: builder.recipe[units[u][0]] for u in units}
        counts = {r: list(record["four_bit_recipe"].values()).count(r) for r in builder.recipes}
        builder.recipes = None  # the codes not chosen are no longer needed
        log.info("budget search: 4-bit recipe per unit: %s", ", ".join(f"{r}: {c}" for r, c in counts.items()))
        ranked = [r["unit"] for r in sorted(record["ranking"], key=lambda r: -r["kl"])]

        def step(k):
            _, eight = build(ranked[:k])
            p = perplexity(path, val_ids, window, stride, threads, config)
            entry = {"eight_bit_units": k, "eight_bit_matmuls": len(eight), "perplexity": p,
                     "increase_pct": 100 * (p / reference - 1), "predicted_matmul_us": predicted(set(eight))}
            record["steps"].append(entry)
            log.info("budget search: %d of %d units at 8 bits, perplexity %+.2f %% (budget %.2f %%)",
                     k, len(ranked), entry["increase_pct"], limit_pct)
            if on_step:
                on_step(entry)
            return entry["increase_pct"] <= limit_pct + 1e-9

        # doubling until within the budget, then bisection between the last miss and the first hit
        low, high = None, None
        for k in steps(len(ranked)):
            if step(k):
                high = k
                break
            low = k
        if high is not None:
            while low is not None and high - low > 1:
                mid = (low + high) // 2
                low, high = (low, mid) if step(mid) else (mid, high)
            chosen = next(s for s in record["steps"] if s["eight_bit_units"] == high)
            if record["steps"][-1] is not chosen:
                build(ranked[:high])
            eight = [n for u in ranked[:high] for n in units[u]]
            shutil.move(str(path), str(out))
            shutil.move(str(path) + ".data", str(out) + ".data")
            record.update(eight_bit_units=ranked[:high], eight_bit_nodes=eight, increase_pct=chosen["increase_pct"],
                          four_bit_matmuls=len(builder.nodes) - len(eight),
                          # > 1: the chosen mix's MatMuls predicted faster than all 4-bit/32 on this CPU
                          predicted_speed_vs_4bit32=anchor / chosen["predicted_matmul_us"])
            log.info("budget search: the chosen mix's MatMuls are predicted at %.2fx all 4-bit/32 on this CPU (kernel "
                     "table in the manifest)", record["predicted_speed_vs_4bit32"])
            return record
    best = min(record["steps"], key=lambda s: s["increase_pct"])
    raise BudgetNotMet(f"no mix of 4- and 8-bit MatMuls meets --max-perplexity-increase {limit_pct}: the best step "
                       f"({best['eight_bit_units']} units at 8 bits) raised validation perplexity by "
                       f"{best['increase_pct']:.2f} % over {len(val_ids)} tokens. Nothing was written.")


VALIDATION_TOKENS = 2048


def budget_texts(cfg, demo, tokenizer):
    """(calibration ids, validation ids, provenance) for --max-perplexity-increase: --calibration
    (else the demo's calibration split) for GPTQ, --validation (else the demo's validation split)
    for the search; never the evaluation corpus."""

    cal_spec = demo_split(cfg.calibration, demo, "calibration")
    val_spec = demo_split(cfg.validation, demo, "validation")
    if not cal_spec or not val_spec:
        raise ConfigError("--max-perplexity-increase needs --calibration (text for GPTQ) and --validation (text the "
                          "budget is checked on); neither may be the text you will evaluate on.")
    texts, prov = calibration.select(cal_spec, cfg.num_samples, cfg.seed, True, cfg.text_column or "text")
    cal_ids = tokenizer("\n".join(texts))["input_ids"]
    val = data.load(val_spec, lm=True, text_column=cfg.validation_text_column)
    val_ids = tokenizer(val.corpus)["input_ids"][:VALIDATION_TOKENS]
    if len(val_ids) < 2:
        raise ConfigError(f"--validation {val_spec} holds {len(val_ids)} token(s); the budget needs at least 2.")
    digest = hashlib.sha256(np.asarray(val_ids, dtype=np.int64).tobytes()).hexdigest()[:16]
    return cal_ids, val_ids, {"calibration": prov, "validation": {"source": val.source, "tokens": len(val_ids),
                                                                  "rows_sha256": digest}}


def build(src, out, cfg, config, texts=None, **_) -> dict:
    """int4-weight within --max-perplexity-increase: 8-bit with the least sensitive layers at 4 bits
    (GPTQ or round to nearest, measured per unit), searched on the validation text. texts:
    budget_texts(...)."""
    import onnx

    cal_ids, val_ids, provenance = texts
    src, out = Path(src).resolve(), Path(out).resolve()
    model_digest = tree_digest(src.parent)
    model = onnx.load(str(src))
    if materialize_transposed_weights(model):  # a tied lm_head gets a weight of its own
        untied = out.parent / "untied.onnx"
        onnx.save_model(model, str(untied), save_as_external_data=True, location="untied.onnx.data")
        src = untied
    del model
    try:
        record = search(src, out, cfg.max_perplexity_increase, cal_ids, val_ids, config, threads=cfg.threads,
                        model_digest=model_digest)
    finally:
        for f in (out.parent / "untied.onnx", out.parent / "untied.onnx.data"):
            f.unlink(missing_ok=True)
    return {"bits": "4 and 8 (mixed)", "block_size": BLOCK,
            "algorithm": "gptq or rtn per unit (budget_search.four_bit_recipe) + 8-bit rtn",
            "accuracy_level": ACCURACY_LEVEL, "budget_search": record, "data": provenance}
