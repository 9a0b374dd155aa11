"""PyTorch eager runner: FP32, FP16, BF16, dynamic INT8 (torch.ao) and bitsandbytes NF4."""
import io
import json
import logging
from pathlib import Path

import numpy as np

from qonnx.errors import ConfigError, ModelError
from qonnx.heads import QA, TASKS, TOKENS
from qonnx.models import is_embeddings_task, is_images_task, is_lm_task, is_seq2seq_task, load_pretrained
from qonnx.runners.base import Runner

log = logging.getLogger(__name__)

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def cuda_problem() -> str:
    import torch

    return "" if torch.cuda.is_available() else "torch sees no CUDA GPU on this machine"


def auto_class(task):
    import transformers

    if is_embeddings_task(task):
        return transformers.AutoModel  # the bare encoder: its last hidden state is pooled by the task
    heads = {TOKENS: transformers.AutoModelForTokenClassification, QA: transformers.AutoModelForQuestionAnswering}
    if TASKS.get(task, task) in heads:
        return heads[TASKS.get(task, task)]
    if is_images_task(task):
        return transformers.AutoModelForImageClassification
    if is_seq2seq_task(task):
        return transformers.AutoModelForSeq2SeqLM
    return (transformers.AutoModelForCausalLM if is_lm_task(task)
            else transformers.AutoModelForSequenceClassification)


def unused_weights(task) -> tuple:
    """Prefixes of weights the task never reads: an embedding model's pooler (it reads the last
    hidden state), which a sentence-transformers checkpoint may lack."""
    return ("pooler.",) if is_embeddings_task(task) else ()


def modeling_class(path):
    """The class config.json's `architectures` names (importing its modeling module), or None."""
    import transformers

    try:
        names = json.loads((Path(path) / "config.json").read_text()).get("architectures") or []
        return getattr(transformers, names[0], None) if names else None
    except (OSError, ValueError, ImportError, AttributeError):
        return None


