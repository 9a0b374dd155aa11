"""validate: exit 0 pass, 2 fail, 1 bad input (including a limit that does not apply)."""
import json

import pytest
from click.testing import CliRunner

from qonnx.cli import main


def run_dir(tmp_path, kind, **row):
    base = {"variant": "onnx-int8-dynamic", "provider": "cpu", "status": "ok", "size_mb": 20.0}
    (tmp_path / "results.json").write_text(json.dumps({"settings": {"kind": kind}, "rows": [{**base, **row}]}))
    return str(tmp_path)


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
    d = run_dir(tmp_path, "classification", accuracy_drop=0.004)
    ok = CliRunner().invoke(main, ["validate", d, "--variant", "onnx-int8-dynamic", "--max-accuracy-drop", "0.005"])
    assert ok.exit_code == 0 and "PASSED" in ok.output
    bad = CliRunner().invoke(main, ["validate", d, "--variant", "onnx-int8-dynamic", "--max-accuracy-drop", "0.001"])
    assert bad.exit_code == 2 and "FAIL  accuracy_drop" in bad.output


def test_rows_without_keys_are_bad_input(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"settings": {"kind": "lm"}, "rows": [{"variant": "x"}]}))
    r = CliRunner().invoke(main, ["validate", str(tmp_path), "--variant", "x", "--min-speedup", "1"])
    assert r.exit_code == 1 and "a row lacks provider, status" in r.output and "Traceback" not in r.output


def test_lm_run_gates_on_perplexity(tmp_path):
    d = run_dir(tmp_path, "lm", perplexity_change_pct=3.0)
    args = ["validate", d, "--variant", "onnx-int8-dynamic", "--max-perplexity-increase"]
    assert CliRunner().invoke(main, [*args, "5"]).exit_code == 0
    bad = CliRunner().invoke(main, [*args, "1"])
    assert bad.exit_code == 2 and "FAIL  perplexity_change_pct" in bad.output


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

    monkeypatch.setattr(pipeline, "load_results", lambda run_dir: doc)
    with pytest.raises(DataError, match=msg):
        validate(ValidateConfig(run_dir=str(tmp_path), variant="x", min_speedup=1.0))


def test_a_value_that_is_not_a_number_is_bad_input(tmp_path, monkeypatch):
    import qonnx.validate as pipeline

    doc = {"settings": {"kind": "lm"},
           "rows": [{"variant": "x", "provider": "cpu", "status": "ok", "speedup": "fast"}]}
    monkeypatch.setattr(pipeline, "load_results", lambda run_dir: doc)
    r = CliRunner().invoke(main, ["validate", str(tmp_path), "--variant", "x", "--min-speedup", "1"])
    assert r.exit_code == 1 and "speedup of x@cpu is 'fast', not a number." in r.output
