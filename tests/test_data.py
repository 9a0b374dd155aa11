import pandas as pd
import pytest

from qonnx import data
from qonnx.errors import DataError

L2I = {"NEGATIVE": 0, "POSITIVE": 1}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_table_formats(tmp_path, suffix):
    df = pd.DataFrame({"review": ["good", "bad"], "y": ["positive", "Negative"]})
    f = tmp_path / f"d{suffix}"
    {".csv": lambda: df.to_csv(f, index=False), ".tsv": lambda: df.to_csv(f, sep="\t", index=False),
     ".jsonl": lambda: df.to_json(f, orient="records", lines=True),
     ".json": lambda: df.to_json(f, orient="records"), ".parquet": lambda: df.to_parquet(f)}[suffix]()
    got = data.load(str(f), lm=False, label2id=L2I, text_column="review", label_column="y")
    assert got.texts == ["good", "bad"] and got.labels == [1, 0]


def test_integer_labels_and_max_samples(tmp_path):
    f = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a", "b", "c"], "label": [1, 0, 1]}).to_csv(f, index=False)
    got = data.load(str(f), lm=False, label2id=L2I, max_samples=2)
    assert sorted(got.labels) == [0, 1] and got.selection["rows"] == 2 and got.selection["of"] == 3


def test_max_samples_on_a_file_sorted_by_label_scores_every_class(tmp_path):
    f = tmp_path / "d.csv"
    pd.DataFrame({"text": [f"t{i}" for i in range(100)],
                  "label": ["negative"] * 70 + ["positive"] * 30}).to_csv(f, index=False)
    a = data.load(str(f), lm=False, label2id=L2I, max_samples=10, seed=0)
    assert a.labels.count(1) == 3 and a.labels.count(0) == 7
    b = data.load(str(f), lm=False, label2id=L2I, max_samples=10, seed=1)
    assert a.selection["rows_sha256"] != b.selection["rows_sha256"]
    assert data.load(str(f), lm=False, label2id=L2I, max_samples=10, seed=0).texts == a.texts


def test_hub_class_label_names_are_mapped_by_name(monkeypatch):
    import datasets

    # the dataset's own order is the reverse of the model's
    ds = datasets.Dataset.from_dict({"sentence": ["good", "bad"], "label": [0, 1]},
                                    features=datasets.Features({"sentence": datasets.Value("string"),
                                                                "label": datasets.ClassLabel(names=["positive", "negative"])}))
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: ds)
    got = data.load("someone/sst", lm=False, label2id=L2I, text_column="sentence")
    assert got.labels == [1, 0]


def test_mixed_names_and_numbers_are_refused(tmp_path):
    f = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["positive", "0"]}).to_csv(f, index=False)
    with pytest.raises(DataError, match="mixes names and numbers"):
        data.load(str(f), lm=False, label2id=L2I)


def test_unknown_label_names_it_and_the_known_labels(tmp_path):
    f = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a"], "label": ["neutral"]}).to_csv(f, index=False)
    with pytest.raises(DataError) as e:
        data.load(str(f), lm=False, label2id=L2I)
    assert "Unknown label 'neutral'" in str(e.value) and "NEGATIVE (0), POSITIVE (1)" in str(e.value)


def test_out_of_range_integer_label(tmp_path):
    f = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a"], "label": [7]}).to_csv(f, index=False)
    with pytest.raises(DataError, match="Unknown label '7'"):
        data.load(str(f), lm=False, label2id=L2I)


def test_missing_file_and_unsupported_type(tmp_path):
    with pytest.raises(DataError, match="No such dataset file"):
        data.load(str(tmp_path / "nope.csv"), lm=False)
    f = tmp_path / "d.xlsx"
    f.write_text("x")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        data.load(str(f), lm=False)


def test_text_file_is_a_corpus_for_lms_only(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("\ufeffFirst line.\n\nSecond line.\n")
    assert data.load(str(f), lm=True).corpus == "First line.\nSecond line."
    with pytest.raises(DataError, match="plain text; a classifier needs a table"):
        data.load(str(f), lm=False)


def test_stratified_keeps_the_label_shares_and_the_seed():
    from qonnx.data import stratified

    labels = [0] * 70 + [1] * 20 + [2] * 10
    picked = stratified(labels, 30, seed=1)
    assert len(picked) == 30 == len(set(picked)) and picked == sorted(picked)
    shares = [sum(labels[i] == k for i in picked) for k in (0, 1, 2)]
    assert shares == [21, 6, 3]
    assert stratified(labels, 30, seed=1) == picked != stratified(labels, 30, seed=2)
    assert stratified(labels, 500, seed=1) == list(range(100))  # asking for more takes every row


@pytest.mark.parametrize("suffix,content,where", [
    (".jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n\n{"text": "c", label: 1}\n', "line 4 is"),
    (".json", '[{"text": "a", "label": 0},\n {"text": "b", "label": 1},\n {"text": "c" "label": 1}]\n',
     "line 3, column 15 is"),
])
def test_broken_json_is_reported_by_line(tmp_path, suffix, content, where):
    """pandas says 'at position 83' (characters into the file); the error names the line."""
    f = tmp_path / f"d{suffix}"
    f.write_text(content)
    with pytest.raises(DataError, match=f"Cannot read .* as {suffix[1:]}: {where} not valid JSON") as e:
        data.load(str(f), lm=False, label2id=L2I)
    assert "position" not in str(e.value)


def test_an_lm_corpus_of_random_bytes_is_refused(tmp_path):
    """Random bytes decode to U+FFFD and control characters; their perplexity measures nothing. A real
    text with accents, tabs and the odd stray byte still loads."""
    import random

    noise = tmp_path / "noise.txt"
    noise.write_bytes(random.Random(0).randbytes(20000))
    with pytest.raises(DataError, match=r"noise.txt is not text: \d+% of its \d+ characters are bytes that are not "
                                        "UTF-8 or control characters"):
        data.load(str(noise), lm=True)
    table = tmp_path / "noise.jsonl"
    pd.DataFrame({"text": ["ok \x00\x01\x02\x03\x04\x05"] * 3}).to_json(table, orient="records", lines=True)
    with pytest.raises(DataError, match="is not text"):
        data.load(str(table), lm=True)
    text = tmp_path / "real.txt"
    text.write_bytes("Café crème, naïve façade.\tSecond\x0cpage \xff here.\n".encode() * 50 + b"stray \xff byte\n")
    assert data.load(str(text), lm=True).corpus.startswith("Café crème")
