"""The worker's job: one (variant, provider) and every setting that reaches its runner, typed.

compare builds it from its CompareConfig and the built artifact; the worker process reads it
back from job.json. Each field says where it comes from, so a setting can be followed from the
CLI to the runner.
"""
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from qonnx.cache import write_json


@dataclass
class Job:
    variant: str                 # the row (choices.variant_names)
    runtime: str                 # torch | onnx | genai
    mode: str                    # the variant's torch mode or ONNX method
    provider: str                # cpu | cuda
    model_path: str              # the artifact's model.onnx, or the model folder for torch
    task: str                    # the model's transformers task
    kind: str                    # classification | lm | embeddings | tokens | qa (qonnx.tasks)
    config: dict                 # the model's config.json
    threads: int | None          # RuntimePart.threads: torch.set_num_threads == ORT intra_op_num_threads
                                 # (None until the Ray executor sets its node's usable cores)
    batch_size: int              # RuntimePart.batch_size
    latency_samples: int         # RuntimePart.latency_samples
    warmup: int                  # RuntimePart.warmup
    seed: int                    # DataPart.seed
    max_new_tokens: int          # LMEvalPart
    eval_tokens: int
    window: int
    stride: int
    batch_sizes: list = field(default_factory=list)       # RuntimePart: the latency curves
    sequence_lengths: list = field(default_factory=list)
    inputs_path: str = ""        # the token ids the parent prepared (inputs.npz)

    @classmethod
    def settings(cls, cfg, source, kind) -> dict:
        """The fields every row of one compare run shares, from its config and model."""
        shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls) if hasattr(cfg, f.name)}
        return {**shared, "task": source.task, "kind": kind, "config": source.config}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def write(self, path: Path):
        write_json(path, self.to_dict())

    @classmethod
    def read(cls, path) -> "Job":
        return cls(**json.loads(Path(path).read_text()))
