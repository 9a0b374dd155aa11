"""Interleaved rounds: ratios taken within each round cancel a change of the machine's load that
rows measured one after another carry into their ratios; the run says how each row was timed."""
import statistics

import pandas as pd
import pytest

from qonnx.config import CompareConfig
from qonnx.errors import ConfigError, DataError
from qonnx.parity import PROBE_TEXTS
from qonnx.ratios import derive
from qonnx.report.summary import noise, recommend
from qonnx.run import rounds
from qonnx.run.compare import compare
from qonnx.schema import Row, load, rederive


def cls_row(variant, p50, figures, size=10.0, accuracy=0.9):
    return Row(variant=variant, provider="cpu", runtime="torch" if variant.startswith("torch") else "onnx",
               accuracy=accuracy, latency_ms={"p50": p50}, rounds=figures, size_mb=size)


def test_a_load_change_between_rows_stays_out_of_the_ratio():
    """The machine runs 1x, 3x, 1x, 2x, 1x slower in five rounds; onnx-fp32 is truly 2x faster.
    Measured apart, torch-fp32 fell in a slow moment (p50 30 ms) and onnx-fp32 in a fast one (5 ms): 6x."""
    load = [1.0, 3.0, 1.0, 2.0, 1.0]
    base = cls_row("torch-fp32", 30.0, [10.0 * f for f in load])
    row = cls_row("onnx-fp32", 5.0, [5.0 * f for f in load])
    out = derive(row, [base, row], "classification", base)
    assert out["speedup"] == pytest.approx(2.0) and out["speedup_range"] == pytest.approx([2.0, 2.0])
    apart = derive(cls_row("onnx-fp32", 5.0, None), [base], "classification", base)
    assert apart["speedup"] == pytest.approx(6.0) and apart["speedup_range"] is None  # no rounds: the p50s


def test_rounds_pair_by_round_skip_lost_ones_and_need_three():
    base = Row(variant="torch-fp32", provider="cpu", runtime="torch", rounds=[10.0, 20.0, None, 10.0, 40.0])
    row = Row(variant="genai-int4", provider="cpu", runtime="genai", decode_tokens_per_s=50.0,
              rounds=[30.0, 40.0, 99.0, None, 160.0])
    base.decode_tokens_per_s = 10.0
    out = derive(row, [base, row], "lm", base)  # LM: the row's tokens/s over torch-fp32's, rounds 1, 2, 5
    assert out["speedup"] == pytest.approx(3.0) and out["speedup_range"] == pytest.approx([2.0, 4.0])
    row.rounds = [30.0, 40.0, None, None, None]  # two paired rounds: the passes' ratio instead
    assert derive(row, [base, row], "lm", base)["speedup"] == pytest.approx(5.0)


def test_ship_this_prefers_the_smaller_row_where_per_round_ratios_overlap():
    def doc(*rows):
        return {"settings": {"kind": "classification"},
                "rows": [{"provider": "cpu", "status": "ok", "accuracy_drop": 0.0, "accuracy": 0.9,
                          "latency_ms": {"p50": 1.0}, **r} for r in rows]}

    fast = {"variant": "onnx-fp32", "speedup": 2.2, "speedup_range": [1.8, 2.6], "size_mb": 90.0}
    small = {"variant": "onnx-int8-dynamic", "speedup": 2.0, "speedup_range": [1.7, 2.3], "size_mb": 23.0}
    pick = recommend(doc(fast, small))
    assert pick["row"]["variant"] == "onnx-int8-dynamic" and "within the noise" in pick["text"]
    assert "per round 1.70-2.30x" in pick["text"]
    slow = {**small, "speedup": 1.2, "speedup_range": [1.1, 1.3]}
    assert recommend(doc(fast, slow))["row"]["variant"] == "onnx-fp32"


def test_a_run_whose_rounds_spread_or_drift_says_so():
    base = {"variant": "torch-fp32", "provider": "cpu", "status": "ok", "speedup": 1.0, "speedup_range": [1.0, 1.0]}
    steady = {**base, "rounds": [10.0, 11.0, 10.0, 10.5, 10.0, 10.2]}
    drifting = {**base, "rounds": [10.0, 10.0, 12.0, 14.0, 15.0, 16.0]}
    tight = {"variant": "onnx-fp32", "provider": "cpu", "status": "ok", "speedup": 2.0, "speedup_range": [1.9, 2.1]}
    wide = {**tight, "speedup_range": [1.2, 2.9]}
    cls = {"kind": "classification"}
    assert noise({"settings": cls, "rows": [steady, tight]}) == []
    spread = noise({"settings": cls, "rows": [steady, wide]})
    assert len(spread) == 1 and "1.20-2.90x" in spread[0]
    drift = noise({"settings": cls, "rows": [drifting, tight]})
    assert len(drift) == 1 and "60 % slower" in drift[0]


