"""Which task a model is for, from its architectures (transformers' own auto mappings) or --task.

The one place that decides a task: a sequence classifier, a causal LM, or an embedding model (a
sentence-transformers folder, or a bare encoder given --task feature-extraction). A head of
another kind is refused with the reason, never turned into one of these by --task.
"""
from pathlib import Path

from qonnx.errors import ModelError, did_you_mean

CLASSIFICATION, LM, EMBEDDINGS = "text-classification", "text-generation-with-past", "feature-extraction"
TOKENS, QA = "token-classification", "question-answering"  # ...ForTokenClassification, ...ForQuestionAnswering
IMAGES = "image-classification"
SEQ2SEQ = "text2text-generation-with-past"
TASKS = {CLASSIFICATION: CLASSIFICATION, LM: LM, "text-generation": LM, EMBEDDINGS: EMBEDDINGS,
         "sentence-similarity": EMBEDDINGS, TOKENS: TOKENS, QA: QA, IMAGES: IMAGES,
         SEQ2SEQ: SEQ2SEQ, "text2text-generation": SEQ2SEQ}
SUPPORTED = (f"sequence classifiers (--task {CLASSIFICATION}, ...ForSequenceClassification), causal LMs "
             f"(--task {LM}, ...ForCausalLM), embedding models (--task {EMBEDDINGS}: a sentence-transformers "
             f"folder, or a bare encoder such as BertModel), token classifiers (--task {TOKENS}, "
             f"...ForTokenClassification: NER, POS), extractive question answering (--task {QA}, "
             f"...ForQuestionAnswering), image classifiers (--task {IMAGES}, ...ForImageClassification: ViT, "
             f"ConvNeXt, ResNet, MobileNet) and sequence-to-sequence models (--task {SEQ2SEQ}, "
             "...ForConditionalGeneration: T5, BART, Marian)")
WHAT = {CLASSIFICATION: "a sequence classifier", LM: "a causal language model", TOKENS: "a token classifier",
        QA: "an extractive question answering model", IMAGES: "an image classifier",
        SEQ2SEQ: "a sequence-to-sequence model"}
ST_MODULES = "modules.json"  # a sentence-transformers folder: its modules (qonnx.pooling reads them)


def is_lm_task(task: str) -> bool:
    """The one place that decides whether a task is causal language modelling."""
    return TASKS.get(task, task) == LM


def is_embeddings_task(task: str) -> bool:
    """The one place that decides whether a task is sentence embeddings (feature-extraction)."""
    return TASKS.get(task, task) == EMBEDDINGS


def is_images_task(task: str) -> bool:
    """The one place that decides whether a task is image classification."""
    return TASKS.get(task, task) == IMAGES


def is_seq2seq_task(task: str) -> bool:
    """The one place that decides whether a task is sequence-to-sequence generation."""
    return TASKS.get(task, task) == SEQ2SEQ


def _names(mapping) -> set:
    """The class names of an auto mapping (a value may be a tuple of classes)."""
    return {n for names in mapping.values() for n in ((names,) if isinstance(names, str) else names)}


def _heads():
    """Architecture class names by task, from transformers' own auto mappings."""
    from transformers.models.auto import modeling_auto as auto

    return {CLASSIFICATION: set(auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.values()),
            LM: set(auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()),
            TOKENS: set(auto.MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES.values()),
            QA: set(auto.MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES.values()),
            IMAGES: _names(auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES),
            SEQ2SEQ: _names(auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES)}


def other_head(archs) -> str:
    """'BertForTokenClassification is a token classification model' when every architecture is a
    transformers class of a head qonnx does not measure; '' when one fits or one is unknown."""
    from transformers.models.auto import modeling_auto as auto

    kinds = {}  # class name -> the heads it is, from transformers' own mappings
    for var in sorted(n for n in dir(auto) if n.startswith("MODEL") and n.endswith("MAPPING_NAMES")):
        what = var.removeprefix("MODEL").removesuffix("MAPPING_NAMES").strip("_").removeprefix("FOR_")
        for names in getattr(auto, var).values():
            for cls in (names,) if isinstance(names, str) else names:
                kinds.setdefault(cls, []).append(what.lower().replace("_", " ") or "base (no task head)")
    ours = set().union(*_heads().values())
    if not archs or any(a in ours or a not in kinds for a in archs):
        return ""
    shown = [next((k for k in kinds[a] if k not in ("with lm head", "pretraining", "text encoding")), kinds[a][0])
             for a in archs]
    return "; ".join(f"{a} is a {k} model" for a, k in zip(archs, shown))


