"""One request: text -> token ids (once, here) -> every variant's raw output -> answers with the
label and probabilities (classifiers) or the continuation and tokens/s (LMs), and agreement
with the FP32 reference."""
import numpy as np

from qonnx.errors import ConfigError
from qonnx.measure.deviation import log_softmax, token_agreement
from qonnx.tasks.classification import encode


def inputs(plan, text) -> dict:
    """The same token ids for every variant, made with the model's own tokenizer."""
    if plan.kind == "lm":
        ids = np.asarray(plan.tokenizer(text)["input_ids"], dtype=np.int64)
        if ids.size == 0:
            raise ConfigError("The tokenizer makes no tokens of this text; type something else.")
        return {"ids": ids, "new_tokens": plan.max_new_tokens}
    return encode(plan.tokenizer, [text])


def _read(plan, entry, status, got) -> dict:
    a = {"name": entry.name, "variant": entry.variant, "provider": entry.provider, "runtime": entry.runtime,
         "status": status, "reason": "" if status == "ok" else got}
    if status != "ok":
        return a
    a.update({k: got.get(k) for k in ("ms", "load_s", "shared_cpu", "ttft_ms", "tokens_per_s")})
    if plan.kind == "lm":
        a["token_ids"] = [int(i) for i in got["ids"]]
        a["continuation"] = plan.tokenizer.decode(got["ids"])  # as compare shows its samples
    else:
        probs = np.exp(log_softmax(np.asarray(got["logits"])))
        names = plan.labels if len(plan.labels) == len(probs) else [f"LABEL_{i}" for i in range(len(probs))]
        a["label"] = names[int(probs.argmax())]
        a["probabilities"] = {n: float(p) for n, p in zip(names, probs)}
    return a


def _agree(kind, ref, a):
    """Agreement of answer a with the reference answer (both ok)."""
    if kind == "lm":
        return token_agreement(ref["token_ids"], a["token_ids"])["agreement"], None
    diff = np.abs(np.subtract(list(ref["probabilities"].values()), list(a["probabilities"].values())))
    return a["label"] == ref["label"], float(diff.max())


def ask(plan, pool, text, timeout_s) -> dict:
    """Every variant's answer to text, in the plan's order, as a JSON-able document."""
    if not text or not text.strip():
        raise ConfigError("Type some text first.")
    raw = pool.ask(inputs(plan, text), timeout_s)
    answers = []
    for e in plan.entries:
        status, got = ("failed", e.problem) if e.problem else raw[e.name]
        answers.append(_read(plan, e, status, got))
    ref = next((a for a in answers if a["name"] == plan.reference), None)
    for a in answers:
        a["is_reference"] = a["name"] == plan.reference
        a["agreement"], a["max_prob_diff"] = (_agree(plan.kind, ref, a) if ref and ref["status"] == "ok"
                                              and a["status"] == "ok" else (None, None))
    return {"text": text, "kind": plan.kind, "reference": plan.reference, "answers": answers}
