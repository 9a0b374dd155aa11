"""A budget search's record in one sentence (what quantize prints)."""
from qonnx.variants.search.describe import budget_note, describe, slower


def test_accuracy_budget_record():
    rec = {"budget": {"max_accuracy_drop": 0.003}, "accuracy_drop": 0.0021, "validation_rows": 300,
           "kept_fp32": ["layer.3.ffn-out"], "steps": [{}, {}, {}], "weights": "mixed",
           "per_channel_units": ["layer.0.attn-qkv", "head"]}
    assert describe(rec) == ("budget 0.003: drop +0.0021 on 300 validation rows with 1 unit(s) kept FP32 "
                             "(layer.3.ffn-out; per-channel weights in layer.0.attn-qkv, head, per-tensor "
                             "elsewhere) after 3 step(s)")
    rec = {**rec, "kept_fp32": [], "weights": None, "calibration": {"method": "entropy", "per_channel": False}}
    assert "(none; calibration entropy, per-tensor weights)" in describe(rec)


def test_perplexity_budget_record():
    rec = {"budget": {"max_perplexity_increase_pct": 5.0}, "increase_pct": 4.23, "validation_tokens": 2048,
           "chosen_formats": {"head": "8-bit/128", **{f"layer {i}": "4-bit/128" for i in range(6)}},
           "steps": [{}], "predicted_speed_vs_4bit32": 1.125,
           "cpu": {"model": "AMD EPYC 9B45", "flags": ["AVX2", "AVX512-VNNI"]}}
    assert describe(rec) == ("budget +5.0 %: perplexity +4.23 % on 2048 validation tokens after 1 step(s); units "
                             "by format: 8-bit/128: 1 (head); 4-bit/128: 6 (layer 0, layer 1, layer 2, layer 3 +2); "
                             "MatMuls predicted at 1.12x all 4-bit/32 on AMD EPYC 9B45 (AVX2, AVX512-VNNI)")
    rec = {**rec, "predicted_speed_vs_anchor": 0.97, "anchor": "4-bit/32 symmetric", "ceiling_vs_anchor": 1.02}
    del rec["predicted_speed_vs_4bit32"]
    assert describe(rec).endswith("MatMuls predicted at 0.97x genai-int4's 4-bit/32 symmetric (at most 1.02x with "
                                  "these formats) on AMD EPYC 9B45 (AVX2, AVX512-VNNI)")
    # with the spread of the increase along the validation text (blocks of 2,048 tokens)
    rec = {**rec, "increase_se_pct": 0.7412, "block_increases_pct": [4.0, 5.0, 3.5, 4.4, 4.3, 4.2],
           "spread_block_tokens": 2048, "validation_tokens": 12432}
    assert describe(rec).startswith("budget +5.0 %: perplexity +4.23 % (standard error 0.74 points over 6 blocks of "
                                    "2048+ tokens) on 12432 validation tokens after 1 step(s)")


def test_budget_note_of_a_row():
    """A compare row's note for an LM budget build: the budget and the search's own check on the
    validation text; nothing for other artifacts (an accuracy budget, a plain build, no manifest)."""
    search = {"budget": {"max_perplexity_increase_pct": 5.0}, "increase_pct": 4.956, "validation_tokens": 12432,
              "increase_se_pct": 0.451, "block_increases_pct": [4.6, 3.6, 5.2, 5.3, 4.2, 6.9], "spread_block_tokens": 2048}
    assert budget_note({"settings": {"budget_search": search}}) == (
        "budget +5.0 %: perplexity +4.96 % (standard error 0.45 points over 6 blocks of 2048+ tokens) on 12432 "
        "validation tokens (the search's check; this row's perplexity is on the eval text)")
    old = {k: v for k, v in search.items() if k not in ("increase_se_pct", "block_increases_pct")}  # before the spread
    assert budget_note({"settings": {"budget_search": old}}).startswith("budget +5.0 %: perplexity +4.96 % on 12432")
    held = {**search, "budget": {"max_perplexity_increase_pct": 5.0, "margin_se": 1.0}, "increase_pct": 4.2}
    assert budget_note({"settings": {"budget_search": held}}).startswith(
        "budget +5.0 % held by 1 standard error(s): perplexity +4.20 % (standard error 0.45 points")
    short = {**search, "budget": {"max_perplexity_increase_pct": 5.0, "margin_se": 0.0, "margin_default": True,
                                  "no_margin": "one block"}, "increase_se_pct": None}
    assert budget_note({"settings": {"budget_search": short}}).startswith(
        "budget +5.0 % (no margin: one block): perplexity +4.96 % on 12432")
    assert budget_note({"settings": {"budget_search": {"budget": {"max_accuracy_drop": 0.01}}}}) == ""
    assert budget_note({"settings": {}}) == "" and budget_note({}) == ""


def test_a_build_slower_than_the_genai_formats_says_so():
    """The search's step check timed the choice slower than genai-int4's format (or genai-int8's):
    the row's note says it, with the figure; faster, skipped or absent: nothing."""
    def check(int4, int8):
        return {"chosen_vs_int4_format": {"median": int4, "range": [int4 - 0.1, int4 + 0.1]},
                "chosen_vs_int8_format": {"median": int8, "range": [int8 - 0.1, int8 + 0.1]}, "rounds": 15}
    assert slower(check(1.07, 1.56)) == "" and slower({"skipped": "short text"}) == "" and slower(None) == ""
    assert slower(check(0.87, 1.21)) == ("slower in the search's decode step check on this CPU: 0.87x the same graph "
                                         "in genai-int4's format")
    assert slower(check(0.8, 0.95)).endswith("0.80x the same graph in genai-int4's format and 0.95x the same graph "
                                             "in genai-int8's, which loses less")
    search = {"budget": {"max_perplexity_increase_pct": 5.0}, "increase_pct": 3.1, "validation_tokens": 12432,
              "step_check": check(0.9, 1.3)}
    assert budget_note({"settings": {"budget_search": search}}).endswith(
        "on the eval text); slower in the search's decode step check on this CPU: 0.90x the same graph in genai-int4's "
        "format")
