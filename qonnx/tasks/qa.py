"""Extractive question answering: SQuAD exact match and F1 (the official normalization,
qonnx.measure.squad), span agreement with the reference.

Each question is tokenized once in the parent with its context as the transformers
question-answering pipeline does: the context cut into windows of max_length tokens overlapping by
doc_stride (question first, only the context truncated); all windows of one question go through the
model in one call (batch = its windows). The answer is the best span over every window (start +
end logit, at most 15 tokens, inside the context), mapped back to the context's characters.
Throughput from a batched pass; latency per question (all its windows) over the questions.
"""
import hashlib
import json
import random
from pathlib import Path

import numpy as np

from qonnx.data import TextData, check_texts, column, open_table, selection, stratified
from qonnx.errors import DataError, ModelError
from qonnx.measure.deviation import kl, span_agreement
from qonnx.measure.latency import Latency, batched_seconds
from qonnx.measure.squad import MAX_ANSWER_LEN, best_span, score
from qonnx.tasks.classification import group

BUDGET_METRIC = "f1: SQuAD F1; --max-accuracy-drop limits the reference's f1 minus the row's"
SENSITIVITY = {"columns": ("exact_match", "f1", "f1_drop", "agreement", "kl"), "damage": "kl", "scale": 1e4,
               "unit": "KL vs FP32, x1e-4", "reference": ("exact_match", "f1"),
               "about": "answer-span agreement with FP32, KL of the start/end token probabilities, SQuAD exact "
                        "match and F1 (drop) against the answers"}
MAX_LENGTH, DOC_STRIDE = 384, 128  # the pipeline's max_seq_len and doc_stride
FEED = ("input_ids", "attention_mask", "token_type_ids")


