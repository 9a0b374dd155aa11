"""One process per variant, loaded at once: each loads its runner on its first request and then
answers requests over a pipe. A slow, hung or crashed variant times out or fails in its own
answer while the others answer. `qonnx ui` serves its variants through a Pool, and compare times
its rows in interleaved rounds through one (qonnx.run.rounds).

Timing is honest: every worker loads and warms up in parallel, then the parent lets one worker
at a time run its timed model call (the token is passed on when that call ends, or after TURN_S,
when the next one starts beside it and both answers say their CPU was shared).

Protocol, per request id: parent -> worker ("ask", rid, inputs), later ("go", rid, timing: whether
to wait for the threads of the worker that ran before to stop spinning, measure.latency.settle); worker ->
parent ("ready", rid, None) once loaded and warmed up, then ("answer", rid, result) or
("error", rid, reason). None stops a worker.
"""
import logging
import os
import queue
import threading
import time
from collections import deque
from multiprocessing import connection, get_context

from qonnx.errors import QonnxError
from qonnx.measure.latency import settle
from qonnx.run.worker import PARENT_ENV, die_with_parent, make_runner
from qonnx.tasks.lm import generate

log = logging.getLogger(__name__)

TURN_S = 10.0       # the longest one variant has the CPU to itself before the next one starts
STOP_WAIT_S = 3.0   # how long close() waits for a worker before killing it


# -- in the worker process ---------------------------------------------------------------------
def _reason(e) -> str:
    text = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
    return text if isinstance(e, QonnxError) else f"{type(e).__name__}: {text}"


def _call(runner, job, inputs):
    """(result, seconds of the model call) for one request; a "segment" request (a round of compare's
    interleaved timing) is several batch-1 calls timed one by one, their seconds summed."""
    if "segment" in inputs:
        call = {"embeddings": runner.hidden, "qa": runner.spans}.get(job.kind, runner.logits)
        runner.synchronize()
        seconds = sum(runner.timed(call, feed)[1] for feed in inputs["segment"])
        return {}, seconds
    if job.kind == "seq2seq":  # each source text generated in full: decode tokens/s over them all
        runs = [runner.timed_generate(p, inputs["new_tokens"]) for p in inputs["prompts"]]
        decode_s, decoded = sum(max(r[2] - r[1], 0.0) for r in runs), sum(len(r[0][0]) - 1 for r in runs)
        return {"tokens_per_s": decoded / decode_s if decode_s else None}, sum(r[1] + r[2] for r in runs)
    if job.kind == "lm":  # one prompt ("ids") or several ("prompts", a round): decode tokens/s over them all
        runs = [generate(runner, ids, inputs["new_tokens"]) for ids in inputs.get("prompts", [inputs.get("ids")])]
        decode_s, decoded = sum(r[1] for r in runs), sum(len(r[2]) - 1 for r in runs)
        return {"ids": runs[0][2], "ttft_ms": runs[0][0] * 1e3,
                "tokens_per_s": decoded / decode_s if decode_s else None}, sum(r[0] + r[1] for r in runs)
    logits, seconds = runner.timed(runner.logits, inputs)
    return {"logits": logits[0]}, seconds


def worker_main(job, conn, parent_pid):
    """The worker's loop (the target of a spawned process)."""
    import warnings

    os.environ[PARENT_ENV] = str(parent_pid)
    die_with_parent()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    runner, inbox = None, deque()
    try:
        while True:
            msg = inbox.popleft() if inbox else conn.recv()
            if msg is None:
                return
            op, rid, inputs = msg
            if op != "ask":  # the turn of a request that was given up
                continue
            try:
                extra = {}
                if runner is None:
                    t0 = time.perf_counter()
                    loading = make_runner(job)
                    loading.load()
                    runner = loading
                    extra["load_s"] = time.perf_counter() - t0
                    _call(runner, job, {**inputs, "new_tokens": 2} if job.kind in ("lm", "seq2seq")
                          else inputs)  # warm-up
                conn.send(("ready", rid, None))
                nxt = conn.recv()
                while nxt is not None and nxt[0] == "go" and nxt[1] != rid:
                    nxt = conn.recv()
                if nxt is None or nxt[0] == "ask":  # stop, or a newer request replaces this one
                    inbox.append(nxt)
                    continue
                if nxt[2]:
                    settle()
                result, seconds = _call(runner, job, inputs)
                conn.send(("answer", rid, {**result, **extra, "ms": seconds * 1e3}))
            except (EOFError, ConnectionError):  # the pipe, not the model
                raise
            except Exception as e:  # every other failure is this variant's answer
                conn.send(("error", rid, _reason(e)))
    except (EOFError, ConnectionError):  # the parent is gone
        return


