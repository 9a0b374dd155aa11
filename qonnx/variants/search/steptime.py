"""The LM budget search's check of its choice in whole graphs: a decode step of the chosen build
against the same graph in genai-int4's format (every MatMul 4-bit/32 symmetric, gate and up apart)
and in genai-int8's (every MatMul 8-bit/128, MatMuls sharing an input fused), timed in interleaved
rounds on this machine, in the runtime the build is for: onnxruntime-genai's Generator for a genai
folder (genai-int4-budget), onnxruntime through qonnx's decode loop otherwise. The two runtimes do
not rank builds alike: on an Intel Xeon (AMX) a budget build decoded at 1.09x genai-int4 in the
Generator and 1.03x in plain onnxruntime steps (docs/benchmarks.md).

The kernel table predicts MatMuls only; the rest of a step (attention, norms, activations: about a
third of a token on demo:smollm2) is the same in every build, so a build whose MatMuls are 1.2x
faster decodes less than 1.2x faster. This measures what a token costs. Each build decodes one token
after CACHED positions (onnxruntime: the cache from its own prompt pass, CALLS times a turn; the
Generator: a prompt of CACHED tokens, then TOKENS greedy tokens, their mean); every round gives
each build one turn, the order rotating, each turn after measure.latency.settle (the threads of the
build before stop spinning). A ratio is taken within each round (both sides timed seconds apart) and
reported as the median of the rounds with their range.
"""
import logging
import shutil
import statistics
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from qonnx.measure.latency import settle
from qonnx.runners.genai import GenaiRunner, side_files
from qonnx.runners.ort import OrtRunner
from qonnx.variants.search import describe
from qonnx.variants.search.kernels import ANCHOR_SPEC
from qonnx.variants.search.nbits import BLOCK, uniform

log = logging.getLogger("qonnx.variants.search.lm_budget")  # the search's log, whose lines these are
CACHED, ROUNDS, CALLS, TOKENS = 64, 15, 4, 16
INT4, INT8 = "genai-int4's format", "genai-int8's format"


def check(model, chosen, work, ids, threads=None, config=None, block=BLOCK, genai_side=None) -> dict:
    """The chosen build (its model.onnx path) against `model` (the float graph the search quantized)
    with every MatMul in genai-int4's format (4-bit/32 symmetric, none fused) and in genai-int8's
    (8-bit/block, fused), both written under `work`: step_ms() of each and the two ratios. genai_side:
    the folder of a genai build's side files (genai_config.json, tokenizer): timed in its Generator."""
    if len(ids) < CACHED + 1:
        return {"skipped": f"the validation text holds {len(ids)} tokens; a decode step after {CACHED} "
                           f"positions needs {CACHED + 1}"}
    paths = {"chosen": chosen, INT4: uniform(model, ANCHOR_SPEC, work / "int4" / chosen.name, fuse=False),
             INT8: uniform(model, (8, block), work / "int8" / chosen.name)}
    for p in paths.values() if genai_side else ():
        for f in side_files(genai_side):
            shutil.copy2(f, Path(p).parent / f.name)
    times = step_ms(paths, ids, threads, config, runtime="genai" if genai_side else "ort")
    return {"runtime": "onnxruntime-genai's Generator" if genai_side else "onnxruntime (qonnx's decode loop)",
            "cached_positions": CACHED, "rounds": ROUNDS, "calls": CALLS,
            "step_ms": {n: {"fastest": min(t), "median": statistics.median(t)} for n, t in times.items()},
            "chosen_vs_int4_format": ratio(times, INT4, "chosen"), "chosen_vs_int8_format": ratio(times, INT8, "chosen")}


def step_ms(paths: dict, ids, threads=None, config=None, rounds=ROUNDS, calls=CALLS, cached=CACHED,
            runtime="ort") -> dict:
    """{name: [milliseconds of one decode step, one per round]} for each model of paths ({name:
    model.onnx}; runtime "genai": each a genai folder's); ids: at least cached + 1 token ids (the
    prompt, then the token decoded)."""
    x = np.asarray(ids[:cached + 1], dtype=np.int64)[None]
    if x.shape[1] < cached + 1:
        raise ValueError(f"a decode step after {cached} positions needs {cached + 1} tokens, got {x.shape[1]}")
    mask = np.ones_like(x)
    with ExitStack() as stack:
        if runtime == "genai":
            runners = {}
            for n, p in paths.items():
                runners[n] = GenaiRunner(str(p), "cpu", threads, config)
                stack.callback(runners[n].close)
                runners[n].load_generator()

            def turn(n):
                _, seconds, out = runners[n].generate(x[0, :cached], TOKENS + 1)
                return seconds / max(1, len(out) - 1) * 1e3
        else:
            runners = {n: stack.enter_context(OrtRunner(str(p), "cpu", threads, config)) for n, p in paths.items()}
            past = {n: r.step(x[:, :cached], mask[:, :cached])[1] for n, r in runners.items()}

            def turn(n):
                t0 = time.perf_counter()
                for _ in range(calls):
                    runners[n].step(x[:, cached:], mask, past[n])
                return (time.perf_counter() - t0) / calls * 1e3
        for n in runners:  # warm-up
            turn(n)
        times, names = {n: [] for n in runners}, list(runners)
        for rnd in range(rounds):
            for n in names[rnd % len(names):] + names[:rnd % len(names)]:
                settle()
                times[n].append(turn(n))
    return times


def ratio(times: dict, slow: str, fast: str) -> dict:
    """How many times faster `fast` decoded than `slow`: {"median", "range"} of the per-round ratios."""
    r = [a / b for a, b in zip(times[slow], times[fast])]
    return {"median": statistics.median(r), "range": [min(r), max(r)]}


def log_check(check) -> None:
    """Say what check() found (or why it did not time the step) in the search's log."""
    if "skipped" in check:
        log.warning("budget search: the chosen build's decode step was not timed: %s", check["skipped"])
        return
    a, b = check["chosen_vs_int4_format"], check["chosen_vs_int8_format"]
    log.info("budget search: a decode step of the chosen build, timed in %s in %d interleaved rounds: "
             "%.2fx (%.2f-%.2f) the same graph in genai-int4's format, %.2fx (%.2f-%.2f) in genai-int8's",
             check["runtime"], check["rounds"], a["median"], *a["range"], b["median"], *b["range"])
    slow = describe.slower(check)
    if slow:
        log.warning("budget search: the chosen build was %s; compare it with that row before shipping it (a larger "
                    "--max-perplexity-increase buys speed)", slow)
