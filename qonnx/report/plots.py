"""PNG plots: one bar chart per measure, and accuracy (or perplexity) against latency."""
from pathlib import Path

COLORS = {"torch": "#DD8452", "onnx": "#4C72B0", "genai": "#55A868"}


def _bars(ax, labels, values, title, unit, runtimes):
    ax.barh(labels, values, color=[COLORS.get(r, "grey") for r in runtimes])
    ax.set_title(title)
    ax.set_xlabel(unit)
    ax.invert_yaxis()
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.0f}" if v >= 100 else f" {v:.3g}", va="center", fontsize=8)


def plot_all(results, run_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r["status"] == "ok"]
    if not rows:
        return []
    lm = results["settings"]["kind"] in ("lm", "seq2seq")
    labels = [f"{r['variant']} ({r['provider']})" for r in rows]
    quality_key, quality_label = (("perplexity", "perplexity (lower is better)") if lm
                                  else ("accuracy", "accuracy (fraction correct)"))
    if results["settings"]["kind"] == "embeddings":
        quality_key, quality_label = "topk_overlap", "top-10 overlap (with the reference's neighbours)"
    if results["settings"]["kind"] in ("tokens", "qa"):
        quality_key, quality_label = "f1", ("entity F1 (seqeval)" if results["settings"]["kind"] == "tokens"
                                            else "SQuAD F1")
    if results["settings"]["kind"] == "seq2seq":
        quality_key, quality_label = "exact_match", "exact match (with the reference's generated text)"
    speed_key, speed_label = (("ttft_ms", "time to first token p50 (ms)") if lm
                              else ("latency_ms", "latency p50 at batch 1 (ms)"))
    charts = [
        ("latency.png", [r[speed_key]["p50"] for r in rows], f"Latency: {speed_label}", "milliseconds"),
        ("size.png", [r.get("size_mb") or 0 for r in rows], "Model size", "MiB"),
        ("memory.png", [r.get("model_memory_mb") or 0 for r in rows],
         "Model memory: peak while measuring, above the worker's baseline", "MiB"),
        ("accuracy.png", [r[quality_key] for r in rows], quality_label.capitalize(), quality_label),
    ]
    if lm:
        charts.append(("decode.png", [r.get("decode_tokens_per_s") or 0 for r in rows],
                       "Decode speed (greedy, batch 1)", "tokens per second"))
    written = []
    for name, values, title, unit in charts:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
        _bars(ax, labels, values, title, unit, [r["runtime"] for r in rows])
        ax.set_xlim(0, max(values + [0]) * 1.15 or 1)
        ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()],
                  labels=["PyTorch", "ONNX Runtime", "onnxruntime-genai"], loc="upper center", fontsize=8, ncol=3,
                  bbox_to_anchor=(0.5, -0.15))
        fig.tight_layout()
        fig.savefig(Path(run_dir) / name, dpi=110)
        plt.close(fig)
        written.append(name)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    bars = False
    for i, (r, label) in enumerate(zip(rows, labels)):
        ax.scatter(r[speed_key]["p50"], r[quality_key], s=70, label=label,
                   marker="o" if r["runtime"] == "torch" else "s", color=plt.cm.tab10(i % 10))
        se = r.get("perplexity_change_se_pct") if quality_key == "perplexity" else None
        if se:  # the change's standard error, in perplexity: the reference's perplexity x SE / 100
            ax.errorbar(r[speed_key]["p50"], r[quality_key], yerr=r[quality_key] / (1 + r["perplexity_change_pct"] / 100)
                        * se / 100, fmt="none", capsize=4, color=plt.cm.tab10(i % 10))
            bars = True
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="variant (provider)")
    ax.set_xlabel(speed_label)
    ax.set_ylabel(quality_label[:-1] + "; bars: one standard error of the change)" if bars else quality_label)
    ax.set_title(f"{quality_label.split(' (')[0].capitalize()} vs latency: {results['settings']['model']}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(Path(run_dir) / "tradeoff.png", dpi=110)
    plt.close(fig)
    written.append("tradeoff.png")
    table = shape_table(rows)
    if len(table):
        table.to_csv(Path(run_dir) / "shapes.csv", index=False)
        curves(table, Path(run_dir) / "curves.png", results["settings"]["model"])
        written.append("curves.png")
    return written


def shape_table(rows, prefix=None):
    """One line per (row, batch, length, padding) point of the rows' shapes."""
    import pandas as pd

    out = []
    for r in rows:
        for s in r.get("shapes") or []:
            out.append({**(prefix or {}), "variant": r["variant"], "provider": r["provider"], "batch": s["batch"],
                        "length": s["length"], "padding": s["padding"], "latency_p50_ms": s["latency_ms"]["p50"],
                        "latency_p90_ms": s["latency_ms"]["p90"], "calls": s["latency_ms"]["n"],
                        "throughput_per_s": s["throughput_per_s"], "tokens_per_row": s["tokens_per_row"],
                        "real_tokens_per_row": s.get("real_tokens_per_row")})
    return pd.DataFrame(out)


def curves(table, path, title):
    """Latency p50 and throughput against batch size: one panel row per input length, a colour per
    series (variant, provider and any sweep settings), solid = padded to the length, dashed = real
    length (or no padding, for LMs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [c for c in table.columns if c.startswith("point.")]
    label = table[["variant", "provider"]].astype(str).agg(" ".join, axis=1)
    for c in reversed(points):  # point.threads -> "threads=2 onnx-fp32 cpu"
        label = c[len("point."):] + "=" + table[c].astype(str) + " " + label
    table = table.assign(series=label)
    lengths, series = sorted(table["length"].unique()), list(dict.fromkeys(table["series"]))
    fig, axes = plt.subplots(len(lengths), 2, figsize=(12, 3.6 * len(lengths) + 1), squeeze=False)
    for i, length in enumerate(lengths):
        for j, (col, label) in enumerate((("latency_p50_ms", "latency p50 (ms)"),
                                          ("throughput_per_s", "throughput (rows/s)"))):
            ax = axes[i][j]
            for k, name in enumerate(series):
                for padding, style in (("padded", "-"), ("real", "--"), ("none", "-")):
                    part = table[(table.series == name) & (table.length == length) & (table.padding == padding)]
                    if len(part):
                        part = part.sort_values("batch")
                        ax.plot(part["batch"], part[col], style, marker="o", color=plt.cm.tab10(k % 10),
                                label=name if padding != "real" else None)
            ax.set_xscale("log", base=2)
            if col == "latency_p50_ms":
                ax.set_yscale("log")
            ax.set_xticks(sorted(table["batch"].unique()), labels=[str(b) for b in sorted(table["batch"].unique())])
            ax.set_xlabel("batch size")
            ax.set_ylabel(label)
            ax.set_title(f"{label.split(' (')[0]} at length {length}")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(series)), fontsize=8)
    fig.suptitle(f"{title}: solid = padded to the length, dashed = real length")
    fig.tight_layout(rect=(0, 0.04 + 0.025 * ((len(series) + 2) // 3), 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)
