"""A perplexity budget for a decoder LM, enforced by a search over weight formats: MatMulNBits at
4 bits in blocks of 32, 64 or 128 (with zero points or without), at 8 bits in blocks of 128, or
float, chosen per unit.

1. The kernel table (kernels.py): each distinct MatMul shape timed in each format on this CPU at
   decode's [1, K], its weights streamed from memory as a token streams them, interleaved: a unit's
   time in a format is the sum of its MatMuls' kernels. A symmetric 4-bit format stays a candidate
   only where it runs faster than the same blocks with zero points (kernels.candidates).
2. Where the graph's residual stream can be followed (the genai builder's), it is rotated first
   (variants.rotation: an orthogonal matrix folded into the weights; the float graph unchanged), and
   every MatMul's codes below are GPTQ's, at 4 bits and at 8: rotated, they lose far less, and the
   clip search's far more. Elsewhere (optimum's graphs) as follows.
   One calibration pass collects each weighted MatMul's input statistics (X^T X). Where an input's
   producer can take it, the weights meeting it are scaled by activation-aware input scales chosen
   for 4-bit blocks of 128 (variants.scaling; the float graph is unchanged). Every MatMul gets
   8-bit codes (round to nearest, symmetric) and 4-bit codes in each candidate 4-bit format (round to
   nearest with each block's range clipped; for the head also GPTQ: mixed.four_bit_recipes).
3. Units are the roles of each transformer layer (attention in and out, FFN in and out) and the
   head's token ranges (vocab.py: the head split by column ranges, so its frequent tokens can keep
   8 bits and its long tail take 4). Each is measured in each format (by each recipe) with everything else at 8 bits: KL
   divergence of the logits from FP32 on the first window of the validation text (lm_rank.py;
   cached per format), from the part of the graph downstream of the unit (probe.py). A unit keeps,
   per format, its recipe with the lowest KL. The lookup is 8-bit in every build (nbits.own_lookup).
4. chooser.py orders the moves from each unit's safest format to faster ones by KL per millisecond
   saved. Steps hold back the 0, 1, 2, 4 ... most expensive moves (from the fastest build towards
   the safest) and measure perplexity on a validation text (neither the calibration text nor the
   evaluation corpus) against the FP32 graph on the same text; bisection finds the fastest step
   within the budget, and every step is recorded with its predicted MatMul time. None within it:
   BudgetNotMet, saying what the best step reached.

The costs are measured on one window; the budget is checked on the whole validation text. The
kernel table, its CPU, each unit's format and the predicted time go into the manifest: the choice
holds for that CPU class. Last, the chosen build is timed whole against the same graph in
genai-int4's and genai-int8's formats (steptime.py): the table predicts MatMuls only.
"""
import logging
import shutil
import time
from collections import Counter
from pathlib import Path

from qonnx.measure.deviation import Reference, kl
from qonnx.ratios import spread as increase_spread
from qonnx.store import tree_digest, work_dir
from qonnx.variants.graph import materialize_transposed_weights
from qonnx.variants.int4_weight import ACCURACY_LEVEL, fp32_gemms
from qonnx.variants.rotation import rotate
from qonnx.variants.search import chooser, describe, kernels, lm_rank, steptime
from qonnx.variants.search.budget import BudgetNotMet, steps
from qonnx.variants.search.lm_rank import layer_units, perplexity, window_logits
from qonnx.variants.search.margin import budget_held, margin_setting
from qonnx.variants.search.mixed import BLOCK, EVERY, GPTQ_ROLES, MixedBuilder, fused_shapes, matmul_shapes
from qonnx.variants.search.probe import PartProbe
from qonnx.variants.search.vocab import split_head

log = logging.getLogger(__name__)
ANCHOR = kernels.ANCHOR  # genai-int4's format: the predicted speed is said against it
CLOSE = 0.05  # a ceiling within this of the anchor's speed: said as a warning before the search
# in the build's key: a change of how the search chooses never reuses a build it chose the old way (2:
# units per role, kernels timed with weights streamed, an 8-bit lookup; 3: input scales, GPTQ or clip
# codes; 4: 4-bit/64, GPTQ for the head only; 5: speed said against genai-int4's symmetric 4-bit/32; 6:
# symmetric 4-bit where it pays; 7: the chosen build timed whole; 8: the stream rotated, GPTQ everywhere;
# 9: the head by token ranges; 10, 11: input scales that spare the 8-bit codes; 12: GPTQ in act-order on
# searched grids, the budget checked on up to texts.VALIDATION_TOKENS; 13: the budget held by
# DEFAULT_MARGIN_SE, kernels by the mean of their fastest half of rounds)
SEARCH = 13


