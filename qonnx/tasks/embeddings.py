"""Embeddings (feature-extraction): each text's sentence embedding at batch 1 (each text alone, as a
search service embeds a query), throughput from a batched pass, batch-1 latency.

The pooling recipe (qonnx.pooling: modules.json, 1_Pooling/config.json, Normalize; mean pooling
where the folder has none) is read once, in the parent, and travels with the token ids; the
worker applies it with the same numpy code to every runtime's last hidden state. Timings cover
the model call only (tokenization and pooling are outside the timer). Agreement with FP32 (cosine
per text, top-10 neighbours, Spearman of pair similarities) is worked out in the parent from the
saved embeddings (qonnx.measure.similarity); with labelled pairs (sentence1, sentence2, score) a
row also scores Spearman of its pair cosines against the labels, as STS benchmarks report it.
"""
import json

import numpy as np

from qonnx import pooling
from qonnx.data import TextData, check_texts, column, open_table, selection, stratified
from qonnx.errors import DataError
from qonnx.measure import shapes
from qonnx.measure.latency import Latency, batched_seconds
from qonnx.measure.similarity import TOP_K, against_reference, pair_cosines, spearman
from qonnx.tasks.classification import MAX_LENGTH, encode, group

# the figure a quality budget (--max-accuracy-drop) and "Ship this" hold embedding rows to
BUDGET_METRIC = (f"topk_overlap: the share of each text's top-{TOP_K} neighbours that are FP32's; "
                 "--max-accuracy-drop limits 1 - topk_overlap")
SENSITIVITY = {"columns": ("cosine_mean", "cosine_min", "cosine_distance", "topk_overlap", "agreement"),
               "damage": "cosine_distance", "scale": 1e4, "unit": "1 - mean cosine vs FP32, x1e-4", "reference": (),
               "about": f"mean and minimum cosine of each text's pooled embedding with FP32's (cosine_distance = 1 - "
                        f"the mean), top-{TOP_K} neighbour overlap and nearest-neighbour agreement with FP32's"}
PAIR_COLUMNS = ("sentence1", "sentence2")  # STS benchmarks' (and the hub's stsb sets') names
SCORE_COLUMNS = ("score", "label")


def read_data(spec: str, *, text_column="text", hub_config=None, split="test", max_samples=None,
              seed=0) -> TextData:
    """Texts for an embedding model: the distinct texts of `text_column`, or, where the table has
    sentence1 and sentence2 columns, labelled pairs (score, else label) and the distinct texts they
    hold. max_samples draws a seeded sample of texts (of pairs, for a pair table)."""
    table, source = open_table(spec, hub_config, split)
    if len(table) == 0:
        raise DataError(f"{source} has no rows.")
    if text_column not in table.columns and all(c in table.columns for c in PAIR_COLUMNS):
        score = next((c for c in SCORE_COLUMNS if c in table.columns), None)
        if score is None:
            raise DataError(f"{source} has {' and '.join(PAIR_COLUMNS)} but no score column "
                            f"({' or '.join(SCORE_COLUMNS)}): a pair file needs each pair's similarity label.")
        a, b = (check_texts(table[c].tolist(), source, c) for c in PAIR_COLUMNS)
        try:
            scores = [float(v) for v in table[score]]
        except (TypeError, ValueError):
            raise DataError(f"{source}: the {score} column holds values that are not numbers.") from None
        picked = stratified([0] * len(a), max_samples or len(a), seed)
        texts, index, pairs = [], {}, []
        for i in picked:
            for t in (a[i], b[i]):
                if t not in index:
                    index[t] = len(texts)
                    texts.append(t)
            pairs.append((index[a[i]], index[b[i]]))
        joined = [f"{a[i]}\t{b[i]}" for i in range(len(a))]
        chosen = selection(joined, scores, picked, len(a), seed, "seeded sample of pairs")
        return TextData(source=source, texts=texts, pairs=pairs, scores=[scores[i] for i in picked],
                        selection={**chosen, "texts": len(texts)})
    values = column(table, text_column, source, "text")
    texts = list(dict.fromkeys(check_texts(values.tolist(), source, text_column)))  # a repeat is one text
    picked = stratified([0] * len(texts), max_samples or len(texts), seed)
    chosen = selection(texts, [], picked, len(texts), seed, "seeded sample")
    return TextData(source=source, texts=[texts[i] for i in picked],
                    selection={**chosen, "duplicates_dropped": len(values) - len(texts)})


