"""The texts a perplexity budget uses: calibration text for the codes, validation text to check the
budget on; never the evaluation corpus."""
import hashlib

import numpy as np

from qonnx import calibration, data
from qonnx.config.parts import demo_split
from qonnx.errors import ConfigError

# validation tokens the budget is checked on, at most (on 2,048 a build could hold it and miss it on other text)
VALIDATION_TOKENS = 16384


def budget_texts(cfg, demo, tokenizer):
    """(calibration ids, validation ids, provenance) for --max-perplexity-increase: --calibration
    (else the demo's calibration split) for GPTQ, --validation (else the demo's validation split)
    for the search; never the evaluation corpus."""

    cal_spec = demo_split(cfg.calibration, demo, "calibration")
    val_spec = demo_split(cfg.validation, demo, "validation")
    if not cal_spec or not val_spec:
        raise ConfigError("--max-perplexity-increase needs --calibration (text for GPTQ) and --validation (text the "
                          "budget is checked on); neither may be the text you will evaluate on.")
    texts, prov = calibration.select(cal_spec, cfg.num_samples, cfg.seed, True, cfg.text_column or "text")
    cal_ids = tokenizer("\n".join(texts))["input_ids"]
    val = data.load(val_spec, lm=True, text_column=cfg.validation_text_column)
    val_ids = tokenizer(val.corpus)["input_ids"][:VALIDATION_TOKENS]
    if len(val_ids) < 2:
        raise ConfigError(f"--validation {val_spec} holds {len(val_ids)} token(s); the budget needs at least 2.")
    digest = hashlib.sha256(np.asarray(val_ids, dtype=np.int64).tobytes()).hexdigest()[:16]
    return cal_ids, val_ids, {"calibration": prov, "validation": {"source": val.source, "tokens": len(val_ids),
                                                                  "rows_sha256": digest}}
