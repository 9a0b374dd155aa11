"""Token classification and extractive QA: the metrics against seqeval's and SQuAD's published
definitions and examples (and the libraries where installed), the span search, the readers."""
import json
import random

import numpy as np
import pytest

from qonnx.errors import DataError
from qonnx.measure.entities import entities, scores
from qonnx.measure.squad import best_span, exact, f1, normalize, score
from qonnx.tasks import kind, qa, tokens

NER = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
LABEL2ID = {n: i for i, n in enumerate(NER)}


# -- entities: seqeval's docstring and README examples ------------------------------------------
def test_entities_as_seqeval_reads_them():
    assert entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]  # get_entities' docstring
    assert entities(["I-PER", "I-PER", "O", "I-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]  # IOB1: I opens a chunk
    assert entities(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 2)]  # a new type ends a chunk
    assert entities(["B-PER", "B-PER", "O"]) == [("PER", 0, 0), ("PER", 1, 1)]
    assert entities(["S-PER", "B-LOC", "E-LOC", "O"]) == [("PER", 0, 0), ("LOC", 1, 2)]  # IOBES


def test_scores_match_seqevals_published_example():
    """seqeval's README: one MISC entity mis-bounded, one PER found: precision = recall = F1 = 0.5."""
    true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    assert scores(true, pred) == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "entities": 2}


def test_scores_by_hand():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]  # PER and ORG found, LOC missed, a LOC invented
    got = scores(true, pred)
    assert got["precision"] == pytest.approx(2 / 3) and got["recall"] == pytest.approx(2 / 3)
    assert scores([["O"]], [["O"]])["f1"] == 0.0  # nothing to find, nothing found: seqeval's 0
    with pytest.raises(ValueError):
        scores([["O", "O"]], [["O"]])


def test_scores_agree_with_seqeval_on_random_tags():
    seqeval = pytest.importorskip("seqeval.metrics", reason="seqeval is not installed (the published examples "
                                                            "above hold the definition)")
    rng = random.Random(0)
    for _ in range(30):
        true = [[rng.choice(NER) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(1, 6))]
        pred = [[rng.choice(NER) for _ in t] for t in true]
        got = scores(true, pred)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = (seqeval.precision_score(true, pred), seqeval.recall_score(true, pred), seqeval.f1_score(true, pred))
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx(want)


# -- SQuAD: the official evaluation script's definitions ----------------------------------------
def test_squad_normalization_exact_match_and_f1():
    assert normalize("The  Eiffel Tower, in Paris!") == "eiffel tower in paris"
    assert normalize("an apple a day") == "apple day"
    assert exact("The Eiffel Tower.", "eiffel tower") == 1.0 and exact("Eiffel", "eiffel tower") == 0.0
    assert f1("the cat sat", "a cat sat down") == pytest.approx(0.8)  # p = 2/2, r = 2/3
    assert f1("dog", "cat") == 0.0
    got = score(["the cat sat", "Paris"], [["a cat sat down", "cat sat"], ["London"]])
    assert got == {"exact_match": 0.5, "f1": pytest.approx(0.5)}  # question 1: its best answer matches exactly


def test_best_span_over_windows_within_the_context_and_the_length_limit():
    start, end = np.zeros((2, 8)), np.zeros((2, 8))
    mask = np.array([[0, 0, 1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1, 1, 0]], dtype=bool)
    start[0, 0], end[0, 0] = 50, 50    # the question's tokens: never an answer
    start[0, 3], end[0, 2] = 5, 6      # end before start: never (11)
    start[1, 2], end[1, 4] = 5, 5      # window 1, tokens 2..4: 10, the best legal span
    start[0, 4], end[0, 5] = 4, 4      # window 0, tokens 4..5: 8
    assert best_span(start, end, mask)[:3] == (1, 2, 4)
    assert best_span(start, end, mask, max_answer_len=2)[:3] == (0, 4, 5)  # 2..4 is three tokens


# -- readers ------------------------------------------------------------------------------------
def test_token_reader_takes_names_ids_and_csv_lists(tmp_path):
    rows = [{"tokens": ["the", "bridge"], "ner_tags": ["O", "B-LOC"]}, {"tokens": ["city"], "ner_tags": ["B-ORG"]}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    got = tokens.read_data(str(tmp_path / "a.jsonl"), label2id=LABEL2ID)
    assert [r["tags"] for r in got.records] == [[0, 3], [5]] and got.texts == ["the bridge", "city"]
    (tmp_path / "b.csv").write_text('words,tags\n"[""the"", ""bridge""]","[0, 3]"\ncity,5\n')
    got = tokens.read_data(str(tmp_path / "b.csv"), label2id=LABEL2ID, tokens_column="words", tags_column="tags")
    assert [r["tags"] for r in got.records] == [[0, 3], [5]] and got.records[1]["words"] == ["city"]
    (tmp_path / "c.jsonl").write_text(json.dumps({"tokens": ["a", "b"], "ner_tags": ["O"]}))
    with pytest.raises(DataError, match="different number of tokens and tags"):
        tokens.read_data(str(tmp_path / "c.jsonl"), label2id=LABEL2ID)
    (tmp_path / "d.jsonl").write_text(json.dumps({"tokens": ["a"], "ner_tags": ["B-MISC"]}))
    with pytest.raises(DataError, match="Unknown label 'B-MISC'"):
        tokens.read_data(str(tmp_path / "d.jsonl"), label2id=LABEL2ID)
    with pytest.raises(DataError, match="no tokens column 'words'"):
        tokens.read_data(str(tmp_path / "a.jsonl"), label2id=LABEL2ID, tokens_column="words")


def test_qa_reader_takes_squad_json_and_jsonl(tmp_path):
    squad = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "The bridge opened on Monday.", "qas": [
        {"id": "1", "question": "When did it open?", "answers": [{"text": "Monday", "answer_start": 21}]}]}]}]}
    (tmp_path / "dev.json").write_text(json.dumps(squad))
    got = qa.read_data(str(tmp_path / "dev.json"))
    assert got.records == [{"question": "When did it open?", "context": "The bridge opened on Monday.",
                            "answers": ["Monday"]}]
    row = {"q": "What opened?", "context": "The bridge opened.", "answers": {"text": ["The bridge"], "answer_start": [0]}}
    (tmp_path / "a.jsonl").write_text(json.dumps(row))
    assert qa.read_data(str(tmp_path / "a.jsonl"), question_column="q").records[0]["answers"] == ["The bridge"]
    (tmp_path / "v2.jsonl").write_text(json.dumps({**row, "answers": {"text": [], "answer_start": []}}))
    with pytest.raises(DataError, match="unanswerable"):
        qa.read_data(str(tmp_path / "v2.jsonl"), question_column="q")


