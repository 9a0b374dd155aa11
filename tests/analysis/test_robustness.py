"""Typo robustness: the seeded noise (pure functions) and `qonnx analyze robustness` on a tiny
classifier (files, rate 0 = a plain compare of the same rows, drops, resume, bad input)."""
import json
import random
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from qonnx import noise
from qonnx.cli import main
from qonnx.config import CompareConfig, RobustnessConfig
from qonnx.errors import ConfigError
from qonnx.run.compare import compare

TEXTS = ["The film was a delight from start to finish, I would recommend it.",
         "Service slow and food cold; I would not recommend this restaurant to anyone!",
         "Quarterly revenue rose by four percent, slightly below what analysts had expected.",
         "After years of delays the new bridge finally opened to traffic on Monday morning.",
         "A boring, predictable and overlong MESS of a movie.", "Honestly? Great, good, fine."] * 20


def classify(a: str, b: str) -> str:
    """Which edit turned word a into word b."""
    if len(b) == len(a) - 1:
        return "delete"
    if len(b) == len(a) + 1:
        return "insert"
    diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]].lower() == b[diff[1]].lower():
        return "swap"
    assert len(diff) == 1, (a, b)
    return "substitute"


def word_pairs(originals, perturbed):
    for a, b in zip(originals, perturbed):
        yield from zip(noise.WORD.findall(a), noise.WORD.findall(b))


# -- the noise ---------------------------------------------------------------------------------

def test_noise_is_deterministic_per_seed_and_differs_across_seeds():
    once = noise.perturb_all(TEXTS, 0.2, seed=7)
    assert once == noise.perturb_all(TEXTS, 0.2, seed=7)
    assert once != noise.perturb_all(TEXTS, 0.2, seed=8)
    assert once != TEXTS


def test_rate_zero_is_the_identity():
    assert noise.perturb_all(TEXTS, 0, seed=3) == TEXTS
    assert noise.perturb(TEXTS[0], 0.0, random.Random(1)) == TEXTS[0]


def test_rates_outside_zero_one_are_refused():
    for rate in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            noise.perturb_all(TEXTS, rate, 0)


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5, 1.0])
def test_the_fraction_of_changed_words_is_close_to_the_rate(rate):
    texts = noise.perturb_all(TEXTS * 5, rate, seed=1)
    changed, eligible = noise.changed_words(TEXTS * 5, texts)
    assert eligible > 5000
    assert abs(changed / eligible - rate) < 0.015, (changed, eligible)


def test_each_edit_kind_occurs_and_words_stay_words():
    texts = noise.perturb_all(TEXTS, 0.5, seed=2)
    kinds = [classify(a, b) for a, b in word_pairs(TEXTS, texts) if a != b]
    counts = {k: kinds.count(k) for k in noise.KINDS}
    assert all(n > 0.15 * len(kinds) for n in counts.values()), counts
    # only letters change: punctuation, digits and spacing are kept
    assert [re.sub(r"[^\W\d_]", "", t) for t in texts] == [re.sub(r"[^\W\d_]", "", t) for t in TEXTS]


def test_keyboard_substitutions_and_insertions_use_neighbour_keys():
    rng = random.Random(0)
    assert set(noise.NEIGHBOURS["s"]) == set("awedxz") and set(noise.NEIGHBOURS["p"]) == set("ol")
    assert all(a in noise.NEIGHBOURS[b] for a in noise.NEIGHBOURS for b in noise.NEIGHBOURS[a])  # symmetric
    for word in ["keyboard", "typo", "quiz", "MOVIE", "Hello"] * 40:
        sub = noise.edit(word, "substitute", rng)
        (i,) = [j for j, (x, y) in enumerate(zip(word, sub)) if x != y]
        assert sub[i].lower() in noise.NEIGHBOURS[word[i].lower()]
        assert sub[i].isupper() == word[i].isupper()  # case kept
        ins = noise.edit(word, "insert", rng)
        # a key next to the one before it, in that key's case (where it landed can be ambiguous: tyypo)
        assert any(ins[:j] + ins[j + 1:] == word and ins[j].lower() in noise.NEIGHBOURS[ins[j - 1].lower()]
                   and ins[j].isupper() == ins[j - 1].isupper() for j in range(1, len(ins))), (word, ins)


