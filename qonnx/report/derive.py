"""Figures derived from the measured rows: ratios and agreement against the FP32 reference, the
row order, and the notes that say how every figure was measured."""
from pathlib import Path

import numpy as np

from qonnx.measure.deviation import agreement, span_agreement, token_agreement
from qonnx.measure.similarity import TOP_K, against_reference
from qonnx.ratios import derive, reference
from qonnx.tasks.seq2seq import against_reference as generation_agreement
from qonnx.variants.registry import DEFAULT_ORDER


def _derive(row, rows, kind, ref):
    """The ratios (ratios.derive: the one place their formulas live) and agreement with ref's outputs."""
    for k, v in derive(row, rows, kind, ref).items():
        setattr(row, k, v)
    if ref and row.outputs and Path(row.outputs).is_file() and ref.outputs and Path(ref.outputs).is_file():
        a, b = np.load(ref.outputs), np.load(row.outputs)
        try:
            found = {"lm": token_agreement, "embeddings": against_reference, "qa": span_agreement,
                     "seq2seq": generation_agreement}.get(kind, agreement)(a, b)
        except ValueError as e:
            row.agreement_error = str(e)
        else:
            for k, v in found.items():
                setattr(row, k, v)


def assemble(rows, meta) -> dict:
    """Results with typed rows (schema.Row), derived figures filled in, in registry order."""
    kind = meta["settings"]["kind"]
    ref = reference(rows)
    for row in rows:
        if row.ok:
            _derive(row, rows, kind, ref)
    order = {v: i for i, v in enumerate(meta["settings"].get("variants") or [])}
    rank = {v: order.get(v, 100 + i) for i, v in enumerate(DEFAULT_ORDER)}
    rows = sorted(rows, key=lambda r: (r.provider, rank.get(r.variant, 999)))
    return {"rows": rows, "reference": f"{ref.variant}@{ref.provider}" if ref else None,
            "environment": meta["environment"], "settings": meta["settings"],
            "method": method_notes(kind, meta["settings"])}


