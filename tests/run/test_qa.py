"""Extractive question answering through compare, the report and the gate: a tiny random
DistilBertForQuestionAnswering (no token_type_ids) through the default matrix via the CLI (run
once), a tiny BertForQuestionAnswering through torch-fp32 and onnx-fp32, its answers against the
transformers question-answering pipeline's."""
import json
import random

import pytest
from click.testing import CliRunner
from test_matrix import default_rows, rows_of

from qonnx.cli import main
from qonnx.measure.squad import score
from qonnx.variants.registry import defaults
from tiny import write_jsonl

WORDS = ("the film was a delight from start to finish city officials promised that old ferry would continue for "
         "tourists after years of delays new bridge finally opened traffic monday morning").split()
FAST = ["--latency-samples", "3", "--warmup", "1", "--batch-size", "4", "--threads", "1", "--rounds", "0"]
LONG = 300  # words of the last context: past the tiny models' 256 positions, so it takes several windows


def questions(seed, n, long_last=True):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(LONG if long_last and i == n - 1 else rng.randint(12, 40))]
        at = rng.randrange(len(words) - 2)
        context = " ".join(words)
        answer = " ".join(words[at:at + 2])
        out.append({"question": f"what {rng.choice(WORDS)} {rng.choice(WORDS)}?", "context": context,
                    "answers": {"text": [answer], "answer_start": [len(" ".join(words[:at])) + (at > 0)]}})
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("qa-data")
    write_jsonl(d / "eval.jsonl", questions(0, 5))
    write_jsonl(d / "calib.jsonl", [{k: q[k] for k in ("question", "context")} for q in questions(1, 4)])
    return d


@pytest.fixture(scope="module")
def distil_run(files, tmp_path_factory):
    from tiny import tiny_head

    d = tmp_path_factory.mktemp("qa-distilbert")
    model = tiny_head("distilbert", "QuestionAnswering", d / "model", n_layers=1)
    result = CliRunner().invoke(main, ["compare", str(model), "--dataset", str(files / "eval.jsonl"), "--calibration",
                                       str(files / "calib.jsonl"), *FAST, "--concurrent-rows", "-o", str(d / "run")])
    return model, d / "run", result


def test_every_default_row_is_ok_or_skipped_with_its_reason(distil_run):
    _, run_dir, result = distil_run
    rows = default_rows(run_dir, result, "distilbert", defaults("qa"))
    assert "onnx-int8-static" in rows
    for r in rows.values():
        if r["status"] == "ok":
            assert 0 <= r["exact_match"] <= r["f1"] <= 1 and r["windows"] > 5  # the long context: several windows
    assert "EM" in result.output and "F1" in result.output
    settings = json.loads((run_dir / "run.json").read_text())["settings"]
    assert settings["qa_windows"] == {"max_length": 256, "doc_stride": 128, "max_answer_len": 15}
    assert "f1" in settings["budget_metric"]


def test_onnx_fp32_agrees_with_torch_fp32(distil_run):
    rows = rows_of(distil_run[1])
    torch_row, onnx = rows["torch-fp32"], rows["onnx-fp32"]
    assert onnx["agreement"] == 1 and onnx["answers"] == torch_row["answers"]
    assert (onnx["exact_match"], onnx["f1"], onnx["f1_drop"]) == (torch_row["exact_match"], torch_row["f1"], 0)


def test_exact_match_and_f1_of_the_rows_own_answers(distil_run):
    row = rows_of(distil_run[1])["torch-fp32"]
    want = score(row["answers"], [q["answers"]["text"] for q in questions(0, 5)])
    assert (row["exact_match"], row["f1"]) == pytest.approx((want["exact_match"], want["f1"]))


def test_int8_static_calibrated_on_question_context_pairs(distil_run):
    from pathlib import Path

    row = rows_of(distil_run[1])["onnx-int8-static"]
    cal = json.loads((Path(row["artifact"]) / "manifest.json").read_text())["settings"]["calibration"]
    assert cal["columns"] == ["question", "context"] and cal["count"] == 4


def test_bert_answers_are_the_pipelines(files, tmp_path):
    """One window: the best start + end logit is the pipeline's best span (the same argmax as its
    per-window probabilities; align_to_words off, as qonnx maps tokens to characters)."""
    from transformers import pipeline

    from tiny import tiny_head

    model = tiny_head("bert", "QuestionAnswering", tmp_path / "model", num_hidden_layers=1)
    data = write_jsonl(tmp_path / "short.jsonl", questions(2, 4, long_last=False))
    result = CliRunner().invoke(main, ["compare", str(model), "--dataset", str(data), "--variants",
                                       "torch-fp32,onnx-fp32", *FAST, "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    rows = rows_of(tmp_path / "run")
    assert rows["onnx-fp32"]["agreement"] == 1
    qa = pipeline("question-answering", model=str(model), device="cpu")
    want = [qa(question=q["question"], context=q["context"], max_seq_len=256, doc_stride=128,
               align_to_words=False)["answer"] for q in questions(2, 4, long_last=False)]
    assert rows["torch-fp32"]["answers"] == want


def test_the_gate_reads_the_f1_drop(distil_run):
    run_dir = str(distil_run[1])
    ok = CliRunner().invoke(main, ["validate", run_dir, "--variant", "onnx-fp32", "--max-accuracy-drop", "0"])
    assert ok.exit_code == 0 and "f1_drop" in ok.output, ok.output
