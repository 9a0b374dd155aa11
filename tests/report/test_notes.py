"""The report's method notes say how the figures were measured: never "one at a time" for rows
that were timed side by side; every derived figure has its unit."""
from qonnx.report.derive import method_notes, placement_note
from qonnx.schema import UNITS, Row

SETTINGS = {"threads": 2, "batch_size": 16, "latency_samples": 100}


def test_rows_measured_side_by_side_are_not_called_one_at_a_time():
    alone = placement_note(SETTINGS)
    together = placement_note({**SETTINGS, "concurrent_rows": True, "threads": 1})
    assert "one at a time" in alone
    assert "one at a time" not in together and "at once" in together and "shared" in together
    ray = placement_note({**SETTINGS, "executor": "ray", "concurrent_rows": True})
    assert "one at a time" not in ray and "shared" in ray
    assert together in method_notes("classification", {**SETTINGS, "concurrent_rows": True, "threads": 1})


def test_every_number_a_row_holds_has_a_unit():
    numbers = [f for f, t in Row.__annotations__.items()
               if "float" in str(t) or f in ("latency_ms", "ttft_ms", "decode_range")]
    unitless = {"perplexity", "max_logit_diff", "robust_accuracy", "robust_drop"}  # named in meaning, below
    missing = [f for f in numbers if f not in UNITS and f not in unitless]
    assert not missing, missing
    assert "ratio" in UNITS["speedup"] and "decode tokens/s" in UNITS["speedup"]


def lm_doc(*rows):
    base = {"provider": "cpu", "status": "ok", "runtime": "onnx"}
    return {"settings": {"kind": "lm", "max_perplexity_increase": 10},
            "rows": [{**base, **r} for r in rows]}


def test_ship_this_does_not_pick_a_row_faster_only_within_noise():
    from qonnx.report.summary import recommend

    big = {"variant": "genai-int4", "decode_tokens_per_s": 110.0, "decode_range": [90.0, 125.0], "size_mb": 190,
           "perplexity": 20.0, "perplexity_change_pct": 5.0}
    small = {"variant": "genai-int4-budget", "decode_tokens_per_s": 104.0, "decode_range": [100.0, 112.0],
             "size_mb": 120, "perplexity": 19.5, "perplexity_change_pct": 3.0}
    pick = recommend(lm_doc(big, small))
    assert pick["row"]["variant"] == "genai-int4-budget" and "within the noise" in pick["text"]
    apart = {**small, "decode_range": [60.0, 70.0], "decode_tokens_per_s": 65.0}  # clearly slower: not tied
    assert recommend(lm_doc(big, apart))["row"]["variant"] == "genai-int4"


def test_runs_side_by_side_mark_no_change_where_decode_passes_overlap():
    from qonnx.report.summary import row_change

    a = {"status": "ok", "decode_tokens_per_s": 100.0, "decode_range": [80.0, 120.0]}
    b = {"status": "ok", "decode_tokens_per_s": 115.0, "decode_range": [95.0, 130.0]}
    c = {"status": "ok", "decode_tokens_per_s": 150.0, "decode_range": [140.0, 160.0]}
    assert row_change(a, b, "decode_tokens_per_s", "higher", "5%") == ""  # 15 % apart, within the spread
    assert row_change(a, c, "decode_tokens_per_s", "higher", "5%") == "better"
    old = {k: v for k, v in b.items() if k != "decode_range"}  # a file without ranges: the 5 % threshold
    assert row_change(a, old, "decode_tokens_per_s", "higher", "5%") == "better"


def test_speed_and_memory_ratios_never_divide_two_machines_figures():
    """Ray: any node takes any row; a speedup pairs a row only with torch-fp32 from its own node."""
    from qonnx.ratios import derive

    def row(variant, host, p50, mem):
        return Row(variant=variant, provider="cpu", runtime="torch" if variant.startswith("torch") else "onnx",
                   accuracy=0.9, latency_ms={"p50": p50}, model_memory_mb=mem, size_mb=10.0,
                   node={"hostname": host, "node_id": host})

    rows = [row("torch-fp32", "fast", 10.0, 400.0), row("onnx-fp32", "fast", 5.0, 200.0),
            row("onnx-int8-dynamic", "slow", 8.0, 100.0)]
    assert derive(rows[1], rows, "classification", rows[0])["speedup"] == 2.0
    lone = derive(rows[2], rows, "classification", rows[0])
    assert lone["speedup"] is None and lone["memory_reduction"] is None  # no torch-fp32 on "slow"
    assert lone["accuracy_drop"] == 0.0  # quality does not depend on the machine


def test_a_noisy_run_says_so_in_every_report():
    from qonnx.report import tables
    from qonnx.report.summary import noise

    quiet = lm_doc({"variant": "onnx-fp32", "decode_tokens_per_s": 100.0, "decode_range": [97.0, 104.0]})
    busy = lm_doc({"variant": "onnx-fp32", "decode_tokens_per_s": 100.0, "decode_range": [41.0, 131.0]})
    assert noise(quiet) == []
    assert "41.0-131.0" in noise(busy)[0] and "within noise" in noise(busy)[0]
    assert "## Noise" in tables.markdown({**busy, "method": []}) and "## Noise" not in tables.markdown(quiet)


