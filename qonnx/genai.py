"""A second export path for decoder LMs: onnxruntime-genai's model builder (the `genai` extra).

The builder writes a graph with fused GroupQueryAttention, rotary embedding and skip-norm ops
and MatMulNBits weights, plus genai_config.json for its Generator. qonnx runs the builder as a
subprocess in a scratch directory (its cache and logs never reach the working directory),
stores the folder like every other artifact (content key over the source, the precision and the
library versions; atomic; verified), and checks it against PyTorch: the fp32 build must match
within the export tolerance, the others record their deviation. optimum stays the default
exporter and the reference.

onnxruntime-genai 0.12 and later import classes that only transformers 5 has, which
optimum-onnx does not allow here; the extra pins 0.11, whose builder works with this
transformers (and with onnxruntime >= 1.23).
"""
import logging
import subprocess
import sys
from pathlib import Path

from qonnx import manifest, store
from qonnx.config import QuantizeConfig
from qonnx.config.choices import GENAI_PRECISIONS as PRECISIONS
from qonnx.envinfo import versions
from qonnx.errors import ConfigError, ModelError, ParityError, unknown
from qonnx.models import load_tokenizer
from qonnx.parity import check_export
from qonnx.runners.genai import side_files
from qonnx.variants.int4_weight import ACCURACY_LEVEL, RECIPE
from qonnx.variants.requires import genai_problem as missing
from qonnx.variants.search import kernels, lm_budget
from qonnx.variants.search.nbits import BLOCK, LAYOUT, eight_bit
from qonnx.variants.search.texts import budget_texts

log = logging.getLogger(__name__)

# the builder's recipes, by qonnx name: (--precision, --extra_options). 0.11's builder has no int8
# precision (its choices are int4, bf16, fp16, fp32); its int8 lives inside k_quant_mixed, which
# keeps the most sensitive MatMuls at 8 bits and the rest at 4.
RECIPES = {"fp32": ("fp32", []), "int4": ("int4", []),
           "int4-mixed": ("int4", ["--extra_options", "int4_algo_config=k_quant_mixed"])}
# qonnx's own builds on the builder's fp32 graph: int8 (every MatMul 8-bit blockwise, round to
# nearest, MatMulNBits, blocks of 128), and int4-budget (each unit's format (a role of a layer) chosen by its KL and its
# kernels' time on this CPU, the fastest within the budget: qonnx.variants.search.lm_budget)
INT8 = "int8"
BUDGETED = "int4-budget"
DEFAULT_BUDGET_PCT = 10.0
assert set(PRECISIONS) == {*RECIPES, INT8, BUDGETED}
KEY_LIBRARIES = ("qonnx", "onnxruntime-genai", "onnxruntime", "onnx", "torch", "transformers")
BUILD_TIMEOUT_S = 3600


class UnsupportedModel(ModelError):
    """The builder has no recipe for this architecture: a skipped row, not a failure."""
    skip = True


# {(source path, its content digest): the builder's refusal}: one refusal in a process (a compare's first
# genai row) is the answer for every precision after it, not another builder run of about 10 s each
_REFUSED = {}


def genai_key(source, precision, budget=None) -> str:
    v = versions()
    return store.digest({"source": store.tree_digest(source.path), "task": source.task, "precision": precision,
                         "builder": "onnxruntime-genai", "versions": {k: v.get(k) for k in KEY_LIBRARIES},
                         **({"budget": budget} if budget else {}),
                         **({"recipe": RECIPE, "layout": LAYOUT} if precision in (INT8, BUDGETED) else {})})


def default_output(source, precision, budget=None) -> Path:
    return store.root() / store.slug(source) / f"genai-{precision}-{genai_key(source, precision, budget)}"


def _run_builder(source, precision, out: Path):
    refused = (str(Path(source.path).resolve()), store.tree_digest(source.path))
    if refused in _REFUSED:
        raise UnsupportedModel(_REFUSED[refused])
    with store.scratch_cwd() as scratch:
        builder_precision, extra = RECIPES[precision]
        cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-m", store.slug(source),
               "-i", str(Path(source.path).resolve()), "-o", str(out), "-p", builder_precision, "-e", "cpu",
               "-c", str(scratch / "cache"), *extra]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ModelError(f"onnxruntime-genai's builder ran past {BUILD_TIMEOUT_S} s on {source.name}") from None
    text = (done.stdout or "") + (done.stderr or "")
    if done.returncode == 0 and (out / "model.onnx").is_file():
        return text
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
    if "not currently supported" in last or "NotImplementedError" in last:
        _REFUSED[refused] = f"onnxruntime-genai's builder does not support {source.name}: {last[:200]}"
        raise UnsupportedModel(_REFUSED[refused])
    raise ModelError(f"onnxruntime-genai's builder failed on {source.name} ({precision}): {last[:300]}")