def method_notes(kind, s):
    notes = [f"Threads: torch.set_num_threads = ORT intra_op_num_threads = {threads_note(s)}; "
             "each variant runs in its own worker process; token ids are made once, in the parent, "
             "and fed to every variant.",
             "Latency: model call only, tokenization excluded, after warm-up; n is the number of "
             "timed calls, and a percentile is shown only where n supports it (p90 from 10, p99 "
             "from 100). On CUDA the ONNX Runtime time includes the host-to-device copy of inputs "
             "and device-to-host copy of outputs (IO binding).",
             "Memory (MiB): resident memory (VmHWM) of the worker process. baseline_mb is the worker "
             "before loading the model (python, numpy, the runtime's libraries and the model's modeling "
             "code: torch workers carry torch, ONNX workers do not). load_peak_mb is the peak while "
             "loading (an FP32 model quantized on load counts there); then freed memory goes back to the "
             "OS (malloc_trim), the peak is reset, and model_memory_mb (the table's model MiB) = the peak "
             "while measuring - baseline: weights, the runtime's arena, caches and outputs, never qonnx's "
             "scoring buffers (perplexity is scored in float32 chunks). memory_reduction compares "
             "model_memory_mb; peak_increment_mb = max(both peaks) - baseline. CUDA: torch's "
             "max_memory_allocated.",
             "Size (MiB): the .onnx file(s) for ONNX variants; for torch variants the bytes "
             "torch.save(model.state_dict()) writes (packed INT8 weights included).",
             placement_note(s), timing_note(kind, s)]
    if kind == "classification":
        sel = s.get("dataset_selection") or {}
        notes.append(f"Accuracy over {sel.get('rows', '?')} of {sel.get('of', '?')} rows "
                     f"({sel.get('method', '?')}, seed {sel.get('seed')}, rows sha256 "
                     f"{sel.get('rows_sha256')}) at batch 1, each text alone (max 128 tokens), as deployed and "
                     "as the accuracy-budget search validates (dynamic INT8 scales activations over a whole "
                     f"padded batch, so batching would change its answers); throughput from a separate pass at "
                     f"batch {s.get('batch_size')} (padded to the longest in each batch), after one untimed call "
                     f"at each padded shape; latency at batch 1 over {s.get('latency_samples')} requests.")
        if s.get("max_accuracy_drop") is not None:
            where = s.get("validation") or (f"{s['validation_default']}, held out of the demo's fine-tuning"
                                            if s.get("validation_default") else
                                            "the demo's train split: runs before demo version 2")
            notes.append(f"Accuracy budget (onnx-int8-dynamic, onnx-int8-static): each build searched until its "
                         f"accuracy drop against FP32 on {s.get('validation_samples')} validation rows ({where}; "
                         f"never these eval rows) was at most {s['max_accuracy_drop']:g} (int8-dynamic: "
                         "per-tensor weights where that held, per-channel where not; then units kept FP32); "
                         "each artifact's manifest holds the steps. The accuracy column is data the search "
                         "never saw, so a row may miss the budget here.")
    elif kind == "embeddings":
        notes += embedding_notes(s)
    elif kind in ("tokens", "qa"):
        notes += family_notes(kind, s)
    elif kind == "seq2seq":
        sel = s.get("dataset_selection") or {}
        notes.append(f"Generation over {sel.get('rows', '?')} of {sel.get('of', '?')} source texts ({sel.get('method')}, "
                     f"seed {sel.get('seed')}), each alone (batch 1, cut at 128 tokens): greedy, up to "
                     f"{s.get('max_new_tokens')} new tokens, through transformers' generate() on both runtimes (ONNX "
                     "rows: optimum's ORTModelForSeq2SeqLM over the exported encoder and decoder-with-past graphs). "
                     "TTFT = a one-token generate() (encoder and first decoder step); decode tokens/s = the tokens "
                     "after the first over the rest of a full generate(). exact_match = texts generated exactly as the "
                     "reference row's; agreement = the reference's generated tokens matched position by position; "
                     "ROUGE-L F1 (LCS on lower-cased words, no stemming) against --target-column where given. "
                     "--max-accuracy-drop limits 1 - exact_match, checked on the rows, not searched.")
    elif kind == "images":
        sel = s.get("dataset_selection") or {}
        notes.append(f"Top-1 and top-5 accuracy over {sel.get('rows', '?')} of {sel.get('of', '?')} images "
                     f"({sel.get('method', '?')}, seed {sel.get('seed')}, rows sha256 {sel.get('rows_sha256')}) at "
                     "batch 1, each image alone; pixels from the model's own image processor (made once, in the "
                     "parent: image decoding and resizing are outside every timer); top-5 only for models with more "
                     f"than 5 classes; throughput from a separate pass at batch {s.get('batch_size')}; latency at "
                     f"batch 1 over {s.get('latency_samples')} requests. Agreement: top-1 agreement with the "
                     "reference. --max-accuracy-drop is checked on the rows (Ship this, validate), not searched.")
    else:
        notes.append(f"Perplexity: first {s.get('eval_tokens')} tokens, window {s.get('window')}, "
                     f"stride {s.get('stride')}, each scored token weighted equally; identical for "
                     f"torch and ONNX. Generation: greedy, {s.get('max_new_tokens')} new tokens for "
                     "each of 4 fixed prompts, batch 1, in 3 passes; TTFT = prompt pass (n = 12); decode "
                     "tokens/s over the remaining tokens: the median pass, with the range of the passes "
                     "(decode_range). Agreement = next-token top-1 agreement with "
                     "the reference. perplexity_change_se_pct = the change's standard error, from how it moves "
                     "over blocks of 512+ scored tokens (an eighth of the text where that is less; each row's per-window log-likelihoods against the "
                     "reference's on the same windows: perplexity_windows): a row within about two of these of "
                     "a budget may fall on its other side on other text.")
        notes.append("genai-* rows (onnxruntime-genai's model builder): perplexity and agreement through "
                     "onnxruntime on the builder's model.onnx, with the same code as every ONNX row; "
                     "generation through onnxruntime-genai's Generator at the same thread count: TTFT = "
                     "append_tokens(prompt) plus the first token, decode = the remaining tokens (the "
                     "Generator's own greedy search and in-place KV buffers included). The other rows decode "
                     "through qonnx's greedy loop: ONNX rows with IO binding (the KV cache stays ONNX Runtime's "
                     "OrtValues between steps, though the exported graph writes a new present tensor each step), "
                     "torch rows with transformers' cache; each row's decode_loop names its loop: two loops, so "
                     "a genai row against an onnx row compares runtimes and loops together.")
        limit = s.get("max_perplexity_increase")
        asked = s.get("variants") or ["onnx-int4-weight"]  # the LM default matrix has no genai-int4-budget
        budgeted = [v for v in ("onnx-int4-weight", "genai-int4-budget")
                    if v in asked and (limit is not None or v == "genai-int4-budget")]
        if budgeted:
            rows = " and ".join(budgeted)
            where = s.get("validation") or "the demo's validation split"
            pct = 10.0 if limit is None else limit
            notes.append(f"Perplexity budget ({rows}): each layer role's weight format (4-bit in blocks of 32, 64 or "
                         "128, with zero points or symmetric where that pays on the CPU; 8-bit/128; or float; GPTQ codes "
                         "after a rotation of the residual stream where the graph allows it (the genai builder's), "
                         "else clip-searched codes, GPTQ's too for the head) chosen by its KL and its kernels' time measured on "
                         "the CPU it was built on, the fastest build whose perplexity on the validation "
                         f"text ({where}; never this eval corpus) is within +{pct:g} % of FP32 on that text; each "
                         "artifact's manifest holds the kernel table, the formats, the steps and a decode step of the "
                         "chosen build timed against the same graph in genai-int4's and genai-int8's formats. The "
                         "perplexity column is text the search never saw.")
    return notes


