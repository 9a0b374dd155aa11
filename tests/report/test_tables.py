"""The one column spec read by the console/Markdown table, results.csv and report.html; the plots."""
import pytest

from qonnx.report import columns, html, tables
from qonnx.report.plots import plot_all

ENV = {"cpu": {"model": "Test CPU", "cores": 2, "flags": ["AVX2"]}, "gpu": None, "versions": {"onnx": "1"}}


def doc(kind="classification", robust=False):
    ok = {"variant": "onnx-int8-dynamic", "provider": "cpu", "status": "ok", "runtime": "onnx", "accuracy": 0.85,
          "accuracy_drop": 0.0125, "agreement": 0.97, "latency_ms": {"p50": 1.234, "p90": 2.0, "p99": None, "n": 50},
          "speedup": 2.5, "throughput_per_s": 123.4, "peak_memory_mb": 300.2, "peak_increment_mb": 80.6, "model_memory_mb": 70.1, "load_peak_mb": 310.0,
          "size_mb": 22.31, "size_reduction": 3.99, "perplexity": 12.5, "perplexity_change_pct": 1.5,
          "ttft_ms": {"p50": 9.87}, "decode_tokens_per_s": 88.8, "weight_memory_mb": 60}
    if robust:
        ok.update(robust_accuracy=0.8, robust_drop=0.02)
    ref = {**ok, "variant": "torch-fp32", "runtime": "torch", "speedup": 1.0, "accuracy_drop": 0.0}
    bad = {"variant": "onnx-fp16", "provider": "cuda", "status": "skipped", "reason": "no GPU", "runtime": "onnx"}
    return {"rows": [ref, ok, bad], "reference": "torch-fp32@cpu", "environment": ENV, "method": ["a note"],
            "settings": {"kind": kind, "model": "m", "task": "t", "dataset_source": "d.csv"}}


def test_console_and_markdown_read_the_spec():
    headers, rows = tables.display_rows(doc())
    assert headers[:6] == ["variant", "provider", "status", "accuracy", "drop", "agree"]
    assert headers[-4:] == ["model MiB", "load peak MiB", "size MiB", "size red."]
    ok = dict(zip(headers, rows[1]))
    assert ok["speedup"] == "2.50x" and ok["size red."] == "3.99x" and ok["drop"] == "+0.0125"
    assert ok["model MiB"] == "70" and ok["load peak MiB"] == "310"  # the steady state, not the load peak
    assert ok["p99 ms"] == "" and ok["n"] == "50"  # no p99 from 50 calls: an empty cell, not "None"
    assert rows[2] == ["onnx-fp16", "cuda", "skipped"] + [""] * (len(headers) - 3)
    md = tables.markdown(doc())
    assert "| variant | provider | status | accuracy | drop |" in md and "onnx-fp16 on cuda: skipped: no GPU" in md


def test_typo_columns_only_where_a_row_has_them():
    assert "typo acc" not in tables.display_rows(doc())[0]
    headers, rows = tables.display_rows(doc(robust=True))
    assert headers[5:7] == ["typo acc", "typo drop"] and rows[1][5:7] == ["0.8000", "+0.0200"]


def test_threads_column_only_where_rows_ran_at_other_thread_counts():
    same = doc()
    for r in same["rows"][:2]:
        r["threads"] = 2
    assert "threads" not in tables.display_rows(same)[0]
    assert list(tables.frame(same)["threads"])[:2] == [2, 2]  # results.csv has it always
    same["rows"][1]["threads"] = 4  # two Ray nodes of other sizes
    headers, rows = tables.display_rows(same)
    assert [dict(zip(headers, r))["threads"] for r in rows] == ["2", "4", ""]


def test_lm_columns():
    headers, rows = tables.display_rows(doc("lm"))
    assert headers[3:9] == ["ppl", "ppl Δ%", "agree", "TTFT p50 ms", "decode tok/s", "speedup"]
    assert dict(zip(headers, rows[1]))["decode tok/s"] == "88.8"


def test_html_and_csv_use_the_same_columns():
    cols = columns.display("classification", doc()["rows"])
    assert [h for _, h, _ in html.columns("classification", doc()["rows"])] == [c.long for c in cols]
    assert all(c.meaning for c in cols)  # every column says what it means
    flat = tables.frame(doc())
    assert {"latency_ms_p50", "latency_ms_n", "size_mb", "accuracy"} <= set(flat.columns)
    assert list(flat["variant"]) == ["torch-fp32", "onnx-int8-dynamic", "onnx-fp16"]


