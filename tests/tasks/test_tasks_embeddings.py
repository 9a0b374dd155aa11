"""Embeddings: the pooling recipe read from a sentence-transformers folder, pooling and the agreement
figures against independent computations (plain loops, scipy), the eval-data reader."""
import json

import numpy as np
import pytest

from qonnx import pooling
from qonnx.errors import DataError, ModelError
from qonnx.measure.similarity import against_reference, spearman


def hand_pool(hidden, mask, mode):
    """One text at a time, in plain Python over the real tokens, as sentence-transformers defines it."""
    out = []
    for h, m in zip(hidden, mask):
        real = [h[t] for t in range(len(m)) if m[t]]
        if mode == "cls":
            out.append(h[0])
        elif mode == "max":
            out.append(np.max(real, axis=0))
        elif mode == "mean":
            out.append(np.sum(real, axis=0) / len(real))
        elif mode == "mean_sqrt_len":
            out.append(np.sum(real, axis=0) / np.sqrt(len(real)))
        elif mode == "weightedmean":
            w = [t + 1 for t in range(len(m)) if m[t]]
            out.append(sum(wi * r for wi, r in zip(w, real)) / sum(w))
        elif mode == "lasttoken":
            out.append(h[max(t for t in range(len(m)) if m[t])])
    return np.array(out)


@pytest.mark.parametrize("modes", [["mean"], ["cls"], ["max"], ["mean_sqrt_len"], ["weightedmean"], ["lasttoken"],
                                   ["cls", "mean"]])
@pytest.mark.parametrize("normalize", [False, True])
def test_pooling_equals_a_hand_computation(modes, normalize):
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 6, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1]])  # no, right and left padding
    if "cls" in modes:  # the first token is the CLS token: right padding only
        mask[2] = [1, 1, 1, 1, 0, 0]
    got = pooling.pool(hidden, mask, {"modes": modes, "normalize": normalize})
    want = np.concatenate([hand_pool(hidden.astype(np.float64), mask, m) for m in modes], axis=1)
    if normalize:
        want = want / np.linalg.norm(want, axis=1, keepdims=True)
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)
    assert got.dtype == np.float32 and np.allclose(got, want, atol=1e-6)


def write(folder, modules=None, pooling_cfg=None, st_config=None):
    folder.mkdir(exist_ok=True)
    if modules is not None:
        (folder / "modules.json").write_text(json.dumps([{"idx": i, "name": str(i), "path": p, "type": t}
                                                         for i, (p, t) in enumerate(modules)]))
    if pooling_cfg is not None:
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling_cfg))
    if st_config is not None:
        (folder / "sentence_bert_config.json").write_text(json.dumps(st_config))
    return folder


ST = "sentence_transformers.models."


def test_the_recipe_is_read_as_sentence_transformers_defines_it(tmp_path):
    bare = pooling.read(write(tmp_path / "bare"))
    assert bare["modes"] == ["mean"] and not bare["normalize"] and "no modules.json" in bare["source"]
    st = pooling.read(write(tmp_path / "st", [("", ST + "Transformer"), ("1_Pooling", ST + "Pooling"),
                                              ("2_Normalize", ST + "Normalize")],
                            {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False},
                            {"max_seq_length": 256, "do_lower_case": True}))
    assert st["modes"] == ["cls"] and st["normalize"] and st["max_seq_length"] == 256 and st["do_lower_case"]
    assert st["source"] == "modules.json: Transformer -> Pooling -> Normalize (cls pooling)"
    no_norm = pooling.read(write(tmp_path / "nn", [("", ST + "Transformer"), ("1_Pooling", ST + "Pooling")],
                                 {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}))
    assert no_norm["modes"] == ["max", "mean"] and not no_norm["normalize"]  # sentence-transformers' order


def test_a_module_qonnx_does_not_apply_is_refused_by_name(tmp_path):
    folder = write(tmp_path / "dense", [("", ST + "Transformer"), ("1_Pooling", ST + "Pooling"),
                                        ("2_Dense", ST + "Dense")], {"pooling_mode_mean_tokens": True})
    with pytest.raises(ModelError, match="lists Dense; qonnx applies sentence-transformers' Transformer, "
                                         "Pooling, Normalize modules only"):
        pooling.read(folder)
    off = write(tmp_path / "off", [("", ST + "Transformer"), ("1_Pooling", ST + "Pooling")],
                {"pooling_mode_mean_tokens": False})
    with pytest.raises(ModelError, match="turns every pooling mode off"):
        pooling.read(off)


def cosine_by_hand(a, b):
    return sum(x * y for x, y in zip(a, b)) / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)


