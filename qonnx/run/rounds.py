"""Interleaved rounds: the timing behind compare's ratios.

Measured one after the other, two rows see different machines whenever the load on a shared machine
changes between them (seen: the same row 3x apart in two passes). Here every ok row's worker is
loaded at once (each in its own process, qonnx.run.pool), then in each round every row runs the same
short piece of work in turn, alone on the CPU (after the threads of the row before have stopped
spinning: measure.latency.settle), the order rotating from round to round. A ratio taken
within one round compares two rows under the same conditions; the run's ratio is the median of the
per-round ratios, with their range (ratios.derive).

A round: classifiers, SEGMENT batch-1 requests (the first of the latency requests), their time summed
(ms); LMs, greedy decode of every prompt (decode tokens/s over them all). Memory is not measured here: each
row's memory comes from its own worker in the measuring pass. Where the machine's free memory cannot
hold every worker at once, the run keeps its sequential ratios and says so.
"""
import logging

import psutil

from qonnx.run.pool import Pool
from qonnx.tasks.classification import group

log = logging.getLogger(__name__)

SEGMENT = 16           # classifier requests per round
LOAD_TIMEOUT_S = 900   # the first round: every worker loads and warms up
ROUND_TIMEOUT_S = 300  # any later round
TURN_S = 60            # one row's turn in a round: a slow row's whole decode still runs alone
FREE_SHARE = 0.8       # of the memory free now, what the workers may take together


def inputs(kind, arrays, job) -> dict:
    """The one piece of work every row repeats each round."""
    if kind == "lm":  # every prompt: a round long enough that one scheduler hiccup moves it little
        return {"prompts": [arrays[k] for k in sorted(k for k in arrays if k.startswith("prompt"))],
                "new_tokens": job.max_new_tokens}
    if kind == "seq2seq":  # every source text, generated in full
        return {"prompts": group(arrays, "prompt"), "new_tokens": job.max_new_tokens}
    singles = group(arrays, "single")
    return {"segment": [singles[i] for i in arrays["request_order"][:SEGMENT]]}


def figure(kind, answer):
    """A row's figure of one round: ms for the segment (classifiers), decode tokens/s (LMs)."""
    return answer.get("tokens_per_s") if kind in ("lm", "seq2seq") else answer.get("ms")


def memory_needed(rows) -> float:
    """MiB every worker holds at once: each row's peak (its baseline, load and inference)."""
    return sum(r.peak_memory_mb or 0.0 for r in rows)


def too_big(rows) -> str:
    """Why this machine cannot hold every row's worker at once ('' when it can)."""
    need, free = memory_needed(rows), psutil.virtual_memory().available / 2**20
    if need <= FREE_SHARE * free:
        return ""
    return (f"timed one row after another, not in interleaved rounds: the rows' workers need "
                   f"{need:.0f} MiB at once and {free:.0f} MiB is free")


def interleave(jobs: dict, kind, work: dict, n: int, on_round=None) -> dict:
    """{key: (figures, failure)}: each job's figure in each of n rounds (None where its answer failed or
    shared the CPU with another row), and why it has none (None when it has)."""
    keys = list(jobs)
    figures = {k: [] for k in keys}
    failure = dict.fromkeys(keys)
    pool = Pool(jobs)
    try:
        first = pool.ask(work, LOAD_TIMEOUT_S, order=keys, turn_s=TURN_S)  # loading and warm-up; its timing is not kept
        for k, (status, answer) in first.items():
            if status != "ok":  # a worker that failed is dropped: reloading would share the CPU with timed turns
                failure[k] = f"its rounds worker {status}: {answer}"
                pool.drop(k)
        live = [k for k in keys if failure[k] is None]
        for r in range(n):
            order = live[r % len(live):] + live[:r % len(live)] if live else []
            answers = pool.ask(work, ROUND_TIMEOUT_S, order=order, turn_s=TURN_S, timing=True)
            for k in keys:
                status, answer = answers.get(k, ("failed", "not asked"))
                ok = status == "ok" and failure[k] is None and not answer.get("shared_cpu")
                figures[k].append(figure(kind, answer) if ok else None)
                if status != "ok" and failure[k] is None:
                    failure[k] = f"round {r + 1}: {status}: {answer}"
                    pool.drop(k)
                    live.remove(k)
            if on_round:
                on_round(r + 1)
    finally:
        pool.close()
    return {k: (figures[k], failure[k]) for k in keys}
