"""Every option that more than one command takes, declared once (OPTIONS): flags, type and help.

Its default is not declared here: `options(Config, names...)` reads it from the command's config
dataclass, the one source of defaults (--max-samples shows 500 for compare, 300 for sensitivity).
An option a single command takes is declared in that command's module, its default read the same
way (default_of). Where a command needs a word more, `options(..., name="sentence")` appends it.
"""
import dataclasses

import click

from qonnx.cli.common import csv_list
from qonnx.config.choices import CALIBRATION_METHODS, PROVIDERS, variant_names

OVERRIDES = "Overrides the file."  # sweep: a flag wins over the sweep file

OPTIONS = {
    "output": dict(decls=("-o", "--output"), type=click.Path(), help="Output folder"),
    "task": dict(help="text-classification | text-generation-with-past | feature-extraction (embeddings) | "
                      "token-classification | question-answering [from the model's architecture; a "
                      "sentence-transformers folder (modules.json): feature-extraction]."),
    "overwrite": dict(is_flag=True, help="Replace a qonnx artifact already in --output."),
    "method": dict(decls=("-m", "--method"), help="Quantization method:"),
    "dataset": dict(help="Eval data: csv/tsv/jsonl/json/parquet file (txt for LMs and embedding models), demo "
                         "split (demo:sentiment:test) or hub id [the demo's --split]. Embedding models: texts, or "
                         "labelled pairs (sentence1, sentence2, score) for Spearman against the labels. Token classifiers: "
                         "words and tags; QA: SQuAD json/jsonl (question, context, answers)."),
    "text_column": dict(help="Text column of the data: --dataset, or quantize's --calibration [text]."),
    "label_column": dict(help="Label column of --dataset."),
    "tokens_column": dict(help="Token classifiers: the column of each row's words (a list; csv: a JSON list)."),
    "tags_column": dict(help="Token classifiers: the column of each word's tag (names or ids of the model's id2label)."),
    "question_column": dict(help="Extractive QA: the question column."),
    "context_column": dict(help="Extractive QA: the context column."),
    "answers_column": dict(help='Extractive QA: the answers column ({"text": [...], "answer_start": [...]}).'),
    "target_column": dict(help="Seq2seq models: the column of reference outputs; each row then scores ROUGE-L F1 "
                               "against them."),
    "image_column": dict(help="Image classifiers: the column of image file paths (relative to the table's folder); "
                              "or give --dataset DIR in the imagefolder layout (DIR/LABEL/IMAGE.png)."),
    "dataset_config": dict(help="Hub dataset config name (e.g. sst2)."),
    "split": dict(help="Split of a hub dataset or demo."),
    "max_samples": dict(type=int, help="Classifiers: eval rows, a seeded sample stratified by label."),
    "seed": dict(type=int, help="Seed for every random draw: eval and calibration samples, typos."),
    "variants": dict(callback=csv_list, help="Comma list [all that apply]: " + ", ".join(variant_names())),
    "providers": dict(callback=csv_list, help=",".join(PROVIDERS)),
    "threads": dict(type=int, help="Threads for torch and ORT alike.",
                    unset="[all usable cores; --executor ray: each node's own]"),
    "atol": dict(type=float, help="Largest |output difference| that passes:"),
    "json": dict(decls=("--json", "json_file"), is_flag=False, flag_value="-", type=click.Path(allow_dash=True),
                 help="Write the JSON document to FILE; --json alone prints it instead."),
    "batch_size": dict(type=int, help="compare: batch of the throughput pass (accuracy is scored at batch 1, "
                       "each text alone); sensitivity: batch of its evaluation passes."),
    "eval_tokens": dict(type=int, help="LMs: tokens scored for perplexity."),
    "max_new_tokens": dict(type=int, help="Greedy tokens generated per prompt (LMs) or source text (seq2seq models)."),
    "calibration": dict(help="int8-static's calibration data: a data file or demo split "
                             "(demo:sentiment:calibration) [the demo's calibration split]."),
    "calibration_method": dict(help=" | ".join(CALIBRATION_METHODS)),
    "calibration_text_column": dict(help="Text column of --calibration [text for demo splits, else --text-column]."),
    "num_calibration_samples": dict(type=int, help="int8-static: calibration texts per build."),
    "executor": dict(help="local | ray (needs qonnx-compare[cluster]): where the rows are measured."),
    "address": dict(help="ray: the cluster (auto, host:port, ray://host:port) [a new local cluster]."),
    "mlflow": dict(is_flag=False, flag_value="default",
                   help="Log every row as an MLflow run (needs qonnx-compare[tracking]); URI, or a .db file or folder "
                        "[$MLFLOW_TRACKING_URI, else ARTIFACTS/mlflow.db]."),
    "resume": dict(is_flag=True, help="Finish interrupted work in --output: only what is not done yet is run."),
    # the quality budgets (quantize, compare) and the gate's limits (validate)
    "max_accuracy_drop": dict(type=float, help="Largest accuracy drop vs FP32 (fraction, 0.01 = 1 point); "
                                               "embedding models: largest 1 - top-10 overlap with FP32's neighbours; token "
                                               "classifiers and QA: largest f1 drop (entity F1, SQuAD F1); image "
                                               "classifiers: top-1 accuracy drop; seq2seq models: largest 1 - exact "
                                               "match with FP32's generated text."),
    "max_perplexity_increase": dict(type=float, help="Largest perplexity increase vs FP32, in percent."),
    "perplexity_margin_se": dict(type=float, help="Hold --max-perplexity-increase by this many standard errors of "
                                                  "the validation increase (its spread over blocks of 2,048 tokens): "
                                                  "0 judges the increase itself [2, where the validation text "
                                                  "gives 2+ blocks: a budget that should hold on other text too]."),
    "validation": dict(help="The budget's data, neither calibration nor eval data: labelled rows "
                            "(classifiers) or text (LMs) [the demo's validation split]."),
    "validation_text_column": dict(),
    "validation_label_column": dict(),
    "validation_samples": dict(type=int, help="Validation rows: a seeded sample stratified by label."),
    "search_time_limit": dict(type=float, help="Seconds the --max-accuracy-drop search may take (calibration "
                                               "choices, ranking, steps); past it, exit 2 with the best step "
                                               "[no limit]."),
}

