"""The seq2seq task's pieces: ROUGE-L, exact match against the reference's ids, the reader, task inference."""
import numpy as np
import pytest

from qonnx.errors import DataError, ModelError
from qonnx.tasks import seq2seq


def lcs_by_brute_force(a, b):
    from itertools import combinations

    for n in range(min(len(a), len(b)), 0, -1):
        subs = {tuple(a[i] for i in c) for c in combinations(range(len(a)), n)}
        if any(tuple(b[i] for i in c) in subs for c in combinations(range(len(b)), n)):
            return n
    return 0


def test_lcs_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(40):
        a, b = (list(rng.integers(0, 4, rng.integers(0, 8))) for _ in range(2))
        assert seq2seq.lcs(a, b) == lcs_by_brute_force(a, b)


def test_rouge_l_f1_by_hand():
    # "the cat sat" vs "the cat was sat": LCS 3, precision 3/3, recall 3/4, F1 = 6/7
    assert seq2seq.rouge_l("The cat sat.", "the cat was sat") == pytest.approx(6 / 7)
    assert seq2seq.rouge_l("a b", "a b") == 1 and seq2seq.rouge_l("x", "y") == 0 and seq2seq.rouge_l("", "y") == 0
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        return  # rouge_score is not installed here; the hand figures above still hold
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    for p, r in [("the film was fine", "a fine film"), ("it rained all day long", "all day it rained")]:
        assert seq2seq.rouge_l(p, r) == pytest.approx(scorer.score(r, p)["rougeL"].fmeasure)


def test_exact_match_and_token_agreement_against_the_reference():
    ref = np.array([[5, 6, 3, -1], [7, 8, 9, 3]])
    row = np.array([[5, 6, 3, -1], [7, 1, 9, 3]])
    found = seq2seq.against_reference(ref, row)
    assert found["exact_match"] == 0.5 and found["agreement"] == pytest.approx(6 / 7)
    with pytest.raises(ValueError):
        seq2seq.against_reference(ref, row[:1])


def test_reader_pairs_sources_with_references(tmp_path):
    import pandas as pd

    pd.DataFrame({"src": ["a b", "c d", "e f"], "ref": ["x", "y", "z"]}).to_csv(tmp_path / "t.csv", index=False)
    found = seq2seq.read_data(str(tmp_path / "t.csv"), text_column="src", target_column="ref")
    assert list(zip(found.texts, found.targets)) == [("a b", "x"), ("c d", "y"), ("e f", "z")]
    assert seq2seq.read_data(str(tmp_path / "t.csv"), text_column="src").targets == []
    with pytest.raises(DataError, match="no target column 'summary'"):
        seq2seq.read_data(str(tmp_path / "t.csv"), text_column="src", target_column="summary")


def test_a_t5_folder_is_seq2seq_and_the_task_must_fit(tmp_path):
    from tiny_seq2seq import tiny_seq2seq

    from qonnx.models import resolve

    model = tiny_seq2seq("t5", tmp_path / "t5")
    assert resolve(str(model)).task == "text2text-generation-with-past"
    assert resolve(str(model), "text2text-generation").task == "text2text-generation-with-past"
    with pytest.raises(ModelError, match="T5ForConditionalGeneration is a sequence-to-sequence model"):
        resolve(str(model), "text-classification")
