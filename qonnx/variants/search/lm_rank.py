"""What each unit's format costs in quality, for the LM budget search: KL divergence of the logits
from FP32 on the first validation window, with everything 8-bit but that unit in that format (by
each of the format's recipes; the lowest counts). Kept in the user cache by the model, the
calibration and probe tokens and the codes' settings, so a second budget reuses it."""
import hashlib
import json
import logging
import time

import numpy as np

from qonnx.cache import cache_dir, write_json
from qonnx.runners.ort import OrtRunner
from qonnx.store import digest
from qonnx.tasks.lm import perplexity as ppl
from qonnx.variants.int4_weight import ACCURACY_LEVEL
from qonnx.variants.search.vocab import FIRST, unit_of

log = logging.getLogger(__name__)

RANKINGS = "lm-budget-rankings"  # under the user cache: per-unit costs, by ranking_key


# in the ranking key: costs measured over other units are never reused
UNITS = f"layer x role, the head by token ranges from {FIRST}"
# in the ranking key: the input scales' version (variants.scaling; 3: chosen for 4-bit codes where the
# 8-bit codes' error stays within scaling.GUARD of its least); other weights, other costs
SCALES = 3
# in the ranking key: GPTQ's 4-bit recipe (variants.gptq.FOUR_BIT; 2: act-order on searched grids)
GPTQ = 2
SPREAD_BLOCK = 2048  # scored tokens per block of the validation text whose spread gives the standard error


def layer_units(names):
    """{unit: MatMul names}: one unit per role of each transformer layer (attention in, attention
    out, FFN in, FFN out: units.role), each range of a split head (vocab.py), other. Finer than a
    layer, because the formats' speeds differ by shape: on a CPU where 8 bits cost little more than
    4 on the attention's projections but much more on the FFN's input, the search keeps one and not
    the other."""
    out = {}
    for n in names:
        out.setdefault(unit_of(n), []).append(n)
    return out


def perplexity(path, ids, window, stride, threads, config):
    """(perplexity, each window's (negative log-likelihood sum, tokens scored))."""
    parts = []
    with OrtRunner(str(path), "cpu", threads, config) as r:
        return ppl(r, ids, window, stride, parts)[0], parts


def window_logits(path, ids, threads, config):
    x = np.asarray(ids, dtype=np.int64)[None]
    with OrtRunner(str(path), "cpu", threads, config) as r:
        return r.step(x, np.ones_like(x))[0][0]


def ranking_key(model_digest, calib_ids, probe, eight, samples, length, gptq_roles, rotation=None) -> str:
    """What the per-unit costs depend on besides the formats: the model, the calibration and probe
    tokens, the base format (eight: every other unit in it), the roles with GPTQ codes, the rotation
    of the residual stream (its record, or None: not in the key, so unrotated keys stay as they
    were), and the runtime that computes the logits. A format's name says its codes (bits, block,
    zero points), so costs are kept per format under one key: a search over other formats measures
    only those new."""
    import onnxruntime as ort

    ids = hashlib.sha256(np.asarray(calib_ids, dtype=np.int64).tobytes() + b"|" +
                         np.asarray(probe, dtype=np.int64).tobytes()).hexdigest()
    return digest({"model": model_digest, "ids": ids, "units": UNITS, "scales": SCALES, "gptq": GPTQ, "base": eight,
                   "samples": samples, "length": length, "gptq_roles": list(gptq_roles),
                   "accuracy_level": ACCURACY_LEVEL, "onnxruntime": ort.__version__,
                   **({"rotation": rotation} if rotation else {})})


def saved_path(key):
    return cache_dir() / RANKINGS / f"{key}.json" if key else None


def known_formats(key, units) -> set:
    """The formats whose costs the cache holds for every unit under `key` (nothing cached: none)."""
    saved = cached(saved_path(key), units, warn=False)
    return {f for f in next(iter(saved["trials"].values()))
            if all(f in t for t in saved["trials"].values())} if saved else set()


def cached(path, units, warn=True):
    """The costs a previous search saved at path for these units ({"base_kl", "trials": {unit:
    {format: {recipe: KL}}}}), whatever formats they cover, else None (absent; damaged or partial:
    then measured again, with a warning)."""
    if path is None or not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        trials = saved["trials"]
        if isinstance(saved["base_kl"], float) and set(trials) == set(units) and all(
                isinstance(k, float) for t in trials.values() for r in t.values() for k in r.values()):
            return saved
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass
    if warn:
        log.warning("budget search: %s is damaged; measuring the per-unit costs again", path)
    return None


def base_plan(builder, eight) -> dict:
    """Every MatMul in the base format `eight`: the build each unit's cost is measured against."""
    return dict.fromkeys(builder.nodes, (eight, builder.recipes(eight)[0]))


def costs(builder, units, eight, measure, key=None, on_step=None) -> dict:
    """{"base_kl", "trials": {unit: {format: {recipe: KL}}}} for builder.formats (and "reused": the
    file, where the cache held some of them; "measured": the formats measured now). eight: the base
    format (every other unit in it); measure(plan, changed=None) -> KL of the build with that plan
    ({MatMul: (format, recipe)}; changed: the MatMuls where it differs from base_plan). A cached
    file's formats are reused and the others measured and added to it."""
    saved_at = saved_path(key)
    saved = cached(saved_at, units)
    base = base_plan(builder, eight)
    out = saved or {"base_kl": measure(base), "trials": {u: {} for u in units}}
    todo = [f for f in builder.formats if f != eight and any(f not in out["trials"][u] for u in units)]
    if saved:
        log.info("budget search: per-unit costs reused from %s%s", saved_at,
                 f"; {', '.join(todo)} measured now" if todo else "")
    t0 = time.monotonic()
    for i, (u, names) in enumerate(units.items(), 1):
        trials = out["trials"][u]
        trials[eight] = {builder.recipes(eight)[0]: out["base_kl"]}
        for fmt in todo:
            for r in builder.recipes(fmt, names):
                trials.setdefault(fmt, {})[r] = measure({**base, **dict.fromkeys(names, (fmt, r))}, names)
        if todo and on_step:
            on_step({"ranked": u, "kl": {f: min(t.values()) for f, t in trials.items() if f in builder.formats}})
        if todo and (i % max(1, len(units) // 4) == 0 or i == len(units)):
            log.info("budget search: costs of %d/%d units measured, %.0f s", i, len(units), time.monotonic() - t0)
    if saved_at and (todo or not saved):
        saved_at.parent.mkdir(parents=True, exist_ok=True)
        write_json(saved_at, out)
    found = {"base_kl": out["base_kl"], "measured": todo,
             "trials": {u: {f: t[f] for f in builder.formats} for u, t in out["trials"].items()}}
    return {**found, "reused": str(saved_at)} if saved else found
