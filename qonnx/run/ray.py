"""`--executor ray`: rows measured on the nodes of a Ray cluster (the `cluster` extra).

Builds stay in the driver (once per artifact key, through the store); each row is a Ray task that
runs the same worker process as the local executor, on a node that has what the row needs (a
GPU for CUDA rows). Timing honesty: one actor per node takes one row at a time, so two rows are
never timed at once on one node unless `concurrent_rows` asks for it (then a node takes as many
rows at once as it has CPUs for `threads` each). Threads: --threads where given, on the nodes that
have that many usable cores (a row no node has the cores for fails with the reason); else each
node's own usable cores (the cores its processes may run on, no more than the CPUs it gives Ray;
a node that gives Ray none takes no rows). Each row records its thread count. Rows come back to
the driver, which writes them into the run folder as they finish, so resume and reports work
unchanged; before any row is timed, `check_nodes` sees every live node's environment (a resume
refuses a node whose machine changed since it measured rows: rundir.Run.check_nodes). A node
process that dies mid-row is restarted and the row retried once (the row's `node.retried` says
so); if it dies again the row is a failed row with the reason. The run folder and the artifacts must be on a
filesystem every node sees (one machine, or a shared mount); a row whose model a node cannot see
fails with that reason.
"""
import dataclasses
import logging
import os
import time
from collections import deque
from pathlib import Path

from qonnx.config import usable_cores
from qonnx.envinfo import collect
from qonnx.errors import ConfigError
from qonnx.run.executors import run_worker

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'qonnx-compare[cluster]'") from None
    return ray


class NodeRunner:
    """Lives on one node (a Ray actor); measures one row per call in a fresh worker process."""

    def __init__(self):
        import socket

        import ray

        ctx = ray.get_runtime_context()
        self.node = {"hostname": socket.gethostname(), "node_id": ctx.get_node_id(),
                     "ip": ray.util.get_node_ip_address(), "pid": os.getpid()}
        self.restarted = bool(ctx.was_current_actor_reconstructed)  # the first call is then a retry
        self.env = collect()

    def measure(self, work, job):
        node = {**self.node, "retried": self.restarted, "environment": self.env}
        self.restarted = False
        if not Path(job.model_path).exists():
            return None, (f"{job.model_path} is not visible on node {self.node['hostname']}: the ray "
                          "executor needs the run folder and artifacts on a filesystem every node sees"), node
        result, failure = run_worker(Path(work), job)
        return result, failure, node

    def describe(self):
        """(where it runs, its usable cores, its environment), asked before any row is timed."""
        return self.node, usable_cores(), self.env


def _reachable(address, timeout_s=5):
    """A host:port address is tried first: ray.init would wait minutes for a cluster that is not there."""
    import socket

    host, _, port = address.rpartition(":")
    if address == "auto" or address.startswith("ray://") or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers there ({e.strerror or e})") from None


