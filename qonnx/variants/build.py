"""Build one ONNX variant from an FP32 export: keyed by content, atomic, checked against FP32.

The key covers the export's own key, every QuantizeConfig setting that shapes the bytes, the
calibration samples (sha256 of each) and the versions of onnx, onnxruntime and qonnx: a new
calibration file, seed, block size or library version never reuses an old folder. A perplexity
budget's key also names the CPU class (model and flags) its formats were chosen on.
"""
import dataclasses
import logging
from pathlib import Path

from qonnx import calibration, manifest, store, tasks
from qonnx.config.parts import demo_split
from qonnx.envinfo import versions
from qonnx.errors import ConfigError, ModelError
from qonnx.models import is_embeddings_task, is_images_task, is_lm_task, is_seq2seq_task, load_tokenizer
from qonnx.tasks import FAMILIES
from qonnx.tasks import images as image_task
from qonnx.variants import seq2seq
from qonnx.variants.checks import check_variant, load_export
from qonnx.variants.registry import method_module
from qonnx.variants.search import budget, kernels, lm_budget
from qonnx.variants.search.texts import budget_texts

log = logging.getLogger(__name__)

KEY_LIBRARIES = ("qonnx", "onnx", "onnxruntime")
# none of these changes the bytes (the *_column settings pick calibration samples, whose hashes are in the key)
NOT_IN_KEY = ("onnx_dir", "output", "overwrite", "threads", "tokens_column", "question_column", "context_column")


def calibration_spec(cfg, src_manifest):
    """The calibration source and its text column: --calibration, else the demo's split."""
    spec = demo_split(cfg.calibration, src_manifest.get("source", {}).get("demo"), "calibration")
    column = cfg.text_column or "text"
    return spec, column


def variant_key(cfg, src_manifest, calibration_prov=None, validation_selection=None) -> str:
    v = versions()
    settings = {k: val for k, val in dataclasses.asdict(cfg).items() if k not in NOT_IN_KEY}
    if cfg.method != "int8-qdq-qnn":  # the other methods' keys stay as they were before the option
        settings.pop("qnn_activations")
    if settings.get("perplexity_margin_se") is None:  # keys stay as they were before the option
        settings.pop("perplexity_margin_se", None)
    if calibration_prov:  # the samples themselves, not the file name
        settings["calibration"] = {k: calibration_prov[k] for k in ("sample_sha256", "max_length")}
    else:
        settings.pop("calibration", None)
    if validation_selection:  # the budget's validation rows, by content
        settings["validation"] = validation_selection.get("rows_sha256")
    export_id = src_manifest.get("key") or src_manifest.get("files")
    settings["recipe"] = getattr(method_module(cfg.method), "RECIPE", None)  # a changed recipe rebuilds
    if cfg.max_perplexity_increase is not None:  # formats chosen by kernels timed on this CPU class
        settings["cpu"], settings["search"] = kernels.cpu_class(), lm_budget.SEARCH
    return store.digest({"export": export_id, "settings": settings,
                         "versions": {k: v.get(k) for k in KEY_LIBRARIES}})


