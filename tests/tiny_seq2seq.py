"""Tiny random encoder-decoder models (T5, BART) built from configs, with the tests' shared WordPiece
tokenizer (tiny._tokenizer), and a small source/reference table.

Weights are drawn with std 0.15 (seeded): at transformers' default initialisation a model this small
generates one token over and over, and every row would agree with FP32 whatever it computed."""
from pathlib import Path

from tiny import _tokenizer

SOURCES = ["the film was a delight from start to finish", "it rained all day",
           "the committee will publish its findings next spring", "the new bridge finally opened to traffic",
           "service slow and food cold", "quarterly revenue rose by four percent"]


def tiny_seq2seq(arch: str, folder: Path, layers: int = 2) -> Path:
    """A seeded T5ForConditionalGeneration or BartForConditionalGeneration, `layers` encoder and decoder layers
    (2 + 2 by default), 64 wide."""
    import torch
    import transformers as t

    folder.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(folder)
    torch.manual_seed(0)
    ids = dict(pad_token_id=0, eos_token_id=3, bos_token_id=2, decoder_start_token_id=0 if arch == "t5" else 2)
    if arch == "t5":
        model = t.T5ForConditionalGeneration(t.T5Config(vocab_size=len(tok), d_model=64, d_kv=16, d_ff=128,
                                                        num_layers=layers, num_heads=4, **ids))
    else:
        model = t.BartForConditionalGeneration(t.BartConfig(
            vocab_size=len(tok), d_model=64, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=4,
            decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=256,
            forced_eos_token_id=None, **ids))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.15)
    model.eval().save_pretrained(folder)
    return folder


def seq2seq_table(path: Path) -> Path:
    """A csv of source texts ('text') and references ('summary': each source's first and last word)."""
    import pandas as pd

    pd.DataFrame({"text": SOURCES, "summary": [f"{s.split()[0]} {s.split()[-1]}" for s in SOURCES]}).to_csv(
        path, index=False)
    return path
