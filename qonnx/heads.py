"""Which task a model is for, from its architectures (transformers' own auto mappings) or --task.

The one place that decides a task: a sequence classifier, a causal LM, or an embedding model (a
sentence-transformers folder, or a bare encoder given --task feature-extraction). A head of
another kind is refused with the reason, never turned into one of these by --task.
"""
from pathlib import Path

from qonnx.errors import ModelError, did_you_mean

CLASSIFICATION, LM, EMBEDDINGS = "text-classification", "text-generation-with-past", "feature-extraction"
IMAGES = "image-classification"
SEQ2SEQ = "text2text-generation-with-past"
TASKS = {CLASSIFICATION: CLASSIFICATION, LM: LM, "text-generation": LM, EMBEDDINGS: EMBEDDINGS,
         "sentence-similarity": EMBEDDINGS, IMAGES: IMAGES,
         SEQ2SEQ: SEQ2SEQ, "text2text-generation": SEQ2SEQ}
SUPPORTED = (f"sequence classifiers (--task {CLASSIFICATION}, ...ForSequenceClassification), causal LMs "
             f"(--task {LM}, ...ForCausalLM), embedding models (--task {EMBEDDINGS}: a sentence-transformers "
             f"folder, or a bare encoder such as BertModel), image classifiers (--task {IMAGES}, "
             f"...ForImageClassification: ViT, ConvNeXt, ResNet, MobileNet) and sequence-to-sequence models "
             f"(--task {SEQ2SEQ}, ...ForConditionalGeneration: T5, BART, Marian)")
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
        f"classifiers, causal LMs, embedding models image classifiers and seq2seq models. Give it with --task "
        f"{CLASSIFICATION}, --task {LM}, --task {EMBEDDINGS}, --task {IMAGES} or --task {SEQ2SEQ}.")


def check_task(task: str, config: dict, name: str) -> str:
    """A --task given by the user: known, and fitting the model's architecture."""
    if task not in TASKS:
        raise ModelError(f"Unknown task '{task}'.{did_you_mean(task, TASKS)} qonnx measures "
                         f"{CLASSIFICATION}, {LM} (or text-generation), {EMBEDDINGS} (or sentence-similarity), "
                         f"{IMAGES} and {SEQ2SEQ} (or text2text-generation).")
    task = TASKS[task]
    archs = config.get("architectures") or []
    heads = _heads()
    if task == EMBEDDINGS:  # the encoder of any checkpoint but a trained classifier's or an LM's
        for kind, what in ((CLASSIFICATION, "a sequence classifier"), (LM, "a causal language model"),
                           (IMAGES, "an image classifier"), (SEQ2SEQ, "a sequence-to-sequence model")):
            if archs and all(a in heads[kind] for a in archs):
                raise ModelError(f"--task {task} does not fit '{name}': {', '.join(archs)} is {what} ({kind}); "
                                 f"measure it as {kind}.")
        return task
    what = {CLASSIFICATION: "a sequence classifier", LM: "a causal language model", IMAGES: "an image classifier",
            SEQ2SEQ: "a sequence-to-sequence model"}
    for other in (k for k in what if k != task):
        if archs and all(a in heads[other] for a in archs):
            raise ModelError(f"--task {task} does not fit '{name}': {', '.join(archs)} is {what[other]} ({other}).")
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
