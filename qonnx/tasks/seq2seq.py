"""Sequence-to-sequence models (T5, BART, Marian: summarization, translation): greedy generation of each
source text at batch 1 through the row's runtime, time to first token and decode tokens/s as for LMs,
exact match of the generated text with the reference row's (in the parent, from the saved ids), and
ROUGE-L F1 against the data's references where `--target-column` names them.

Source texts are tokenized once, in the parent (cut at MAX_LENGTH tokens); the worker decodes its ids
with the model folder's tokenizer after timing. TTFT: a generate() call of one token (encoder and the
first decoder step); decode tokens/s: the tokens after the first over the rest of a full generate() call.

`qonnx analyze sensitivity` (in one process, through the same runner): each build generates every source
text greedily (exact match and agreement of the ids with FP32's, ROUGE-L against the references), and
scores FP32's generated text teacher-forced: the KL of each position's next-token distribution from FP32's,
averaged over positions and texts (continuous, so it sorts units whose text did not change).
"""
import functools
import json
import re

import numpy as np

from qonnx.data import TextData, check_texts, column, open_table, selection, stratified
from qonnx.errors import DataError
from qonnx.measure.deviation import kl
from qonnx.measure.latency import Latency
from qonnx.runners.seq2seq import folder_of
from qonnx.tasks.classification import MAX_LENGTH, group

BUDGET_METRIC = ("exact_match: the share of texts generated exactly as the reference row generates them; "
                 "--max-accuracy-drop limits 1 - exact_match")
SAMPLES = 5  # generated texts kept in each row
SENSITIVITY = {"columns": ("exact_match", "agreement", "kl", "rouge_l", "rouge_l_drop"), "damage": "kl", "scale": 1e4,
               "unit": "KL vs FP32, x1e-4", "reference": ("rouge_l",),
               "about": "exact match and token agreement of the greedy generated ids with FP32's, KL of the next-token "
                        "distributions from FP32's (teacher-forced on FP32's generated text), ROUGE-L (drop) against "
                        "the references (--target-column)"}


def read_data(spec: str, *, text_column="text", target_column=None, hub_config=None, split="test",
              max_samples=None, seed=0) -> TextData:
    """Source texts and, with target_column, their reference texts (in `targets`)."""
    table, source = open_table(spec, hub_config, split)
    if len(table) == 0:
        raise DataError(f"{source} has no rows.")
    texts = check_texts(column(table, text_column, source, "text").tolist(), source, text_column)
    targets = check_texts(column(table, target_column, source, "target").tolist(), source, target_column) \
        if target_column else []
    picked = stratified([0] * len(texts), max_samples or len(texts), seed)
    return TextData(source=source, texts=[texts[i] for i in picked], targets=[targets[i] for i in picked] if targets
                    else [], selection=selection(texts, [], picked, len(texts), seed, "seeded sample"))


def settings(source) -> dict:
    return {"budget_metric": BUDGET_METRIC}


