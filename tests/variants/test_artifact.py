"""What a compare config hands to a build: its threads, its calibration, and only the budget
settings the method takes (no copy kept by hand)."""
from qonnx.config import CompareConfig
from qonnx.variants.artifact import quantize_config


def test_threads_and_the_accuracy_budget_reach_the_build(tmp_path):
    cfg = CompareConfig(threads=1, max_accuracy_drop=0.01, validation="val.csv", validation_samples=50,
                        search_time_limit=60, calibration="demo:sentiment:calibration", seed=4)
    q = quantize_config(tmp_path, "int8-dynamic", cfg)
    assert (q.threads, q.max_accuracy_drop, q.validation, q.validation_samples, q.search_time_limit, q.seed) == \
        (1, 0.01, "val.csv", 50, 60, 4)
    assert q.text_column == "text" and q.max_perplexity_increase is None
    assert quantize_config(tmp_path, "fp16", cfg).max_accuracy_drop is None  # fp16 has no accuracy budget


def test_the_perplexity_budget_only_where_the_recipe_is_not_fixed(tmp_path):
    cfg = CompareConfig(max_perplexity_increase=5.0, validation="val.txt")
    assert quantize_config(tmp_path, "int4-weight", cfg).max_perplexity_increase == 5.0
    rtn = quantize_config(tmp_path, "int4-weight", cfg, options=(("algorithm", "rtn"),))  # onnx-int4-rtn
    assert rtn.max_perplexity_increase is None and rtn.algorithm == "rtn"


def test_the_budget_searches_get_the_threads(monkeypatch):
    from types import SimpleNamespace

    from qonnx.variants.search import budget

    seen = {}
    monkeypatch.setattr(budget, "search", lambda *a, **k: seen.update(k) or {})
    cfg = SimpleNamespace(max_accuracy_drop=0.01, block_size=32, threads=3, search_time_limit=None)
    budget.budgeted("int8-dynamic", "src.onnx", "out.onnx", cfg, ([], [], None))
    assert seen["threads"] == 3
