"""PNG plots: one bar chart per measure, and accuracy (or perplexity) against latency."""
from pathlib import Path

COLORS = {"torch": "#DD8452", "onnx": "#4C72B0"}


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
    lm = results["settings"]["kind"] == "lm"
    labels = [f"{r['variant']} ({r['provider']})" for r in rows]
    quality_key, quality_label = (("perplexity", "perplexity (lower is better)") if lm
                                  else ("accuracy", "accuracy (fraction correct)"))
    speed_key, speed_label = (("ttft_ms", "time to first token p50 (ms)") if lm
                              else ("latency_ms", "latency p50 at batch 1 (ms)"))
    charts = [
        ("latency.png", [r[speed_key]["p50"] for r in rows], f"Latency: {speed_label}", "milliseconds"),
        ("size.png", [r.get("size_mb") or 0 for r in rows], "Model size", "MiB"),
        ("memory.png", [r.get("peak_increment_mb") or 0 for r in rows],
         "Memory of the model: worker peak minus its baseline before loading", "MiB"),
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
                  labels=["PyTorch", "ONNX Runtime"], loc="upper center", fontsize=8, ncol=2,
                  bbox_to_anchor=(0.5, -0.15))
        fig.tight_layout()
        fig.savefig(Path(run_dir) / name, dpi=110)
        plt.close(fig)
        written.append(name)
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for i, (r, label) in enumerate(zip(rows, labels)):
        ax.scatter(r[speed_key]["p50"], r[quality_key], s=70, label=label,
                   marker="o" if r["runtime"] == "torch" else "s", color=plt.cm.tab10(i % 10))
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="variant (provider)")
    ax.set_xlabel(speed_label)
    ax.set_ylabel(quality_label)
    ax.set_title(f"{quality_label.split(' (')[0].capitalize()} vs latency: {results['settings']['model']}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(Path(run_dir) / "tradeoff.png", dpi=110)
    plt.close(fig)
    return written + ["tradeoff.png"]