def timing_note(kind, s) -> str:
    n = s.get("rounds")
    if not n:
        return ("Speed ratios: from each row's own measuring pass, rows timed one after another (no interleaved "
                "rounds), so a change in the machine's load between rows is in the ratios.")
    work = ("greedy decode of every prompt (decode tokens/s over them all)" if kind == "lm" else
            "greedy generation of every source text (decode tokens/s over them all)" if kind == "seq2seq" else
            "the first 16 batch-1 latency requests (their summed ms)")
    return (f"Speed ratios: after measuring, every ok row's worker was loaded at once (each in its own process) "
            f"and timed in {n} interleaved rounds: in each round every row ran {work} in turn, alone on the CPU, "
            "the order rotating; speedup = the median over rounds of the per-round ratio to torch-fp32 on the same "
            "provider, with the range of those ratios (speedup_range). A row's timing field says how it was timed "
            "(sequential where memory or a failure kept it out of the rounds). Latency, TTFT and tokens/s columns "
            "are from each row's own measuring pass.")


def threads_note(s) -> str:
    if s.get("threads") is None and s.get("executor") == "ray":
        return ("each Ray node's usable cores (the cores its processes may run on, no more than the CPUs it gives "
                "Ray), so the count may differ from node to node: each row's threads says its own")
    return str(s.get("threads"))


