"""ONNX Runtime runner: one InferenceSession on a named provider with a fixed thread count."""
import logging

import numpy as np

from ..errors import ConfigError, ModelError
from .base import Runner

log = logging.getLogger(__name__)

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def available_providers():
    import onnxruntime as ort

    return ort.get_available_providers()


def provider_problem(provider: str) -> str:
    """'' when the ORT provider can run here, else the reason it cannot."""
    if provider not in PROVIDERS:
        return f"unknown provider '{provider}' (choose from {', '.join(PROVIDERS)})"
    if PROVIDERS[provider] not in available_providers():
        from ..envinfo import ort_install_problem

        fix = ort_install_problem() or "install onnxruntime-gpu on a CUDA machine (make setup GPU=1)"
        return (f"ONNX Runtime here has no {PROVIDERS[provider]} (available: "
                f"{', '.join(available_providers())}); {fix}")
    return ""


def session(path, provider="cpu", threads=None, profile_placement=False):
    import onnxruntime as ort

    problem = provider_problem(provider)
    if problem:
        raise ConfigError(problem)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if profile_placement:
        opts.log_severity_level = 1  # INFO: ORT logs each node's provider assignment
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=[PROVIDERS[provider]])
    except Exception as e:
        raise ModelError(f"ONNX Runtime cannot load {path}: {str(e).splitlines()[0]}") from None
    if sess.get_providers()[0] != PROVIDERS[provider]:  # never a silent fallback
        raise ConfigError(f"ONNX Runtime fell back to {sess.get_providers()[0]} for {path}")
    return sess


class OrtRunner(Runner):
    def __init__(self, path, provider="cpu", threads=None, config=None):
        self.path, self.provider, self.threads, self.config = path, provider, threads, config or {}
        self.device = "cuda" if provider == "cuda" else "cpu"
        self.name = f"onnx[{provider}]"

    def import_runtime(self):
        import onnxruntime  # noqa: F401

    def load(self):
        self.sess = session(self.path, self.provider, self.threads)
        self.inputs = {i.name: i for i in self.sess.get_inputs()}
        self.outputs = [o.name for o in self.sess.get_outputs()]
        self.past_names = [n for n in self.inputs if n.startswith("past_key_values")]
        return self

    def _feed(self, batch):
        self.last_feed = {k: np.ascontiguousarray(v) for k, v in batch.items() if k in self.inputs}
        return self.last_feed

    def _run(self, names, feed):
        """Run the session. On CUDA through IO binding: the time includes the host->device copy
        of the inputs and the device->host copy of the outputs."""
        if self.provider != "cuda":
            return self.sess.run(names, feed)
        binding = self.sess.io_binding()
        for k, v in feed.items():
            binding.bind_cpu_input(k, v)
        for n in names or self.outputs:
            binding.bind_output(n, "cuda")
        self.sess.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def logits(self, batch):
        batch = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}
        if "token_type_ids" in self.inputs and "token_type_ids" not in batch:  # the graph wants it
            batch["token_type_ids"] = np.zeros_like(batch["input_ids"])
        feed = self._feed(batch)
        return self._run([self.outputs[0]], feed)[0].astype(np.float32)

    # -- causal LM ---------------------------------------------------------------------------
    def empty_past(self, batch_size):
        """Zero-length key/value inputs, shaped from the graph itself (never from raw config keys,
        which differ between architectures: GPT-2 says n_head)."""
        return empty_past(self.sess.get_inputs(), batch_size, self.config)

    def step(self, input_ids, attention_mask, past=None):
        """Feed new tokens (with the mask over past+new); return (logits, present)."""
        input_ids = np.asarray(input_ids, dtype=np.int64)
        attention_mask = np.asarray(attention_mask, dtype=np.int64)
        past = past if past is not None else self.empty_past(input_ids.shape[0])
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, **past}
        if "position_ids" in self.inputs:
            pos = np.cumsum(attention_mask, axis=1) - 1
            feed["position_ids"] = np.clip(pos[:, -input_ids.shape[1]:], 0, None)
        out = self._run(None, self._feed(feed))
        named = dict(zip(self.outputs, out))
        present = {n.replace("present", "past_key_values"): v for n, v in named.items()
                   if n.startswith("present")}
        return named["logits"].astype(np.float32), present

    def close(self):
        self.sess = None


def kv_dims(config: dict):
    """(key/value heads, head size) from a config through transformers' attribute names."""
    def first(*keys):
        return next((config[k] for k in keys if config.get(k)), None)

    heads = first("num_attention_heads", "n_head", "num_heads", "n_heads")
    kv = first("num_key_value_heads", "multi_query_group_num") or heads
    hidden = first("hidden_size", "n_embd", "d_model")
    head_dim = first("head_dim") or (hidden // heads if hidden and heads else None)
    return kv, head_dim


def empty_past(inputs, batch_size, config=None):
    """{past input name: zeros of shape (batch, kv heads, 0, head size)} for every past input of a
    session; static dims come from the graph, symbolic ones from the config."""
    out = {}
    for i in inputs:
        if not i.name.startswith("past_key_values"):
            continue
        dims = list(i.shape)
        if len(dims) != 4:
            raise ModelError(f"unexpected past input {i.name} of shape {dims}")
        kv, head_dim = kv_dims(config or {})
        heads = dims[1] if isinstance(dims[1], int) else kv
        size = dims[3] if isinstance(dims[3], int) else head_dim
        if heads is None or size is None:
            raise ModelError(f"cannot tell the shape of {i.name} ({dims}) from the graph or the config")
        dtype = np.float16 if "float16" in i.type else np.float32
        out[i.name] = np.zeros((batch_size, heads, 0, size), dtype=dtype)
    return out


def placement(path, provider, feed):
    """Which provider ran each node, read from an ORT profile of one run: under CUDA, nodes
    that ONNX Runtime placed on the CPU (common for INT8) are listed by op type."""
    import json
    import os
    import tempfile
    from collections import Counter

    import onnxruntime as ort

    opts = ort.SessionOptions()
    with tempfile.TemporaryDirectory() as tmp:
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "profile")
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=[PROVIDERS[provider]])
        sess.run(None, feed)
        events = json.load(open(sess.end_profiling()))
    by_node = {}
    for e in events:
        args = e.get("args", {})
        if e.get("cat") == "Node" and "provider" in args:
            by_node[e["name"].rsplit("_kernel_time", 1)[0]] = (args["provider"], args.get("op_name", "?"))
    counts = Counter(p for p, _ in by_node.values())
    on_cpu = Counter(op for p, op in by_node.values() if p == "CPUExecutionProvider")
    return {"nodes_by_provider": dict(counts),
            "cpu_nodes": sum(on_cpu.values()) if provider != "cpu" else 0,
            "cpu_op_types": dict(on_cpu) if provider != "cpu" else {}}