def search(src, out, limit_pct, calib_ids, val_ids, config, block=BLOCK, window=512, stride=256,
           threads=None, samples=8, length=512, on_step=None, model_digest=None, genai=False, margin_se=None) -> dict:
    """Write the fastest (by the kernel table) build within limit_pct (perplexity increase in percent
    on val_ids, plus margin_se standard errors of it: margin.budget_held; None: the default, or none
    with a warning where the text gives no standard error) to `out` (model.onnx + its .data);
    return the search record. With model_digest (the
    source model's content hash) the per-unit costs are cached and reused by a later search on the
    same model, calibration and validation text (in the user cache: lm_rank.RANKINGS). genai: src is
    a genai folder's model (its side files beside it): the chosen build is timed in the Generator."""
    import onnx

    src, out = Path(src).resolve(), Path(out).resolve()
    positions = (config or {}).get("max_position_embeddings") or (config or {}).get("n_positions")
    if positions and positions < max(window, length):  # a model that takes fewer positions (GPT-2: 1024)
        window = length = positions
        stride = min(stride, max(1, positions // 2))
    reference, ref_parts = perplexity(src, val_ids, window, stride, threads, config)
    margin = margin_setting(margin_se, increase_spread(ref_parts, ref_parts, lm_rank.SPREAD_BLOCK)["se_pct"] is not None,
                            len(val_ids))
    margin_se = margin["margin_se"]
    probe = val_ids[:window]
    ref = Reference(window_logits(src, probe, threads, config))
    t0 = time.monotonic()
    fmts, eight = kernels.formats(block), f"8-bit/{block}"
    model = onnx.load(str(src))
    # the residual stream rotated where it can be followed (genai's graphs), then GPTQ codes everywhere
    rotation, unrotated = rotate(model)
    roles = EVERY if rotation else GPTQ_ROLES
    whole, _ = matmul_shapes(model)  # genai-int4's graph (the head in one): the anchor's speed is said on it
    ranges = split_head(model)
    if unrotated:
        log.info("budget search: the residual stream is not rotated (%s); clip codes, GPTQ for %s", unrotated,
                 ", ".join(roles))
    shapes, input_of = matmul_shapes(model)
    units = layer_units(list(shapes))
    fused = {u: fused_shapes(names, shapes, input_of) for u, names in units.items()}
    # the source graph's shapes, those of fused MatMuls and the unsplit head's (count 0: in the builds or
    # the anchor only; the bytes a step streams are the same, so each is timed over the same working set)
    counts = {**{s: 0 for ss in [*fused.values(), whole.values()] for s in ss}, **kernels.counts(shapes)}
    # every format (genai-int4's own, the anchor, among them), then the candidates worth measuring here
    table = kernels.measure(counts, {**fmts, ANCHOR: kernels.ANCHOR_SPEC}, threads)
    ms = kernels.unit_ms(table, units, shapes, fused, fmts)
    every = {f"all {f}": 1000 * sum(ms[u][f] for u in units) for f in fmts}
    key = model_digest and lm_rank.ranking_key(model_digest, calib_ids, probe, eight, samples, length, roles,
                                                    rotation)
    fmts, left_out = kernels.candidates(fmts, ms, lm_rank.known_formats(key, units))
    ms = {u: {f: t[f] for f in fmts} for u, t in ms.items()}
    # the anchor's own graph (genai-int4: gate and up apart) in its format, against which speed is said
    anchor = kernels.predict_us(table, dict.fromkeys(whole, ANCHOR), whole)
    # the fastest build the candidates allow: every unit in its fastest format, whatever its loss
    ceiling = anchor / (1000 * sum(min(ms[u].values()) for u in units))
    log.info("budget search: kernels of %d shapes timed on %s; MatMul time per token: %s; the anchor's graph "
             "(genai-int4: %s, no MatMuls fused) %.0f us", len(counts),
             kernels.class_name(kernels.cpu_class(table["cpu"])),
             ", ".join(f"{k} {v:.0f} us" for k, v in every.items()), ANCHOR, anchor)
    if left_out:
        log.info("budget search: left out (less than %.0f %% faster than the same blocks with zero points on this "
                 "CPU, and not measured before: not worth measuring): %s", 100 * kernels.WORTH,
                 ", ".join(f"{f} ({r:.2f}x the time)" for f, r in left_out.items()))
    if ceiling < 1.0 + CLOSE:
        log.warning("budget search: on this CPU genai-int4's format (%s) is within %.0f %% of the fastest build the "
                    "formats allow (%.2fx it): a budget row can be more accurate than genai-int4 here, not faster "
                    "by more than that", ANCHOR, 100 * CLOSE, ceiling)
    else:
        log.info("budget search: the fastest build these formats allow (every unit in its fastest format) is "
                 "predicted at %.2fx the anchor's MatMuls", ceiling)
    log.info("budget search: FP32 perplexity %.3f on %d validation tokens; codes in each format next", reference,
             len(val_ids))
    builder = MixedBuilder(model, calib_ids, config, fmts, samples, length, rotated=bool(rotation))
    busy = kernels.unsteady(table)
    if 3 * len(busy) > len(table["kernels"]):
        log.warning("budget search: for %d of %d kernels no second round came within 15 %% of the fastest: the "
                    "machine was busy while they were timed, and the formats chosen from them may not be the fastest here. "
                    "Search again on a quiet machine (--overwrite) if the speed matters.", len(busy),
                    len(table["kernels"]))
    recipes = {u: {f: builder.recipes(f, names) for f in fmts} for u, names in units.items()}
    record = {"budget": {"max_perplexity_increase_pct": limit_pct, **margin},
              "validation_tokens": len(val_ids),
              "spread_block_tokens": lm_rank.SPREAD_BLOCK,
              "window": window, "stride": stride, "gemm_left_fp32": fp32_gemms(builder.model),
              "calibration": {"samples": samples, "tokens_per_sample": length},
              "reference_perplexity": reference, "formats": list(fmts),
              "formats_left_out": {f: f"{r:.3f}x the time of the same blocks with zero points" for f, r in left_out.items()},
              "rotation": rotation or {"skipped": unrotated}, "head_ranges": ranges or "not split",
              "four_bit": "K padded to whole blocks; with zero points, or without where the format says symmetric; " +
                          ("GPTQ codes (the residual stream rotated)" if rotation else
                           f"clip search codes, and for {', '.join(roles)} also GPTQ's: per format, the one with the "
                           "lowest KL"), "recipes": recipes,
              "input_scales": {"for": f"4-bit/{block} clip codes, the 8-bit codes' error within scaling.GUARD "
                                      "of its least", "alpha_by_input": builder.scaled},
              "eight_bit": f"{'GPTQ' if rotation else 'round to nearest'}, symmetric, blocks of {block} (K padded)",
              "cost_view": f"everything {eight} but this unit in this format (by each recipe; the lowest counts); "
                           f"KL divergence from FP32 on the first {len(probe)} validation tokens",
              "cpu": kernels.cpu_class(table["cpu"]), "kernels": table, "kernels_unsteady": busy, "unit_ms": ms,
              "predicted_matmul_us": every, "anchor": ANCHOR, "anchor_matmul_us": anchor,
              "ceiling_vs_anchor": ceiling,
              "fused": {u: ss for u, ss in fused.items() if len(ss) < len(units[u])}, "steps": []}
    # the steps' builds live beside `out` (an atomic .partial folder): a killed search leaves them
    # where qonnx's clean-up of partial folders finds them, not in /tmp
    with work_dir(out.parent, "lmbudget") as tmp:
        path = Path(tmp) / out.name  # the data file's name is written into the graph

        # a unit's cost from the part of the graph downstream of it, the rest read from one base run
        part = PartProbe(builder, lm_rank.base_plan(builder, eight), probe, threads, config, tmp, units.values())
        if part.whole:
            log.info("budget search: each unit's cost measured on the whole graph: %s", part.whole)

        def measure(plan, changed=None):
            if changed and not part.whole:
                return kl(ref, part.logits(plan, changed))
            builder.build(plan, path)
            return kl(ref, window_logits(path, probe, threads, config))

        found = lm_rank.costs(builder, units, eight, measure, key, on_step)
        trials = found["trials"]
        record.update(eight_bit_kl=found["base_kl"], trials=trials)
        if "reused" in found:
            record.update(ranking_reused=found["reused"], ranking_measured_now=found["measured"])
        cost = {u: {f: min(t.values()) for f, t in trials[u].items()} for u in units}
        recipe = {u: {f: min(t, key=t.get) for f, t in trials[u].items()} for u in units}
        start, moves = chooser.moves(cost, ms)
        record["moves"] = [{"unit": u, "format": f, "kl_per_ms": s} for u, f, s in moves]
        builder.keep({(f, recipe[u][f]) for u in units for f in fmts})  # codes no unit uses are freed
        log.info("budget search: %d moves from the safest build to the fastest, %.0f s", len(moves),
                 time.monotonic() - t0)

        def chosen_at(k):  # k: the most expensive moves held back
            return chooser.assignment(start, moves[:len(moves) - k])

        def build(chosen):
            builder.build({n: (chosen[u], recipe[u][chosen[u]]) for u in units for n in units[u]}, path)

        def step(k):
            chosen = chosen_at(k)
            build(chosen)
            p, parts = perplexity(path, val_ids, window, stride, threads, config)
            spread = increase_spread(parts, ref_parts, lm_rank.SPREAD_BLOCK)
            entry = {"moves_held_back": k, "units_by_format": dict(Counter(chosen.values())), "perplexity": p,
                     "increase_pct": 100 * (p / reference - 1), "increase_se_pct": spread["se_pct"],
                     "block_increases_pct": spread["blocks_pct"],
                     "predicted_matmul_us": 1000 * chooser.predicted_ms(ms, chosen)}
            record["steps"].append(entry)
            log.info("budget search: %d of %d moves held back (%s), perplexity %+.2f %%%s (budget %.2f %%%s)", k,
                     len(moves), ", ".join(f"{f} x{c}" for f, c in entry["units_by_format"].items()),
                     entry["increase_pct"], describe.se(entry, spread["block_tokens"]), limit_pct,
                     describe.held(margin_se))
            if on_step:
                on_step(entry)
            return budget_held(entry, limit_pct, margin_se)

        # doubling from the fastest build until within the budget, then bisection between the last
        # miss and the first hit
        low, high = None, None
        for k in steps(len(moves)):
            if step(k):
                high = k
                break
            low = k
        if high is not None:
            while low is not None and high - low > 1:
                mid = (low + high) // 2
                low, high = (low, mid) if step(mid) else (mid, high)
            entry = next(s for s in record["steps"] if s["moves_held_back"] == high)
            chosen = chosen_at(high)
            if record["steps"][-1] is not entry:
                build(chosen)
            check = record["step_check"] = steptime.check(builder.model, path, Path(tmp), val_ids, threads, config,
                                                          block, src.parent if genai else None)
            steptime.log_check(check)
            shutil.move(str(path), str(out))
            shutil.move(str(path) + ".data", str(out) + ".data")
            by_node = Counter(chosen[u] for u in units for _ in units[u])
            record.update(chosen_formats=chosen, chosen_recipes={u: recipe[u][chosen[u]] for u in units},
                          matmuls_by_format=dict(by_node), increase_pct=entry["increase_pct"],
                          increase_se_pct=entry["increase_se_pct"], block_increases_pct=entry["block_increases_pct"],
                          eight_bit_units=[u for u in units if chosen[u] == eight],
                          predicted_chosen_matmul_us=entry["predicted_matmul_us"],
                          # > 1: the chosen build's MatMuls predicted faster than the anchor's graph (genai-int4:
                          # all 4-bit/32 symmetric, gate and up apart) on this CPU
                          predicted_speed_vs_anchor=anchor / entry["predicted_matmul_us"])
            log.info("budget search: the chosen build's MatMuls are predicted at %.2fx genai-int4's (%s) on this CPU, "
                     "%.2fx at most with these formats (kernel table in the manifest)",
                     record["predicted_speed_vs_anchor"], ANCHOR, ceiling)
            return record
    best = min(record["steps"], key=lambda s: s["increase_pct"])
    raise BudgetNotMet(f"no choice of weight formats meets --max-perplexity-increase {limit_pct}{describe.held(margin_se)}: "
                       f"the best step ({best['moves_held_back']} of {len(moves)} moves held back: "
                       f"{', '.join(f'{f} x{c}' for f, c in best['units_by_format'].items())}) raised validation "
                       f"perplexity by {best['increase_pct']:.2f} %{describe.se(best, lm_rank.SPREAD_BLOCK)} over "
                       f"{len(val_ids)} tokens. Nothing was written.")


def build(src, out, cfg, config, texts=None, **_) -> dict:
    """int4-weight within --max-perplexity-increase: search() from src, each unit's format chosen by its
    measured KL and its kernels' time on this CPU. texts: texts.budget_texts(...)."""
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
                        model_digest=model_digest, margin_se=cfg.perplexity_margin_se)
    finally:
        for f in (out.parent / "untied.onnx", out.parent / "untied.onnx.data"):
            f.unlink(missing_ok=True)
    return {"bits": "4, 8 or float per unit (budget_search.chosen_formats)", "block_size": "per unit (formats)",
            "algorithm": "the residual stream rotated and GPTQ codes where the graph allows (budget_search.rotation), "
                         "else input scales and clip codes; per unit: budget_search.chosen_recipes",
            "accuracy_level": ACCURACY_LEVEL, "budget_search": record, "data": provenance}
