"""Tiny random models of many architectures, built from configs (no hub, no downloads).

Every model shares one small WordPiece tokenizer (_tokenizer), which emits token_type_ids: exactly
what trips a model whose forward() does not take them (DistilBERT). tests/conftest.py's fixtures
build from here; tests import the builders from here too (`from tiny import tiny_bert`).
"""
import re
from pathlib import Path

# 64 wide: bitsandbytes 0.50 fails on CPU layers with fewer inputs (seen on an AVX-512 machine)
H, LAYERS, HEADS, FFN = 64, 2, 4, 128
LABELS = {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}
LM_IDS = {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}

WORDS = sorted(set(re.findall(r"[a-z]+", """
the film was a delight from start to finish i would not recommend this restaurant to anyone
service slow and food cold quarterly revenue rose by four percent slightly below what analysts
had expected while operating costs held steady across every region company reports on it rained
all day after years of delays new bridge finally opened traffic monday morning commuters both
sides river said shorter journey been worth wait city officials promised that old ferry would
continue for tourists bad at honestly committee will publish its findings next spring boring
predictable overlong mess movie good great awful fine love hate""")))
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _tokenizer(folder):
    from transformers import BertTokenizerFast

    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(SPECIAL + WORDS + list("abcdefghijklmnopqrstuvwxyz.,;'!?")) + "\n")
    tok = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    tok.save_pretrained(folder)
    return tok


def tiny_bert(folder, head="BertForSequenceClassification", **config):
    """A tiny two-label BERT with `head`, seeded, saved with its tokenizer into folder."""
    import torch
    import transformers

    tok = _tokenizer(folder)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(**{**dict(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=256, num_labels=2, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1}), **config})
    getattr(transformers, head)(cfg).eval().save_pretrained(folder)
    return folder


def _configs(vocab):
    import transformers as t

    common = dict(vocab_size=vocab, hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                  intermediate_size=FFN, max_position_embeddings=256)
    lm = dict(common, max_position_embeddings=512, tie_word_embeddings=True, **LM_IDS)
    return {
        "bert": (t.BertConfig, t.BertForSequenceClassification, dict(common, **LABELS)),
        "distilbert": (t.DistilBertConfig, t.DistilBertForSequenceClassification,
                       dict(vocab_size=vocab, dim=H, n_layers=LAYERS, n_heads=HEADS, hidden_dim=FFN,
                            max_position_embeddings=256, **LABELS)),
        "roberta": (t.RobertaConfig, t.RobertaForSequenceClassification,
                    dict(common, pad_token_id=0, max_position_embeddings=258, **LABELS)),
        "deberta-v2": (t.DebertaV2Config, t.DebertaV2ForSequenceClassification, dict(common, **LABELS)),
        "albert": (t.AlbertConfig, t.AlbertForSequenceClassification, dict(common, embedding_size=H, **LABELS)),
        "electra": (t.ElectraConfig, t.ElectraForSequenceClassification, dict(common, embedding_size=H, **LABELS)),
        "gpt2": (t.GPT2Config, t.GPT2LMHeadModel,
                 dict(vocab_size=vocab, n_embd=H, n_layer=LAYERS, n_head=HEADS, n_positions=512, **LM_IDS)),
        "llama": (t.LlamaConfig, t.LlamaForCausalLM, dict(lm, hidden_size=64, intermediate_size=128,
                                                           num_key_value_heads=2)),
        "qwen2": (t.Qwen2Config, t.Qwen2ForCausalLM, dict(lm, hidden_size=64, intermediate_size=128,
                                                           num_key_value_heads=2)),
        "phi3": (t.Phi3Config, t.Phi3ForCausalLM, dict(lm, hidden_size=64, intermediate_size=128,
                                                        num_key_value_heads=4, tie_word_embeddings=False,
                                                        # as Phi-3-mini-4k: no LongRoPE scaling
                                                        original_max_position_embeddings=512)),
        "mistral": (t.MistralConfig, t.MistralForCausalLM, dict(lm, hidden_size=64, intermediate_size=128,
                                                                 num_key_value_heads=2, sliding_window=None)),
        "gemma": (t.GemmaConfig, t.GemmaForCausalLM, dict(lm, hidden_size=64, intermediate_size=128,
                                                           num_key_value_heads=2, head_dim=16)),
    }


CLASSIFIERS = ["bert", "distilbert", "roberta", "deberta-v2", "albert", "electra"]
LMS = ["gpt2", "llama", "qwen2", "phi3", "mistral", "gemma"]


def build(arch: str, folder: Path) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(folder)
    config_cls, model_cls, kwargs = _configs(len(tok))[arch]
    torch.manual_seed(0)
    model_cls(config_cls(**kwargs)).eval().save_pretrained(folder)
    return folder


