"""Task metrics, one module per task kind.

Each module has `prepare(tok, data, job) -> {name: array}` (run once in the parent: every
variant gets the same token ids, and workers need no tokenizer), `measure(runner, arrays, job)
-> dict` (in the worker) and `finish(tok, result)` (back in the parent, e.g. decoding text).
The families `qonnx analyze sensitivity` serves also have `sensitivity_outputs(runner, arrays, job)`
(the quality pass), `sensitivity_metrics(ref, out, arrays) -> dict` (against FP32's outputs),
`SENSITIVITY` (the report's columns and damage) and, where prepare does more than it needs,
`sensitivity_feeds(tok, data, job)`. `read_data` reads any family's data, for compare and sensitivity.
"""
from importlib import import_module

from qonnx import data
from qonnx.errors import ConfigError
from qonnx.heads import QA, TOKENS
from qonnx.heads import TASKS as TASK_NAMES
from qonnx.models import is_embeddings_task, is_images_task, is_lm_task, is_seq2seq_task

TASKS = {"classification": "classification", "lm": "lm", "embeddings": "embeddings", "tokens": "tokens",
         "qa": "qa", "images": "images", "seq2seq": "seq2seq"}
FAMILIES = {TOKENS: "tokens", QA: "qa"}  # transformers task -> kind, for the families that read their own columns
WHAT = {"classification": "a sequence classifier", "lm": "a language model", "embeddings": "an embedding model",
        "tokens": "a token classifier", "qa": "an extractive question answering model",
        "images": "an image classifier", "seq2seq": "a sequence-to-sequence model"}
COLUMNS = {"tokens": ("tokens_column", "tags_column"), "qa": ("question_column", "context_column", "answers_column")}


def kind(task: str) -> str:
    if is_embeddings_task(task):
        return "embeddings"
    if TASK_NAMES.get(task, task) in FAMILIES:
        return FAMILIES[TASK_NAMES.get(task, task)]
    if is_images_task(task):
        return "images"
    if is_seq2seq_task(task):
        return "seq2seq"
    return "lm" if is_lm_task(task) else "classification"


def module(kind_name):
    return import_module(f".{TASKS[kind_name]}", __name__)


def read_data(kind_name, spec, cfg, config, is_lm=False, name="the model") -> data.TextData:
    """The eval (or held-out) data of `spec` as the family reads it, with cfg's columns, split,
    max_samples and seed (compare and the sensitivity analysis both read through here)."""
    common = dict(hub_config=getattr(cfg, "dataset_config", None), split=cfg.split, seed=cfg.seed)
    if kind_name == "embeddings":
        return module(kind_name).read_data(spec, text_column=cfg.text_column, max_samples=cfg.max_samples, **common)
    if kind_name in COLUMNS:  # token classification, QA: each reads its own columns
        cols = {k: getattr(cfg, k) for k in COLUMNS[kind_name]}
        if kind_name == "tokens":
            cols["label2id"] = config.get("label2id") or {}
        return module(kind_name).read_data(spec, **cols, max_samples=cfg.max_samples, **common)
    if kind_name == "seq2seq":
        return module(kind_name).read_data(spec, text_column=cfg.text_column, target_column=cfg.target_column,
                                           max_samples=cfg.max_samples, **common)
    label2id = config.get("label2id") or {}
    if not is_lm and not label2id:
        raise ConfigError(f"{name} has no label2id in its config; cannot map labels.")
    if kind_name == "images":
        return module(kind_name).read_data(spec, label2id=label2id, image_column=cfg.image_column,
                                           label_column=cfg.label_column, max_samples=cfg.max_samples, **common)
    return data.load(spec, lm=is_lm, label2id=label2id, text_column=cfg.text_column, label_column=cfg.label_column,
                     max_samples=None if is_lm else cfg.max_samples, **common)


def check_config(kind_name, cfg):
    """What a token-classification or QA run cannot take, refused before anything is built."""
    what = WHAT[kind_name]
    if cfg.batch_sizes or cfg.sequence_lengths:
        raise ConfigError(f"--batch-sizes/--sequence-lengths curves are measured for text classifiers and LMs; not "
                          f"yet for {what}: leave them out.")
    if cfg.max_perplexity_increase is not None:
        raise ConfigError(f"--max-perplexity-increase is for language models; {what}'s budget is "
                          "--max-accuracy-drop (a limit on its f1 drop against FP32).")