def test_rounds_in_results_json_are_checked_and_the_range_recomputed():
    row = {"variant": "onnx-fp32", "provider": "cpu", "status": "ok", "runtime": "onnx", "accuracy": 0.9,
           "latency_ms": {"p50": 5.0}, "rounds": [5.0, 5.0, 5.0]}
    base = {"variant": "torch-fp32", "provider": "cpu", "status": "ok", "runtime": "torch", "accuracy": 0.9,
            "latency_ms": {"p50": 10.0}, "rounds": [10.0, 12.0, 14.0]}
    doc = {"schema_version": 2, "settings": {"kind": "classification"},
           "rows": [base, {**row, "speedup_range": [9.0, 9.0], "speedup": 9.0}]}
    results = load(doc)
    changed = dict(rederive(results))
    assert "speedup_range of onnx-fp32@cpu" in changed["onnx-fp32@cpu"]
    assert results["rows"][1].speedup_range == pytest.approx([2.0, 2.8])
    for bad in ([5.0, -1.0, 5.0], [5.0, "fast", 5.0], [0.0, 5.0, 5.0]):
        with pytest.raises(DataError, match=r"rounds\[1\]|rounds\[0\]"):
            load({**doc, "rows": [base, {**row, "rounds": bad}]})


def test_rounds_are_refused_where_rows_are_measured_apart():
    with pytest.raises(ConfigError, match="--rounds"):
        CompareConfig(concurrent_rows=True, threads=1, rounds=3)
    with pytest.raises(ConfigError, match="--rounds must be at least 0"):
        CompareConfig(rounds=-1)
    assert CompareConfig(concurrent_rows=True, threads=1).rounds == 0


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    f = tmp_path_factory.mktemp("data") / "eval.csv"
    pd.DataFrame({"text": PROBE_TEXTS * 2, "label": ["positive", "negative"] * len(PROBE_TEXTS)}).to_csv(f, index=False)
    return f


@pytest.fixture(scope="module")
def timed(tiny_classifier, texts, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "rounds"
    cfg = CompareConfig(model=str(tiny_classifier), output=out, dataset=str(texts),
                        variants=["torch-fp32", "onnx-fp32", "onnx-int8-dynamic"], latency_samples=20, warmup=1,
                        rounds=4)
    return compare(cfg)


def test_every_row_is_timed_in_the_same_rounds_and_its_speedup_is_their_median_ratio(timed):
    by = {r["variant"]: r for r in timed["rows"]}
    base = by["torch-fp32"]
    for r in by.values():
        assert r["status"] == "ok", r.get("reason")
        assert r["timing"].startswith("interleaved: 4 of 4 rounds with 3 rows"), r["timing"]
        assert len(r["rounds"]) == 4 and all(f > 0 for f in r["rounds"])
        ratios = [b / a for a, b in zip(r["rounds"], base["rounds"])]  # independent of ratios.derive
        assert r["speedup"] == pytest.approx(statistics.median(ratios))
        assert r["speedup_range"] == pytest.approx([min(ratios), max(ratios)])
    assert any("interleaved rounds" in n for n in timed["method"])


def test_without_the_memory_for_every_worker_the_run_times_apart_and_says_so(tiny_classifier, texts, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setattr(rounds, "FREE_SHARE", 1e-9)
    cfg = CompareConfig(model=str(tiny_classifier), output=tmp_path / "run", variants=["torch-fp32", "onnx-fp32"],
                        dataset=str(texts), latency_samples=5, warmup=1, rounds=3)
    for r in compare(cfg)["rows"]:
        assert "not in interleaved rounds" in r["timing"] and "MiB is free" in r["timing"]
        assert r["rounds"] is None and r["speedup_range"] is None and r["speedup"] is not None


def test_an_lm_round_decodes_every_prompt(monkeypatch):
    """An LM round is the greedy decode of every prompt (one prompt's 31 tokens let one scheduler hiccup
    move a round's figure): tokens/s over them all, the summed tokens over the summed decode time."""
    import numpy as np

    from qonnx.run import pool

    arrays = {f"prompt{i}": np.arange(3 + i) for i in range(4)} | {"labels": np.zeros(1)}
    work = rounds.inputs("lm", arrays, type("Job", (), {"max_new_tokens": 5})())
    assert [len(p) for p in work["prompts"]] == [3, 4, 5, 6] and work["new_tokens"] == 5
    seconds = {3: 1.0, 4: 2.0, 5: 3.0, 6: 4.0}  # decode time by prompt length; 5 ids, 4 decoded tokens each

    def fake_generate(runner, ids, new_tokens):
        return 0.5, seconds[len(ids)], list(range(new_tokens))

    monkeypatch.setattr(pool, "generate", fake_generate)
    answer, total = pool._call(None, type("Job", (), {"kind": "lm"})(), work)
    assert answer["tokens_per_s"] == pytest.approx(16 / 10.0) and total == pytest.approx(4 * 0.5 + 10.0)


def test_timed_rounds_wait_for_the_row_before_to_stop_spinning(monkeypatch):
    """The loading round is not timed; every timed round asks its workers to settle first (the ONNX
    Runtime threads of the row before spin on for tens of ms and took the CPU from the next row)."""
    asked = []

    class FakePool:
        def __init__(self, jobs):
            self.jobs = jobs

        def ask(self, work, timeout_s, order=None, turn_s=None, timing=False):
            asked.append(timing)
            return {k: ("ok", {"ms": 2.0}) for k in self.jobs}

        def close(self):
            pass

    monkeypatch.setattr(rounds, "Pool", FakePool)
    got = rounds.interleave({"a": None, "b": None}, "classification", {}, 3)
    assert asked == [False, True, True, True]
    assert got == {"a": ([2.0] * 3, None), "b": ([2.0] * 3, None)}
