"""Latency curves against a runner whose call time is known: the figures must recover it."""
import time

import numpy as np
import pytest

from qonnx.measure import shapes
from qonnx.runners.base import Runner

BASE_S, PER_ROW_S = 0.020, 0.005


class Sleeper(Runner):
    """A classifier whose call takes 20 ms + 5 ms per row."""

    def logits(self, batch):
        time.sleep(BASE_S + PER_ROW_S * batch["input_ids"].shape[0])
        return np.zeros((batch["input_ids"].shape[0], 2), dtype=np.float32)


def test_curves_recover_a_known_call_time():
    arrays = {}
    for b in (1, 4):
        for r in range(shapes.MIN_REPEATS):
            ids = np.ones((b, 8), dtype=np.int64)
            arrays[f"shape.{b}.8.padded.{r:04d}.input_ids"] = ids
            arrays[f"shape.{b}.8.padded.{r:04d}.attention_mask"] = ids
    points = {s["batch"]: s for s in shapes.measure(Sleeper(), arrays)}
    for b, s in points.items():
        call = BASE_S + PER_ROW_S * b
        assert s["latency_ms"]["n"] == shapes.MIN_REPEATS
        assert s["latency_ms"]["p50"] == pytest.approx(1000 * call, rel=0.25)  # sleep overshoots a little
        assert s["throughput_per_s"] == pytest.approx(b / call, rel=0.25)
        assert s["tokens_per_row"] == 8 and s["real_tokens_per_row"] == 8
    assert points[4]["throughput_per_s"] > 2 * points[1]["throughput_per_s"]  # 4 rows in 40 ms vs 1 in 25
