"""Task metrics, one module per task kind.

Each module has `prepare(tok, data, job) -> {name: array}` (run once in the parent: every
variant gets the same token ids, and workers need no tokenizer), `measure(runner, arrays, job)
-> dict` (in the worker) and `finish(tok, result)` (back in the parent, e.g. decoding text).
"""
from importlib import import_module

from qonnx.models import is_embeddings_task, is_images_task, is_lm_task, is_seq2seq_task

TASKS = {"classification": "classification", "lm": "lm", "embeddings": "embeddings"}
TASKS["images"] = "images"  # image classification (tasks/images.py)
TASKS["seq2seq"] = "seq2seq"  # encoder-decoder generation (tasks/seq2seq.py)


def kind(task: str) -> str:
    if is_embeddings_task(task):
        return "embeddings"
    if is_images_task(task):
        return "images"
    if is_seq2seq_task(task):
        return "seq2seq"
    return "lm" if is_lm_task(task) else "classification"


def module(kind_name):
    return import_module(f".{TASKS[kind_name]}", __name__)
