"""validate: exit 0 pass, 2 fail, 1 bad input (including a limit that does not apply)."""
import json

import pytest
from click.testing import CliRunner

from qonnx.cli import main

REF = {"variant": "torch-fp32", "provider": "cpu", "status": "ok", "runtime": "torch", "accuracy": 0.9,
       "perplexity": 10.0, "latency_ms": {"p50": 10.0, "n": 20}, "decode_tokens_per_s": 50.0, "size_mb": 100.0,
       "model_memory_mb": 200.0}
ROW = {"variant": "onnx-int8-dynamic", "provider": "cpu", "status": "ok", "runtime": "onnx", "accuracy": 0.89,
       "perplexity": 10.3, "latency_ms": {"p50": 4.0, "n": 20}, "decode_tokens_per_s": 100.0, "size_mb": 25.0,
       "model_memory_mb": 50.0, "agreement": 0.98}


def derived(kind, row, ref=REF):
    """The derived fields qonnx compare stores for `row`, worked out here by hand."""
    quality = ({"accuracy_drop": ref["accuracy"] - row["accuracy"]} if kind == "classification" else
               {"perplexity_change_pct": 100.0 * (row["perplexity"] / ref["perplexity"] - 1)})
    speedup = (ref["latency_ms"]["p50"] / row["latency_ms"]["p50"] if kind == "classification"
               else row["decode_tokens_per_s"] / ref["decode_tokens_per_s"])
    return {**quality, "speedup": speedup, "memory_reduction": ref["model_memory_mb"] / row["model_memory_mb"],
            "size_reduction": ref["size_mb"] / row["size_mb"]}


def run_dir(tmp_path, kind, ref=None, top=None, **row):
    """A run folder whose results.json holds the FP32 reference and onnx-int8-dynamic@cpu, their
    derived fields as compare stores them; `row` (and `ref`) edit the rows after that, as a hand would."""
    ref_row, int8 = {**REF}, {**ROW}
    int8.update(derived(kind, ROW))
    ref_row.update(derived(kind, REF))
    ref_row.update(ref or {})
    int8.update(row)
    doc = {"schema_version": 2, "settings": {"kind": kind}, "rows": [ref_row, int8], **(top or {})}
    (tmp_path / "results.json").write_text(json.dumps(doc))
    return str(tmp_path)


def gate(d, *limits, variant="onnx-int8-dynamic"):
    return CliRunner().invoke(main, ["validate", d, "--variant", variant, *limits])


@pytest.mark.parametrize("kind,limit,msg", [
    ("classification", ["--max-perplexity-increase", "5"],
     "--max-perplexity-increase does not apply to {d}: it is a classification run, which measures accuracy."),
    ("lm", ["--max-accuracy-drop", "0.01"],
     "--max-accuracy-drop does not apply to {d}: it is a lm run, which measures perplexity."),
])
def test_a_limit_that_does_not_apply_is_bad_input(tmp_path, kind, limit, msg):
    d = run_dir(tmp_path, kind)
    r = CliRunner().invoke(main, ["validate", d, "--variant", "onnx-int8-dynamic", *limit])
    assert r.exit_code == 1 and msg.format(d=d) in r.output


def test_pass_and_fail(tmp_path):
    d = run_dir(tmp_path, "classification", accuracy=0.896)  # a drop of 0.004
    ok = CliRunner().invoke(main, ["validate", d, "--variant", "onnx-int8-dynamic", "--max-accuracy-drop", "0.005"])
    assert ok.exit_code == 0 and "PASSED" in ok.output
    bad = CliRunner().invoke(main, ["validate", d, "--variant", "onnx-int8-dynamic", "--max-accuracy-drop", "0.001"])
    assert bad.exit_code == 2 and "FAIL  accuracy_drop" in bad.output


def test_rows_without_keys_are_bad_input(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"settings": {"kind": "lm"}, "rows": [{"variant": "x"}]}))
    r = CliRunner().invoke(main, ["validate", str(tmp_path), "--variant", "x", "--min-speedup", "1"])
    assert r.exit_code == 1 and "a row lacks provider, status" in r.output and "Traceback" not in r.output


def test_lm_run_gates_on_perplexity(tmp_path):
    d = run_dir(tmp_path, "lm")  # perplexity 3 % above the reference's
    args = ["validate", d, "--variant", "onnx-int8-dynamic", "--max-perplexity-increase"]
    assert CliRunner().invoke(main, [*args, "5"]).exit_code == 0
    bad = CliRunner().invoke(main, [*args, "1"])
    assert bad.exit_code == 2 and "FAIL  perplexity_change_pct" in bad.output


