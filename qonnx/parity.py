"""Output parity between a reference runner and a candidate, on real text at several shapes.

Used after export (PyTorch vs ONNX) and after quantize (ONNX FP32 vs the variant). Classifiers are
checked at batch 1 and 4, padded to several lengths; causal LMs at several lengths, plus a step
that feeds one token through the key/value cache; embedding models like classifiers, on the last
hidden state at the real tokens (padding positions are never pooled) and the cosine of its mean;
token classifiers like classifiers, on every token's logits; extractive QA on the start and end logits.
"""
import logging

import numpy as np

from qonnx.heads import QA, TASKS
from qonnx.models import is_embeddings_task, is_images_task, is_lm_task, is_seq2seq_task
from qonnx.pooling import DEFAULT as MEAN_POOLING
from qonnx.pooling import pool
from qonnx.runners import seq2seq as s2s
from qonnx.runners.ort import OrtRunner
from qonnx.runners.torch import TorchRunner
from qonnx.tasks import images as image_task

log = logging.getLogger(__name__)

LENGTHS = (8, 32, 128)
BATCHES = (1, 4)

PROBE_TEXTS = [
    "The film was a delight from start to finish.",
    "I would not recommend this restaurant to anyone; the service was slow and the food was cold.",
    "Quarterly revenue rose by four percent, slightly below what analysts had expected, while "
    "operating costs held steady across every region the company reports on.",
    "It rained all day.",
    "After years of delays, the new bridge finally opened to traffic on Monday morning, and "
    "commuters on both sides of the river said the shorter journey had been worth the wait. "
    "City officials promised that the old ferry service would continue for tourists.",
    "Not bad at all, honestly.",
    "The committee will publish its findings next spring.",
    "What a boring, predictable and overlong mess of a movie.",
]


def probe_texts(source=None, n=16):
    """Real text for parity checks: the demo's test split when there is one, else built-in text."""
    if source is not None and source.demo:
        data = source.demo_data
        if (data / "test.csv").is_file():
            import pandas as pd

            return pd.read_csv(data / "test.csv")["text"].astype(str).tolist()[:n]
        if (data / "test.txt").is_file():
            return [ln for ln in (data / "test.txt").read_text().splitlines() if ln.strip()][:n]
    return PROBE_TEXTS


def _encode(tok, texts, length):
    enc = tok(texts, padding="max_length", truncation=True, max_length=length, return_tensors="np")
    return {k: v.astype(np.int64) for k, v in enc.items()}


def _cases(tok, texts, compare):
    """summarize() of compare(inputs) at every batch size and padded length."""
    return summarize([{"batch": batch, "length": length, **compare(_encode(tok, texts[:batch], length))}
                      for batch in BATCHES for length in LENGTHS])


def classifier(ref, cand, tok, texts):
    def compare(enc):
        a, b = ref.logits(enc), cand.logits(enc)
        return {"max_abs_diff": float(np.abs(a - b).max()),
                "top1_agreement": float((a.argmax(-1) == b.argmax(-1)).mean())}
    return _cases(tok, texts, compare)


def embeddings(ref, cand, tok, texts):
    def compare(enc):
        a, b = ref.hidden(enc), cand.hidden(enc)
        real = enc["attention_mask"].astype(bool)
        pa, pb = (pool(x, enc["attention_mask"], MEAN_POOLING).astype(np.float64) for x in (a, b))
        cos = (pa * pb).sum(1) / np.clip(np.linalg.norm(pa, axis=1) * np.linalg.norm(pb, axis=1), 1e-12, None)
        return {"max_abs_diff": float(np.abs(a - b)[real].max()), "cosine": float(cos.min())}
    return _cases(tok, texts, compare)


def spans(ref, cand, tok, texts):
    """Extractive QA: start and end logits; agreement = the same argmax start and end."""
    def compare(enc):
        (a0, a1), (b0, b1) = ref.spans(enc), cand.spans(enc)
        same = (a0.argmax(-1) == b0.argmax(-1)) & (a1.argmax(-1) == b1.argmax(-1))
        return {"max_abs_diff": float(max(np.abs(a0 - b0).max(), np.abs(a1 - b1).max())),
                "top1_agreement": float(same.mean())}
    return _cases(tok, texts, compare)
def images(ref, cand, proc, _texts=None):
    """Image classifiers: seeded synthetic images through the model's processor, at batch 1 and 4."""
    px = image_task.pixels(proc, image_task.probe_images(max(BATCHES)))

    def compare(batch):
        a, b = ref.logits({"pixel_values": batch}), cand.logits({"pixel_values": batch})
        return {"max_abs_diff": float(np.abs(a - b).max()),
                "top1_agreement": float((a.argmax(-1) == b.argmax(-1)).mean())}
    return summarize([{"batch": n, "length": px.shape[-1], **compare(px[:n])} for n in BATCHES])