def test_cuda_rows_compare_device_memory_and_the_table_shows_it():
    from qonnx.ratios import derive
    from qonnx.report import tables

    def row(variant, provider, host_mb, gpu_mb):
        return Row(variant=variant, provider=provider, runtime="torch" if variant.startswith("torch") else "onnx",
                   accuracy=0.9, latency_ms={"p50": 1.0}, model_memory_mb=host_mb, device_memory_mb=gpu_mb)

    rows = [row("torch-fp32", "cuda", 900.0, 1200.0), row("onnx-fp16", "cuda", 300.0, 600.0),
            row("torch-fp32", "cpu", 500.0, None), row("onnx-fp16", "cpu", 250.0, None)]
    assert derive(rows[1], rows, "classification", rows[2])["memory_reduction"] == 2.0  # GPU: 1200 / 600
    assert derive(rows[3], rows, "classification", rows[2])["memory_reduction"] == 2.0  # CPU: 500 / 250
    doc = {"settings": {"kind": "classification"}, "rows": [{**r.to_dict(), "status": "ok"} for r in rows]}
    headers, cells = tables.display_rows(doc)
    assert "GPU MiB" in headers and cells[1][headers.index("GPU MiB")] == "600"
    cpu_only = {**doc, "rows": doc["rows"][2:]}
    assert "GPU MiB" not in tables.display_rows(cpu_only)[0]


def test_the_budget_note_names_the_data_the_search_used():
    budget = {**SETTINGS, "max_accuracy_drop": 0.01, "validation_samples": 300}
    now = " ".join(method_notes("classification", {**budget, "validation_default": "demo:sentiment:validation"}))
    assert "300 validation rows (demo:sentiment:validation, held out of the demo's fine-tuning;" in now
    before = " ".join(method_notes("classification", budget))  # a run from before the demo had that split
    assert "(the demo's train split: runs before demo version 2;" in before
    given = " ".join(method_notes("classification", {**budget, "validation": "mine.csv"}))
    assert "300 validation rows (mine.csv;" in given


def test_threads_on_ray_are_each_nodes_own():
    ray = " ".join(method_notes("classification", {**SETTINGS, "executor": "ray", "threads": None}))
    assert "intra_op_num_threads = each Ray node's usable cores" in ray and "each row's threads" in ray
    assert "intra_op_num_threads = 2;" in " ".join(method_notes("classification", SETTINGS))


def test_a_perplexity_change_near_the_budget_is_said_to_be_within_the_eval_texts_noise():
    from qonnx.report import columns
    from qonnx.report.summary import noise, recommend

    rows = [{"variant": "genai-int4-budget", "perplexity": 10.9, "perplexity_change_pct": 9.0,
             "perplexity_change_se_pct": 0.6, "decode_tokens_per_s": 120.0},   # 1.7 standard errors under 10 %
            {"variant": "genai-int8", "perplexity": 10.1, "perplexity_change_pct": 1.0,
             "perplexity_change_se_pct": 0.3, "decode_tokens_per_s": 90.0},    # far under it
            {"variant": "genai-int4", "perplexity": 13.3, "perplexity_change_pct": 33.0,
             "perplexity_change_se_pct": 1.3, "decode_tokens_per_s": 130.0}]   # far over it
    said = noise({**lm_doc(*rows), "settings": {"kind": "lm", "max_perplexity_increase": 10, "eval_tokens": 4096}})
    assert len(said) == 1 and "genai-int4-budget +9.00 % (standard error 0.60)" in said[0]
    assert "genai-int8" not in said[0] and "genai-int4 " not in said[0] and "4096" in said[0]
    assert noise(lm_doc(*rows[1:])) == []
    assert "standard error 0.60 points" in recommend(lm_doc(*rows))["text"]
    assert "± SE" in [c.short for c in columns.display("lm", rows)]
    assert "± SE" not in [c.short for c in columns.display("lm", [{"perplexity_change_pct": 1.0}])]  # older runs


def test_the_change_standard_error_is_derived_from_the_same_windows_only():
    from qonnx.ratios import CHANGE_BLOCK, change_se, spread

    ref = Row("torch-fp32", "cpu", "torch", perplexity_windows=[[float(100 + i), 256] for i in range(16)])
    row = Row("onnx-int4-weight", "cpu", "onnx", perplexity_windows=[[float(103 + i % 3), 256] for i in range(16)])
    assert change_se(row, ref) == spread(row.perplexity_windows, ref.perplexity_windows, CHANGE_BLOCK)["se_pct"] > 0
    short = [w[:1] + [32] for w in row.perplexity_windows]  # 512 tokens in all: blocks of 64, not one block
    assert change_se(Row("c", "cpu", "onnx", perplexity_windows=short),
                     Row("r", "cpu", "torch", perplexity_windows=[w[:1] + [32] for w in ref.perplexity_windows])) == \
        spread(short, [w[:1] + [32] for w in ref.perplexity_windows], 64)["se_pct"]
    assert change_se(Row("a", "cpu", "onnx"), ref) is None  # a run from before the windows were kept
    other = Row("b", "cpu", "onnx", perplexity_windows=[[103.0, 200]] * 16)  # other windows: no pairing
    assert change_se(other, ref) is None


def test_damaged_windows_are_bad_input():
    import pytest

    from qonnx.errors import DataError
    from qonnx.schema import check_row

    good = {"variant": "v", "provider": "cpu", "status": "ok", "perplexity_windows": [[10.5, 256]]}
    check_row(good)
    for bad in ([[10.5]], [["x", 256]], [[10.5, 0]], "windows", [[-1.0, 256]]):
        with pytest.raises(DataError, match="perplexity_windows"):
            check_row({**good, "perplexity_windows": bad})


def test_a_run_without_a_reference_row_is_not_said_to_miss_the_budget():
    from qonnx.report.summary import recommend

    rows = [{"variant": "genai-int4-budget", "perplexity": 10.9, "decode_tokens_per_s": 120.0}]  # no change: no reference
    said = recommend(lm_doc(*rows))["text"]
    assert said.startswith("no row could be judged against") and "no reference row" in said
    judged = lm_doc({**rows[0], "perplexity_change_pct": 12.0})
    assert recommend(judged)["text"].startswith("no measured row is within")