def embedding_notes(s) -> list:
    sel = s.get("dataset_selection") or {}
    texts = sel.get("texts", sel.get("rows", "?"))
    pairs = f" from {sel.get('rows')} labelled pairs" if "texts" in sel else ""
    recipe = s.get("pooling") or {}
    notes = [f"Embeddings of {texts} distinct texts{pairs} ({sel.get('method', '?')} of {sel.get('of', '?')}, seed "
             f"{sel.get('seed')}, rows sha256 {sel.get('rows_sha256')}), each text alone (batch 1), pooled and "
             "normalized as the model folder says (sentence-transformers' modules.json and 1_Pooling/config.json; "
             f"mean pooling over the real tokens where it has none; here {recipe.get('source', '?')}, "
             f"{'normalized' if recipe.get('normalize') else 'not normalized'}; texts cut at "
             f"{recipe.get('max_length', '?')} tokens), by the same numpy code on every row's last hidden state; "
             f"throughput from a separate pass at batch {s.get('batch_size')}, latency at batch 1 "
             f"over {s.get('latency_samples')} requests (the model call: tokenization and pooling excluded).",
             "Against the reference's embeddings of the same texts: cosine of each text's embedding (mean, 5th "
             f"percentile, minimum); top-{TOP_K} overlap: every text as a query over the others, the share of its "
             f"top-{TOP_K} neighbours by cosine (k is one fewer than the texts where there are {TOP_K} or fewer) "
             "that are also the reference's, averaged; agreement: the share of queries whose nearest neighbour is "
             "the reference's; similarity Spearman: rank correlation of the cosine of every pair of texts with "
             "the reference's." + (" Label Spearman: the pair cosines against the pair file's scores, as STS "
                                    "benchmarks report it." if pairs else "")]
    limit = s.get("max_accuracy_drop")
    notes.append(f"Quality budget: {s.get('budget_metric', 'topk_overlap')}; "
                 + (f"this run's --max-accuracy-drop {limit:g} asks top-{TOP_K} overlap >= {1 - limit:g}. "
                    if limit is not None else f"this run set none (Ship this reads top-{TOP_K} overlap >= 0.95). ")
                 + "The builds are each method's plain recipe: the budget is checked on these rows, not searched.")
    return notes


def family_notes(kind, s) -> list:
    """How a token classifier's or an extractive QA model's quality was measured."""
    sel = s.get("dataset_selection") or {}
    rows = (f"{sel.get('rows', '?')} of {sel.get('of', '?')} {'sentences' if kind == 'tokens' else 'questions'} "
            f"({sel.get('method', '?')}, seed {sel.get('seed')}, rows sha256 {sel.get('rows_sha256')})")
    if kind == "tokens":
        what = (f"Token classification over {rows}, each sentence alone (batch 1), tokenized from its words: each "
                "word's label is the argmax at its first sub-token; precision, recall and F1 over entities as seqeval "
                "computes them (IOB chunks, micro average; an entity counts only with its type, start and end); "
                "agreement: the share of words whose label is the reference's. A word past the model's token limit "
                "is predicted O (words_cut in the row).")
    else:
        win = s.get("qa_windows") or {}
        what = (f"Extractive QA over {rows}: each question with its context cut into windows of "
                f"{win.get('max_length', '?')} tokens overlapping by {win.get('doc_stride', '?')} (the transformers "
                "pipeline's doc_stride), all its windows in one call; the answer is the best span over the windows "
                f"(start + end logit, at most {win.get('max_answer_len', '?')} tokens, in the context). Exact match "
                "and F1 as SQuAD's evaluation script (lowercase, punctuation and a/an/the removed, whitespace "
                "collapsed; the best over the reference answers); agreement: the share of questions whose answer "
                "span is the reference's.")
    limit = s.get("max_accuracy_drop")
    return [what + f" Throughput from a separate pass at batch {s.get('batch_size')}; latency at batch 1 over "
            f"{s.get('latency_samples')} requests (the model call only).",
            f"Quality budget: {s.get('budget_metric', 'f1')}; "
            + (f"this run's --max-accuracy-drop {limit:g}. " if limit is not None else
               "this run set none (Ship this reads an f1 drop <= 0.01). ")
            + "The builds are each method's plain recipe: the budget is checked on these rows, not searched."]


def placement_note(s) -> str:
    if s.get("executor") == "ray":
        return ("Placement: rows measured on a Ray cluster (--executor ray), each in a worker process on the "
                "node its row names (node.hostname), with that node's environment; "
                + ("several rows at once per node (--concurrent-rows): they shared its cores."
                   if s.get("concurrent_rows") else "one row at a time per node: never two timed at once."))
    if s.get("concurrent_rows"):
        return (f"Placement: several rows measured at once on this machine (--concurrent-rows), each in its own "
                f"worker process at {s.get('threads')} thread(s): they shared its cores and memory bandwidth, "
                "so timings and throughput are lower than a row measured alone would show.")
    return "Placement: rows measured one at a time, each in its own worker process on this machine."
