"""The Gradio page: an Ask tab (every variant answers side by side) and a Run tab (the run's
table and plots). Everything shown comes from qonnx.ui.answers and the run folder."""
import html
from urllib.parse import quote

from qonnx.errors import QonnxError
from qonnx.report.tables import display_rows, reasons
from qonnx.tasks.classification import MAX_LENGTH
from qonnx.tasks.lm import PROMPTS
from qonnx.ui import answers

CSS = """
.qonnx-cells { display: grid !important; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
.qonnx-plots { display: flex; flex-wrap: wrap; gap: 16px; }
.qonnx-plots figure { margin: 0; flex: 1 1 440px; max-width: 640px; }
.qonnx-plots img { width: 100%; border: 1px solid var(--border-color-primary); border-radius: 6px; }
"""
CLASSIFICATION_EXAMPLES = ["The film was a delight from start to finish.",
                           "I would not recommend this restaurant to anyone.",
                           "Quarterly revenue rose by four percent."]


def look() -> dict:
    """launch() settings for the page's look (Gradio 6 takes theme and css there). The default
    theme's fonts are bundled: the page asks for nothing outside this machine."""
    import gradio as gr

    return {"theme": gr.themes.Default(), "css": CSS}


def file_url(path) -> str:
    """A page-relative URL of a file in the run folder (the one folder Gradio may serve)."""
    return "gradio_api/file=" + quote(str(path))


def header(plan, timeout_s) -> str:
    where = f"run `{plan.run_dir}`" if plan.run_dir else "model export and its INT8 variant"
    lines = [f"## qonnx ui · {plan.title}",
             f"{plan.task} · {where} · reference **{plan.reference or 'none'}**  ",
             f"Latency: the model call of this request alone, in each variant's own process with "
             f"{plan.threads} threads, tokenization excluded. The first request also loads every variant "
             f"(each may take up to {timeout_s:g} s)."
             + (f" Texts are cut at {MAX_LENGTH} tokens, as in compare." if plan.kind != "lm" else "")]
    if plan.unavailable:
        lines.append("Not offered on this machine: " + "; ".join(plan.unavailable))
    return "\n".join(lines)


def stats(plan, a) -> str:
    """The line under a variant's answer: timing, agreement, or why there is no answer."""
    if a["status"] == "timed out":
        return f"⏱️ **timed out**: {a['reason']}"
    if a["status"] != "ok":
        return f"⚠️ **failed**: {a['reason']}"
    shared = " (CPU shared with a slow variant)" if a.get("shared_cpu") else ""
    if plan.kind == "lm":
        n = len(a["token_ids"])
        speed = f"**{a['tokens_per_s']:.1f} tokens/s**" if a.get("tokens_per_s") else "tokens/s n/a"
        parts = [f"{speed} · {a['ms']:.0f} ms for {n} tokens{shared} · first token {a['ttft_ms']:.0f} ms"]
    else:
        parts = [f"**{a['ms']:.1f} ms**{shared}"]
    if a["is_reference"]:
        parts.append("FP32 reference")
    elif a["agreement"] is None:
        parts.append("no reference answer to compare with")
    elif plan.kind == "lm":
        parts.append(f"{a['agreement']:.0%} of tokens as {plan.reference}")
    else:
        same = "yes" if a["agreement"] else "**no**"
        parts.append(f"same label as {plan.reference}: {same} · max |Δp| {a['max_prob_diff']:.2g}")
    if a.get("load_s") is not None:
        parts.append(f"loaded in {a['load_s']:.1f} s")
    return "  \n".join(parts)


def respond(plan, pool, timeout_s, text):
    """Values for every variant's (answer, stats) pair, then the whole document as JSON."""
    import gradio as gr

    try:
        doc = answers.ask(plan, pool, text, timeout_s)
    except QonnxError as e:
        raise gr.Error(str(e)) from None
    values = []
    for a in doc["answers"]:
        ok = a["status"] == "ok"
        body = a.get("continuation" if plan.kind == "lm" else "probabilities") if ok else None
        values += [body, stats(plan, a)]
    return values + [doc]


def run_tab(plan):
    import gradio as gr
    import pandas as pd

    if plan.results is None:
        gr.Markdown("Started on a model, not on a run. For the measured table and plots: "
                    f"`qonnx compare {plan.title} -o RUN` and then `qonnx ui RUN`.")
        return
    report = plan.run_dir / "report.html"
    links = [f"Run folder `{plan.run_dir}`"]
    if report.is_file():
        links.append(f"<a href='{file_url(report)}' target='_blank'>report.html</a>")
    gr.Markdown(" · ".join(links) + "  \n" + "  \n".join(html.escape(r) for r in reasons(plan.results)))
    headers, rows = display_rows(plan.results)
    gr.Dataframe(value=pd.DataFrame(rows, columns=headers), interactive=False, label="results")
    figures = [f"<figure><img src='{file_url(p)}' alt='{html.escape(p.stem)}'>"
               f"<figcaption>{html.escape(p.name)}</figcaption></figure>"
               for p in sorted(plan.run_dir.glob("*.png"))]
    gr.HTML(f"<div class='qonnx-plots'>{''.join(figures) or 'This run has no plots.'}</div>")


def build(plan, pool, timeout_s):
    import gradio as gr

    ref = plan.reference
    with gr.Blocks(title=f"qonnx ui · {plan.title}", analytics_enabled=False) as demo:
        gr.Markdown(header(plan, timeout_s))
        with gr.Tab("Ask"):
            with gr.Row(equal_height=True):
                text = gr.Textbox(label="Text" if plan.kind != "lm" else "Prompt", lines=2, scale=5,
                                  placeholder="Type or paste text, then Enter or the button")
                button = gr.Button("Ask every variant", variant="primary", scale=1)
            gr.Examples(PROMPTS[:3] if plan.kind == "lm" else CLASSIFICATION_EXAMPLES, inputs=text)
            outputs = []
            with gr.Row(equal_height=False, elem_classes="qonnx-cells"):  # a grid: every cell one width
                for e in plan.entries:
                    with gr.Column(min_width=240, variant="panel"):
                        role = " · reference" if e.name == ref else ""
                        gr.Markdown(f"### {e.variant}\n{e.runtime} on {e.provider}{role}")
                        if plan.kind == "lm":
                            outputs.append(gr.Textbox(show_label=False, lines=5, interactive=False))
                        else:
                            outputs.append(gr.Label(show_label=False, num_top_classes=min(5, len(plan.labels))))
                        outputs.append(gr.Markdown(f"⚠️ **failed**: {e.problem}" if e.problem else ""))
            with gr.Accordion("All answers as JSON", open=False):
                raw = gr.JSON(show_label=False)
        with gr.Tab("Run"):
            run_tab(plan)
        gr.on([button.click, text.submit], lambda t: respond(plan, pool, timeout_s, t), inputs=text,
              outputs=outputs + [raw], api_name="answer")
    return demo
