"""`qonnx ui`: a local web UI (Gradio, the `ui` extra) where every variant of a run answers the
same text side by side.

- `plan`: which variants to serve, from a run folder (its ok rows) or from a model (export + INT8).
- `workers`: one process per variant, loaded on its first request, answering over a pipe with a
  per-request timeout; a slow or failing variant never holds up the others.
- `answers`: text -> token ids (once, in this process) -> raw outputs -> probabilities or
  continuations, agreement with the FP32 reference.
- `app`: the Gradio page (an Ask tab and a Run tab with the run's table and plots).

Served on 127.0.0.1 unless another address is asked for; never shared through Gradio's tunnel,
analytics off, and the only folder Gradio may serve files from is the run folder.
"""
import ipaddress
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from qonnx.errors import ConfigError, DataError
from qonnx.run.pool import Pool
from qonnx.ui import app, plan

log = logging.getLogger(__name__)

DEFAULT_PORT = 7860
DEFAULT_TIMEOUT_S = 120.0


class UiExtraMissing(ConfigError):
    """gradio is not installed."""


@dataclass
class UiConfig:
    target: str = "demo:sentiment"     # a run folder (results.json) or a model: folder, hub id, demo name
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT           # 0 or taken: a free port is picked
    timeout_s: float = DEFAULT_TIMEOUT_S  # per request and variant; the first request also loads it

    def __post_init__(self):
        self.target = str(self.target)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be between 0 and 65535, got {self.port}")
        if self.timeout_s <= 0:
            raise ConfigError(f"--timeout must be positive, got {self.timeout_s}")
        if not self.host.strip():
            raise ConfigError("--host is empty; give an address such as 127.0.0.1")
        path = Path(self.target).expanduser()
        if path.is_file():
            raise ConfigError(f"{self.target} is a file; give a run folder (with results.json) or a model.")
        if not path.exists() and self.target.startswith((".", "/", "~")):
            raise DataError(f"No such folder: {self.target}; give a run folder (with results.json) or a model.")
        if path.is_dir() and not (path / "results.json").is_file() and not (path / "config.json").is_file():
            raise DataError(f"{self.target} holds no results.json; give a run folder that `qonnx compare -o "
                            f"{self.target}` wrote, or a model (a folder with config.json, hub id or demo name).")

    @property
    def run_dir(self) -> Path | None:
        path = Path(self.target).expanduser()
        return path.resolve() if (path / "results.json").is_file() else None

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve to anything
            return False


def require_gradio():
    """Import gradio quietly (no analytics, no version check) or say how to install it."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio
    except ImportError:
        raise UiExtraMissing("qonnx ui needs the ui extra: pip install 'qonnx-compare[ui]'") from None
    return gradio


def free_port(host: str, port: int) -> int:
    """`port` when it can be bound on host, else (or when 0) a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in ([port] if port else []) + [0]:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, candidate))
            except OSError as e:
                if candidate == 0:
                    raise ConfigError(f"Cannot listen on {host}: {e.strerror}") from None
                log.info("port %d on %s is taken; picking a free one", port, host)
                continue
            return s.getsockname()[1]


def serve(cfg: UiConfig, on_ready=None):
    """Build the variants and the page, serve until interrupted (Ctrl-C or SIGTERM), then stop
    the server and every worker. on_ready(url) is called once the server answers."""
    require_gradio()

    p = plan.from_run(cfg.run_dir) if cfg.run_dir else plan.from_model(cfg.target)
    if not cfg.loopback:
        log.warning("serving on %s: anyone who can reach this machine can use it", cfg.host)
    pool = Pool({e.name: e.job(p) for e in p.entries if not e.problem})
    demo = None
    try:
        demo = app.build(p, pool, cfg.timeout_s)
        port = free_port(cfg.host, cfg.port)
        demo.launch(server_name=cfg.host, server_port=port, share=False, quiet=True, ssr_mode=False,
                    prevent_thread_lock=True, show_error=True, mcp_server=False, pwa=False,
                    allowed_paths=[str(p.run_dir)] if p.run_dir else [], **app.look())
        host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
        if on_ready:
            on_ready(f"http://{host}:{port}/")
        while True:
            time.sleep(0.5)
    finally:
        if demo is not None:
            demo.close()
        pool.close()
