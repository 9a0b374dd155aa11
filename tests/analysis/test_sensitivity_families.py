"""Sensitivity beyond text classifiers and LMs, through the CLI: an embedding model (pooled as its
sentence-transformers folder says), a token classifier, an extractive QA model and an image
classifier, each a tiny random model built from a config; every unit's figures are the family's,
finite, and quantizing moves them. A seq2seq model is refused with its reason."""
import json
import math
import random

import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.tasks import module

WORDS = ("the film was a delight from start to finish city officials promised that old ferry would continue for "
         "tourists after years of delays new bridge finally opened traffic monday morning").split()


def sentences(seed, n, lo=3, hi=10):
    rng = random.Random(seed)
    return [[rng.choice(WORDS) for _ in range(rng.randint(lo, hi))] for _ in range(n)]


def run(model, data, out, *extra):
    """The analysis through the CLI (int8-dynamic, the `only` view): (sensitivity.json, CLI output)."""
    r = CliRunner().invoke(main, ["analyze", "sensitivity", str(model), "--dataset", str(data), "--views", "only",
                                  "--threads", "1", "-o", str(out), *extra])
    assert r.exit_code == 0, r.output
    for name in ("sensitivity.csv", "sensitivity.md", "sensitivity.png", "units.jsonl"):
        assert (out / name).stat().st_size > 0, name
    return json.loads((out / "sensitivity.json").read_text()), r.output


def check(doc, output, kind, moved):
    """Every unit has the family's figures, finite; the table shows the family's columns; the `all`
    build moves the damage measure (a random model's weights round to other values)."""
    spec = module(kind).SENSITIVITY
    assert doc["family"] == kind
    assert {r["unit"] for r in doc["results"] if r["view"] == "only"} == set(doc["units"])
    assert len(doc["units"]) >= 3
    for r in doc["results"]:
        for c in spec["columns"]:
            assert c in r and r[c] is not None and math.isfinite(r[c]), (r["unit"], c, r.get(c))
    header = "| unit | nodes | " + " | ".join(spec["columns"]) + " |"
    assert header in output
    everything = next(r for r in doc["results"] if r["view"] == "all")
    assert everything[spec["damage"]] > 0
    assert moved(everything), everything
    assert max(r[spec["damage"]] for r in doc["results"] if r["view"] == "only") > 0
    return everything


def test_embeddings(tmp_path):
    from tiny import tiny_sentence_transformer

    model = tiny_sentence_transformer(tmp_path / "model", modes=("cls",), num_hidden_layers=1)
    texts = [" ".join(s) for s in sentences(0, 14)]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "texts.csv", index=False)
    doc, out = run(model, tmp_path / "texts.csv", tmp_path / "a")
    every = check(doc, out, "embeddings", lambda r: r["cosine_min"] < 1)
    assert every["cosine_distance"] == pytest.approx(1 - every["cosine_mean"])
    assert every["cosine_min"] <= every["cosine_mean"] <= 1 and 0 <= every["topk_overlap"] <= 1
    assert "cosine_distance" in (tmp_path / "a" / "sensitivity.md").read_text()


def test_token_classifier_and_resume(tmp_path):
    from tiny import NER, tiny_head

    model = tiny_head("bert", "TokenClassification", tmp_path / "model", num_hidden_layers=1)
    rng = random.Random(1)
    rows = [{"tokens": s, "ner_tags": [rng.choice(NER) for _ in s]} for s in sentences(1, 10)]
    (tmp_path / "ner.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc, out = run(model, tmp_path / "ner.jsonl", tmp_path / "a")
    every = check(doc, out, "tokens", lambda r: r["kl"] > 0)
    assert 0 <= every["agreement"] <= 1 and 0 <= every["f1"] <= 1
    assert set(doc["reference"]) == {"f1"}
    # resume: a unit cut off as a kill leaves it is measured again, the rest kept
    units = tmp_path / "a" / "units.jsonl"
    lines = units.read_text().splitlines()
    units.write_text("\n".join(lines[:3]) + "\n" + lines[3][:15])
    again, _ = run(model, tmp_path / "ner.jsonl", tmp_path / "a", "--resume")
    key = lambda r: (r["view"], r["unit"])  # noqa: E731
    assert sorted(map(key, again["results"])) == sorted(map(key, doc["results"]))
    first = {key(r): r["kl"] for r in doc["results"]}
    assert all(r["kl"] == pytest.approx(first[key(r)], rel=1e-6, abs=1e-12) for r in again["results"])


def test_question_answering(tmp_path):
    from tiny import tiny_head

    model = tiny_head("distilbert", "QuestionAnswering", tmp_path / "model", n_layers=1)
    rows = []
    for i, words in enumerate(sentences(2, 8, 12, 30)):
        at = i % (len(words) - 2)
        answer = " ".join(words[at:at + 2])
        rows.append({"question": f"what {words[0]} {words[-1]}?", "context": " ".join(words),
                     "answers": {"text": [answer], "answer_start": [len(" ".join(words[:at])) + (at > 0)]}})
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    doc, out = run(model, tmp_path / "qa.jsonl", tmp_path / "a")
    every = check(doc, out, "qa", lambda r: r["kl"] > 0)
    assert 0 <= every["agreement"] <= 1 and 0 <= every["exact_match"] <= every["f1"] + 1e-12 <= 1 + 1e-12
    assert set(doc["reference"]) == {"exact_match", "f1"}


def test_image_classifier(tmp_path):
    from tiny_vision import image_folder, tiny_vit

    model = tiny_vit(tmp_path / "model")
    image_folder(tmp_path / "images", per_class=2)
    doc, out = run(model, tmp_path / "images", tmp_path / "a")
    every = check(doc, out, "images", lambda r: r["kl"] > 0)
    assert 0 <= every["accuracy"] <= 1 and 0 <= every["agreement"] <= 1
    assert set(doc["reference"]) == {"accuracy"} and doc["data"]["samples"] == 14


def test_seq2seq_is_refused_with_its_reason(tmp_path):
    from tiny_seq2seq import tiny_seq2seq

    model = tiny_seq2seq("t5", tmp_path / "model")
    (tmp_path / "src.csv").write_text("text\nthe film was a delight\n")
    r = CliRunner().invoke(main, ["analyze", "sensitivity", str(model), "--dataset", str(tmp_path / "src.csv"),
                                  "-o", str(tmp_path / "a")])
    assert r.exit_code == 1 and "encoder, decoder and decoder-with-past graphs" in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "a").exists()


def test_int8_static_is_refused_outside_text_classifiers(tmp_path):
    from tiny_vision import image_folder, tiny_vit

    model = tiny_vit(tmp_path / "model")
    image_folder(tmp_path / "images", per_class=1)
    r = CliRunner().invoke(main, ["analyze", "sensitivity", str(model), "--dataset", str(tmp_path / "images"),
                                  "-m", "int8-static", "-o", str(tmp_path / "a")])
    assert r.exit_code == 1 and "use int8-dynamic or int4-weight" in r.output, r.output