def unsafe_pickle(e) -> bool:
    """Whether a loading error comes from torch's weights-only unpickler refusing a checkpoint
    (transformers reports it as a TF 2.0 hint)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e).__name__ == "UnpicklingError" or "weights_only" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def load_model(path, task, mode="fp32", device="cpu"):
    """Load a Hugging Face model in one of the torch modes, on device, in eval mode."""
    import torch

    cls = auto_class(task)
    kw = {"unused": unused_weights(task)}
    if mode == "bnb-int4":
        from transformers import BitsAndBytesConfig

        compute = torch.float16 if device == "cuda" else torch.float32
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_compute_dtype=compute)
        model = load_pretrained(cls, path, quantization_config=q, device_map=device,
                                dtype=compute, **kw)
        _bnb_cpu_packing(model)
    elif mode == "int8-dynamic":
        if device != "cpu":
            raise ConfigError("torch dynamic INT8 runs on the CPU only")
        model = load_pretrained(cls, path, dtype=torch.float32, **kw)
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    else:
        model = load_pretrained(cls, path, dtype=getattr(torch, DTYPES[mode]), **kw).to(device)
    return model.eval()


def _bnb_cpu_packing(model):
    """bitsandbytes (0.50) repacks 4-bit weights for its AVX512-BF16 CPU kernel on the first call and
    fails there, with a bare reshape error, on a layer whose input width is not a multiple of its
    64-wide block or whose output is not one of 32: say so by name instead."""
    odd = [(name, m.in_features, m.out_features) for name, m in model.named_modules()
           if getattr(m, "support_avx512bf16_for_cpu", False) and hasattr(m, "in_features")
           and (m.in_features % 64 or m.out_features % 32)]
    if odd:
        from importlib.metadata import version

        name, k, n = odd[0]
        raise ModelError(f"bitsandbytes {version('bitsandbytes')} cannot run this model with its AVX512-BF16 CPU "
                         f"kernel: {len(odd)} layer(s) are not multiples of its 64x32 blocks (e.g. {name}: "
                         f"{k} inputs, {n} outputs); run bnb-int4 on CUDA or on a CPU without AVX512-BF16")


class _Counter(io.RawIOBase):
    """A file that only counts the bytes written to it."""

    def __init__(self):
        self.bytes = 0

    def writable(self):
        return True

    def write(self, b):
        self.bytes += len(b)
        return len(b)


def stored_mb(model) -> float:
    """MiB of `torch.save(model.state_dict())`: every tensor the model holds, packed INT8 Linear
    weights included (transformers' get_memory_footprint does not see `_packed_params`), each
    shared (tied) tensor once."""
    import torch

    out = _Counter()
    torch.save(model.state_dict(), out)
    return out.bytes / 2**20


class TorchRunner(Runner):
    decode_loop = "qonnx's greedy loop, transformers' own KV cache"

    def __init__(self, path, task, mode="fp32", device="cpu", threads=None):
        self.path, self.task, self.mode, self.device, self.threads = path, task, mode, device, threads
        self.name = f"torch-{mode}[{device}]"

    def import_runtime(self):
        import torch  # noqa: F401

        auto_class(self.task)  # transformers and its auto classes
        modeling_class(self.path)  # and the model's own module, which transformers imports lazily

    def load(self):
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        if self.device == "cuda" and cuda_problem():
            raise ConfigError(cuda_problem())
        try:
            self.model = load_model(self.path, self.task, self.mode, self.device)
        except (OSError, ImportError, RuntimeError, TypeError, ValueError) as e:
            if unsafe_pickle(e):
                raise ModelError(f"Cannot load {self.path} in PyTorch: its checkpoint is a pickle that torch's safe "
                                 "loader refuses (weights_only: it holds more than tensors, possibly code); qonnx never "
                                 "runs it. Use a safetensors copy of the model.") from None
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise ModelError(f"Cannot load {self.path} in PyTorch ({type(e).__name__}: {first}).") from None
        import inspect

        # feed only what forward() takes: DistilBERT has no token_type_ids, BERT tokenizers emit them
        self.accepts = set(inspect.signature(self.model.forward).parameters)
        return self

    def _tensors(self, batch):
        import torch

        out = {}
        for k, v in batch.items():  # token ids as int64; pixels in the model's own dtype (fp16 rows: fp16)
            v = np.asarray(v)
            out[k] = (torch.as_tensor(v, device=self.device).to(self.model.dtype) if v.dtype.kind == "f"
                      else torch.as_tensor(v.astype(np.int64, copy=False), device=self.device))
        return out

    def logits(self, batch):
        import torch

        with torch.inference_mode():
            out = self.model(**self._tensors({k: v for k, v in batch.items() if k in self.accepts})).logits
        return out.float().cpu().numpy()

    def hidden(self, batch):
        """The encoder's last hidden state (embedding models), as float32 numpy."""
        import torch

        with torch.inference_mode():
            out = self.model(**self._tensors({k: v for k, v in batch.items() if k in self.accepts}))
        return out.last_hidden_state.float().cpu().numpy()

    def spans(self, batch):
        """(start_logits, end_logits) of an extractive QA model, as float32 numpy."""
        import torch

        with torch.inference_mode():
            out = self.model(**self._tensors({k: v for k, v in batch.items() if k in self.accepts}))
        return out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()

    def step(self, input_ids, attention_mask, past=None):
        import torch

        t = self._tensors({"input_ids": input_ids, "attention_mask": attention_mask})
        if "position_ids" in self.accepts:  # left padding: positions count real tokens only
            t["position_ids"] = (t["attention_mask"].cumsum(-1) - 1).clamp(min=0)[:, -t["input_ids"].shape[1]:]
        with torch.inference_mode():
            out = self.model(**t, past_key_values=past, use_cache=True)
        return out.logits.float().cpu().numpy(), out.past_key_values

    def synchronize(self):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def stored_mb(self) -> float:
        return stored_mb(self.model)

    def close(self):
        self.model = None
