"""Sensitivity beyond text classifiers and LMs, through the CLI: an embedding model (pooled as its
sentence-transformers folder says), a token classifier, an extractive QA model, an image classifier and
encoder-decoder models (T5, BART), each a tiny random model built from a config; every unit's figures are
the family's, finite, and quantizing moves them."""
import json
import math
import random
from pathlib import Path

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


# the units of a one-layer encoder-decoder: encoder and decoder named apart, cross-attention its own role
SEQ2SEQ_UNITS = {"encoder embeddings", "encoder layer 0 attn-in", "encoder layer 0 attn-out", "encoder layer 0 ffn-in",
                 "encoder layer 0 ffn-out", "decoder embeddings", "decoder layer 0 attn-in", "decoder layer 0 attn-out",
                 "decoder layer 0 cross-attn-in", "decoder layer 0 cross-attn-out", "decoder layer 0 ffn-in",
                 "decoder layer 0 ffn-out"}


@pytest.mark.parametrize("arch", ["t5", "bart"])
def test_seq2seq(tmp_path, arch, monkeypatch):
    """Both graphs' units (the decoder's inside the merged decoder's If branches), each quantized alone;
    generation, teacher-forced KL and ROUGE-L against the references per unit; all units quantized moves
    the next-token distributions. A relative -o (the quantizers run in a scratch cwd)."""
    from tiny_seq2seq import seq2seq_table, tiny_seq2seq

    model = tiny_seq2seq(arch, tmp_path / "model", layers=1)
    table = seq2seq_table(tmp_path / "s2s.csv")
    monkeypatch.chdir(tmp_path)
    doc, out = run(model, table, Path("a"), "--target-column", "summary", "--max-new-tokens", "6")
    every = check(doc, out, "seq2seq", lambda r: r["kl"] > 0)
    # T5 ties its output projection to the (decoder's) token table: no MatMul over a weight, no head unit
    assert set(doc["units"]) == SEQ2SEQ_UNITS | ({"decoder head"} if arch == "bart" else set())
    assert all(n.startswith("encoder_model.onnx:") for n in doc["units"]["encoder layer 0 attn-in"])
    assert all(n.startswith("decoder_model_merged.onnx:") for n in doc["units"]["decoder layer 0 cross-attn-in"])
    assert 0 <= every["exact_match"] <= every["agreement"] + 1e-12 <= 1 + 1e-12 and 0 <= every["rouge_l"] <= 1
    assert not any(r.get("untouched") for r in doc["results"])  # every unit's build changes its graph
    assert set(doc["reference"]) == {"rouge_l"} and doc["data"]["samples"] == 6
    assert "decoder layer 0 cross-attn-in" in out


def test_seq2seq_refuses_methods_without_a_seq2seq_build(tmp_path):
    from tiny_seq2seq import tiny_seq2seq

    model = tiny_seq2seq("t5", tmp_path / "model", layers=1)
    (tmp_path / "src.csv").write_text("text\nthe film was a delight\n")
    r = CliRunner().invoke(main, ["analyze", "sensitivity", str(model), "--dataset", str(tmp_path / "src.csv"),
                                  "-m", "int4-weight", "-o", str(tmp_path / "a")])
    assert r.exit_code == 1 and "not built for encoder-decoder" in r.output and "int8-dynamic" in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "a").exists()


def test_int8_static_is_refused_outside_text_classifiers(tmp_path):
    from tiny_vision import image_folder, tiny_vit

    model = tiny_vit(tmp_path / "model")
    image_folder(tmp_path / "images", per_class=1)
    r = CliRunner().invoke(main, ["analyze", "sensitivity", str(model), "--dataset", str(tmp_path / "images"),
                                  "-m", "int8-static", "-o", str(tmp_path / "a")])
    assert r.exit_code == 1 and "use int8-dynamic or int4-weight" in r.output, r.output


@pytest.mark.parametrize("arch", ["t5", "bart"])
def test_seq2seq_all_units_build_is_the_int8_dynamic_variant(tmp_path, arch):
    """Quantizing every unit builds what compare's onnx-int8-dynamic row runs: the same ops in the encoder
    and in the merged decoder's If branches (the variant enters them), the same INT8 weights; T5's tied
    output projection (a MatMul over a transposed table) stays float in both."""
    import onnx
    from tiny_seq2seq import tiny_seq2seq

    from qonnx import models
    from qonnx.config import QuantizeConfig
    from qonnx.export import ensure
    from qonnx.runners.seq2seq import ENCODER, MERGED
    from qonnx.variants import quantize
    from qonnx.variants.seq2seq import quantize_folder, unit_nodes

    export = ensure(models.resolve(str(tiny_seq2seq(arch, tmp_path / "model", layers=1))))
    every = [n for ns in unit_nodes(export).values() for n in ns]
    ours = quantize_folder("int8-dynamic", export, tmp_path / "all", every, {})
    quantize(QuantizeConfig(onnx_dir=export, method="int8-dynamic", output=tmp_path / "variant"))

    def graph(path):
        ops, weights = [], []

        def walk(g):
            weights.extend((i.name, i.data_type) for i in g.initializer)
            for n in g.node:
                ops.append(n.op_type)
                for a in n.attribute:
                    if a.type == onnx.AttributeProto.GRAPH:
                        walk(a.g)

        walk(onnx.load(str(path)).graph)
        return sorted(ops), sorted(weights)

    for name in (ENCODER, MERGED):
        mine, variant = graph(ours / name), graph(tmp_path / "variant" / name)
        assert mine == variant, name
        assert "MatMulInteger" in mine[0] and "MatMul" in graph(export / name)[0]


@pytest.mark.real
def test_a_missing_demo_split_is_said_before_anything_is_exported(tmp_path):
    from qonnx import store

    res = CliRunner().invoke(main, ["analyze", "sensitivity", "demo:minilm", "-m", "int8-dynamic",
                                    "--dataset", "demo:minilm:nope", "-o", str(tmp_path / "out")])
    assert res.exit_code == 1 and "demo:minilm has no split 'nope'" in res.output, res.output
    assert not (store.root() / "minilm").exists() and not (tmp_path / "out").exists()