BUDGET = ("max_accuracy_drop", "max_perplexity_increase", "perplexity_margin_se", "validation", "validation_text_column",
          "validation_label_column", "validation_samples", "search_time_limit")
PERPLEXITY_BUDGET = ("LMs, int4-weight: the format of each role of each layer (4-bit/32, 4-bit/128, 8-bit/128 or float) chosen by "
                     "its KL and its kernels' time on this CPU: the fastest build whose perplexity on --validation "
                     "is within it; exit 2 if none does.")
REQUIRED = object()


def default_of(cls, name):
    """The default of field `name` of config dataclass `cls`: a list or tuple as its comma string
    (None when empty), a whole float as an int (shown as 120, not 120.0), REQUIRED if none."""
    f = {f.name: f for f in dataclasses.fields(cls)}.get(name)
    if f is None:
        raise KeyError(f"{cls.__name__} has no field {name!r} to take the default of --{name.replace('_', '-')} from")
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return REQUIRED
    if isinstance(value, (list, tuple)):
        return ",".join(format(v, "g") if isinstance(v, float) else str(v) for v in value) or None
    return int(value) if isinstance(value, float) and value.is_integer() else value


def option(cls, name, extra=None):
    """One OPTIONS entry as a click option, its default from cls (None: no default, as for sweep's
    overrides) and `extra` appended to its help."""
    spec = dict(OPTIONS[name])
    decls = spec.pop("decls", (f"--{name.replace('_', '-')}",))
    unset = spec.pop("unset", None)  # what no default means, said where the command has none
    if extra:
        spec["help"] = f"{spec['help']} {extra}" if spec.get("help") else extra
    default = None if cls is None else default_of(cls, name)
    if unset and default is None:
        spec["help"] = f"{spec['help']} {unset}"
    if default is REQUIRED:
        spec["required"] = True
    elif default is not None and default is not False:  # None, False: click's own default
        spec.update(default=default, show_default=True)
    return click.option(*decls, **spec)


def options(cls, *names, **extra):
    """Decorator: the OPTIONS `names`, in this order, for a command whose config is `cls`."""
    if set(extra) - set(names):
        raise KeyError(f"help given for options not added: {sorted(set(extra) - set(names))}")

    def apply(fn):
        for name in reversed(names):
            fn = option(cls, name, extra.get(name))(fn)
        return fn
    return apply


def budget(cls, drop_help):
    """The quality budgets and the validation rows they are checked on (quantize and compare)."""
    return options(cls, *BUDGET, max_accuracy_drop=drop_help, max_perplexity_increase=PERPLEXITY_BUDGET)
