"""One progress display for long work (rich), written to stderr so stdout stays parseable.

In a terminal: live bars with elapsed and remaining time. Elsewhere (a log file, CI, `make demo
2>&1 | tee`) rich draws nothing live, so each task also logs a line at every tenth of its total
and at least every 30 seconds, with the same elapsed and remaining estimate."""
import logging
import time
from contextlib import contextmanager

log = logging.getLogger("qonnx.progress")

LOG_EVERY_S = 30.0


def _clock(seconds) -> str:
    if seconds is None:
        return "?"
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


def _logged(base):
    class Logged(base):
        """rich's Progress that also logs, when its console is not a terminal."""

        _last: dict

        def _maybe_log(self, task_id):
            if self.console.is_terminal:
                return
            task = self._tasks[task_id]
            if not task.total:
                return
            now = time.monotonic()
            last_done, last_t = getattr(self, "_last", {}).get(task_id, (0, now))
            step = task.total / 10
            if task.completed >= task.total or task.completed - last_done >= step or now - last_t >= LOG_EVERY_S:
                self._last = {**getattr(self, "_last", {}), task_id: (task.completed, now)}
                log.info("%s: %d/%d, %s elapsed, about %s left", task.description, task.completed, task.total,
                         _clock(task.elapsed), _clock(task.time_remaining))

        def advance(self, task_id, advance=1):
            super().advance(task_id, advance)
            self._maybe_log(task_id)

    return Logged


@contextmanager
def progress():
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with _logged(Progress)(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn(), TimeRemainingColumn(),
                           console=Console(stderr=True)) as bar:
        yield bar
