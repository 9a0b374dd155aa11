class Runner:
    """Base lifecycle. Subclasses set `self.device` ('cpu' or 'cuda') and implement load/step."""

    name = "runner"
    device = "cpu"

    def load(self):
        raise NotImplementedError

    def logits(self, batch):
        raise NotImplementedError

    def step(self, input_ids, attention_mask, past=None):
        raise NotImplementedError

    def close(self):
        pass

    def synchronize(self):
        """Wait for queued device work so a timer around a call measures the call."""

    def __enter__(self):
        self.load()
        return self

    def __exit__(self, *exc):
        self.close()