def recipe(folder) -> dict:
    """The model folder's pooling recipe (qonnx.pooling.read) and max_length, the tokens a text is cut
    at: sentence-transformers' max_seq_length, else MAX_LENGTH."""
    spec = pooling.read(folder)
    return {**spec, "max_length": spec["max_seq_length"] or MAX_LENGTH}


def settings(source) -> dict:
    """The run's settings this task adds: the pooling recipe and what the quality budget limits."""
    return {"pooling": recipe(source.path), "budget_metric": BUDGET_METRIC}


def prepare(tok, data, job) -> dict:
    spec = recipe(data["model_path"])
    length = spec["max_length"]
    texts = [t.lower() for t in data["texts"]] if spec["do_lower_case"] else list(data["texts"])
    bs, n = job.batch_size, job.latency_samples
    arrays = {"pooling": np.array(json.dumps(spec))}
    for b, i in enumerate(range(0, len(texts), bs)):
        arrays.update({f"batch{b:05d}.{k}": v for k, v in encode(tok, texts[i:i + bs], length).items()})
    for u in range(len(texts)):  # every text alone: the embeddings; batch-1 latency cycles through them
        arrays.update({f"single{u:05d}.{k}": v for k, v in encode(tok, [texts[u]], length).items()})
    arrays["request_order"] = np.arange(n, dtype=np.int64) % min(n, len(texts))
    if data.get("pairs"):
        arrays["pairs"] = np.asarray(data["pairs"], dtype=np.int64)
        arrays["scores"] = np.asarray(data["scores"], dtype=np.float64)
    if job.batch_sizes:
        arrays.update(shapes.classification_inputs(tok, texts, job.batch_sizes, job.sequence_lengths, n))
    return arrays


def spec_of(arrays) -> dict:
    return json.loads(str(arrays["pooling"]))


def embed(runner, batch, spec):
    return pooling.pool(runner.hidden(batch), batch["attention_mask"], spec)


def embeddings(runner, arrays):
    """Every text's pooled embedding, each text alone (batch 1)."""
    spec = spec_of(arrays)
    return np.concatenate([embed(runner, u, spec) for u in group(arrays, "single")])


def measure(runner, arrays, job):
    batches, unique = group(arrays, "batch"), group(arrays, "single")
    singles = [unique[i] for i in arrays["request_order"]]
    emb = embeddings(runner, arrays)  # quality: each text alone
    elapsed = batched_seconds(runner, runner.hidden, batches)
    seconds = runner.latency(runner.hidden, singles, job.warmup)
    result = {"shapes": shapes.measure(runner, arrays, call=runner.hidden) if job.batch_sizes else None,
              "throughput_per_s": len(unique) / elapsed,
              "latency_ms": Latency.from_values(seconds).to_dict(),
              "embedding_dim": int(emb.shape[1]), "outputs": emb}
    if "pairs" in arrays:
        result["label_spearman"] = spearman(pair_cosines(emb, arrays["pairs"]), arrays["scores"])
    return result


def sensitivity_outputs(runner, arrays, job):
    return embeddings(runner, arrays)


def sensitivity_metrics(ref, out, arrays) -> dict:
    """Agreement with FP32's embeddings of the same texts (qonnx.measure.similarity); with labelled
    pairs, Spearman of the pair cosines against the labels too."""
    found = against_reference(ref, out)
    m = {k: found[k] for k in ("cosine_mean", "cosine_min", "topk_overlap", "agreement")}
    m["cosine_distance"] = 1.0 - found["cosine_mean"]
    if "pairs" in arrays:
        m["label_spearman"] = spearman(pair_cosines(out, arrays["pairs"]), arrays["scores"])
    return m


def finish(tok, result):
    return result