def test_plots_are_written(tmp_path):
    plot_all(doc(), tmp_path)
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert "latency.png" in pngs and all((tmp_path / p).stat().st_size > 1000 for p in pngs)


def test_an_lm_tradeoff_plot_has_the_changes_standard_error_as_bars(tmp_path, monkeypatch):
    import matplotlib.axes

    seen = []
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", lambda self, x, y, yerr=None, **k: seen.append((y, yerr)))
    lm = doc("lm")
    lm["rows"][1]["perplexity_change_se_pct"] = 2.0  # 12.5 is +1.5 % over a reference of 12.5 / 1.015
    plot_all(lm, tmp_path)
    assert seen == [(12.5, pytest.approx(12.5 / 1.015 * 0.02))]  # one bar: the row that has a standard error
    assert (tmp_path / "tradeoff.png").stat().st_size > 1000


# -- issue #22: `qonnx report` reads results.json through the schema's checks ------------------

def consistent():
    """doc() with its derived fields as compare would store them (the ref and the row measured alike)."""
    d = doc()
    for r in d["rows"][:2]:
        r.update(accuracy_drop=0.0, speedup=1.0, memory_reduction=1.0, size_reduction=1.0)
    return d


def report(tmp_path, d):
    import json

    from click.testing import CliRunner

    from qonnx.cli import main

    (tmp_path / "results.json").write_text(json.dumps(d))
    return CliRunner().invoke(main, ["report", str(tmp_path)])


@pytest.mark.parametrize("edit,msg", [
    ({"accuracy": "high"}, "accuracy of onnx-int8-dynamic@cpu is 'high', not a number"),
    ({"size_mb": -5}, "size_mb of onnx-int8-dynamic@cpu is -5; it must be >= 0"),
    ({"speedup": float("inf")}, "speedup of onnx-int8-dynamic@cpu is inf, not a finite number"),
    ({"latency_ms": "fast"}, "latency_ms of onnx-int8-dynamic@cpu is 'fast', not an object"),
    ({"note": 7}, "note of onnx-int8-dynamic@cpu is 7, not text"),
    ({"status": "great"}, "status of onnx-int8-dynamic@cpu is 'great'; it must be ok, failed or skipped"),
])
def test_report_on_a_hostile_file_is_one_line_and_exit_1(tmp_path, edit, msg):
    d = consistent()
    d["rows"][1].update(edit)
    r = report(tmp_path, d)
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), (r.output, r.exception)
    assert r.output.strip().startswith("Error:") and msg in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "report.md").exists()


def test_report_recomputes_the_derived_fields(tmp_path, caplog):
    """A speedup edited to 9 is shown (and rewritten) as the 1.0 its latencies give, with a warning."""
    import json

    d = consistent()
    d["rows"][1]["speedup"] = 9.0
    r = report(tmp_path, d)
    assert r.exit_code == 0, r.output
    again = {x["variant"]: x for x in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert again["onnx-int8-dynamic"]["speedup"] == 1.0 and "9.00x" not in (tmp_path / "report.md").read_text()
    assert "speedup of onnx-int8-dynamic@cpu: results.json says 9, the measured fields give 1" in caplog.text


def test_report_on_a_file_with_only_rows_and_kind(tmp_path):
    """A results.json compare did not write (no environment, model, method or reference): the report
    says '?' where it lacks a field, not a KeyError."""
    ref = {"variant": "torch-fp32", "provider": "cpu", "status": "ok", "accuracy": 0.9, "size_mb": 100.0,
           "placement": {"cpu_nodes": 3}}
    r = report(tmp_path, {"settings": {"kind": "classification"}, "rows": [ref]})
    assert r.exit_code == 0, (r.output, r.exception)
    md = (tmp_path / "report.md").read_text()
    assert "# qonnx compare: ?" in md and "Machine: ? (? cores; )" in md and "3 nodes on the CPU (?)" in md
    assert "Reference: torch-fp32@cpu." in md  # worked out from the rows, as the derived figures are
