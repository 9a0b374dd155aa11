"""demo:sentiment's splits (validation held out of fine-tuning, no text in two splits, test as it
was) and the version check that rebuilds an older cache."""
import random

from qonnx import demo, manifest
from qonnx.demo import sentiment


def fake_ground_truth(n=6000, repeats=300):
    """(id, rating, sentence) rows as VADER holds them: a few 0 ratings, some sentences repeated
    under another id."""
    rng = random.Random(1)
    rows = [(str(i), rng.choice([-2.0, -0.5, 0.0, 0.5, 2.0]), f"sentence number {i}") for i in range(n)]
    rows += [(str(n + i), 1.0, f"sentence number {rng.randrange(n)}") for i in range(repeats)]
    return rows


def test_splits_hold_out_validation_and_share_no_text(monkeypatch):
    rows = fake_ground_truth()
    monkeypatch.setattr(sentiment, "read_ground_truth", lambda sdist, name: rows)
    parts = sentiment.splits("vader.tar.gz")
    assert set(parts) == {"test", "calibration", "validation", "train"}
    assert [len(parts[k]) for k in ("test", "calibration", "validation")] == [2000, 512, 1000]
    texts = {k: [t for t, _ in v] for k, v in parts.items()}
    for a in texts:
        assert len(set(texts[a])) == len(texts[a]), f"{a} repeats a text"
        for b in texts:
            assert a == b or not set(texts[a]) & set(texts[b]), f"{a} and {b} share text"
    kept = [(s, sentiment.LABELS[int(r > 0)]) for _, r, s in rows if r != 0]
    assert sum(map(len, parts.values())) == len({t for t, _ in kept})  # every distinct text, once
    # test: the first 2,000 distinct texts of the seeded shuffle, as before the validation split (on
    # VADER's movie snippets no text repeats among them: test_real_sentiment checks the real file)
    random.Random(sentiment.SEED).shuffle(kept)
    first, seen = [], set()
    for text, label in kept:
        if text not in seen:
            seen.add(text)
            first.append((text, label))
    assert parts["test"] == first[:2000]


def built(folder, version):
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "test.csv").write_text("text,label\n")
    manifest.write(folder, kind="demo", demo="sentiment", provenance={"demo": "sentiment", **version})
    return folder


def test_a_cache_of_another_version_is_rebuilt(tmp_path):
    assert demo.check(built(tmp_path / "old", {}), "sentiment") == \
        f"a version 1 build; this qonnx builds version {sentiment.VERSION}"
    assert demo.check(built(tmp_path / "now", {"version": sentiment.VERSION}), "sentiment") == ""
