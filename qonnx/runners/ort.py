"""ONNX Runtime runner: one InferenceSession on a named provider with a fixed thread count."""
import logging

import numpy as np

from qonnx.envinfo import ort_install_problem
from qonnx.errors import ConfigError, ModelError
from qonnx.models import with_shape
from qonnx.runners.base import Runner

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


def as_input(v):
    """Token ids as int64, pixels (any float array) as float32: what every exported graph takes."""
    v = np.asarray(v)
    return v.astype(np.float32, copy=False) if v.dtype.kind == "f" else v.astype(np.int64, copy=False)


class OrtRunner(Runner):
    decode_loop = "qonnx's greedy loop, ONNX Runtime IO binding (the KV cache stays OrtValues between steps)"

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

    def _bound(self, feed, names=None) -> dict:
        """{output name: OrtValue on this runner's device} through IO binding: numpy inputs are
        copied in, OrtValues (a previous step's outputs) are passed as they are."""
        binding = self.sess.io_binding()
        for k, v in feed.items():
            if isinstance(v, np.ndarray):
                binding.bind_cpu_input(k, np.ascontiguousarray(v))
            else:
                binding.bind_ortvalue_input(k, v)
        names = names or self.outputs
        for n in names:
            binding.bind_output(n, self.device)
        self.sess.run_with_iobinding(binding)
        return dict(zip(names, binding.get_outputs()))

    def _run(self, names, feed):
        """Run the session. On CUDA through IO binding: the time includes the host->device copy
        of the inputs and the device->host copy of the outputs."""
        if self.provider != "cuda":
            return self.sess.run(names, feed)
        return [v.numpy() for v in self._bound(feed, names).values()]

    def logits(self, batch):
        return self._output(batch, self.outputs[0])

    def hidden(self, batch):
        """The encoder's last hidden state (a feature-extraction export's output)."""
        return self._output(batch, "last_hidden_state" if "last_hidden_state" in self.outputs else self.outputs[0])

    def spans(self, batch):
        """(start_logits, end_logits) of an extractive QA export, as float32 numpy."""
        return tuple(self._output(batch, "start_logits", "end_logits"))

    def _output(self, batch, *names):
        batch = {k: as_input(v) for k, v in batch.items()}
        if "token_type_ids" in self.inputs and "token_type_ids" not in batch:  # the graph wants it
            batch["token_type_ids"] = np.zeros_like(batch["input_ids"])
        feed = self._feed(batch)
        out = [v.astype(np.float32, copy=False) for v in self._run(list(names), feed)]  # no copy of float32
        return out[0] if len(names) == 1 else out

    # -- causal LM ---------------------------------------------------------------------------
    def empty_past(self, batch_size):
        """Zero-length key/value inputs, shaped from the graph itself (never from raw config keys,
        which differ between architectures: GPT-2 says n_head)."""
        return empty_past(self.sess.get_inputs(), batch_size, self.config)

    def step(self, input_ids, attention_mask, past=None):
        """Feed new tokens (with the mask over past+new); return (logits, present).

        Through IO binding on every provider: the present key/values stay ONNX Runtime's OrtValues
        (on the device, under CUDA) and go back in as the next step's past without a copy to numpy
        or to the host; only the logits come back as a numpy array. (The graph itself still writes
        a new present tensor each step: past + new, its Concat.)"""
        input_ids = np.asarray(input_ids, dtype=np.int64)
        attention_mask = np.asarray(attention_mask, dtype=np.int64)
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "position_ids" in self.inputs:
            pos = np.cumsum(attention_mask, axis=1) - 1
            feed["position_ids"] = np.clip(pos[:, -input_ids.shape[1]:], 0, None)
        if past is None:  # a prompt pass: its feed, all numpy, is the one placement() replays
            past = self.empty_past(input_ids.shape[0])
            feed = self._feed({**feed, **past})
        named = self._bound({k: v for k, v in {**feed, **past}.items() if k in self.inputs})
        present = {n.replace("present", "past_key_values", 1): v for n, v in named.items()
                   if n.startswith("present")}
        if set(present) != set(self.past_names):  # the next step feeds these back by name
            raise ModelError(f"{self.path}: the graph's present outputs {sorted(named)[:4]}... do not match "
                             f"its past inputs {self.past_names[:4]}...; export it with qonnx export.")
        logits = named["logits" if "logits" in named else self.outputs[0]].numpy()
        return logits.astype(np.float32, copy=False), present

    def close(self):
        self.sess = None


DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def kv_dims(config: dict):
    """(key/value heads, head size) through transformers' standard names (models.normalized_shape):
    num_key_value_heads where the model has it, else num_attention_heads; head_dim where the config
    has it, else hidden_size / heads. Never raw keys, which differ between architectures (GPT-2's
    n_head). A ModelSource's config has the standard names already (no transformers import here,
    so an ONNX worker stays free of it); a raw config.json is normalized on demand."""
    config = config or {}
    if "num_attention_heads" not in config and config.get("model_type"):
        config = with_shape(config)
    heads = config.get("num_attention_heads")
    kv = config.get("num_key_value_heads") or heads
    hidden = config.get("hidden_size")
    head_dim = config.get("head_dim") or (hidden // heads if hidden and heads else None)
    return kv, head_dim


def prompt_feed(inputs, ids, config=None) -> dict:
    """The feed of a causal LM graph's prompt pass over token ids [1, T] (no past): input_ids, a mask
    of ones, positions 0..T-1 where the graph takes them and empty past key/values, cut to the
    graph's inputs (a session's get_inputs())."""
    x = np.asarray(ids, dtype=np.int64)
    feed = {"input_ids": x, "attention_mask": np.ones_like(x),
            "position_ids": np.arange(x.shape[1], dtype=np.int64)[None], **empty_past(inputs, x.shape[0], config)}
    names = {i.name for i in inputs}
    return {k: v for k, v in feed.items() if k in names}


def empty_past(inputs, batch_size, config=None):
    """{past input name: zeros of shape (batch, kv heads, 0, head size)} for every past input of a
    session, in the session's own names and dtypes; static dims come from the graph, symbolic ones
    from the config."""
    out, dims_from_config = {}, None
    for i in inputs:
        if not i.name.startswith("past_key_values"):
            continue
        dims = list(i.shape)
        if len(dims) != 4:
            raise ModelError(f"unexpected past input {i.name} of shape {dims}")
        if not (isinstance(dims[1], int) and isinstance(dims[3], int)) and dims_from_config is None:
            dims_from_config = kv_dims(config)
        kv, head_dim = dims_from_config or (None, None)
        heads = dims[1] if isinstance(dims[1], int) else kv
        size = dims[3] if isinstance(dims[3], int) else head_dim
        if heads is None or size is None:
            raise ModelError(f"cannot tell the shape of {i.name} ({dims}) from the graph or the config")
        if i.type not in DTYPES:
            raise ModelError(f"past input {i.name} has type {i.type}; qonnx feeds float16/float32 caches")
        out[i.name] = np.zeros((batch_size, heads, 0, size), dtype=DTYPES[i.type])
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
