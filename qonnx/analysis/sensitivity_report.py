"""Files of a sensitivity analysis: sensitivity.json, .csv, .md and a heatmap (layers x groups)."""
import re
from pathlib import Path

from qonnx import tasks
from qonnx.cache import write_json
from qonnx.variants.units import GROUPS

UNIT = re.compile(r"(?:(\w+) )?layer (\d+) (.+)")  # "layer 3 ffn-in"; seq2seq: "decoder layer 0 cross-attn-in"


FMT = {"perplexity": ".2f", "perplexity_change_pct": "+.2f", "accuracy": ".4f", "accuracy_drop": "+.4f",
       "agreement": ".4f", "kl": ".2e", "nodes": "d", "f1": ".4f", "f1_drop": "+.4f", "exact_match": ".4f",
       "cosine_mean": ".6f", "cosine_min": ".6f", "cosine_distance": ".2e", "topk_overlap": ".4f", "rouge_l": ".4f",
       "rouge_l_drop": "+.4f"}


def family(doc) -> dict:
    """The task module's SENSITIVITY (columns, damage, heatmap scale) of the analysed model's family."""
    return tasks.module(doc.get("family") or ("lm" if doc["lm"] else "classification")).SENSITIVITY


def frame(doc):
    import pandas as pd

    rows = [{k: v for k, v in r.items()} for r in doc["results"]]
    df = pd.DataFrame(rows)
    key = family(doc)["damage"]
    return df.sort_values(["view", key], ascending=[True, False]), key


def cell(value, fmt):
    return "-" if value is None or value != value else format(value, fmt) if fmt else str(value)


def markdown(doc) -> str:
    df, key = frame(doc)
    lm, fam = doc["lm"], family(doc)
    cols = ["unit", "nodes", *fam["columns"]]
    ref = ", ".join(f"{k} {v:.4f}" for k, v in doc["reference"].items() if v is not None) or "its own outputs"
    if lm:
        ref = f"perplexity {doc['reference']['perplexity']:.2f}"
    lines = [f"# {doc['method']} sensitivity: {doc['model']}", "",
             f"Held-out data: {doc['data']['source']} ({doc['data']['samples'] or doc['data']['tokens']} "
             f"{'tokens' if lm else 'rows'}). FP32 reference: {ref}.",
             f"Sorted by damage ({key}) against the FP32 export's own outputs. Measured: {fam['about']}. "
             "`only`: that unit quantized, the rest FP32. "
             "`all-but`: everything quantized except that unit. `all`: every unit quantized.", ""]
    for view in ("all", "only", "all-but"):
        part = df[df["view"] == view]
        if part.empty:
            continue
        lines += [f"## {view}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, r in part.iterrows():
            if r.get("untouched") is True:
                lines.append(f"| {r['unit']} | {r['nodes']} | not quantized by {doc['method']} (ONNX Runtime "
                             "leaves these ops in float) |" + " |" * (len(cols) - 3))
                continue
            lines.append("| " + " | ".join(cell(r.get(c), FMT.get(c)) for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)


def heatmap(doc, path: Path):
    """One panel per view: layers down (an encoder-decoder's encoder layers, then its decoder's), node groups
    across (those the units have); other units listed beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # the damage measure, the family's (KL for classifiers: accuracy on a few hundred rows moves in
    # steps of one row; perplexity change for LMs ...); in the all-but view, what keeping the unit buys back
    fam = family(doc)
    key, scale, unit = fam["damage"], fam["scale"], fam["unit"]
    everything = next((r[key] for r in doc["results"] if r["view"] == "all"), None)
    views = [v for v in ("only", "all-but") if any(r["view"] == v for r in doc["results"])]
    found = [m for r in doc["results"] if (m := UNIT.match(r["unit"])) and m.group(3) in GROUPS]
    stacks = {"encoder": 0, "decoder": 1}
    layers = sorted({(m.group(1) or "", int(m.group(2))) for m in found}, key=lambda k: (stacks.get(k[0], -1), k))
    groups = [g for g in GROUPS if any(m.group(3) == g for m in found)]
    if not views or not layers:
        return None
    fig, axes = plt.subplots(1, len(views), figsize=(5.2 * len(views) + 1.5, 0.5 * len(layers) + 2.6), squeeze=False)
    for ax, view in zip(axes[0], views):
        grid = np.full((len(layers), len(groups)), np.nan)

        def value(r, view=view):
            v = r[key] if view == "only" or everything is None else everything - r[key]
            return v * scale

        extra = []
        for r in doc["results"]:
            if r["view"] != view:
                continue
            m = UNIT.match(r["unit"])
            if m and m.group(3) in groups:
                grid[layers.index((m.group(1) or "", int(m.group(2)))), groups.index(m.group(3))] = value(r)
            elif r.get("untouched"):
                extra.append(f"{r['unit']}: not quantized by {doc['method']}")
            else:
                extra.append(f"{r['unit']}: {value(r):.2f}")
        if view == "only":
            im = ax.imshow(grid, cmap="Reds", aspect="auto", vmin=0)
        else:  # keeping a unit can also make things worse (interactions): diverging around zero
            span = np.nanmax(np.abs(grid)) or 1.0
            im = ax.imshow(grid, cmap="RdBu_r", aspect="auto", vmin=-span, vmax=span)
        ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right")
        ax.set_yticks(range(len(layers)), [f"{s} layer {i}".strip() for s, i in layers])
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8)
        title = ("damage with only this unit quantized" if view == "only" else
                 "damage bought back by keeping only this unit FP32")
        ax.set_title(f"{title}\n" + "; ".join(extra), fontsize=9)
        fig.colorbar(im, ax=ax, label=unit, shrink=0.8)
    fig.suptitle(f"{doc['method']} sensitivity of {Path(str(doc['model'])).name} ({unit}; all units quantized: "
                 f"{(everything or 0) * scale:.2f})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(out: Path, doc):
    out = Path(out)
    write_json(out / "sensitivity.json", doc)
    df, _ = frame(doc)
    df.to_csv(out / "sensitivity.csv", index=False)
    (out / "sensitivity.md").write_text(markdown(doc))
    heatmap(doc, out / "sensitivity.png")