def test_every_edit_changes_the_word_and_case_follows_position():
    rng = random.Random(0)
    for kind in noise.KINDS:
        for word in ("aa", "oo", "ab", "Hello", "éé", "Ça"):
            assert noise.edit(word, kind, rng) != word
    assert noise.edit("Ab", "swap", rng) == "Ba"  # the capital stays first, as typed


def test_short_words_and_non_words_are_left_alone():
    text = "I a 42 , ; x y z !"
    assert noise.perturb(text, 1.0, random.Random(0)) == text
    assert noise.changed_words([text], [text]) == (0, 0)


# -- the analysis on a tiny classifier -----------------------------------------------------------

SENTENCES = ["the film was a delight", "boring predictable mess", "it rained all day", "great good fine",
             "i would not recommend this restaurant", "what a boring movie", "love the service",
             "awful food and service slow", "the committee will publish its findings next spring",
             "a great film from start to finish", "i hate this boring movie", "good food"]
VARIANTS = ["onnx-fp32", "onnx-int8-dynamic", "torch-fp32"]


@pytest.fixture(scope="module")
def eval_csv(tmp_path_factory):
    f = tmp_path_factory.mktemp("robust-data") / "eval.csv"
    pd.DataFrame({"sentence": SENTENCES * 2, "sentiment": ["positive", "negative", "Negative"] * 8}).to_csv(
        f, index=False)
    return f


def args(model, data, out, *more):
    return ["analyze", "robustness", str(model), "--dataset", str(data), "--text-column", "sentence",
            "--label-column", "sentiment", "--variants", ",".join(VARIANTS), "--rates", "0.2,0",
            "--max-samples", "16", "--seed", "3", "--batch-size", "4", "-o", str(out), *more]