def tiny_sentence_transformer(folder, modes=("mean",), normalize=True, **config):
    """A tiny BertModel in a sentence-transformers folder layout: modules.json (Transformer, Pooling,
    Normalize where asked), 1_Pooling/config.json with `modes` on, sentence_bert_config.json."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    # 64 wide: bitsandbytes 0.50's AVX512-BF16 CPU path cannot pack a Linear narrower than its 64-wide block
    tiny_bert(folder, "BertModel", **{"hidden_size": 64, "intermediate_size": 128, **config})
    flags = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens", "mean": "pooling_mode_mean_tokens",
             "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens", "lasttoken": "pooling_mode_lasttoken"}
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules, indent=2))
    (folder / "1_Pooling").mkdir()
    hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": hidden, **{f: m in modes for m, f in flags.items()}}, indent=2))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    return folder


NER = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def tiny_head(arch, head, folder, **config):
    """A tiny BERT or DistilBERT with transformers' `head` class (TokenClassification: the NER label
    set above; QuestionAnswering), seeded, saved with its tokenizer (a fast one: word ids, offsets)."""
    import torch
    import transformers as t

    folder.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(folder)
    labels = {"id2label": dict(enumerate(NER)), "label2id": {n: i for i, n in enumerate(NER)}} \
        if head == "TokenClassification" else {}
    vocab = max(tok.get_vocab().values()) + 1  # the vocab file repeats a letter or two: len(tok) is short of the top id
    config_cls, kwargs = {
        "bert": (t.BertConfig, dict(vocab_size=vocab, hidden_size=H, num_hidden_layers=LAYERS,
                                    num_attention_heads=HEADS, intermediate_size=FFN, max_position_embeddings=256)),
        "distilbert": (t.DistilBertConfig, dict(vocab_size=vocab, dim=H, n_layers=LAYERS, n_heads=HEADS,
                                                hidden_dim=FFN, max_position_embeddings=256))}[arch]
    model_cls = getattr(t, {"bert": "Bert", "distilbert": "DistilBert"}[arch] + "For" + head)
    torch.manual_seed(0)
    model_cls(config_cls(**{**kwargs, **labels, **config})).eval().save_pretrained(folder)
    return folder


def fake_kernels(counts, us, cpu=None):
    """A kernel table as qonnx.variants.search.kernels.measure returns it, with made-up times:
    counts {(K, N): how many MatMuls}, us {format: microseconds per K x N / 1000} (each kernel's
    figure scales with its weights), cpu {"model", "flags"} (default: a made-up AVX2 EPYC)."""
    rows = [{"K": K, "N": N, "count": c, "format": f, "us": t * K * N / 1000, "us_min": t * K * N / 1000, "us_next": t * K * N / 1000,
             "us_median": t * K * N / 1000,
             "us_range": [t * K * N / 1000] * 2} for (K, N), c in counts.items() for f, t in us.items()]
    return {"cpu": cpu or {"model": "AMD EPYC (fake)", "flags": ["AVX2"]}, "threads": 1, "rounds": 1, "calls": 1,
            "onnxruntime": "fake", "kernels": rows}


def write_jsonl(path, rows):
    """rows (dicts) as a jsonl file at path; returns path."""
    import json

    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def part_and_whole_kls(model_file, config, work, rotated=False, head_from=None):
    """{unit: (KL of its logits computed by the part of the graph downstream of it (search.probe),
    KL of the whole build's, the part's node count)} for each unit of an LM graph in 4-bit/32 by
    its first recipe, everything else 8-bit/128: what the budget search measures, both ways.
    head_from: the head split by token ranges, the first ending there (search.vocab)."""
    import onnx

    from qonnx.measure.deviation import kl
    from qonnx.variants.rotation import rotate
    from qonnx.variants.search.lm_rank import base_plan, layer_units, window_logits
    from qonnx.variants.search.mixed import MixedBuilder
    from qonnx.variants.search.probe import PartProbe
    from qonnx.variants.search.vocab import split_head

    model = onnx.load(str(model_file))
    if rotated:
        assert rotate(model)[0] is not None
    if head_from:
        assert split_head(model, head_from) is not None
    ids = [i % 50 + 5 for i in range(200)]
    builder = MixedBuilder(model, ids, config, {"8-bit/128": (8, 128), "4-bit/32": (4, 32)}, samples=2, length=64,
                           rotated=rotated)
    units, base, probe = layer_units(builder.nodes), base_plan(builder, "8-bit/128"), ids[:48]
    ref = window_logits(model_file, probe, 1, config)
    part = PartProbe(builder, base, probe, 1, config, work, units.values())
    out = {}
    for u, names in units.items():
        plan = {**base, **dict.fromkeys(names, ("4-bit/32", builder.recipes("4-bit/32", names)[0]))}
        whole = window_logits(builder.build(plan, Path(work) / "whole.onnx"), probe, 1, config)
        out[u] = (kl(ref, part.logits(plan, names)), kl(ref, whole), len(part._part(names)[0]))
    return out
