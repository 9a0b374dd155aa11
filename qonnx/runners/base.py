"""Runners own a model's lifecycle (load / run / close) and the timing of its calls
(Polygraphy's BaseRunner): every timed number comes from `timed` or `latency` here."""
import time


class Runner:
    """Base lifecycle. Subclasses set `self.device` ('cpu' or 'cuda') and implement load and
    logits (classifiers), step (causal LMs) or hidden (embedding models: the last hidden state), spans (extractive QA)."""

    name = "runner"
    device = "cpu"
    decode_loop = "qonnx's greedy loop"  # which generation loop timed a causal LM's decode

    def import_runtime(self):
        """Import the runtime's libraries (before the memory baseline is taken)."""

    def load(self):
        raise NotImplementedError

    def logits(self, batch):
        raise NotImplementedError

    def step(self, input_ids, attention_mask, past=None):
        raise NotImplementedError

    def hidden(self, batch):
        raise NotImplementedError

    def spans(self, batch):
        """(start_logits, end_logits): extractive question answering."""
        raise NotImplementedError

    def close(self):
        pass

    def synchronize(self):
        """Wait for queued device work so a timer around a call measures the call."""

    def timed(self, fn, *args):
        """(fn(*args), seconds), device work included."""
        self.synchronize()
        t0 = time.perf_counter()
        out = fn(*args)
        self.synchronize()
        return out, time.perf_counter() - t0

    def latency(self, fn, inputs, warmup=5):
        """Seconds of fn(x) for each x, after `warmup` untimed calls."""
        for x in (inputs[:warmup] or inputs[:1]):
            fn(x)
        return [self.timed(fn, x)[1] for x in inputs]

    def __enter__(self):
        self.load()
        return self

    def __exit__(self, *exc):
        self.close()
