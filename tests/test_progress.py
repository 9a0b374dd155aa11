"""Long work reports progress with an estimate also when stderr is not a terminal (a log, CI)."""
import logging

from qonnx.progress import progress


def test_progress_logs_when_not_a_terminal(caplog):
    with caplog.at_level(logging.INFO, logger="qonnx.progress"), progress() as bar:
        assert not bar.console.is_terminal  # pytest captures stderr
        task = bar.add_task("fine-tuning demo:sentiment", total=25)
        for _ in range(25):
            bar.advance(task)
    lines = [r.getMessage() for r in caplog.records if r.name == "qonnx.progress"]
    assert 8 <= len(lines) <= 11, lines  # about every tenth, not every step
    assert lines[-1].startswith("fine-tuning demo:sentiment: 25/25, ") and "left" in lines[-1]
