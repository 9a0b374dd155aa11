"""Experiment: GPTQ variants on demo:smollm2's rotated graph, every MatMul 4-bit/128.

    .venv/bin/python benchmarks/gptq_variants.py FP32_DIR [FORMAT]

FP32_DIR: the genai-fp32 folder of demo:smollm2 (in a compare run's artifact store). Recipes of
qonnx.variants.gptq.gptq: "plain", the original algorithm; "grids", each group's range shrunk by
the factor of least error weighted by the input energies (as the clip search does) instead of its
min/max; "act", columns processed in descending order of their input energy (act-order); both with
each group's grid fixed from the original weights first (static groups: MatMulNBits needs no
g_idx); "both", the LM budget search's recipe since SEARCH 12. Prints the validation perplexity of each uniform build on
the search's first 2,048 validation tokens and on the whole validation text, against FP32.
Figures: docs/benchmarks.md (2026-12-07, "the budget on the whole validation text").
"""
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qonnx.variants import gptq as G  # noqa: E402

VARIANTS = {"plain": lambda W, H, g, sym=False: G.gptq(*G.padded(W, H, g), 4, g, sym=sym),
            "grids": lambda W, H, g, sym=False: G.gptq(*G.padded(W, H, g), 4, g, sym=sym, shrinks=G.SHRINKS),
            "act": lambda W, H, g, sym=False: G.gptq(*G.padded(W, H, g), 4, g, sym=sym, act_order=True),
            "both": G.FOUR_BIT["gptq"]}  # the search's recipe since SEARCH 12


def main():
    import onnx
    from transformers import AutoTokenizer

    from qonnx import data, genai
    from qonnx.models import resolve
    from qonnx.variants.rotation import rotate
    from qonnx.variants.search import kernels, mixed
    from qonnx.variants.search.lm_rank import perplexity

    mixed.FOUR_BIT.clear()
    mixed.FOUR_BIT.update(VARIANTS)
    mixed.four_bit_recipes = lambda name, rotated=False: tuple(VARIANTS)
    fmt = sys.argv[2] if len(sys.argv) > 2 else "4-bit/128"
    spec = kernels.formats(128)[fmt]
    source = resolve("demo:smollm2")
    _, cal, val, _ = genai._budget_inputs(source, None)
    whole = AutoTokenizer.from_pretrained(str(source.path))(
        data.load(str(source.path.parent / "data" / "validation.txt"), lm=True).corpus)["input_ids"]
    texts = {f"first {len(val)}": val, f"all {len(whole)}": whole}
    config = json.loads((source.path / "config.json").read_text())
    src = Path(sys.argv[1]) / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(str(src))
        rotate(model)
        t0 = time.monotonic()
        b = mixed.MixedBuilder(model, cal, config, {fmt: spec}, 8, 512, rotated=True)
        print(f"codes of {len(VARIANTS)} variants in {time.monotonic() - t0:.0f} s", flush=True)
        out = Path(tmp) / "model.onnx"
        refs = {n: perplexity(src, ids, 512, 256, 2, config) for n, ids in texts.items()}
        print("FP32 " + "  ".join(f"{n} validation tokens {v:.3f}" for n, v in refs.items()), flush=True)
        for r in b.recipes(fmt):
            b.build({n: (fmt, r) for n in b.nodes}, out)
            got = {n: 100 * (perplexity(out, ids, 512, 256, 2, config) / refs[n] - 1) for n, ids in texts.items()}
            print(f"{fmt} {r:5} " + "  ".join(f"{n}: {v:+.2f} %" for n, v in got.items()), flush=True)


if __name__ == "__main__":
    main()