def squad_rows(path: Path):
    """The questions of an official SQuAD json file (data/paragraphs/qas), flat, or None where the
    file is not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        return None
    return [{"question": q["question"], "context": p["context"],
             "answers": {"text": [a["text"] for a in q.get("answers", [])],
                         "answer_start": [a["answer_start"] for a in q.get("answers", [])]}}
            for article in doc["data"] for p in article.get("paragraphs", []) for q in p.get("qas", [])]


def answers_of(value, source, row, name) -> list:
    """The answer texts of one cell: {"text": [...], "answer_start": [...]} (a dict, or its JSON in a
    csv), or a list of {"text", "answer_start"}."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise DataError(f"{source}: row {row + 1} of '{name}' is not JSON ({{\"text\": [...], "
                            "\"answer_start\": [...]}).") from None
    if isinstance(value, dict) and "text" in value:
        texts = value["text"]
        texts = [texts] if isinstance(texts, str) else list(texts)
    elif isinstance(value, (list, tuple)) and all(isinstance(a, dict) and "text" in a for a in value):
        texts = [a["text"] for a in value]
    else:
        raise DataError(f"{source}: row {row + 1} of '{name}' is not a SQuAD answers field "
                        "({\"text\": [...], \"answer_start\": [...]}).")
    texts = [str(t) for t in texts if str(t).strip()]
    if not texts:
        raise DataError(f"{source}: row {row + 1} has no answer (a SQuAD v2 unanswerable question); qonnx scores "
                        "extractive answers only: remove unanswerable questions from the eval set.")
    return texts


def _table(spec, hub_config, split):
    path = Path(spec).expanduser()
    rows = squad_rows(path) if path.suffix.lower() == ".json" and path.is_file() else None
    if rows is not None:
        import pandas as pd

        return pd.DataFrame(rows, columns=["question", "context", "answers"]), str(path)
    return open_table(spec, hub_config, split)


def read_data(spec, *, question_column="question", context_column="context", answers_column="answers",
              hub_config=None, split="test", max_samples=None, seed=0) -> TextData:
    """Questions, their contexts and reference answers (SQuAD json, or a table/hub split with those
    columns), a seeded sample of max_samples questions."""
    table, source = _table(spec, hub_config, split)
    if len(table) == 0:
        raise DataError(f"{source} has no rows.")
    questions = check_texts(column(table, question_column, source, "question").tolist(), source, question_column)
    contexts = check_texts(column(table, context_column, source, "context").tolist(), source, context_column)
    answers = [answers_of(v, source, i, answers_column)
               for i, v in enumerate(column(table, answers_column, source, "answers").tolist())]
    picked = stratified([0] * len(questions), max_samples or len(questions), seed)
    joined = [f"{q}\t{c}" for q, c in zip(questions, contexts)]
    chosen = selection(joined, ["\t".join(a) for a in answers], picked, len(questions), seed, "seeded sample")
    return TextData(source=source, texts=[questions[i] for i in picked], selection=chosen,
                    records=[{"question": questions[i], "context": contexts[i], "answers": answers[i]}
                             for i in picked])


def calibration(spec, n, seed, cfg) -> tuple:
    """(samples, provenance) for int8-static: n (question, context) pairs drawn with `seed` from
    cfg.question_column and cfg.context_column."""
    q, c = cfg.question_column, cfg.context_column
    table, source = _table(spec, None, "train")
    pairs = list(zip(check_texts(column(table, q, source, "question").tolist(), source, q),
                     check_texts(column(table, c, source, "context").tolist(), source, c)))
    picked = random.Random(seed).sample(pairs, min(n, len(pairs)))
    return picked, {"source": source, "available": len(pairs), "count": len(picked), "seed": seed,
                    "columns": [q, c], "max_length": 128,
                    "sample_sha256": [hashlib.sha256(json.dumps(p).encode()).hexdigest()[:16] for p in picked]}


def settings(source) -> dict:
    length = min(MAX_LENGTH, source.config.get("max_position_embeddings") or MAX_LENGTH)
    return {"budget_metric": BUDGET_METRIC, "qa_windows": {"max_length": length, "doc_stride": stride(length),
                                                           "max_answer_len": MAX_ANSWER_LEN}}


def stride(length):
    return min(DOC_STRIDE, length // 2)


def windows(tok, questions, contexts, length):
    """(encoding, feed): every window of each (question, context), question first."""
    if not getattr(tok, "is_fast", False) or tok.padding_side != "right":
        raise ModelError("question answering needs a fast tokenizer padding on the right (offsets map tokens "
                         "back to the context; the question comes first); save the model's tokenizer.json.")
    try:
        enc = tok(questions, contexts, truncation="only_second", max_length=length, stride=stride(length),
                  return_overflowing_tokens=True, return_offsets_mapping=True, padding="longest",
                  return_tensors="np")
    except Exception as e:  # a question longer than the window leaves no room for the context
        raise DataError(f"cannot cut the contexts into windows of {length} tokens: {str(e).splitlines()[0]}") from None
    return enc, {k: enc[k].astype(np.int64) for k in FEED if k in enc}


def prepare(tok, data, job) -> dict:
    records, bs, n = data["records"], job.batch_size, job.latency_samples
    length = min(MAX_LENGTH, job.config.get("max_position_embeddings") or MAX_LENGTH)
    arrays = {"records": np.array(json.dumps([{"context": r["context"], "answers": r["answers"]} for r in records]))}
    qs, cs = [r["question"] for r in records], [r["context"] for r in records]
    for b, i in enumerate(range(0, len(qs), bs)):
        arrays.update({f"batch{b:05d}.{k}": v for k, v in windows(tok, qs[i:i + bs], cs[i:i + bs], length)[1].items()})
    for u in range(len(qs)):
        enc, feed = windows(tok, [qs[u]], [cs[u]], length)
        arrays.update({f"single{u:05d}.{k}": v for k, v in feed.items()})
        arrays[f"offsets{u:05d}"] = enc["offset_mapping"].astype(np.int64)
        arrays[f"context{u:05d}"] = np.asarray([[s == 1 for s in enc.sequence_ids(w)] for w in range(len(feed["input_ids"]))])
    arrays["request_order"] = np.arange(n, dtype=np.int64) % min(n, len(qs))
    return arrays


def answer(runner, arrays) -> tuple:
    """(character spans [questions, 2], answer texts, each question's (start, end) logits over its
    windows): every question alone, all its windows in one call."""
    records = json.loads(str(arrays["records"]))
    spans, texts, logits = [], [], []
    for u, feed in enumerate(group(arrays, "single")):
        start, end = runner.spans(feed)
        w, i, j, _ = best_span(start, end, arrays[f"context{u:05d}"])
        offsets = arrays[f"offsets{u:05d}"][w]
        a, b = int(offsets[i][0]), int(offsets[j][1])
        spans.append((a, b))
        texts.append(records[u]["context"][a:b])
        logits.append((start, end))
    return np.asarray(spans, dtype=np.int64), texts, logits


def measure(runner, arrays, job):
    batches, unique = group(arrays, "batch"), group(arrays, "single")
    singles = [unique[i] for i in arrays["request_order"]]
    records = json.loads(str(arrays["records"]))
    spans, texts, _ = answer(runner, arrays)
    elapsed = batched_seconds(runner, runner.spans, batches)
    seconds = runner.latency(runner.spans, singles, job.warmup)
    return {**score(texts, [r["answers"] for r in records]), "windows": sum(len(u["input_ids"]) for u in unique),
            "throughput_per_s": len(unique) / elapsed, "latency_ms": Latency.from_values(seconds).to_dict(),
            "answers": texts[:5], "outputs": spans}  # character spans: agreement


def sensitivity_outputs(runner, arrays, job):
    return answer(runner, arrays)


def sensitivity_metrics(ref, out, arrays) -> dict:
    """Span agreement with FP32's answers, KL of the start and end token distributions (over each
    window's context tokens) from FP32's, exact match and F1 against the answers, and their drops."""
    answers = [r["answers"] for r in json.loads(str(arrays["records"]))]
    (ref_spans, ref_texts, ref_logits), (spans, texts, logits) = ref, out
    mine, theirs = score(texts, answers), score(ref_texts, answers)
    divergence = []
    for u, (a, b) in enumerate(zip(ref_logits, logits)):
        context = np.asarray(arrays[f"context{u:05d}"], dtype=bool)
        for x, y in zip(a, b):  # start, then end: [windows, tokens] each
            divergence += [kl(x[w][context[w]], y[w][context[w]]) for w in range(len(x)) if context[w].any()]
    return {"exact_match": mine["exact_match"], "f1": mine["f1"], "f1_drop": theirs["f1"] - mine["f1"],
            "agreement": span_agreement(ref_spans, spans)["agreement"],
            "kl": float(np.mean(divergence)) if divergence else 0.0}


def finish(tok, result):
    return result
