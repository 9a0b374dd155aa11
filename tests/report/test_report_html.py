"""report.html: self-contained, holds every row and the figures of results.json, sorts in a real
browser; several runs side by side; the 'ship this' pick."""
import json
import re
import shutil
from html import escape

import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.config import CompareConfig
from qonnx.report import summary
from qonnx.run.compare import compare

TEXTS = ["the film was a delight", "boring predictable mess", "it rained all day", "great good fine",
         "i would not recommend this restaurant", "what a boring movie", "love the service", "awful food"]


@pytest.fixture(scope="module")
def run_dir(tiny_classifier, tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    pd.DataFrame({"text": TEXTS, "label": ["positive", "negative"] * 4}).to_csv(d / "eval.csv", index=False)
    out = d / "run"
    compare(CompareConfig(model=str(tiny_classifier), output=out, dataset=str(d / "eval.csv"),
                          variants=["torch-fp32", "onnx-fp32", "onnx-int8-dynamic"], providers=["cpu", "cuda"],
                          latency_samples=12, warmup=1, batch_size=4))
    return out


def results(run):
    return json.loads((run / "results.json").read_text())


def test_compare_writes_one_self_contained_page(run_dir):
    html = (run_dir / "report.html").read_text()
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>)]*", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls  # the SVG namespace is a name, not a request
    assert not re.search(r"<(?:script|link|img)[^>]+(?:src|href)=\"(?!data:)", html)
    assert html.count("data:image/png;base64,") >= 4  # latency, accuracy, size, memory plots inline
    for r in results(run_dir)["rows"]:
        assert f'data-row="{r["variant"]}@{r["provider"]}"' in html
    import onnxruntime
    import torch

    # the CUDA rows are skipped exactly where this machine lacks the runtime's CUDA (asked here, not of qonnx)
    no_cuda = {"torch": not torch.cuda.is_available(),
               "onnx": "CUDAExecutionProvider" not in onnxruntime.get_available_providers()}
    rows = results(run_dir)["rows"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert {(r["variant"], r["provider"]) for r in skipped} == {
        (r["variant"], "cuda") for r in rows if r["provider"] == "cuda" and no_cuda[r["runtime"]]}
    assert all(escape(r["reason"]) in html for r in skipped)


def test_page_in_chromium_shows_the_figures_and_sorts(run_dir, page, tmp_path):
    doc = results(run_dir)
    page.goto((run_dir / "report.html").as_uri())
    text = page.inner_text("body")
    ok = [r for r in doc["rows"] if r["status"] == "ok"]
    assert len(ok) == 3
    for r in doc["rows"]:
        assert r["variant"] in text
    for r in ok:  # each figure of results.json, as the table shows it
        cells = page.locator(f'tr[data-row="{r["variant"]}@{r["provider"]}"] td').all_inner_texts()
        assert f'{r["accuracy"]:.4f}' in cells and f'{r["latency_ms"]["p50"]:.2f}' in cells
        assert f'{r["size_mb"]:.1f}' in cells and f'{r["model_memory_mb"]:.0f}' in cells
    for r in doc["rows"]:
        if r["status"] != "ok":
            assert r["reason"][:40] in text
    assert page.locator("#tradeoff .point").count() == 3
    assert "Ship this:" in text
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 20_000

    def order():
        return page.locator("#results tbody tr").evaluate_all("rows => rows.map(r => r.dataset.row)")

    p50 = {f'{r["variant"]}@{r["provider"]}': r["latency_ms"]["p50"] for r in ok}
    page.click("#results th:has-text('p50 ms')")
    assert [x for x in order() if x in p50] == sorted(p50, key=p50.get)
    page.click("#results th:has-text('p50 ms')")
    assert [x for x in order() if x in p50] == sorted(p50, key=p50.get, reverse=True)
    page.click("#results th:has-text('variant')")
    names = [x.split("@")[0] for x in order()]
    assert names == sorted(names)


def test_several_runs_side_by_side(run_dir, tmp_path):
    slower = tmp_path / "slower"
    shutil.copytree(run_dir, slower)
    doc = results(slower)
    for r in doc["rows"]:
        if r["status"] == "ok":
            r["latency_ms"]["p50"] *= 2
    doc["settings"]["threads"] += 1  # a setting that differs between the runs
    (slower / "results.json").write_text(json.dumps(doc))
    out = tmp_path / "both"
    r = CliRunner().invoke(main, ["report", str(run_dir), str(slower), "-o", str(out)])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    assert html.count('class="worse"') == 3  # every ok row's p50 doubled, nothing else changed
    assert 'class="better"' not in html
    assert "threads: " in html and "slower" in html and "run" in html
    assert 'id="rows-differ"' not in html  # the same rows: no warning
    again = CliRunner().invoke(main, ["report", str(run_dir), str(slower), "-o", str(out)])
    assert again.exit_code == 0  # its own report.html is replaced


def test_side_by_side_warns_when_the_runs_scored_other_rows(run_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    doc = results(other)
    doc["settings"]["dataset_selection"]["rows_sha256"] = "0" * 16
    (other / "results.json").write_text(json.dumps(doc))
    r = CliRunner().invoke(main, ["report", str(run_dir), str(other), "-o", str(tmp_path / "both")])
    assert r.exit_code == 0 and 'id="rows-differ"' in (tmp_path / "both" / "report.html").read_text()


@pytest.mark.parametrize("args,msg", [
    (["{a}", "{b}"], "several runs need -o DIR"),
    (["{a}", "-o", "{out}"], "-o is for several runs"),
    (["{a}", "{b}", "-o", "{foreign}"], "holds files qonnx did not write (thesis.txt)"),
    (["{a}", "{b}", "-o", "{file}"], "is a file; give a folder")])
def test_side_by_side_refuses_bad_input(run_dir, tmp_path, args, msg):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("mine")
    (tmp_path / "f.txt").write_text("mine")
    names = {"a": run_dir, "b": run_dir, "out": tmp_path / "o", "foreign": foreign, "file": tmp_path / "f.txt"}
    r = CliRunner().invoke(main, ["report"] + [a.format(**names) for a in args])
    assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output
    assert (foreign / "thesis.txt").read_text() == "mine" and (tmp_path / "f.txt").read_text() == "mine"


def _doc(kind, rows, **settings):
    return {"settings": {"kind": kind, **settings}, "rows": [{"status": "ok", "provider": "cpu", **r} for r in rows]}


def test_ship_this_is_the_fastest_row_within_the_budget():
    rows = [{"variant": "torch-fp32", "accuracy": 0.90, "accuracy_drop": 0.0, "latency_ms": {"p50": 10.0}},
            {"variant": "onnx-int8-static", "accuracy": 0.85, "accuracy_drop": 0.05, "latency_ms": {"p50": 2.0}},
            {"variant": "onnx-int8-dynamic", "accuracy": 0.89, "accuracy_drop": 0.01, "latency_ms": {"p50": 3.0}}]
    assert summary.recommend(_doc("classification", rows))["row"]["variant"] == "onnx-int8-dynamic"
    assert "default budget" in summary.recommend(_doc("classification", rows))["text"]
    strict = summary.recommend(_doc("classification", rows, max_accuracy_drop=0.001))
    assert strict["row"]["variant"] == "torch-fp32" and "the run's budget" in strict["text"]
    none = summary.recommend(_doc("classification", rows[1:], max_accuracy_drop=0.001))
    assert none["row"] is None and none["text"].startswith("no measured row is within")
    lm = [{"variant": "onnx-fp32", "perplexity": 40.0, "perplexity_change_pct": 0.0, "decode_tokens_per_s": 20},
          {"variant": "onnx-int4", "perplexity": 54.0, "perplexity_change_pct": 35.0, "decode_tokens_per_s": 90},
          {"variant": "onnx-int8", "perplexity": 40.4, "perplexity_change_pct": 1.0, "decode_tokens_per_s": 70}]
    assert summary.recommend(_doc("lm", lm))["row"]["variant"] == "onnx-int8"
    # a run's --max-perplexity-increase is the budget it is read against (the setting's own name)
    loose = summary.recommend(_doc("lm", lm, max_perplexity_increase=40.0))
    assert loose["row"]["variant"] == "onnx-int4" and "the run's budget (max perplexity increase 40.0 %)" in loose["text"]


@pytest.mark.parametrize("variants,limit,named", [
    (["genai-int4", "genai-int4-budget"], 5.0, "(genai-int4-budget)"),
    (["onnx-int4-weight", "genai-int4-budget"], 5.0, "(onnx-int4-weight and genai-int4-budget)"),
    (None, 5.0, "(onnx-int4-weight)"),  # the LM default matrix: onnx-int4-weight, no genai-int4-budget
    (["genai-int4-budget"], None, "(genai-int4-budget)"),  # its own default budget
    (["onnx-int4-weight"], None, None)])
def test_the_budget_note_names_the_rows_that_were_searched(variants, limit, named):
    from qonnx.report import method_notes

    notes = [n for n in method_notes("lm", {"variants": variants, "max_perplexity_increase": limit})
             if n.startswith("Perplexity budget")]
    assert [n.split(":")[0] for n in notes] == ([f"Perplexity budget {named}"] if named else [])