def test_agreement_figures_equal_an_independent_computation():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(30, 8))
    cand = ref + rng.normal(scale=0.3, size=ref.shape)
    got = against_reference(ref, cand, k=5)
    cos = [cosine_by_hand(a, b) for a, b in zip(ref, cand)]
    assert got["cosine_mean"] == pytest.approx(np.mean(cos))
    assert got["cosine_min"] == pytest.approx(min(cos))
    assert got["cosine_p5"] == pytest.approx(np.percentile(cos, 5))

    def sims(e):
        return {(i, j): cosine_by_hand(e[i], e[j]) for i in range(len(e)) for j in range(len(e)) if i != j}

    sr, sc = sims(ref), sims(cand)

    def top(s, i, k):
        return sorted((j for j in range(len(ref)) if j != i), key=lambda j: -s[(i, j)])[:k]

    overlap = np.mean([len(set(top(sr, i, 5)) & set(top(sc, i, 5))) / 5 for i in range(len(ref))])
    nearest = np.mean([top(sr, i, 1) == top(sc, i, 1) for i in range(len(ref))])
    pairs = [(i, j) for i in range(len(ref)) for j in range(i + 1, len(ref))]
    rho = spearmanr([sr[p] for p in pairs], [sc[p] for p in pairs]).statistic
    assert 0 < overlap < 1 and got["topk_overlap"] == pytest.approx(overlap)
    assert got["agreement"] == pytest.approx(nearest)
    assert got["similarity_spearman"] == pytest.approx(rho)
    same = against_reference(ref, ref.copy())
    assert same["topk_overlap"] == 1 and same["cosine_min"] == pytest.approx(1) and same["agreement"] == 1


def test_spearman_with_ties_equals_scipy():
    from scipy.stats import spearmanr

    a = [1, 2, 2, 3, 5, 5, 5, 0.5]
    b = [2.0, 1.0, 3.5, 3.5, 4.0, 0.0, 7.0, 1.0]
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # a constant list has no ranking


def test_k_is_one_fewer_than_the_texts_when_they_are_few():
    ref = np.eye(4) + 0.1
    assert against_reference(ref, ref, k=10)["topk_overlap"] == 1
    with pytest.raises(ValueError, match="shapes differ"):
        against_reference(ref, ref[:3])


def test_eval_texts_and_labelled_pairs_are_read(tmp_path):
    from qonnx.tasks.embeddings import read_data as load_embeddings

    texts = tmp_path / "texts.csv"
    texts.write_text("text\nb\na\nb\nc\nd\n")
    got = load_embeddings(str(texts))
    assert got.texts == ["b", "a", "c", "d"] and got.selection["duplicates_dropped"] == 1
    assert len(load_embeddings(str(texts), max_samples=2, seed=3).texts) == 2
    lines = tmp_path / "lines.txt"
    lines.write_text("one\n\ntwo\n")
    assert load_embeddings(str(lines)).texts == ["one", "two"]
    pairs = tmp_path / "sts.tsv"
    pairs.write_text("sentence1\tsentence2\tscore\nx\ty\t4.5\ny\tz\t1.0\nx\tz\t2\n")
    got = load_embeddings(str(pairs))
    assert got.texts == ["x", "y", "z"] and got.pairs == [(0, 1), (1, 2), (0, 2)] and got.scores == [4.5, 1.0, 2.0]
    assert got.selection["texts"] == 3 and got.selection["rows"] == 3
    unlabelled = tmp_path / "nolabel.csv"
    unlabelled.write_text("sentence1,sentence2\nx,y\n")
    with pytest.raises(DataError, match="has sentence1 and sentence2 but no score column"):
        load_embeddings(str(unlabelled))


@pytest.mark.parametrize("modes,normalize", [(("mean",), True), (("cls",), False), (("max", "mean"), True)])
def test_embeddings_equal_sentence_transformers_own(modes, normalize, tmp_path):
    """Where sentence-transformers is installed (it is no dependency of qonnx): its encode() of a
    tiny folder against qonnx's recipe applied to the torch runner's last hidden state."""
    st = pytest.importorskip("sentence_transformers")
    from transformers import AutoTokenizer

    from qonnx.runners.torch import TorchRunner
    from qonnx.tasks.classification import encode
    from qonnx.tasks.embeddings import recipe
    from tiny import tiny_sentence_transformer

    folder = tiny_sentence_transformer(tmp_path / "st", modes=modes, normalize=normalize, num_hidden_layers=1)
    texts = ["the film was a delight", "it rained all day after years of delays", "bad"]
    want = st.SentenceTransformer(str(folder), device="cpu").encode(texts, batch_size=1, convert_to_numpy=True)
    spec, tok = recipe(folder), AutoTokenizer.from_pretrained(folder)
    with TorchRunner(folder, "feature-extraction") as r:
        got = np.concatenate([pooling.pool(r.hidden(b), b["attention_mask"], spec)
                              for b in (encode(tok, [t], spec["max_length"]) for t in texts)])
    assert np.allclose(got, want, atol=1e-5)