def base_models() -> set:
    """Architecture class names of bare models (BertModel, MPNetModel ...): no task head."""
    from transformers.models.auto import modeling_auto as auto

    return {n for names in auto.MODEL_MAPPING_NAMES.values() for n in ((names,) if isinstance(names, str) else names)}


def infer_task(config: dict, name: str, folder: Path | None = None) -> str:
    """The task from the architectures; a sentence-transformers folder (modules.json) whose
    architectures are no classifier or LM is an embedding model."""
    archs = config.get("architectures") or []
    heads = _heads()
    for arch in archs:
        for task, classes in heads.items():
            if arch in classes or arch.endswith("ForSequenceClassification") and task == CLASSIFICATION \
                    or arch.endswith("ForCausalLM") and task == LM:
                return task
    if folder is not None and (Path(folder) / ST_MODULES).is_file():
        return EMBEDDINGS
    if archs and all(a in base_models() for a in archs):
        raise ModelError(f"'{name}': {', '.join(archs)} is a bare model (no task head) and the folder has no "
                         f"{ST_MODULES}; to measure it as an embedding model (mean pooling of its last hidden "
                         f"state), give --task {EMBEDDINGS}.")
    other = other_head(archs)
    if other:  # no --task makes another head one of these: its weights were not trained for it
        raise ModelError(f"'{name}': {other}; qonnx measures {SUPPORTED} only, and no --task turns another "
                         "head into one.")
    raise ModelError(
        f"Cannot tell the task of '{name}' from its architectures {archs}; qonnx supports sequence "
        f"classifiers, causal LMs, embedding models, token classifiers, extractive QA models, image classifiers "
        f"and seq2seq models. Give it with --task {CLASSIFICATION}, --task {LM}, --task {EMBEDDINGS}, --task "
        f"{TOKENS}, --task {QA}, --task {IMAGES} or --task {SEQ2SEQ}.")


def check_task(task: str, config: dict, name: str) -> str:
    """A --task given by the user: known, and fitting the model's architecture."""
    if task not in TASKS:
        raise ModelError(f"Unknown task '{task}'.{did_you_mean(task, TASKS)} qonnx measures "
                         f"{CLASSIFICATION}, {LM} (or text-generation), {EMBEDDINGS} (or sentence-similarity), {TOKENS}, "
                         f"{QA}, {IMAGES} and {SEQ2SEQ} (or text2text-generation).")
    task = TASKS[task]
    archs = config.get("architectures") or []
    heads = _heads()
    if task == EMBEDDINGS:  # the encoder of any checkpoint but a trained classifier's or an LM's
        for kind, what in WHAT.items():
            if archs and all(a in heads[kind] for a in archs):
                raise ModelError(f"--task {task} does not fit '{name}': {', '.join(archs)} is {what} ({kind}); "
                                 f"measure it as {kind}.")
        return task
    for kind, classes in heads.items():  # a head of another kind qonnx measures: measure it as that
        if kind != task and archs and all(a in classes and a not in heads[task] for a in archs):
            raise ModelError(f"--task {task} does not fit '{name}': {', '.join(archs)} is {WHAT[kind]} ({kind}).")
    other_kind = other_head(archs)
    if other_kind:
        raise ModelError(f"--task {task} does not fit '{name}': {other_kind}, and its weights were not "
                         f"trained for a {task} head (it would start from random weights). qonnx measures "
                         f"{SUPPORTED}.")
    return task


def check_head(config: dict, name: str):
    problem = config.get("problem_type")
    labels = config.get("id2label") or {}
    if problem in ("regression", "multi_label_classification") or config.get("num_labels") == 1 or len(labels) == 1:
        what = problem or "a single-output head (regression)"
        raise ModelError(f"'{name}' is {what}; qonnx measures single-label classifiers (argmax accuracy) "
                         "only.")
