"""Tiny random models built from configs at test time (no hub, no downloads)."""
import re

import pytest

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


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-bert")
    tok = _tokenizer(folder)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=256, num_labels=2,
                     id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    BertForSequenceClassification(cfg).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tok = _tokenizer(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                      pad_token_id=0, bos_token_id=2, eos_token_id=3, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_classifier_onnx(tiny_classifier, tmp_path_factory):
    from qonnx.config import ExportConfig
    from qonnx.export import export

    out = tmp_path_factory.mktemp("exports") / "tiny-bert-onnx"
    export(ExportConfig(model=str(tiny_classifier), output=out))
    return out


@pytest.fixture(scope="session")
def tiny_lm_onnx(tiny_lm, tmp_path_factory):
    from qonnx.config import ExportConfig
    from qonnx.export import export

    out = tmp_path_factory.mktemp("exports") / "tiny-llama-onnx"
    export(ExportConfig(model=str(tiny_lm), output=out))
    return out


# -- nothing may appear outside a command's output folder and cache -----------------------------

def _repo_state():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
                          cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        return None
    return "\n".join(ln for ln in done.stdout.splitlines() if "__pycache__" not in ln)


@pytest.fixture(scope="session", autouse=True)
def clean_session(tmp_path_factory):
    """The whole session runs in an empty directory with the artifact store in a temporary one;
    at the end that directory is still empty and the repository holds no new file."""
    import os

    before = _repo_state()
    cwd = tmp_path_factory.mktemp("session-cwd")
    old_cwd, old_store = os.getcwd(), os.environ.get("QONNX_ARTIFACTS")
    os.environ["QONNX_ARTIFACTS"] = str(tmp_path_factory.mktemp("store"))
    os.chdir(cwd)
    yield
    os.chdir(old_cwd)
    if old_store is None:
        os.environ.pop("QONNX_ARTIFACTS", None)
    else:
        os.environ["QONNX_ARTIFACTS"] = old_store
    assert not list(cwd.iterdir()), f"tests left files in the working directory: {list(cwd.iterdir())}"
    after = _repo_state()
    assert before == after, f"the test session wrote into the repository:\n{after}"


@pytest.fixture(autouse=True)
def clean_cwd(tmp_path_factory, monkeypatch):
    """Every test runs in a fresh empty directory and must leave it empty."""
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    yield
    left = sorted(p.name for p in cwd.iterdir())
    assert not left, f"the test wrote into the working directory: {left}"