class RayExecutor:
    def __init__(self, address=None, concurrent_rows=False, threads=None, check_nodes=None):
        """Checks Ray is installed and a host:port address answers, before the run starts. threads:
        --threads, or None for each node's usable cores. check_nodes({hostname: environment}) is
        called with the live nodes before any row is timed; it raises to stop the run."""
        self.address, self.concurrent, self.threads = address, concurrent_rows, threads
        self.check_nodes = check_nodes
        _ray()
        if address:
            try:
                _reachable(address)
            except ConnectionError as e:
                raise ConfigError(f"cannot reach the Ray cluster at {address}: {e}") from None

    def _connect(self, ray):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                  "configure_logging": False}
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:  # a cluster of this machine alone, started for this run and stopped after it
                ray.init(num_cpus=usable_cores(), **kwargs)
        except Exception as e:  # Ray raises ConnectionError, RuntimeError, ValueError ...
            hint = ("; if the cluster uses token authentication, set RAY_AUTH_MODE=token (the token from "
                    "RAY_AUTH_TOKEN or ~/.ray/auth_token)" if self.address and os.environ.get("RAY_AUTH_MODE") != "token" else "")
            raise ConfigError(f"cannot reach the Ray cluster at {self.address or 'a new local cluster'}: "
                              f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else e}{hint}") from None

    def _actors(self, ray):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        remote = ray.remote(num_cpus=0, max_restarts=1, max_task_retries=1)(NodeRunner)
        slots = []
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            res = node.get("Resources", {})
            cpus = int(res.get("CPU", 0))
            per_node = max(1, cpus // self.threads) if self.concurrent and self.threads else 1
            for _ in range(per_node):
                actor = remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node_id=node["NodeID"], soft=False)).remote()
                slots.append({"actor": actor, "gpus": res.get("GPU", 0), "host": node.get("NodeManagerHostname"),
                              "cpus": cpus})
        if not slots:
            raise ConfigError("the Ray cluster has no live node")
        t0 = time.perf_counter()  # started (qonnx imported, node described) before any row is timed
        for slot, (where, cores, env) in zip(slots, ray.get([s["actor"].describe.remote() for s in slots])):
            # the cores its processes may run on, no more than the CPUs the node gives Ray
            slot.update(host=where["hostname"], cores=min(cores, slot["cpus"]), env=env)
        for host, cores in sorted({(s["host"], s["cores"]) for s in slots}):
            if cores < (self.threads or 1):
                log.warning("ray: node %s has %d usable core(s)%s: it takes no rows", host, cores,
                            f", fewer than --threads {self.threads}" if self.threads else "")
        log.info("ray: %d node runner(s) ready in %.1f s", len(slots), time.perf_counter() - t0)
        return slots

    def _fits(self, job, slot) -> bool:
        return (job.provider != "cuda" or slot["gpus"] >= 1) and 1 <= (job.threads or slot["cores"]) <= slot["cores"]

    def _unplaced(self, job, free) -> str:
        """Why no free node can take the job."""
        if not free:
            return "ray: every node process died; no node is left"
        able = [s for s in free if job.provider != "cuda" or s["gpus"] >= 1]
        if not able:
            return f"no node of the Ray cluster can run a {job.provider} row (none has a GPU)"
        cores = ", ".join(sorted({f"{s['host']}: {s['cores']}" for s in able}))
        most = max(s["cores"] for s in able)
        if job.threads:
            return (f"--threads {job.threads} is more than the usable cores of every Ray node that could take this "
                    f"row ({cores}); give --threads {most} or fewer, or leave --threads out: each node then uses "
                    "its own cores")
        return f"no node of the Ray cluster has a usable core for this row ({cores}); give its nodes CPUs"

    def map(self, jobs):
        """Yield (key, result, failure, node) for each (key, work, job), as rows finish."""
        ray = _ray()
        jobs = deque(jobs)  # the builds happen here, in the driver, before any row is timed
        if not jobs:
            return
        self._connect(ray)
        try:
            slots = self._actors(ray)
            if self.check_nodes:
                self.check_nodes({s["host"]: s["env"] for s in slots})
            yield from self._dispatch(ray, jobs, slots)
        finally:
            ray.shutdown()

    def _dispatch(self, ray, jobs, free):
        from ray.exceptions import RayActorError, RayTaskError

        running = {}
        while jobs or running:
            for slot in list(free):
                pick = next((j for j in jobs if self._fits(j[2], slot)), None)
                if pick is None:
                    continue
                jobs.remove(pick)
                key, work, job = pick
                job = dataclasses.replace(job, threads=job.threads or slot["cores"])
                running[slot["actor"].measure.remote(str(work), job)] = (key, slot, time.perf_counter())
                free.remove(slot)
            if not running:  # what is left fits no node
                for key, _, job in jobs:
                    yield key, None, self._unplaced(job, free), None
                return
            (ref,), _ = ray.wait(list(running), num_returns=1)
            key, slot, t0 = running.pop(ref)
            try:
                result, failure, node = ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                yield key, None, f"ray: the node process measuring this row died (after one retry): {type(e).__name__}", \
                    {"hostname": slot["host"], "retried": True}
                continue  # that actor is gone; its node takes no more rows
            node["cores"] = slot["cores"]
            node["round_trip_s"] = time.perf_counter() - t0
            if result:  # what Ray adds around the worker: dispatch, actor call, result transfer
                node["overhead_s"] = node["round_trip_s"] - result["wall_s"]
            free.append(slot)
            yield key, result, failure, node
