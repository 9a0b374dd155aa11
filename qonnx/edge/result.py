"""One target's answer: a verdict (pass / warn / fail), whether it was executed here or checked
statically, the sentences that explain it, and the measured figures."""
from dataclasses import dataclass, field

ORDER = ("pass", "warn", "fail")


@dataclass
class TargetResult:
    target: str
    executed: bool               # True: the target's runtime ran the model on this machine
    verdict: str = "pass"
    reasons: list = field(default_factory=list)
    unsupported_ops: list = field(default_factory=list)
    partitions: int | None = None
    figures: dict = field(default_factory=dict)

    def note(self, sentence):
        """A sentence that explains without changing the verdict."""
        self.reasons.append(sentence)

    def warn(self, sentence):
        self._worse("warn", sentence)

    def fail(self, sentence):
        self._worse("fail", sentence)

    def _worse(self, verdict, sentence):
        if ORDER.index(verdict) > ORDER.index(self.verdict):
            self.verdict = verdict
        self.reasons.append(f"{verdict.upper()}: {sentence}")

    def lacks(self, ops, why):
        """Ops the target cannot run: listed by name, and a failed verdict."""
        ops = sorted(set(ops) - set(self.unsupported_ops))
        if ops:
            self.unsupported_ops = sorted({*self.unsupported_ops, *ops})
            self.fail(f"{why}: {', '.join(ops)}.")

    @property
    def how(self) -> str:
        return "executed here" if self.executed else "checked statically"

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "executed": self.executed, "how": self.how,
                "unsupported_ops": self.unsupported_ops, "partitions": self.partitions,
                "reasons": self.reasons, **self.figures}
