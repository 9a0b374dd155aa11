"""The CPU execution provider's answers to the same inputs, which every executed target is
compared with, and the comparison: parity's part of a verdict."""
import time
from dataclasses import dataclass

import numpy as np

from qonnx.measure.latency import Latency
from qonnx.runners.ort import session

WARMUP, RUNS = 3, 20  # untimed and timed batch-1 calls of each latency figure


@dataclass
class Reference:
    outputs: list          # per feed: list of arrays in the session's output order
    names: list
    latency: Latency | None
    threads: int


def reference(path, cases, threads) -> Reference:
    """The CPU EP on the same feeds, and its batch-1 latency on the first at `threads` threads."""
    sess = session(path, "cpu", threads)
    names = [o.name for o in sess.get_outputs()]
    outputs = [sess.run(None, feed) for feed in cases]
    return Reference(outputs, names, time_calls(lambda: sess.run(None, cases[0])), threads)


def time_calls(call, warmup=WARMUP, runs=RUNS) -> Latency:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return Latency.from_values(times)


def agreement(ref: Reference, got: list, atol: float) -> dict:
    """Compare a target's outputs with the CPU EP's: the largest |difference| over every float
    output, exact equality of the others, and top-1 agreement of the first output where it is
    logits-like (float, last axis over 1)."""
    worst, mismatched, top1, n_top1 = 0.0, [], 0, 0
    for case_ref, case_got in zip(ref.outputs, got):
        for name, a, b in zip(ref.names, case_ref, case_got):
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape:
                mismatched.append(f"{name} has shape {list(b.shape)}, the CPU EP's {list(a.shape)}")
                continue
            if np.issubdtype(a.dtype, np.floating):
                if a.size:
                    worst = max(worst, float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))))
            elif not np.array_equal(a, b):
                mismatched.append(f"{name} differs")
        a, b = np.asarray(case_ref[0]), np.asarray(case_got[0])
        if a.shape == b.shape and np.issubdtype(a.dtype, np.floating) and a.ndim and a.shape[-1] > 1:
            a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
            top1 += int((a.argmax(-1) == b.argmax(-1)).sum())
            n_top1 += a.shape[0]
    return {"max_abs_diff": worst, "atol": atol, "top1_agreement": top1 / n_top1 if n_top1 else None,
            "mismatched": sorted(set(mismatched)), "cases": len(got)}


def judge_parity(result, parity: dict, against: str):
    """Parity's part of a verdict: a top-1 flip or a differing integer output fails, a float
    difference over atol with the same top-1 warns."""
    result.figures["parity"] = parity
    shown = f"max |diff| {parity['max_abs_diff']:.3g} vs {against} over {parity['cases']} input(s)"
    if parity["top1_agreement"] is not None:
        shown += f", top-1 agreement {parity['top1_agreement']:.0%}"
    if parity["mismatched"]:
        result.fail(f"outputs differ from {against}: {'; '.join(parity['mismatched'])}.")
    elif parity["top1_agreement"] is not None and parity["top1_agreement"] < 1:
        result.fail(f"{shown}: a prediction changed.")
    elif parity["max_abs_diff"] > parity["atol"]:
        result.warn(f"{shown}, over --atol {parity['atol']:g} (the predictions agree).")
    else:
        result.note(f"Parity: {shown} (within --atol {parity['atol']:g}).")