def prepare(tok, data, job) -> dict:
    arrays = {"targets": np.array(json.dumps(data.get("targets") or []))}
    for u, text in enumerate(data["texts"]):
        enc = tok([text], truncation=True, max_length=MAX_LENGTH, return_tensors="np")
        arrays.update({f"prompt{u:05d}.{k}": enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")})
    return arrays


def words(text) -> list:
    """Lower-cased runs of letters and digits: rouge_score's default tokenization, without stemming."""
    return re.findall(r"[a-z0-9]+", text.lower())


def lcs(a, b) -> int:
    """Length of the longest common subsequence of two token lists."""
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(prediction, reference) -> float:
    """ROUGE-L F1 (LCS-based, beta 1) of two texts, on words()."""
    p, r = words(prediction), words(reference)
    n = lcs(p, r)
    if not n:
        return 0.0
    precision, recall = n / len(p), n / len(r)
    return 2 * precision * recall / (precision + recall)


def measure(runner, arrays, job):
    from transformers import AutoTokenizer

    prompts, n = group(arrays, "prompt"), job.max_new_tokens
    for _ in range(job.warmup):
        runner.generate(prompts[0], n)
    ids, ttft, decode_s, decoded = [], [], 0.0, 0
    for p in prompts:
        out, first, total = runner.timed_generate(p, n)
        ids.append(out[0])
        ttft.append(first)
        if len(out[0]) > 1:
            decode_s, decoded = decode_s + max(total - first, 0.0), decoded + len(out[0]) - 1
    tok = AutoTokenizer.from_pretrained(str(folder_of(job.model_path)))  # after timing: decoding is not timed
    texts = tok.batch_decode(ids, skip_special_tokens=True)
    targets = json.loads(str(arrays["targets"]))
    padded = np.full((len(ids), n), -1, dtype=np.int64)
    for i, row in enumerate(ids):
        padded[i, :len(row)] = row
    return {"ttft_ms": Latency.from_values(ttft).to_dict(),
            "decode_tokens_per_s": decoded / decode_s if decode_s else None,
            "rouge_l": float(np.mean([rouge_l(t, r) for t, r in zip(texts, targets)])) if targets else None,
            "samples": texts[:SAMPLES], "outputs": padded}


def against_reference(ref_ids, ids) -> dict:
    """exact_match: the share of texts whose generated ids equal the reference row's (up to its end of
    sequence); agreement: the share of the reference's generated tokens this row matches position by position."""
    if ref_ids.shape[0] != ids.shape[0]:
        raise ValueError(f"{ids.shape[0]} generations against the reference's {ref_ids.shape[0]}")
    width = max(ref_ids.shape[1], ids.shape[1])
    a, b = (np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1) for x in (ref_ids, ids))
    real = a >= 0
    return {"exact_match": float((a == b).all(1).mean()),
            "agreement": float((a == b)[real].mean()) if real.any() else None}


def sensitivity_feeds(tok, data, job) -> dict:
    """prepare's source ids and references, and the tokenizer's folder (the generated ids decoded for ROUGE-L)."""
    return {**prepare(tok, data, job), "tokenizer": np.array(str(tok.name_or_path))}


@functools.lru_cache(maxsize=2)
def _tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def sensitivity_outputs(runner, arrays, job):
    """(generated ids [texts, max_new_tokens], their texts, teacher-forced logits [texts, max_new_tokens,
    vocab]). The first call (FP32's) fixes the teacher-forced decoder inputs: the decoder start token and
    FP32's generated ids, so every build is scored on the same prefixes."""
    prompts, n = group(arrays, "prompt"), job.max_new_tokens
    ids = np.stack([runner.generate(p, n)[0] for p in prompts])
    teacher = arrays.setdefault("teacher", ids)
    start = runner.model.config.decoder_start_token_id
    logits = np.stack([runner.logits({**p, "decoder_input_ids": np.concatenate([[start], t[:-1]])[None].astype(np.int64)})[0]
                       for p, t in zip(prompts, teacher)])
    texts = _tokenizer(str(arrays["tokenizer"])).batch_decode(ids, skip_special_tokens=True)
    return ids, texts, logits.astype(np.float64)


def sensitivity_metrics(ref, out, arrays) -> dict:
    """Exact match and agreement of the generated ids with FP32's, the teacher-forced KL from FP32's, ROUGE-L
    against the references and its drop from FP32's (None without references)."""
    (ref_ids, ref_texts, ref_logits), (ids, texts, logits) = ref, out
    targets = json.loads(str(arrays["targets"]))
    rouge = float(np.mean([rouge_l(t, r) for t, r in zip(texts, targets)])) if targets else None
    own = float(np.mean([rouge_l(t, r) for t, r in zip(ref_texts, targets)])) if targets else None
    return {**against_reference(ref_ids, ids), "kl": kl(ref_logits, logits), "rouge_l": rouge,
            "rouge_l_drop": own - rouge if targets else None}


def finish(tok, result):
    return result
