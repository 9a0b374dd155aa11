"""Benchmark: the LM budget search's per-unit cost computed from the unit's part of the graph
(variants.search.probe) against the whole build, on the same units, interleaved.

    .venv/bin/python benchmarks/cost_probe.py FP32_DIR [--units 9] [--rounds 2] [--threads 2]

FP32_DIR: a genai-fp32 (or optimum) folder of demo:smollm2 (a compare run's artifact store holds it).
A unit's cost is the KL divergence of the logits from FP32 on the first validation window (512
tokens) with that unit in 4-bit/128 and everything else 8-bit/128 (round to nearest and the clip
search, no input scales: the codes do not matter here, only that both ways build the same plan).
`--units` units spread over the layers, the head last. Each round measures every unit both ways,
alternating which goes first; it prints each unit's two KLs and their relative difference, the
median seconds of each way, and the total of the part's times over the whole's per round.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("fp32_dir", type=Path)
    p.add_argument("--units", type=int, default=9)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    import onnx

    from qonnx import genai
    from qonnx.envinfo import cpu
    from qonnx.measure.deviation import Reference, kl
    from qonnx.models import resolve
    from qonnx.variants.graph import materialize_transposed_weights
    from qonnx.variants.search.lm_rank import base_plan, layer_units, window_logits
    from qonnx.variants.search.mixed import MixedBuilder
    from qonnx.variants.search.probe import PartProbe

    source = resolve("demo:smollm2")
    _, cal, val, _ = genai._budget_inputs(source, None)
    config = json.loads((source.path / "config.json").read_text())
    src = a.fp32_dir / "model.onnx"
    info = cpu()
    print(f"CPU: {info.get('model')} ({', '.join(info.get('flags', []))}); {a.threads} threads", flush=True)
    model = onnx.load(str(src))
    materialize_transposed_weights(model)  # optimum's tied head: a weight of its own, as the search gives it
    t0 = time.monotonic()
    fmts = {"8-bit/128": (8, 128), "4-bit/128": (4, 128)}
    builder = MixedBuilder(model, cal, config, fmts, samples=1, length=512, scale=False)
    print(f"codes made in {time.monotonic() - t0:.0f} s", flush=True)
    units = layer_units(builder.nodes)
    names = list(units)
    step = max(1, (len(names) - 1) // max(1, a.units - 1))
    chosen = names[:-1][::step][:a.units - 1] + [names[-1]]
    base, probe = base_plan(builder, "8-bit/128"), val[:512]
    ref = Reference(window_logits(src, probe, a.threads, config))
    with tempfile.TemporaryDirectory() as tmp:
        part = PartProbe(builder, base, probe, a.threads, config, Path(tmp), units.values())
        t0 = time.monotonic()
        part.prepare(part.groups)
        print(f"base run with every part's inputs kept: {time.monotonic() - t0:.1f} s", flush=True)
        times = {u: {"part": [], "whole": []} for u in chosen}
        kls = {}
        for r in range(a.rounds):
            for i, u in enumerate(chosen):
                plan = {**base, **dict.fromkeys(units[u], ("4-bit/128", builder.recipes("4-bit/128", units[u])[0]))}
                ways = ["part", "whole"] if (r + i) % 2 == 0 else ["whole", "part"]
                for way in ways:
                    t = time.monotonic()
                    if way == "part":
                        logits = part.logits(plan, units[u])
                    else:
                        logits = window_logits(builder.build(plan, Path(tmp) / "whole.onnx"), probe, a.threads, config)
                    kls.setdefault(u, {})[way] = kl(ref, logits)
                    times[u][way].append(time.monotonic() - t)
        print(f"{'unit':22} {'nodes':>5} {'KL part':>12} {'KL whole':>12} {'rel diff':>9} {'part s':>7} {'whole s':>7}")
        for u in chosen:
            k = kls[u]
            rel = abs(k["part"] - k["whole"]) / max(k["whole"], 1e-30)
            print(f"{u:22} {len(part._part(units[u])[0]):5d} {k['part']:12.6g} {k['whole']:12.6g} {rel:9.1e} "
                  f"{statistics.median(times[u]['part']):7.2f} {statistics.median(times[u]['whole']):7.2f}")
        ratios = [sum(times[u]["part"][r] for u in chosen) / sum(times[u]["whole"][r] for u in chosen)
                  for r in range(a.rounds)]
        print(f"part / whole, total time per round: {', '.join(f'{x:.2f}' for x in ratios)}")


if __name__ == "__main__":
    main()