@pytest.fixture(scope="module")
def analysis(tiny_classifier, eval_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("robust") / "analysis"
    r = CliRunner().invoke(main, args(tiny_classifier, eval_csv, out))
    assert r.exit_code == 0, r.output
    return out, r.output, json.loads((out / "robustness.json").read_text())


def test_the_analysis_writes_its_files_and_prints_the_table(analysis):
    out, output, doc = analysis
    assert doc["rates"] == [0.0, 0.2] and doc["seed"] == 3 and doc["noise"]["kinds"] == list(noise.KINDS)
    assert {(e["variant"], e["provider"]) for e in doc["variants"]} == {(v, "cpu") for v in VARIANTS}
    assert all(e["status"] == ["ok", "ok"] for e in doc["variants"])
    assert doc["dataset_selection"]["rows"] == 16 and doc["dataset_selection"]["of"] == 24
    csv = pd.read_csv(out / "robustness.csv")
    assert len(csv) == 6 and {"variant", "provider", "rate", "accuracy", "accuracy_drop"} <= set(csv.columns)
    md = (out / "robustness.md").read_text()
    assert "| onnx-int8-dynamic | cpu |" in md and "rate 0.2" in md and "Drop vs the reference" in md
    assert (out / "robustness.png").stat().st_size > 10000
    for rate in ("0", "0.2"):
        assert (out / f"rate-{rate}" / "results.json").is_file() and (out / "data" / f"rate-{rate}.csv").is_file()
    assert "qonnx robustness" in output and "onnx-int8-dynamic" in output and "robustness.json" in output
    assert "rate 0.2: torch-fp32 on cpu: ok" in output


def test_the_same_rows_at_every_rate_and_the_texts_as_recorded(analysis):
    out, _, doc = analysis
    clean, noisy = (pd.read_csv(out / "data" / f"rate-{r}.csv") for r in ("0", "0.2"))
    assert list(clean["sentiment"]) == list(noisy["sentiment"]) and len(clean) == 16
    assert list(noisy["sentence"]) == noise.perturb_all(list(clean["sentence"]), 0.2, 3)
    info = {t["rate"]: t for t in doc["texts"]}
    assert info[0.0]["words_changed"] == 0 and info[0.2]["words_changed"] > 0
    from qonnx.run.typos import texts_sha256

    assert info[0.2]["texts_sha256"] == texts_sha256(list(noisy["sentence"]))


@pytest.fixture(scope="module")
def plain(tiny_classifier, eval_csv, tmp_path_factory):
    cfg = CompareConfig(model=str(tiny_classifier), dataset=str(eval_csv), text_column="sentence",
                        label_column="sentiment", variants=VARIANTS, max_samples=16, seed=3, batch_size=4,
                        latency_samples=2, warmup=1, output=tmp_path_factory.mktemp("plain") / "run")
    return cfg, compare(cfg)


def test_rate_zero_equals_a_plain_compare_of_the_same_rows(analysis, plain):
    _, _, doc = analysis
    _, plain = plain
    assert plain["settings"]["dataset_selection"]["rows_sha256"] == doc["dataset_selection"]["rows_sha256"]
    acc = {r["variant"]: r["accuracy"] for r in plain["rows"]}
    for e in doc["variants"]:
        assert e["accuracy"][0] == acc[e["variant"]], e["variant"]


def test_the_drop_is_the_reference_minus_the_row_at_each_rate(analysis):
    _, _, doc = analysis
    ref = {e["variant"]: e for e in doc["variants"]}["torch-fp32"]
    assert set(doc["reference"].values()) == {"torch-fp32@cpu"}
    for e in doc["variants"]:
        for i in range(len(doc["rates"])):
            assert e["drop"][i] == pytest.approx(ref["accuracy"][i] - e["accuracy"][i])


def test_a_rerun_finishes_an_interrupted_analysis_and_reuses_the_rest(analysis, tiny_classifier, eval_csv):
    out, _, doc = analysis
    lost = out / "rate-0.2" / "rows" / "onnx-fp32@cpu.json"
    lost.unlink()  # as if interrupted before this row
    rows = sorted(p for p in out.glob("rate-*/rows/*.json"))
    stamps = [p.stat().st_mtime_ns for p in rows]
    r = CliRunner().invoke(main, args(tiny_classifier, eval_csv, out))
    assert r.exit_code == 0, r.output
    assert [p.stat().st_mtime_ns for p in rows] == stamps  # nothing finished is measured again
    assert "rate 0.2: onnx-fp32 on cpu: ok" in r.output and "rate 0: onnx-fp32" not in r.output
    again = json.loads((out / "robustness.json").read_text())
    assert again["variants"] == doc["variants"]


def test_a_rerun_with_other_settings_is_refused(analysis, tiny_classifier, eval_csv):
    out, _, _ = analysis
    r = CliRunner().invoke(main, args(tiny_classifier, eval_csv, out, "--max-samples", "12"))
    assert r.exit_code == 1
    assert "holds a robustness analysis with other settings (" in r.output and "max_samples: 16 -> 12" in r.output


def test_attach_gives_a_compare_run_its_robust_accuracy(analysis, plain, tiny_classifier):
    """The library half of `compare --robustness-rate`: the same rows and seed as the analysis at
    that rate give the same accuracies, written into the run's row files."""
    from qonnx.models import resolve
    from qonnx.run.typos import attach

    _, _, doc = analysis
    cfg, _ = plain
    found = attach(cfg.output, cfg, resolve(str(tiny_classifier)), 0.2, compare)
    i = doc["rates"].index(0.2)
    assert found == {(e["variant"], "cpu"): (e["accuracy"][i], e["drop"][i]) for e in doc["variants"]}
    row = json.loads((cfg.output / "rows" / "onnx-int8-dynamic@cpu.json").read_text())
    assert row["robust_rate"] == 0.2 and row["robust_accuracy"] == found[("onnx-int8-dynamic", "cpu")][0]
    assert (cfg.output / "robustness" / "rate-0.2" / "results.json").is_file()


def test_compare_with_a_robustness_rate_carries_the_column(analysis, tiny_classifier, eval_csv, tmp_path):
    """`compare --robustness-rate 0.2`: every ok row gets the accuracy the analysis measured on the
    same rows at that rate, in results.json, the console table and report.html."""
    _, _, doc = analysis
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["compare", str(tiny_classifier), "--dataset", str(eval_csv), "--text-column",
                                  "sentence", "--label-column", "sentiment", "--variants", ",".join(VARIANTS),
                                  "--max-samples", "16", "--seed", "3", "--batch-size", "4", "--latency-samples",
                                  "2", "--warmup", "1", "--robustness-rate", "0.2", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "typo acc" in r.output
    rows = {x["variant"]: x for x in json.loads((out / "results.json").read_text())["rows"]}
    i = doc["rates"].index(0.2)
    for e in doc["variants"]:
        assert rows[e["variant"]]["robust_accuracy"] == e["accuracy"][i]
        assert rows[e["variant"]]["robust_drop"] == pytest.approx(e["drop"][i])
    assert "typo accuracy" in (out / "report.html").read_text()


def test_compare_robustness_rate_is_for_classifiers(tiny_lm, tmp_path):
    r = CliRunner().invoke(main, ["compare", str(tiny_lm), "--robustness-rate", "0.1", "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and "--robustness-rate measures classification accuracy" in r.output
    bad = CliRunner().invoke(main, ["compare", "--robustness-rate", "1.5", "-o", str(tmp_path / "p")])
    assert bad.exit_code == 1 and "--robustness-rate is a fraction of words in (0, 1]" in bad.output


# -- bad input: one clear line, exit 1 ------------------------------------------------------------

@pytest.mark.parametrize("rates, message", [("0,1.5", "--rates are fractions of words between 0 and 1, got 1.5"),
                                            ("-0.1", "--rates are fractions of words between 0 and 1, got -0.1"),
                                            ("0,lots", "got 'lots'")])
def test_rates_outside_zero_one_exit_1(rates, message, tmp_path):
    r = CliRunner().invoke(main, ["analyze", "robustness", "--rates", rates, "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()


def test_a_language_model_is_refused(tiny_lm, tmp_path):
    r = CliRunner().invoke(main, ["analyze", "robustness", str(tiny_lm), "-o", str(tmp_path / "o")])
    assert r.exit_code == 1
    assert "Error: robustness measures classification accuracy;" in r.output and "language model" in r.output
    assert not (tmp_path / "o").exists()


def test_an_unknown_variant_exits_1(tmp_path):
    r = CliRunner().invoke(main, ["analyze", "robustness", "--variants", "onnx-int9", "-o", str(tmp_path / "o")])
    assert r.exit_code == 1 and "Unknown variant 'onnx-int9'" in r.output and "Available:" in r.output


def test_a_folder_qonnx_did_not_write_is_refused(tiny_classifier, eval_csv, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    r = CliRunner().invoke(main, args(tiny_classifier, eval_csv, out))
    assert r.exit_code == 1 and "not written by `qonnx analyze robustness`" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_config_sorts_rates_and_checks_the_seed():
    assert RobustnessConfig(rates=["0.2", 0, "0.05", 0.2]).rates == [0.0, 0.05, 0.2]
    with pytest.raises(ConfigError, match="at least one rate"):
        RobustnessConfig(rates=[])
    with pytest.raises(ConfigError, match="--seed must be an integer"):
        RobustnessConfig(seed="1")
