"""Runners own a model's lifecycle: load, run, close. TorchRunner and OrtRunner share one API.

- `logits(batch)` for a classifier: batch is a dict of numpy int64 arrays (input_ids,
  attention_mask, maybe token_type_ids) -> numpy float32 logits.
- `step(input_ids, attention_mask, past)` for a causal LM -> (last logits, all logits, new past).
"""
from qonnx.runners.base import Runner  # noqa: F401