def seq2seq(ref, cand, tok, texts):
    """Encoder-decoder models: teacher-forced logits at batch 1 and 4, several source lengths and two decoder
    lengths, then greedy generation of 8 tokens (the decoder's key/value cache at work) on each text."""
    start = ref.model.generation_config.decoder_start_token_id or 0
    cases = []
    for batch in BATCHES:
        for length in LENGTHS:
            enc = {k: v for k, v in _encode(tok, texts[:batch], length).items() if k in ("input_ids", "attention_mask")}
            for steps in (1, 8):  # the decoder fed start + the first source tokens
                dec = np.concatenate([np.full((batch, 1), start), enc["input_ids"][:, :steps - 1]], axis=1)
                a, b = ref.logits({**enc, "decoder_input_ids": dec}), cand.logits({**enc, "decoder_input_ids": dec})
                cases.append({"batch": batch, "length": length, "decoder_length": steps,
                              "max_abs_diff": float(np.abs(a - b).max()),
                              "top1_agreement": float((a.argmax(-1) == b.argmax(-1)).mean())})
    same = [bool(np.array_equal(ref.generate(e, 8), cand.generate(e, 8)))
            for e in ({k: v for k, v in _encode(tok, [t], 32).items() if k in ("input_ids", "attention_mask")}
                      for t in texts[:4])]
    return {**summarize(cases), "greedy_8_tokens_identical": sum(same) / len(same)}


def causal_lm(ref, cand, tok, texts):
    """Full-sequence logits at several lengths, then one cached step vs the full recomputation."""
    corpus = " ".join(texts)
    ids = tok(corpus, return_tensors="np")["input_ids"].astype(np.int64)
    cases = []
    for batch in (1, 2):
        for length in LENGTHS:
            length = min(length, ids.shape[1])
            x = np.repeat(ids[:, :length], batch, axis=0)
            mask = np.ones_like(x)
            a, _ = ref.step(x, mask)
            b, _ = cand.step(x, mask)
            case = {"batch": batch, "length": length, "max_abs_diff": float(np.abs(a - b).max()),
                    "top1_agreement": float((a.argmax(-1) == b.argmax(-1)).mean())}
            # cached step: prefix through the model, then the last token alone with its past
            _, past = cand.step(x[:, :-1], mask[:, :-1])
            c, _ = cand.step(x[:, -1:], mask, past)
            case["cache_step_max_abs_diff"] = float(np.abs(a[:, -1] - c[:, -1]).max())
            cases.append(case)
    return summarize(cases)


def summarize(cases):
    keys = [k for k in cases[0] if k.endswith("max_abs_diff")]
    worst = {f"min_{k}": min(c[k] for c in cases) for k in ("top1_agreement", "cosine") if k in cases[0]}
    return {"max_abs_diff": max(c[k] for c in cases for k in keys), **worst, "cases": cases}


def check(source_task, ref, cand, tok, texts):
    fn = causal_lm if is_lm_task(source_task) else embeddings if is_embeddings_task(source_task) else classifier
    fn = spans if TASKS.get(source_task) == QA else fn  # a token classifier's logits: as a classifier's, per token
    fn = images if is_images_task(source_task) else seq2seq if is_seq2seq_task(source_task) else fn
    return fn(ref, cand, tok, texts)


def preprocessor(folder, task):
    """What turns parity's probes into inputs: the image processor (image classifiers) or the tokenizer."""
    from transformers import AutoTokenizer

    return image_task.processor(folder) if is_images_task(task) else AutoTokenizer.from_pretrained(folder)


def check_export(source, onnx_path, threads=None):
    """An exported folder's model.onnx against PyTorch on the model's own probe texts."""
    tok = preprocessor(source.path, source.task)
    if is_seq2seq_task(source.task):  # the export's folder: its encoder and decoder graphs
        with s2s.make(source.path, "torch", source.task, threads=threads) as ref, \
                s2s.make(onnx_path, "onnx", source.task, threads=threads) as cand:
            return check(source.task, ref, cand, tok, probe_texts(source))
    with TorchRunner(source.path, source.task, threads=threads) as ref, \
            OrtRunner(onnx_path, config=source.config, threads=threads) as cand:
        return check(source.task, ref, cand, tok, probe_texts(source))
