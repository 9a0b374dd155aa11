"""The artifact a row measures, built on first use: the model folder (torch rows), the FP32
export, a quantized variant of it, or an onnxruntime-genai folder. Builds are content-keyed and
reused (qonnx.store); compare, the UI and the analyses ask here."""
from pathlib import Path

from qonnx import data, export, genai
from qonnx.config import QuantizeConfig
from qonnx.heads import QA, TOKENS
from qonnx.models import is_embeddings_task, is_images_task, is_seq2seq_task
from qonnx.variants.build import quantize
from qonnx.variants.registry import VARIANTS

TASK_COLUMNS = ("tokens_column", "question_column", "context_column")  # calibration of token classifiers, QA


def calibration_column(cfg) -> str:
    """--calibration-text-column, else 'text' for a demo split, else the eval set's --text-column
    when the calibration file has it, else 'text'."""
    if cfg.calibration_text_column:
        return cfg.calibration_text_column
    if not cfg.calibration or cfg.calibration.startswith("demo:"):
        return "text"
    return cfg.text_column if cfg.text_column in data.columns(cfg.calibration) else "text"


def quantize_config(onnx_dir, method, cfg, options=(), searched=True) -> QuantizeConfig:
    """The QuantizeConfig a compare-style config (calibration, seed, threads, budgets) asks for;
    searched=False: the method's plain recipe, whatever budget the config holds."""
    budget = cfg.budget_fields(method, fixed_options=bool(options)) if searched else {}
    return QuantizeConfig(onnx_dir=onnx_dir, method=method, calibration=cfg.calibration,
                          calibration_method=cfg.calibration_method, num_samples=cfg.num_calibration_samples,
                          seed=cfg.seed, text_column=calibration_column(cfg), threads=cfg.threads,
                          **{k: getattr(cfg, k) for k in TASK_COLUMNS if hasattr(cfg, k)},
                          **dict(options), **budget)


def artifact_for(source, variant, cfg) -> Path:
    v = VARIANTS[variant]
    if v.runtime == "torch":
        return Path(source.path)
    if v.runtime == "genai":
        return Path(genai.build(source, v.mode, cfg=cfg)["output"])
    onnx_dir = export.ensure(source)
    if v.mode == "fp32":
        return onnx_dir
    # an embedding model's, a token classifier's, a QA model's, an image classifier's or a seq2seq model's budget
    # is checked on the run's rows, not searched while building (the accuracy-budget search scores a classifier's labels)
    searched = not (is_embeddings_task(source.task) or is_images_task(source.task) or is_seq2seq_task(source.task)
                    or source.task in (TOKENS, QA))
    return Path(quantize(quantize_config(onnx_dir, v.mode, cfg, v.options, searched))["output"])