def _ort_errors() -> tuple:
    """ONNX Runtime's own exception classes (they derive from Exception, not RuntimeError)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(getattr(state, n) for n in ("Fail", "InvalidArgument", "RuntimeException", "InvalidGraph")
                 if hasattr(state, n))


def quantize(cfg) -> dict:
    """Build (or reuse) one variant; returns its manifest with `output` and `reused`. With a budget
    (--max-accuracy-drop, --max-perplexity-increase) the method's search (search/) builds it."""
    src_dir = Path(cfg.onnx_dir).resolve()
    if Path(src_dir).is_dir():
        store.ensure_intact(src_dir, "ONNX export")
    src_manifest, config = load_export(src_dir)
    task = src_manifest.get("source", {}).get("task", "")
    lm = is_lm_task(task)
    if is_seq2seq_task(task):  # before any calibration data is read
        seq2seq.check(cfg.method)
    texts, prov, spec = None, None, None
    if getattr(method_module(cfg.method), "NEEDS_CALIBRATION", False):
        spec, column = calibration_spec(cfg, src_manifest)
        family = FAMILIES.get(task)  # token classifiers, QA: calibrated on their own inputs (words, pairs)
        if spec and family:
            texts, prov = tasks.module(family).calibration(spec, cfg.num_samples, cfg.seed, cfg)
        elif spec and is_images_task(task):  # images: a folder of them, or a table's image column
            texts, prov = calibration.select_images(spec, cfg.num_samples, cfg.seed)
        elif spec:
            texts, prov = calibration.select(spec, cfg.num_samples, cfg.seed, lm, column)
    cfg.check_kind(lm)
    if task in FAMILIES and cfg.max_accuracy_drop is not None:
        raise ConfigError(f"{src_dir} is {tasks.WHAT[FAMILIES[task]]}; the --max-accuracy-drop search scores a "
                          "classifier's labels. Build without it, then gate the compare run: qonnx validate RUN "
                          "--variant V --max-accuracy-drop X (a limit on the f1 drop against FP32).")
    if is_embeddings_task(task) and cfg.max_accuracy_drop is not None:
        raise ConfigError(f"{src_dir} is an embedding model; the --max-accuracy-drop search scores a classifier's "
                          "labels. Build without it, then gate the compare run: qonnx validate RUN --variant V "
                          "--max-accuracy-drop X (a limit on 1 - top-10 overlap with FP32).")
    if (is_images_task(task) or is_seq2seq_task(task)) and cfg.max_accuracy_drop is not None:
        raise ConfigError(f"{src_dir} is an {task} model; the --max-accuracy-drop search scores text classifiers. Build "
                          "without it, then gate the compare run: qonnx validate RUN --variant V --max-accuracy-drop X.")
    validation, texts_lm = None, None
    if cfg.max_accuracy_drop is not None:
        validation = budget.validation(cfg, src_manifest, src_dir, config)
    selection = validation[2].selection if validation else None
    if cfg.max_perplexity_increase is not None:
        texts_lm = budget_texts(cfg, src_manifest.get("source", {}).get("demo"), load_tokenizer(src_dir))
        prov, selection = texts_lm[2]["calibration"], texts_lm[2]["validation"]
    key = variant_key(cfg, src_manifest, prov, selection)
    out = cfg.output or Path(src_dir).parent / f"onnx-{cfg.method}-{key}"
    if manifest.read(out).get("key") == key and store.reuse(out):
        log.info("reusing %s", out)
        return {**manifest.read(out), "output": str(out), "reused": True}
    overwrite = cfg.overwrite or (cfg.output is None and store.is_artifact(out))
    kernels.refuse_other_cpu(out, overwrite)
    with store.atomic_dir(out, overwrite=overwrite, protect=[src_dir]) as tmp:
        manifest.copy_side_files(src_dir, tmp)
        log.info("building %s from %s", cfg.method, src_dir)
        kwargs = {"lm": lm}
        if texts is not None or validation is not None:
            kwargs.update(tokenizer=image_task.processor(src_dir) if is_images_task(task) else load_tokenizer(src_dir),
                          texts=texts, provenance=prov)
        build = method_module(cfg.method).build
        if validation is not None:  # keep the most damaging units FP32 until within budget
            build, kwargs["validation"] = budget.build, validation
        if texts_lm is not None:  # each layer role's format by its KL and kernel time, within budget
            build, kwargs["texts"] = lm_budget.build, texts_lm
        try:
            with store.scratch_cwd():
                settings = (seq2seq.build(cfg.method, build, src_dir, tmp, cfg, config) if is_seq2seq_task(task) else
                            build(src_dir / "model.onnx", tmp / "model.onnx", cfg, config, **kwargs))
        except (ValueError, RuntimeError, KeyError, *_ort_errors()) as e:  # ORT rejects the graph
            raise ModelError(f"{cfg.method} quantization of {src_dir} failed: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        report = check_variant(src_dir, tmp, task, config)
        data = manifest.write(tmp, kind="variant", key=key,
                              source={**src_manifest.get("source", {}),
                                      "onnx_export": str(Path(src_dir).resolve()),
                                      "export_key": src_manifest.get("key")},
                              method=cfg.method, settings=settings,
                              parity={"reference": "onnx-fp32", **report})
    return {**data, "output": str(out), "reused": False}

