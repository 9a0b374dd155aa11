"""Tiny random models built from configs at test time (no hub, no downloads): the builders live in
tiny.py (a plain module: tests/edge has a conftest of its own, so `from conftest import` is ambiguous)."""
import os
from pathlib import Path

import pytest

from browser import page  # noqa: F401  (the headless Chromium fixture)
from tiny import _tokenizer, tiny_bert

ALL_CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None


def pytest_configure(config):
    """Under pytest-xdist (make test runs `-n auto`), each worker gets its own share of the cores,
    so the rows of two tests never fight over one core (every row uses the usable cores: threads
    follow the affinity) and each worker's timing stays what one process on its cores gives."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if worker and count and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        share = cores[int(worker.removeprefix("gw")) % len(cores)::int(count)]
        if share:
            os.sched_setaffinity(0, share)


# The heaviest files first (slowest by `--durations` on a 2-core machine), then the rest in pytest's
# order. make test runs whole files per worker (--dist loadfile) in collection order
# (--no-loadscope-reorder): a heavy file taken last keeps one worker busy while the other idles.
HEAVY_FIRST = ("integration/test_real_sentiment.py", "run/test_matrix.py", "run/test_seq2seq_bart.py",
               "run/test_seq2seq.py", "test_genai.py", "run/test_ray.py", "analysis/test_robustness.py",
               "variants/test_budget.py", "variants/test_variants.py", "run/test_images_resnet.py")


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}

    def heavy_first(item):
        path = item.path.resolve()
        return rank.get(path.relative_to(here).as_posix() if path.is_relative_to(here) else "", len(rank))

    items.sort(key=heavy_first)  # stable: the rest keep pytest's order


@pytest.fixture(autouse=True)
def _every_core_for_all_cores_tests(request):
    """A test marked all_cores (it asks for --threads 2, as the README's examples do) runs on every
    core of the machine while it runs, though its xdist worker is pinned to a share of them."""
    if ALL_CORES is None or request.node.get_closest_marker("all_cores") is None:
        yield
        return
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, ALL_CORES)
    try:
        yield
    finally:
        os.sched_setaffinity(0, mine)


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tok = _tokenizer(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                      pad_token_id=0, bos_token_id=2, eos_token_id=3, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_classifier_onnx(tiny_classifier, tmp_path_factory):
    from qonnx.config import ExportConfig
    from qonnx.export import export

    out = tmp_path_factory.mktemp("exports") / "tiny-bert-onnx"
    export(ExportConfig(model=str(tiny_classifier), output=out))
    return out


@pytest.fixture(scope="session")
def tiny_lm_onnx(tiny_lm, tmp_path_factory):
    from qonnx.config import ExportConfig
    from qonnx.export import export

    out = tmp_path_factory.mktemp("exports") / "tiny-llama-onnx"
    export(ExportConfig(model=str(tiny_lm), output=out))
    return out


# -- nothing may appear outside a command's output folder and cache -----------------------------
# Tests run in an empty directory of their own and keep the artifact store in a temporary one; a
# test that writes files does so under tmp_path. Whatever lands in the working directory (a
# sym_shape_infer_temp.onnx, a uuid-named .data file, ./artifacts, ./runs) or in the repository
# fails the test, or the session.

REPO = Path(__file__).resolve().parent.parent
TOOL_STATE = (".venv/", ".ruff_cache/", ".pytest_cache/")  # pip, ruff and pytest own these, not qonnx


def _repo_state():
    """The repository's file list as git sees it, ignored files included (*.onnx is ignored)."""
    import subprocess

    done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
                          cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:  # not a git checkout (an sdist): nothing to compare
        return None
    return sorted(ln for ln in done.stdout.splitlines()
                  if "__pycache__" not in ln and not ln[3:].strip('"').startswith(TOOL_STATE))


@pytest.fixture(scope="session")
def artifact_store(tmp_path_factory):
    """QONNX_ARTIFACTS for the whole session: builds are shared between tests, never in ./artifacts."""
    return tmp_path_factory.mktemp("store")


SHARED_CACHE = ("demo", "downloads", "node")  # fetched from the registries once, for every session


@pytest.fixture(scope="session", autouse=True)
def clean_session(tmp_path_factory, artifact_store):
    """Session fixtures (the tiny exports) run in an empty directory too; at the end it is still
    empty and the repository lists the same files as at the start."""
    import difflib

    from qonnx.cache import CACHE_ENV, cache_dir

    before = _repo_state()
    cwd = tmp_path_factory.mktemp("session-cwd")
    # a user cache of the session's own (what tests cache, e.g. a budget search's costs, stays out of the
    # user's), sharing with the real one only what is fetched (the demos, downloads, onnxruntime-web)
    real, cache = cache_dir(), tmp_path_factory.mktemp("cache")
    for shared in SHARED_CACHE:
        (real / shared).mkdir(parents=True, exist_ok=True)
        (cache / shared).symlink_to(real / shared, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QONNX_ARTIFACTS", str(artifact_store))
        mp.setenv(CACHE_ENV, str(cache))
        mp.chdir(cwd)
        # interleaved timing rounds load every row's worker again: only the tests of rounds ask for them
        # (tests/run/test_rounds.py), the others keep their time
        mp.setattr("qonnx.config.parts.DEFAULT_ROUNDS", 0)
        # the pause before a timed turn (spinning threads stop) decides no result a test checks; a budget
        # search alone takes hundreds of turns (its kernel table, its step check)
        mp.setattr("qonnx.measure.latency.SETTLE_S", 0.005)
        yield
    left = sorted(p.name for p in cwd.iterdir())
    assert not left, f"session fixtures wrote into the working directory: {left}"
    after = _repo_state()
    assert before == after, "the test session wrote into the repository:\n" + "\n".join(
        difflib.unified_diff(before or [], after or [], "before", "after", lineterm="", n=0))


@pytest.fixture(autouse=True)
def clean_cwd(tmp_path_factory, artifact_store, monkeypatch):
    """Every test runs in a fresh empty directory and must leave it empty."""
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("QONNX_ARTIFACTS", str(artifact_store))
    yield
    left = sorted(p.name for p in cwd.iterdir())
    assert not left, f"the test wrote into the working directory: {left}"
