"""Token classification (NER, POS): one label per word, read at the word's first sub-token (as
transformers' token-classification examples align labels), entity-level precision, recall and F1 as
seqeval computes them (qonnx.measure.entities), word-level agreement with the reference.

Each sentence is tokenized once in the parent from its words (is_split_into_words) and measured
alone (batch 1); throughput from a batched pass, batch-1 latency over the sentences. A word past
the model's token limit has no sub-token: it is predicted 'O' and counted (words_cut in the row).
"""
import hashlib
import json
import random

import numpy as np

from qonnx.data import TextData, column, map_labels, open_table, selection, stratified
from qonnx.errors import DataError, ModelError
from qonnx.measure.deviation import kl
from qonnx.measure.entities import scores
from qonnx.measure.latency import Latency, batched_seconds
from qonnx.tasks.classification import group

BUDGET_METRIC = "f1: entity-level F1 (seqeval); --max-accuracy-drop limits the reference's f1 minus the row's"
SENSITIVITY = {"columns": ("f1", "f1_drop", "agreement", "kl"), "damage": "kl", "scale": 1e4,
               "unit": "KL vs FP32, x1e-4", "reference": ("f1",),
               "about": "word agreement with FP32's tags, KL divergence of each word's label probabilities, entity "
                        "F1 (drop) against the data's tags"}
MAX_LENGTH = 512  # tokens a sentence is cut at (or the model's positions, where fewer)
OUTSIDE = "O"


def cells(values, source, name) -> list:
    """Each cell as a list of strings: a list (jsonl, parquet, a hub dataset), a JSON list in a
    string (csv), else a string split at whitespace."""
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            try:
                v = json.loads(v) if v.strip().startswith("[") else v.split()
            except ValueError:
                raise DataError(f"{source}: row {i + 1} of '{name}' is not a JSON list.") from None
        if not hasattr(v, "__len__") or isinstance(v, (dict, bytes)) or len(v) == 0:
            raise DataError(f"{source}: row {i + 1} of '{name}' is empty or not a list; each row needs a list.")
        out.append([x if isinstance(x, str) else x.item() if hasattr(x, "item") else x for x in v])
    return out


def read_data(spec, *, label2id, tokens_column="tokens", tags_column="ner_tags", hub_config=None, split="test",
              max_samples=None, seed=0) -> TextData:
    """Sentences (word lists) and their tags (names, or ids of the model's id2label), a seeded sample
    of max_samples sentences."""
    if not label2id:
        raise ModelError("the token classifier has no label2id in its config; cannot map tags.")
    table, source = open_table(spec, hub_config, split, label_column=tags_column)
    if len(table) == 0:
        raise DataError(f"{source} has no rows.")
    words = cells(column(table, tokens_column, source, "tokens").tolist(), source, tokens_column)
    tags = cells(column(table, tags_column, source, "tags").tolist(), source, tags_column)
    bad = [i for i, (w, t) in enumerate(zip(words, tags)) if len(w) != len(t)]
    if bad:
        raise DataError(f"{source}: {len(bad)} row(s) have a different number of tokens and tags (first at row "
                        f"{bad[0] + 1}: {len(words[bad[0]])} tokens, {len(tags[bad[0]])} tags).")
    flat = map_labels([t for row in tags for t in row], label2id, f"{source} ({tags_column})")
    ids, at = [], 0
    for row in tags:
        ids.append(flat[at:at + len(row)])
        at += len(row)
    texts = [" ".join(map(str, w)) for w in words]
    picked = stratified([0] * len(texts), max_samples or len(texts), seed)
    chosen = selection(texts, [" ".join(map(str, t)) for t in ids], picked, len(texts), seed, "seeded sample")
    return TextData(source=source, texts=[texts[i] for i in picked], selection=chosen,
                    records=[{"words": [str(x) for x in words[i]], "tags": ids[i]} for i in picked])


def calibration(spec, n, seed, cfg) -> tuple:
    """(samples, provenance) for int8-static: n sentences (word lists) drawn with `seed` from the
    cfg.tokens_column of a file or hub split, tokenized as the eval sentences are."""
    name = cfg.tokens_column
    table, source = open_table(spec)
    sentences = [[str(x) for x in w] for w in cells(column(table, name, source, "tokens").tolist(), source, name)]
    picked = random.Random(seed).sample(sentences, min(n, len(sentences)))
    return picked, {"source": source, "available": len(sentences), "count": len(picked), "seed": seed,
                    "column": name, "max_length": 128,
                    "sample_sha256": [hashlib.sha256(json.dumps(s).encode()).hexdigest()[:16] for s in picked]}


def settings(source) -> dict:
    return {"budget_metric": BUDGET_METRIC}


