"""SQuAD's exact match and F1, with the official evaluation script's normalization (v1.1/v2.0):
lowercase, punctuation removed, the articles a/an/the removed, whitespace collapsed; F1 over the
bag of normalized tokens; each question scored against its best-matching reference answer.

And the transformers question-answering pipeline's span search over the windows of a long
context: every (start, end) in the context tokens, end >= start, at most `max_answer_len` tokens,
scored start logit + end logit; the best over all windows is the answer."""
import re
import string
from collections import Counter

import numpy as np

PUNCTUATION = set(string.punctuation)
MAX_ANSWER_LEN = 15  # the pipeline's default, in tokens


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact(prediction: str, truth: str) -> float:
    return float(normalize(prediction) == normalize(truth))


def f1(prediction: str, truth: str) -> float:
    pred, gold = normalize(prediction).split(), normalize(truth).split()
    if not pred or not gold:  # SQuAD v2's rule: both empty is a match
        return float(pred == gold)
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    p, r = same / len(pred), same / len(gold)
    return 2 * p * r / (p + r)


def score(predictions, answers) -> dict:
    """Mean exact match and F1 (fractions) of predictions against each question's reference answers
    (the best over them)."""
    if len(predictions) != len(answers) or not predictions:
        raise ValueError("one prediction per question, and at least one question")
    em = [max(exact(p, t) for t in truths) for p, truths in zip(predictions, answers)]
    fs = [max(f1(p, t) for t in truths) for p, truths in zip(predictions, answers)]
    return {"exact_match": float(np.mean(em)), "f1": float(np.mean(fs))}


def best_span(start_logits, end_logits, context_mask, max_answer_len=MAX_ANSWER_LEN):
    """(window, start token, end token, score) of the best span over every window: start and end
    in the context (context_mask), end >= start, end - start < max_answer_len, scored start + end
    logit. Arrays are [windows, tokens]."""
    best = (0, 0, 0, -np.inf)
    for w in range(start_logits.shape[0]):
        ok = np.asarray(context_mask[w], dtype=bool)
        s = np.where(ok, start_logits[w], -np.inf)
        e = np.where(ok, end_logits[w], -np.inf)
        total = s[:, None] + e[None, :]
        n = total.shape[0]
        i, j = np.indices((n, n))
        total[(j < i) | (j - i >= max_answer_len)] = -np.inf
        k = int(np.argmax(total))
        if total.flat[k] > best[3]:
            best = (w, k // n, k % n, float(total.flat[k]))
    return best
