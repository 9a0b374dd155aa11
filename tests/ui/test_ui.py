"""qonnx ui: every variant answers side by side; onnx-fp32 answers exactly what a plain ONNX Runtime
session says; a damaged, slow or killed variant fails alone; the server and its workers stop
together; the CLI explains a missing extra or a bad folder in one line."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from qonnx.cli import main
from qonnx.config import CompareConfig
from qonnx.ui import UiConfig, free_port

SENTENCES = ["the film was a delight", "boring predictable mess", "it rained all day", "great good fine",
             "i would not recommend this restaurant", "what a boring movie", "love the service", "awful food"]
TEXT = "the film was a delight from start to finish"


@pytest.fixture(scope="module")
def run_dir(tiny_classifier, tmp_path_factory):
    """A tiny compare run: onnx-fp32 and the torch-fp32 reference."""
    import pandas as pd

    from qonnx.run.compare import compare

    d = tmp_path_factory.mktemp("ui-run")
    pd.DataFrame({"text": SENTENCES, "label": ["positive", "negative"] * 4}).to_csv(d / "eval.csv", index=False)
    compare(CompareConfig(model=str(tiny_classifier), output=d / "run", dataset=str(d / "eval.csv"),
                          variants=["onnx-fp32", "torch-fp32"], max_samples=8, batch_size=4,
                          latency_samples=3, warmup=1))
    return d / "run"


def row(run, variant):
    return next(r for r in json.loads((run / "results.json").read_text())["rows"] if r["variant"] == variant)


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):
    """`qonnx ui RUN` in its own process on a free local port; stopped at the end if still up."""
    pytest.importorskip("gradio", reason="the ui extra is not installed (pip install -e '.[ui]')")
    home = tmp_path_factory.mktemp("ui-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out, err = open(home / "stdout", "w"), open(home / "stderr", "w")
    proc = subprocess.Popen([sys.executable, "-m", "qonnx", "ui", str(run_dir), "--port", str(port),
                             "--timeout", "90"], cwd=home, stdout=out, stderr=err,
                            env={**os.environ, "GRADIO_TEMP_DIR": str(home / "gradio")})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while url not in (home / "stdout").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"qonnx ui did not start (exit {proc.poll()}): {(home / 'stderr').read_text()[-2000:]}")
        time.sleep(0.5)
    yield SimpleNamespace(url=url, proc=proc, home=home)
    if proc.poll() is None:
        proc.terminate()
        proc.wait(60)
    out.close()
    err.close()


def test_answers_equal_plain_onnxruntime(server, run_dir):
    import onnxruntime as ort
    from gradio_client import Client
    from transformers import AutoTokenizer

    client = Client(server.url, verbose=False, download_files=False)
    first = client.predict(TEXT, api_name="/answer")[-1]
    doc = client.predict(TEXT, api_name="/answer")[-1]
    answers = {a["variant"]: a for a in doc["answers"]}
    assert set(answers) == {"onnx-fp32", "torch-fp32"}
    assert all(a["status"] == "ok" for a in answers.values()), answers
    # loaded once, on the first request
    assert all(a["load_s"] for a in first["answers"]) and not any(a["load_s"] for a in doc["answers"])

    onnx_dir = Path(row(run_dir, "onnx-fp32")["artifact"])
    tok = AutoTokenizer.from_pretrained(onnx_dir)
    sess = ort.InferenceSession(str(onnx_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    enc = tok([TEXT], return_tensors="np")
    logits = sess.run(None, {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()})[0][0]
    got = answers["onnx-fp32"]
    assert list(got["probabilities"]) == ["negative", "positive"]
    assert np.allclose(list(got["probabilities"].values()), softmax(logits.astype(np.float64)), atol=1e-5)
    assert got["label"] == ["negative", "positive"][int(logits.argmax())]
    assert got["ms"] > 0 and not got["shared_cpu"]
    ref = answers["torch-fp32"]
    assert doc["reference"] == "torch-fp32@cpu" and ref["is_reference"]
    assert got["agreement"] is True and got["max_prob_diff"] < 1e-4


def test_page_in_headless_chromium(server, page, tmp_path):
    page.set_default_timeout(120_000)  # a busy 2-core machine
    page.goto(server.url)
    # Gradio attaches its event handlers after the page loads: a click before that is lost and the
    # answers never come (seen once in a full run: 120 s without an answer, then passing alone)
    page.wait_for_load_state("networkidle")
    page.get_by_label("Text").fill(TEXT)
    page.get_by_role("button", name="Ask every variant").click()
    page.wait_for_function("document.body.innerText.includes('FP32 reference')")
    page.wait_for_timeout(300)
    page.screenshot(path=str(tmp_path / "ask.png"), full_page=True)
    shown = page.inner_text("body")
    for name in ("onnx-fp32", "torch-fp32"):
        assert name in shown
    assert "same label as torch-fp32@cpu: yes" in shown and " ms" in shown
    assert "failed" not in shown and "timed out" not in shown
    page.get_by_role("tab", name="Run").click()
    page.wait_for_selector(".qonnx-plots img")
    page.wait_for_function("[...document.querySelectorAll('.qonnx-plots img')].every(i => i.complete)")
    sizes = page.eval_on_selector_all(".qonnx-plots img", "imgs => imgs.map(i => i.naturalWidth)")
    assert sizes and all(w > 0 for w in sizes), "a plot of the run did not load"
    assert "accuracy" in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
    assert (tmp_path / "ask.png").stat().st_size > 10_000


def test_files_outside_the_run_are_not_served(server, run_dir):
    import httpx

    inside = httpx.get(f"{server.url}gradio_api/file={run_dir / 'results.json'}")
    assert inside.status_code == 200 and inside.json()["rows"]
    for path in (Path(row(run_dir, "onnx-fp32")["artifact"]) / "model.onnx", Path("/etc/passwd")):
        assert httpx.get(f"{server.url}gradio_api/file={path}").status_code == 403


def test_stop_ends_the_workers(server):
    """Last of the server tests: SIGTERM stops the server, and its worker processes with it."""
    import psutil

    children = psutil.Process(server.proc.pid).children(recursive=True)
    assert len(children) >= 2  # a worker per variant (and multiprocessing's resource tracker)
    server.proc.terminate()
    assert server.proc.wait(60) == 130
    time.sleep(1)
    alive = []
    for c in children:
        try:
            if c.status() != psutil.STATUS_ZOMBIE:
                alive.append(c)
        except psutil.NoSuchProcess:
            pass
    assert not alive, f"worker processes outlived the UI: {alive}"


def with_rows(run, folder, *extra):
    """A copy of run's results.json with more rows (each a copy of onnx-fp32's, changed)."""
    folder.mkdir()
    doc = json.loads((run / "results.json").read_text())
    doc["rows"] += [{**row(run, "onnx-fp32"), **changes} for changes in extra]
    (folder / "results.json").write_text(json.dumps(doc))
    return folder


def test_damaged_slow_or_killed_variant_fails_alone(run_dir, tmp_path):
    from qonnx.run.pool import Pool
    from qonnx.ui import answers, app, plan

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    run = with_rows(run_dir, tmp_path / "run", {"variant": "onnx-int8-dynamic", "artifact": str(broken)},
                    {"variant": "onnx-fp16", "artifact": str(tmp_path / "gone")})
    p = plan.from_run(run)
    pool = Pool({e.name: e.job(p) for e in p.entries if not e.problem})
    try:
        doc = answers.ask(p, pool, TEXT, 90)
        by = {a["variant"]: a for a in doc["answers"]}
        assert by["onnx-fp32"]["status"] == by["torch-fp32"]["status"] == "ok", by
        assert by["onnx-int8-dynamic"]["status"] == "failed"
        assert "ONNX Runtime cannot load" in by["onnx-int8-dynamic"]["reason"]
        assert by["onnx-fp16"]["status"] == "failed" and "is missing" in by["onnx-fp16"]["reason"]
        assert app.stats(p, by["onnx-int8-dynamic"]).startswith("⚠️ **failed**: ONNX Runtime cannot load")

        slow = answers.ask(p, pool, "boring predictable mess", 1e-6)  # no model answers within a microsecond
        assert {a["status"] for a in slow["answers"]} == {"timed out", "failed"}
        assert "timed out" in app.stats(p, slow["answers"][0])

        killed = pool.workers["onnx-fp32@cpu"].proc
        os.kill(killed.pid, 9)
        killed.join(30)
        again = {a["variant"]: a for a in answers.ask(p, pool, TEXT, 90)["answers"]}
        assert again["onnx-fp32"]["status"] == again["torch-fp32"]["status"] == "ok"
        assert again["onnx-fp32"]["load_s"] and not again["torch-fp32"]["load_s"]  # only the killed one reloads
        for v in ("onnx-fp32", "torch-fp32"):  # the late answers to the timed-out request were dropped
            assert again[v]["probabilities"] == pytest.approx(by[v]["probabilities"], abs=1e-6)
    finally:
        pool.close()
    assert not pool.pids()


def test_cli_without_gradio(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    r = CliRunner().invoke(main, ["ui", str(run_dir)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "Error: qonnx ui needs the ui extra: pip install 'qonnx-compare[ui]'" in r.output


@pytest.mark.parametrize("args, message", [
    (["EMPTY"], "holds no results.json; give a run folder"),
    (["EMPTY/file.txt"], "is a file; give a run folder"),
    (["EMPTY/no-such-run"], "No such folder: "),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--timeout", "0"], "--timeout must be positive"),
])
def test_cli_bad_input(args, message, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    r = CliRunner().invoke(main, ["ui"] + [a.replace("EMPTY", str(tmp_path)) for a in args])
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert message in r.output


def test_cli_help():
    r = CliRunner().invoke(main, ["ui", "--help"])
    assert r.exit_code == 0 and "--host" in r.output and "--port" in r.output and "qonnx-compare[ui]" in r.output


def test_loopback_and_ports():
    assert UiConfig(host="127.0.0.1").loopback and UiConfig(host="::1").loopback
    assert UiConfig(host="localhost").loopback
    assert not UiConfig(host="0.0.0.0").loopback and not UiConfig(host="my-host").loopback
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        assert free_port("127.0.0.1", taken) not in (taken, 0)
    assert free_port("127.0.0.1", 0) > 0


def test_model_mode_lm_continuations(tiny_lm):
    """Started on a model (not a run): its export, INT8 variant and torch reference, built through the
    store; an LM answers with greedy continuations, tokens/s and token agreement."""
    from qonnx.run.pool import Pool
    from qonnx.ui import answers, app, plan

    p = plan.from_model(str(tiny_lm))
    assert [e.variant for e in p.entries] == ["torch-fp32", "onnx-fp32", "onnx-int8-dynamic"]
    assert p.kind == "lm" and p.reference == "torch-fp32@cpu" and p.run_dir is None
    p.max_new_tokens = 6
    pool = Pool({e.name: e.job(p) for e in p.entries if not e.problem})
    try:
        doc = answers.ask(p, pool, "the film was", 90)
    finally:
        pool.close()
    by = {a["variant"]: a for a in doc["answers"]}
    assert all(a["status"] == "ok" for a in by.values()), by
    assert all(len(a["token_ids"]) == 6 and a["tokens_per_s"] > 0 for a in by.values())
    assert by["onnx-fp32"]["token_ids"] == by["torch-fp32"]["token_ids"]
    assert by["onnx-fp32"]["agreement"] == 1.0 and by["torch-fp32"]["is_reference"]
    assert "tokens/s" in app.stats(p, by["onnx-int8-dynamic"])