def _encode(tok, sentences, length):
    if not getattr(tok, "is_fast", False):
        raise ModelError("token classification needs a fast tokenizer (word_ids maps sub-tokens to words); "
                         "save the model's tokenizer.json (a transformers fast tokenizer).")
    enc = tok(sentences, is_split_into_words=True, padding="longest", truncation=True, max_length=length,
              return_tensors="np")
    return enc, {k: v.astype(np.int64) for k, v in enc.items()}


def prepare(tok, data, job) -> dict:
    records, bs, n = data["records"], job.batch_size, job.latency_samples
    length = min(MAX_LENGTH, job.config.get("max_position_embeddings") or MAX_LENGTH)
    id2label = {int(k): v for k, v in (job.config.get("id2label") or {}).items()}
    arrays = {"id2label": np.array(json.dumps(id2label)),
              "tags": np.asarray([t for r in records for t in r["tags"]], dtype=np.int64)}
    sentences = [r["words"] for r in records]
    for b, i in enumerate(range(0, len(sentences), bs)):
        arrays.update({f"batch{b:05d}.{k}": v for k, v in _encode(tok, sentences[i:i + bs], length)[1].items()})
    for u, words in enumerate(sentences):
        enc, feed = _encode(tok, [words], length)
        arrays.update({f"single{u:05d}.{k}": v for k, v in feed.items()})
        first = {}
        for pos, w in enumerate(enc.word_ids(0)):
            if w is not None and w not in first:
                first[w] = pos
        arrays[f"first{u:05d}"] = np.asarray([first.get(w, -1) for w in range(len(words))], dtype=np.int64)
    arrays["request_order"] = np.arange(n, dtype=np.int64) % min(n, len(sentences))
    return arrays


def word_logits(runner, arrays):
    """(logits, kept): each word's logits at its first sub-token, every sentence alone (batch 1), for
    the words within the token limit; kept says, word by word, which words those are."""
    rows, kept = [], []
    for u, feed in enumerate(group(arrays, "single")):
        first = arrays[f"first{u:05d}"]
        rows.append(runner.logits(feed)[0][first[first >= 0]])  # [tokens, labels] -> [kept words, labels]
        kept.append(first >= 0)
    return np.concatenate(rows), np.concatenate(kept)


def tags_of(logits, kept, arrays) -> tuple:
    """(true, predicted) tag names, one list per sentence; a cut word is predicted 'O'."""
    id2label = {int(k): v for k, v in json.loads(str(arrays["id2label"])).items()}
    ids = iter(logits.argmax(-1).tolist())
    pred = [id2label[next(ids)] if k else OUTSIDE for k in kept]
    true = [id2label[int(t)] for t in arrays["tags"]]
    out, at = ([], []), 0
    for u in range(len(group(arrays, "single"))):
        n = len(arrays[f"first{u:05d}"])
        out[0].append(true[at:at + n])
        out[1].append(pred[at:at + n])
        at += n
    return out


def measure(runner, arrays, job):
    batches, singles_all = group(arrays, "batch"), group(arrays, "single")
    singles = [singles_all[i] for i in arrays["request_order"]]
    logits, kept = word_logits(runner, arrays)
    true, pred = tags_of(logits, kept, arrays)
    elapsed = batched_seconds(runner, runner.logits, batches)
    seconds = runner.latency(runner.logits, singles, job.warmup)
    found = scores(true, pred)
    return {"precision": found["precision"], "recall": found["recall"], "f1": found["f1"],
            "entities": found["entities"], "words_scored": len(kept), "words_cut": int((~kept).sum()),
            "throughput_per_s": len(singles_all) / elapsed, "latency_ms": Latency.from_values(seconds).to_dict(),
            "outputs": logits}  # each word's logits: agreement is word-level


def sensitivity_outputs(runner, arrays, job):
    logits, kept = word_logits(runner, arrays)
    return logits.astype(np.float64), kept


def sensitivity_metrics(ref, out, arrays) -> dict:
    """Word-level tag agreement with FP32 and KL of each word's label distribution from FP32's; entity
    F1 against the data's tags, and its drop from FP32's."""
    (ref_logits, kept), (logits, _) = ref, out
    true, ref_pred = tags_of(ref_logits, kept, arrays)
    f1, ref_f1 = scores(true, tags_of(logits, kept, arrays)[1])["f1"], scores(true, ref_pred)["f1"]
    return {"f1": f1, "f1_drop": ref_f1 - f1, "agreement": float((logits.argmax(-1) == ref_logits.argmax(-1)).mean()),
            "kl": kl(ref_logits, logits)}


def finish(tok, result):
    return result