def test_the_two_families_are_their_own_kinds():
    assert kind("token-classification") == "tokens" and kind("question-answering") == "qa"
    assert kind("text-classification") == "classification"


def test_a_hub_datasets_class_label_tags_are_read_as_names(monkeypatch):
    """CoNLL-style hub data: ner_tags a sequence of class labels in the dataset's own order, which
    need not be the model's: they are read as names, then mapped through the model's label2id."""
    datasets = pytest.importorskip("datasets", reason="the datasets library is not installed")
    names = ["O", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-PER", "I-PER"]  # not the model's order
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    ds = datasets.Dataset.from_dict({"tokens": [["city", "officials"]], "ner_tags": [[1, 2]]}, features=features)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: ds)
    got = tokens.read_data("someone/conll-like", label2id=LABEL2ID)
    assert got.records[0]["tags"] == [LABEL2ID["B-ORG"], LABEL2ID["I-ORG"]] and got.source == "someone/conll-like:test"


def test_a_word_past_the_token_limit_is_predicted_o_and_counted(tmp_path):
    """Six one-token words, six positions: [CLS], four words, [SEP]. The last two words have no
    sub-token: predicted O and counted; the four kept words are labelled at their first sub-token."""
    from types import SimpleNamespace

    from qonnx.runners.base import Runner
    from tiny import _tokenizer

    class Fake(Runner):  # position p's label: B-ORG, I-ORG, O, B-LOC for the four kept words
        def logits(self, batch):
            ids = [0, 5, 6, 0, 3, 0]
            out = np.zeros(batch["input_ids"].shape + (len(NER),), dtype=np.float32)
            for p in range(batch["input_ids"].shape[1]):
                out[:, p, ids[p]] = 1
            return out

    job = SimpleNamespace(batch_size=2, latency_samples=2, warmup=0,
                          config={"max_position_embeddings": 6, "id2label": dict(enumerate(NER))})
    words = ["city", "officials", "the", "bridge", "opened", "monday"]
    arrays = tokens.prepare(_tokenizer(tmp_path), {"records": [{"words": words, "tags": [5, 6, 0, 3, 0, 3]}]}, job)
    got = tokens.measure(Fake(), arrays, job)
    assert got["words_cut"] == 2 and got["words_scored"] == 6 and got["outputs"].shape == (4, len(NER))
    # gold ORG(0-1), LOC(3), LOC(5); predicted ORG(0-1), LOC(3): precision 1, recall 2/3
    assert (got["precision"], got["recall"]) == (1.0, pytest.approx(2 / 3)) and got["entities"] == 3


def test_qa_answer_from_a_later_window_mapped_to_the_contexts_characters(tmp_path):
    """A context many windows long (16 positions): the best span lies in a later window and comes
    back as the context's own characters; questions' tokens are never an answer."""
    from types import SimpleNamespace

    from qonnx.runners.base import Runner
    from tiny import _tokenizer

    tok = _tokenizer(tmp_path)
    vocab = tok.get_vocab()

    class Fake(Runner):
        def spans(self, batch):
            ids = batch["input_ids"]
            return (np.where(ids == vocab["ferry"], 5.0, 0.0) + np.where(ids == vocab["what"], 9.0, 0.0),
                    np.where(ids == vocab["tourists"], 5.0, 0.0) + np.where(ids == vocab["what"], 9.0, 0.0))

    context = ("the film was a delight from start to finish and it rained all day after years of delays the "
               "old Ferry would continue for tourists, officials said")
    job = SimpleNamespace(batch_size=2, latency_samples=1, warmup=0, config={"max_position_embeddings": 16})
    record = {"question": "what?", "context": context, "answers": ["the ferry would continue for tourists"]}
    arrays = qa.prepare(tok, {"records": [record]}, job)
    got = qa.measure(Fake(), arrays, job)
    assert got["answers"] == ["Ferry would continue for tourists"] and got["windows"] > 3
    assert got["exact_match"] == 1.0 and got["f1"] == 1.0  # "the" and case are normalized away