# -- in the parent -----------------------------------------------------------------------------
class Worker:
    def __init__(self, name, job):
        self.name, self.job, self.proc, self.conn, self.error = name, job, None, None, ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.is_alive()

    def start(self, ctx):
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn, self.error = None, None, ""
        try:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(self.job, child, os.getpid()), daemon=True,
                               name=f"qonnx-pool {self.name}")
            proc.start()
            child.close()
            self.proc, self.conn = proc, parent
        except Exception as e:  # this variant's answer says why
            self.error = f"cannot start its worker process: {_reason(e)}"

    def death(self) -> str:
        if self.error:
            return self.error
        code = self.proc.exitcode if self.proc else None
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return f"its worker process died ({how}); it restarts on the next request"

    def stop(self):
        """Ask the worker to end (it ends by itself when this process does, too)."""
        try:
            if self.proc is not None:
                self.conn.send(None)
        except OSError:
            pass

    def join(self):
        if self.proc is not None:
            self.proc.join(STOP_WAIT_S)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(STOP_WAIT_S)
        if self.conn is not None:
            self.conn.close()


class Pool:
    """The worker of every variant; `ask` sends one request to all and gathers the answers."""

    def __init__(self, jobs: dict):
        self.ctx = get_context("spawn")  # a clean interpreter: no state copied from this one
        self.workers = {name: Worker(name, job) for name, job in jobs.items()}
        self._rid, self._ask = 0, threading.Lock()
        # every process is started from this one long-lived thread: Linux sends a worker its
        # parent-death signal when the thread that started it ends (a server's request threads come
        # and go), and die_with_parent must fire only when this process ends
        self._starts = queue.Queue()
        threading.Thread(target=self._starter, name="qonnx-pool-starter", daemon=True).start()
        self._start(list(self.workers.values()))

    def _starter(self):
        while True:
            workers, done = self._starts.get()
            for w in workers:
                w.start(self.ctx)
            done.set()

    def _start(self, workers):
        if workers:
            done = threading.Event()
            self._starts.put((workers, done))
            done.wait()

    def pids(self) -> list:
        return [w.proc.pid for w in self.workers.values() if w.alive()]

    def ask(self, inputs, timeout_s, order=None, turn_s=TURN_S, timing=False) -> dict:
        """{name: ("ok", result) | ("failed", reason) | ("timed out", reason)} for every worker,
        within timeout_s. `order` (names): who takes the timed turn first among those ready;
        `turn_s`: how long one has the CPU alone before the next starts beside it; `timing`: each
        timed turn first waits for the threads of the one before to stop spinning (timing, not serving)."""
        with self._ask:
            self._rid += 1
            rank = {name: i for i, name in enumerate(order or ())}
            return self._gather(self._rid, inputs, time.monotonic() + timeout_s, timeout_s, rank, turn_s, timing)

    def _gather(self, rid, inputs, deadline, timeout_s, rank, turn_s, timing):
        self._start([w for w in self.workers.values() if not w.alive()])
        out, pending = {}, {}
        for w in self.workers.values():
            if w.proc is None:
                out[w.name] = ("failed", w.death())
                continue
            try:
                w.conn.send(("ask", rid, inputs))
                pending[w.conn] = w
            except OSError:
                out[w.name] = ("failed", w.death())
        ready, turn, busy, shared = deque(), None, set(), set()  # turn: (name, when it ends)

        def finish(w, answer):
            nonlocal turn
            del pending[w.conn]
            busy.discard(w.name)
            turn = None if turn and turn[0] == w.name else turn
            out[w.name] = answer

        while pending and time.monotonic() < deadline:
            now = time.monotonic()
            # with an order, the first turn waits until every worker is ready (or busy), so the order holds
            settled = not rank or len(ready) + len(busy) >= len(pending)
            if ready and settled and (turn is None or now >= turn[1]):
                w = min(ready, key=lambda x: rank.get(x.name, len(rank)))
                ready.remove(w)
                if busy:  # the variant whose turn it was is slow: start the next one beside it
                    shared.update([w.name, *busy])
                try:
                    w.conn.send(("go", rid, timing))
                    busy.add(w.name)
                    turn = (w.name, now + turn_s)
                except OSError:
                    finish(w, ("failed", w.death()))
                continue
            wake = min(deadline, turn[1]) if ready and turn else deadline
            sentinels = {w.proc.sentinel: w for w in pending.values()}
            for obj in connection.wait([*pending, *sentinels], timeout=max(0.0, wake - now)):
                w = pending.get(obj) or sentinels[obj]
                if w.conn not in pending:
                    continue
                if obj is not w.conn:  # the process ended: read what it sent first, if anything
                    if not w.conn.poll():
                        finish(w, ("failed", w.death()))
                    continue
                try:
                    op, got, payload = w.conn.recv()
                except (EOFError, OSError):
                    finish(w, ("failed", w.death()))
                    continue
                if got != rid:  # a late answer to a request that timed out
                    continue
                if op == "ready":
                    ready.append(w)
                elif op == "error":
                    finish(w, ("failed", payload))
                else:
                    finish(w, ("ok", {**payload, "shared_cpu": w.name in shared}))
        for w in pending.values():
            out[w.name] = ("timed out", f"no answer within {timeout_s:g} s")
        return out

    def drop(self, name):
        """Stop one worker for good (a later request neither asks nor restarts it)."""
        w = self.workers.pop(name)
        w.stop()
        w.join()

    def close(self):
        for w in self.workers.values():
            w.stop()
        for w in self.workers.values():
            w.join()
