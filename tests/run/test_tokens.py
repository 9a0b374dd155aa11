"""Token classification through compare, the report and the gate: a tiny random
BertForTokenClassification through the default matrix via the CLI (run once), a tiny
DistilBertForTokenClassification (no token_type_ids) through torch-fp32 and onnx-fp32."""
import json
import random

import numpy as np
import pytest
from click.testing import CliRunner
from test_matrix import default_rows, rows_of

from qonnx.cli import main
from qonnx.measure.entities import scores
from qonnx.variants.registry import defaults
from tiny import write_jsonl

WORDS = ("the film was a delight from start to finish city officials promised that old ferry would continue for "
         "tourists after years of delays new bridge finally opened traffic monday morning").split()
TAGS = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
FAST = ["--latency-samples", "3", "--warmup", "1", "--batch-size", "4", "--threads", "1", "--rounds", "0"]


def sentences(seed, n):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 9))]
        out.append({"tokens": words, "ner_tags": [rng.choice(TAGS) for _ in words]})
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ner-data")
    write_jsonl(d / "eval.jsonl", sentences(0, 10))
    calib = sentences(1, 6)  # a csv, its word lists as JSON: the calibration reads the tokens column
    (d / "calib.csv").write_text("tokens\n" + "".join('"' + json.dumps(r["tokens"]).replace('"', '""') + '"\n'
                                                     for r in calib))
    return d


@pytest.fixture(scope="module")
def bert_run(files, tmp_path_factory):
    from tiny import tiny_head

    d = tmp_path_factory.mktemp("ner-bert")
    model = tiny_head("bert", "TokenClassification", d / "model", num_hidden_layers=1)
    result = CliRunner().invoke(main, ["compare", str(model), "--dataset", str(files / "eval.jsonl"), "--calibration",
                                       str(files / "calib.csv"), *FAST, "--concurrent-rows", "-o", str(d / "run")])
    return model, d / "run", result


def test_every_default_row_is_ok_or_skipped_with_its_reason(bert_run, files):
    _, run_dir, result = bert_run
    rows = default_rows(run_dir, result, "bert", defaults("tokens"))
    assert "onnx-int8-static" in rows and "torch-int8-dynamic" in rows
    words = sum(len(r["tokens"]) for r in sentences(0, 10))
    for r in rows.values():
        if r["status"] == "ok":
            assert 0 <= r["f1"] <= 1 and r["words_scored"] == words and r["words_cut"] == 0
    assert "F1" in result.output and "prec" in result.output and "recall" in result.output


def test_onnx_fp32_agrees_with_torch_fp32(bert_run):
    rows = rows_of(bert_run[1])
    torch_row, onnx = rows["torch-fp32"], rows["onnx-fp32"]
    assert onnx["agreement"] == 1 and onnx["max_logit_diff"] < 1e-4
    assert (onnx["precision"], onnx["recall"], onnx["f1"]) == (torch_row["precision"], torch_row["recall"], torch_row["f1"])
    assert onnx["f1_drop"] == 0


def test_word_labels_and_entity_scores_by_hand(bert_run, files):
    """torch-fp32's saved word logits against transformers run by hand (each word's first
    sub-token), and its precision/recall/F1 against the entities of those labels."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model_dir, run_dir, _ = bert_run
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
    want, true, pred = [], [], []
    for r in sentences(0, 10):
        enc = tok(r["tokens"], is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**enc).logits[0].numpy()
        first = [enc.word_ids(0).index(w) for w in range(len(r["tokens"]))]
        want.append(logits[first])
        pred.append([model.config.id2label[int(i)] for i in logits[first].argmax(-1)])
        true.append(r["ner_tags"])
    row = rows_of(run_dir)["torch-fp32"]
    assert np.allclose(np.load(row["outputs"]), np.concatenate(want), atol=1e-5)
    hand = scores(true, pred)
    assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((hand["precision"], hand["recall"], hand["f1"]))


def test_int8_static_calibrated_on_the_token_lists(bert_run):
    row = rows_of(bert_run[1])["onnx-int8-static"]
    manifest = json.loads((__import__("pathlib").Path(row["artifact"]) / "manifest.json").read_text())
    cal = manifest["settings"]["calibration"]
    assert cal["column"] == "tokens" and cal["count"] == 6


def test_the_gate_reads_the_f1_drop(bert_run):
    run_dir = str(bert_run[1])
    ok = CliRunner().invoke(main, ["validate", run_dir, "--variant", "onnx-fp32", "--max-accuracy-drop", "0"])
    assert ok.exit_code == 0 and "f1_drop" in ok.output, ok.output
    bad = CliRunner().invoke(main, ["validate", run_dir, "--variant", "onnx-fp32", "--max-perplexity-increase", "1"])
    assert bad.exit_code == 1 and "entity F1" in bad.output
    report = (bert_run[1] / "report.html").read_text()
    assert "Ship this" in report and "F1 drop against the reference" in report


def test_distilbert_onnx_fp32_agrees_with_torch_fp32(files, tmp_path):
    from tiny import tiny_head

    model = tiny_head("distilbert", "TokenClassification", tmp_path / "model", n_layers=1)
    result = CliRunner().invoke(main, ["compare", str(model), "--dataset", str(files / "eval.jsonl"), "--variants",
                                       "torch-fp32,onnx-fp32", *FAST, "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    rows = rows_of(tmp_path / "run")
    assert rows["onnx-fp32"]["agreement"] == 1 and rows["onnx-fp32"]["f1"] == rows["torch-fp32"]["f1"]


def test_curves_are_refused_for_token_classifiers(bert_run, files, tmp_path):
    result = CliRunner().invoke(main, ["compare", str(bert_run[0]), "--dataset", str(files / "eval.jsonl"),
                                       "--batch-sizes", "2", "-o", str(tmp_path / "run")])
    assert result.exit_code == 1 and "not yet for a token classifier" in result.output
    assert not (tmp_path / "run").exists()


def test_quantize_calibrates_on_tokens_and_refuses_the_budget_search(bert_run, files, tmp_path):
    export = rows_of(bert_run[1])["onnx-fp32"]["artifact"]
    renamed = tmp_path / "calib.csv"
    renamed.write_text((files / "calib.csv").read_text().replace("tokens", "words", 1))
    built = CliRunner().invoke(main, ["quantize", export, "-m", "int8-static", "--calibration", str(renamed),
                                      "--tokens-column", "words", "-o", str(tmp_path / "static")])
    assert built.exit_code == 0, built.output
    cal = json.loads((tmp_path / "static" / "manifest.json").read_text())["settings"]["calibration"]
    assert cal["column"] == "words" and cal["count"] == 6
    refused = CliRunner().invoke(main, ["quantize", export, "-m", "int8-dynamic", "--max-accuracy-drop", "0.01",
                                        "-o", str(tmp_path / "dyn")])
    assert refused.exit_code == 1 and "a token classifier" in refused.output and "qonnx validate" in refused.output
    assert not (tmp_path / "dyn").exists()
