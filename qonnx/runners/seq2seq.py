"""Encoder-decoder models (T5, BART, Marian): greedy generation through transformers' generate() on both
runtimes, PyTorch (AutoModelForSeq2SeqLM) and ONNX Runtime (optimum's ORTModelForSeq2SeqLM over the
exported encoder and decoder-with-past sessions). One loop, two backends: the rows differ only in what
runs the encoder and each decoder step.
"""
import time
from pathlib import Path

import numpy as np

from qonnx.errors import ModelError
from qonnx.runners.base import Runner
from qonnx.runners.ort import PROVIDERS, provider_problem
from qonnx.runners.torch import load_model, stored_mb

MERGED = "decoder_model_merged.onnx"
UNMERGED = ("decoder_model.onnx", "decoder_with_past_model.onnx")
ENCODER = "encoder_model.onnx"


def loaded_files(folder) -> list:
    """The .onnx files ONNX Runtime loads from a seq2seq folder: the encoder and the merged decoder where
    there is one (optimum's default), else the decoder and the decoder with past."""
    folder = Path(folder)
    names = [ENCODER, MERGED] if (folder / MERGED).is_file() else [ENCODER, *UNMERGED]
    return [folder / n for n in names if (folder / n).is_file()]


def folder_of(path) -> Path:
    """A job's model path (an artifact's model.onnx, or the model folder) as the folder it names."""
    path = Path(path)
    return path if path.is_dir() else path.parent


class Seq2SeqRunner(Runner):
    decode_loop = "transformers' generate(do_sample=False), its own KV cache (ONNX: optimum's ORTModelForSeq2SeqLM)"

    def __init__(self, path, runtime, task, mode="fp32", provider="cpu", threads=None):
        self.path, self.runtime, self.task, self.mode = folder_of(path), runtime, task, mode
        self.provider, self.threads = provider, threads
        self.device = "cuda" if provider == "cuda" else "cpu"
        self.name = f"{runtime}-{mode}[{provider}]"

    def import_runtime(self):
        import torch  # noqa: F401
        import transformers  # noqa: F401

        if self.runtime == "onnx":
            import optimum.onnxruntime  # noqa: F401

    def load(self):
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        if self.runtime != "onnx":
            self.model = load_model(self.path, self.task, self.mode, self.device)
            return self
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForSeq2SeqLM

        problem = provider_problem(self.provider)
        if problem:
            raise ModelError(problem)
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads, opts.inter_op_num_threads = self.threads, 1
        files = loaded_files(self.path)
        try:
            self.model = ORTModelForSeq2SeqLM.from_pretrained(
                self.path, provider=PROVIDERS[self.provider], session_options=opts, local_files_only=True,
                encoder_file_name=ENCODER, use_cache=True,  # a decoder file name would turn merging off
                **({"decoder_file_name": files[1].name, "decoder_with_past_file_name": files[2].name,
                    "use_merged": False} if len(files) > 2 else {"use_merged": True}))
        except Exception as e:
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise ModelError(f"ONNX Runtime cannot load the seq2seq model in {self.path}: {type(e).__name__}: "
                             f"{first}") from None
        return self

    def _tensors(self, batch):
        import torch

        return {k: torch.as_tensor(np.asarray(v, dtype=np.int64), device=self.device) for k, v in batch.items()
                if k in ("input_ids", "attention_mask", "decoder_input_ids")}

    def logits(self, batch):
        """Teacher-forced logits (batch holds decoder_input_ids): what parity compares."""
        import torch

        with torch.inference_mode():
            out = self.model(**self._tensors(batch)).logits
        return out.float().cpu().numpy()

    def generate(self, batch, new_tokens) -> np.ndarray:
        """Greedy ids after the decoder start token, exactly new_tokens of them (no early stop at EOS, so
        every row decodes the same number of steps)."""
        import torch

        with torch.inference_mode():
            out = self.model.generate(**self._tensors(batch), do_sample=False, num_beams=1, max_new_tokens=new_tokens,
                                      min_new_tokens=new_tokens)
        return out[:, 1:].cpu().numpy()

    def timed_generate(self, batch, new_tokens):
        """(ids, seconds to the first token, seconds of the whole generation): the first token is timed as
        its own generate() call of one token (encoder plus the first decoder step)."""
        self.synchronize()
        t0 = time.perf_counter()
        self.generate(batch, 1)
        self.synchronize()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids = self.generate(batch, new_tokens)
        self.synchronize()
        return ids, first, time.perf_counter() - t0

    def synchronize(self):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def close(self):
        self.model = None


class TorchSeq2SeqRunner(Seq2SeqRunner):
    """The PyTorch rows: their size is the saved state_dict (they have no file of their own)."""

    def stored_mb(self) -> float:
        return stored_mb(self.model)


def make(path, runtime, task, mode="fp32", provider="cpu", threads=None) -> Seq2SeqRunner:
    cls = Seq2SeqRunner if runtime == "onnx" else TorchSeq2SeqRunner
    return cls(path, runtime, task, mode, provider, threads)