def test_a_perplexity_change_within_two_standard_errors_of_the_limit_is_said_so(tmp_path):
    from qonnx.ratios import change_se
    from qonnx.schema import Row

    ref_w = [[2.3 * 256, 256]] * 16
    row_w = [[2.3 * 256 + (0.01 if i // 2 % 2 else 0.05) * 256, 256] for i in range(16)]  # about +3 %, uneven
    se = change_se(Row("r", "cpu", "onnx", perplexity_windows=row_w), Row("f", "cpu", "torch", perplexity_windows=ref_w))
    d = run_dir(tmp_path, "lm", ref={"perplexity_windows": ref_w, "perplexity_change_se_pct": 0.0},
                perplexity_windows=row_w, perplexity_change_se_pct=se)  # perplexity 3 % above the reference's
    assert 0.5 < se < 2
    args = ["validate", d, "--variant", "onnx-int8-dynamic", "--max-perplexity-increase"]
    near = CliRunner().invoke(main, [*args, "4"])
    assert near.exit_code == 0 and "within 2 standard errors" in near.output and "other side" in near.output
    far = CliRunner().invoke(main, [*args, "30"])
    assert far.exit_code == 0 and "standard error" not in far.output
    assert "recomputed" not in near.output  # the stored standard error is the one the windows give


@pytest.mark.parametrize("doc,msg", [
    ({"settings": {"kind": "lm"}, "rows": [{"variant": "x"}]}, "a row lacks provider, status"),
    ({"settings": {}, "rows": []}, "has no settings.kind"),
    ({"settings": {"kind": "detection"}, "rows": []}, "is a 'detection' run; qonnx validate knows"),
    ({"settings": {"kind": "lm"}, "rows": {}}, "has no list of rows"),
])
def test_validate_checks_the_document_itself(tmp_path, monkeypatch, doc, msg):
    """Without load_results' schema check too: a malformed document is a DataError, not a KeyError."""
    import qonnx.validate as pipeline
    from qonnx.errors import DataError
    from qonnx.validate import ValidateConfig, validate

    monkeypatch.setattr(pipeline, "load_results", lambda run_dir: (doc, []))
    with pytest.raises(DataError, match=msg):
        validate(ValidateConfig(run_dir=str(tmp_path), variant="x", min_speedup=1.0))


def test_a_value_that_is_not_a_number_is_bad_input(tmp_path, monkeypatch):
    import qonnx.validate as pipeline

    doc = {"settings": {"kind": "lm"},
           "rows": [{"variant": "x", "provider": "cpu", "status": "ok", "speedup": "fast"}]}
    monkeypatch.setattr(pipeline, "load_results", lambda run_dir: (doc, []))
    r = CliRunner().invoke(main, ["validate", str(tmp_path), "--variant", "x", "--min-speedup", "1"])
    assert r.exit_code == 1 and "speedup of x@cpu is 'fast', not a number." in r.output


# -- issue #22: a results.json edited by hand, or by something else, is checked, never trusted ----

def one_line_error(r, msg):
    """Exit 1 with one line on stderr that holds msg; no traceback (the exception is the exit)."""
    return (r.exit_code == 1 and isinstance(r.exception, SystemExit) and msg in r.output
            and r.output.strip().startswith("Error:") and len(r.output.strip().splitlines()) == 1)


INT8 = "onnx-int8-dynamic@cpu"


@pytest.mark.parametrize("kind,edit,ref,top,limit,msg", [
    ("classification", {"accuracy": "high"}, None, None, ["--max-accuracy-drop", "0.05"],
     f"accuracy of {INT8} is 'high', not a number"),
    ("classification", {"accuracy": True}, None, None, ["--max-accuracy-drop", "0.05"],
     f"accuracy of {INT8} is True, not a number"),
    ("classification", {"size_mb": -5}, None, None, ["--max-size-mb", "30"], f"size_mb of {INT8} is -5; it must be >= 0"),
    ("classification", {"speedup": float("inf")}, None, None, ["--min-speedup", "2"],
     f"speedup of {INT8} is inf, not a finite number"),
    ("classification", {"speedup": float("nan")}, None, None, ["--min-speedup", "2"],
     f"speedup of {INT8} is nan, not a finite number"),
    ("classification", {"agreement": 1.5}, None, None, ["--min-agreement", "0.9"],
     f"agreement of {INT8} is 1.5; it must be between 0 and 1"),
    ("classification", {"latency_ms": {"p50": -1.0, "n": 20}}, None, None, ["--min-speedup", "1"],
     f"latency_ms.p50 of {INT8} is -1.0; it must be >= 0"),
    ("classification", {"latency_ms": "fast"}, None, None, ["--min-speedup", "1"],
     f"latency_ms of {INT8} is 'fast', not an object"),
    ("classification", {}, {"accuracy": 1.2}, None, ["--max-accuracy-drop", "0.05"],
     "accuracy of torch-fp32@cpu is 1.2; it must be between 0 and 1"),
    ("lm", {"perplexity": 0}, None, None, ["--max-perplexity-increase", "5"],
     f"perplexity of {INT8} is 0; it must be > 0"),
    ("lm", {"decode_tokens_per_s": "many"}, None, None, ["--min-speedup", "1"],
     f"decode_tokens_per_s of {INT8} is 'many', not a number"),
    ("classification", {}, None, {"schema_version": 99}, ["--max-size-mb", "30"],
     "has schema_version 99; this qonnx reads schema versions 1 to 2"),
    ("classification", {}, None, {"schema_version": "2"}, ["--max-size-mb", "30"],
     "has schema_version '2'; this qonnx reads schema versions 1 to 2"),
])
def test_a_hostile_value_is_bad_input(tmp_path, kind, edit, ref, top, limit, msg):
    """Types (a string, bool, inf or NaN in a number field), ranges and the schema version: exit 1
    with one line, never a PASS and never a traceback."""
    r = gate(run_dir(tmp_path, kind, ref=ref, top=top, **edit), *limit)
    assert one_line_error(r, msg), r.output


@pytest.mark.parametrize("kind,edit,limit,failed,note", [
    # accuracy edited to 0.10, accuracy_drop left as it was: the drop is the recomputed 0.8
    ("classification", {"accuracy": 0.1}, ["--max-accuracy-drop", "0.05"], "FAIL  accuracy_drop = 0.8",
     f"accuracy_drop of {INT8}: results.json says 0.01, the measured fields give 0.8"),
    # a stored speedup of 10 where the latencies give 2.5
    ("classification", {"speedup": 10.0}, ["--min-speedup", "5"], "FAIL  speedup = 2.5",
     f"speedup of {INT8}: results.json says 10, the measured fields give 2.5"),
    # perplexity edited to 20 (+100 %), perplexity_change_pct left at +3 %
    ("lm", {"perplexity": 20.0}, ["--max-perplexity-increase", "5"], "FAIL  perplexity_change_pct = 100",
     f"perplexity_change_pct of {INT8}: results.json says 3, the measured fields give 100"),
    # a drop of 0 stored where nothing can derive one (the reference row failed)
    ("classification", {"accuracy_drop": 0.0}, ["--max-accuracy-drop", "0.05"], "FAIL  accuracy_drop = None",
     f"accuracy_drop of {INT8}: results.json says 0, the measured fields give none"),
])
def test_derived_fields_are_recomputed_from_the_measured_ones(tmp_path, kind, edit, limit, failed, note):
    """A derived field is worked out again from the measured fields and the reference row; where the
    file says otherwise, the gate checks the recomputed value and says so."""
    ref = {"status": "failed"} if failed.endswith("None") else None
    r = gate(run_dir(tmp_path, kind, ref=ref, **edit), *limit)
    assert r.exit_code == 2 and failed in r.output and note in r.output, r.output
    assert "using the recomputed value" in r.output


def test_a_consistent_file_passes_without_a_note(tmp_path):
    r = gate(run_dir(tmp_path, "classification"), "--max-accuracy-drop", "0.02", "--min-speedup", "2",
             "--max-size-mb", "30", "--min-agreement", "0.95")
    assert r.exit_code == 0 and "PASSED" in r.output and "recomputed" not in r.output, r.output
    assert "PASS  speedup = 2.5" in r.output and "PASS  accuracy_drop = 0.01" in r.output


@pytest.mark.parametrize("flag", ["--max-accuracy-drop", "--min-speedup", "--max-size-mb", "--min-agreement",
                                  "--max-perplexity-increase"])
@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_negative_or_nan_limit_is_bad_input(tmp_path, flag, value):
    kind = "lm" if flag == "--max-perplexity-increase" else "classification"
    r = gate(run_dir(tmp_path, kind), flag, value)
    assert one_line_error(r, f"{flag} must be a finite number >= 0, not {float(value)}"), r.output