def _budget_inputs(source, cfg):
    """(budget settings for the key, calibration ids, validation ids) of the int4-budget build."""

    if cfg is None and not source.demo:
        raise ConfigError(f"the int4-budget build of {source.name} needs calibration and validation text: run "
                          f"qonnx compare {source.name} --variants genai-int4-budget --calibration FILE "
                          "--validation FILE [--max-perplexity-increase P]")
    limit = cfg.max_perplexity_increase if cfg and cfg.max_perplexity_increase is not None else DEFAULT_BUDGET_PCT
    qcfg = QuantizeConfig(onnx_dir=source.path, method="int4-weight", max_perplexity_increase=limit,
                          calibration=getattr(cfg, "calibration", None), validation=getattr(cfg, "validation", None),
                          validation_text_column=getattr(cfg, "validation_text_column", "text"),
                          text_column=getattr(cfg, "calibration_text_column", None),
                          # the run's own sample of the calibration text (run.json records these)
                          seed=getattr(cfg, "seed", 0), num_samples=getattr(cfg, "num_calibration_samples", 128))
    cal, val, prov = budget_texts(qcfg, source.demo, load_tokenizer(source.path))
    key = {"max_perplexity_increase_pct": limit, "calibration": prov["calibration"]["sample_sha256"],
           "validation": prov["validation"]["rows_sha256"], "cpu": kernels.cpu_class(),  # formats chosen for this CPU
           "search": lm_budget.SEARCH}
    margin = getattr(cfg, "perplexity_margin_se", None)
    if margin is not None:  # in the key only where given: the default is lm_budget.SEARCH's
        key["margin_se"] = margin
    return key, cal, val, prov


def build(source, precision="fp32", output=None, overwrite=False, atol=1e-3, cfg=None) -> dict:
    """Build (or reuse) the builder's folder for source at precision; returns its manifest with
    `output` and `reused`. int4-budget is qonnx's search on the fp32 folder, with the budget,
    calibration and validation text of cfg (a CompareConfig) or the defaults."""
    if precision not in PRECISIONS:
        raise unknown("genai precision", precision, PRECISIONS)
    if not source.is_lm:
        raise ConfigError(f"--exporter genai builds decoder LMs; {source.name} is a {source.task} model.")
    reason = missing()
    if reason:
        raise ConfigError(reason)
    budget = _budget_inputs(source, cfg) if precision == BUDGETED else None
    key = genai_key(source, precision, budget and budget[0])
    out = Path(output) if output else default_output(source, precision, budget and budget[0])
    if manifest.read(out).get("key") == key and store.reuse(out):
        log.info("reusing %s", out)
        return {**manifest.read(out), "output": str(out), "reused": True}
    overwrite = overwrite or (not output and store.is_artifact(out))
    kernels.refuse_other_cpu(out, overwrite)
    with store.atomic_dir(out, overwrite=overwrite, protect=[source.path]) as tmp:
        settings = {"precision": precision, "execution_provider": "cpu",
                    "builder_args": list(RECIPES.get(precision, RECIPES["fp32"]))}
        if precision in (INT8, BUDGETED):
            settings.update(_build_from_fp32(source, tmp, budget))
        else:
            log.info("building %s with onnxruntime-genai's model builder (%s)", source.name, precision)
            (tmp / "builder.log").write_text(_run_builder(source, precision, tmp))
        report = check_export(source, tmp / "model.onnx")
        passed = report["max_abs_diff"] <= atol
        if precision == "fp32" and not passed:
            raise ParityError(f"the genai fp32 build of {source.name} differs from PyTorch by "
                              f"{report['max_abs_diff']:.3g} (> {atol}); the folder was not written.")
        data = manifest.write(tmp, kind="genai", key=key,
                              source={"model": source.name, "path": str(source.path), "task": source.task,
                                      "demo": source.demo, "digest": store.tree_digest(source.path)},
                              method=f"genai-{precision}", settings=settings,
                              parity={"reference": "pytorch-fp32", "passed": passed, **report})
    return {**data, "output": str(out), "reused": False}


def _build_from_fp32(source, tmp: Path, budget) -> dict:
    """qonnx's own build on the builder's fp32 folder (built or reused): its side files copied,
    model.onnx written into tmp, 8-bit everywhere (budget None) or searched within the budget."""
    import shutil

    fp32 = Path(build(source, "fp32")["output"])
    for f in side_files(fp32):
        shutil.copy2(f, tmp / f.name)
    if budget is None:
        eight_bit(fp32 / "model.onnx", tmp / "model.onnx")
        return {"built_from": str(fp32), "bits": 8, "block_size": BLOCK,
                "algorithm": "rtn, symmetric",
                "accuracy_level": ACCURACY_LEVEL}
    key, cal_ids, val_ids, prov = budget
    log.info("searching the weight format of each role of each layer of %s within +%s %% perplexity", source.name,
             key["max_perplexity_increase_pct"])
    # the fp32 folder's content key: a second budget on it reuses the per-unit costs
    record = lm_budget.search(fp32 / "model.onnx", tmp / "model.onnx", key["max_perplexity_increase_pct"],
                              cal_ids, val_ids, source.config, model_digest=manifest.read(fp32).get("key"), genai=True,
                              margin_se=key.get("margin_se"))
    return {"built_from": str(fp32), "budget_search": record, "data": prov}
