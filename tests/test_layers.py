"""The package's shape: modules import only downward (no circle), stay small, and the CLI
declares each option once. Fails when a change brings an import circle back."""
import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT.parent / "shared" / "tools" / "import_layers.py"


def own_imports(path: Path, package="qonnx"):
    """The qonnx modules a file imports, and whether each import sits inside a function."""
    tree = ast.parse(path.read_text())
    parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}

    def in_function(node):
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return True
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            yield "(relative)", in_function(node)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == package:
            for a in node.names:
                yield f"{node.module}.{a.name}", in_function(node)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == package:
                    yield a.name, in_function(node)


def modules():
    out = {}
    for f in sorted((ROOT / "qonnx").rglob("*.py")):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def graph():
    mods = modules()

    def resolve(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name
    return {m: {resolve(t) for t, _ in own_imports(f)} - {m, ""} for m, f in mods.items()}


def circles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    assert circles(graph()) == []


def test_the_circle_check_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_relative_import_and_no_own_import_inside_a_function():
    """Lazy imports are for heavy third-party libraries; qonnx's own modules import at the top, so
    the graph above is the whole truth (the worker, ui and export lazily pick a runner: allowed)."""
    allowed = {"qonnx.runners.genai", "qonnx.runners.ort", "qonnx.runners.torch"}
    found = [f"{m}: {t}" for m, f in modules().items() for t, inner in own_imports(f)
             if t == "(relative)" or (inner and not any(t.startswith(a) for a in allowed))]
    assert found == []


def test_modules_stay_small():
    long = {m: n for m, f in modules().items() if (n := len(f.read_text().splitlines())) > 300}
    cli = {m: n for m, f in modules().items()
           if m.startswith("qonnx.cli") and (n := len(f.read_text().splitlines())) >= 150}
    assert long == {} and cli == {}


def test_cli_declares_each_option_once():
    """Shared options live in qonnx.cli.options.OPTIONS; a command's own are literal click.option
    calls in its module. No flag may appear in two declarations."""
    from qonnx.cli.options import OPTIONS

    decl = [d for name, spec in OPTIONS.items() for d in spec.get("decls", (f"--{name.replace('_', '-')}",))
            if d.startswith("--")]
    for f in sorted((ROOT / "qonnx" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "option":
                decl += [a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")]
    assert len(decl) > 40 and sorted({d for d in decl if decl.count(d) > 1}) == []


@pytest.mark.skipif(not TOOL.is_file(), reason="the shared import_layers tool is not beside this checkout")
def test_shared_tool_agrees():
    out = json.loads(subprocess.run([sys.executable, str(TOOL), str(ROOT / "qonnx")], capture_output=True,
                                    text=True, check=True).stdout)
    assert out["circles"] == []


def test_every_module_imports_without_heavy_libraries():
    """`qonnx --help` stays fast: importing every command module pulls in no ML framework."""
    code = ("import sys, importlib, pkgutil, qonnx\n"
            "for m in pkgutil.walk_packages(qonnx.__path__, 'qonnx.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "print(','.join(k for k in ('torch', 'transformers', 'onnxruntime', 'pandas', 'gradio', 'ray', 'mlflow')"
            " if k in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    assert importlib.import_module("qonnx.config.choices")  # the leaf itself


def test_every_package_folder_ships():
    """find_packages (setup.cfg) takes only folders with an __init__.py: a wheel would lose the rest."""
    missing = [str(d.relative_to(ROOT)) for d in (ROOT / "qonnx").rglob("*")
               if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")) and not (d / "__init__.py").is_file()]
    assert missing == []


LEVELS = {3: ("qonnx.cli",),
          2: ("qonnx.run", "qonnx.analysis", "qonnx.report", "qonnx.sweep", "qonnx.track", "qonnx.validate", "qonnx.edge",
              "qonnx.ui"),
          1: ("qonnx.models", "qonnx.heads", "qonnx.data", "qonnx.noise", "qonnx.calibration", "qonnx.export",
              "qonnx.parity", "qonnx.pooling", "qonnx.genai", "qonnx.demo", "qonnx.variants", "qonnx.runners",
              "qonnx.tasks", "qonnx.measure"),
          0: ("qonnx.config", "qonnx.schema", "qonnx.ratios", "qonnx.store", "qonnx.manifest", "qonnx.cache", "qonnx.errors",
              "qonnx.envinfo", "qonnx.progress")}


def level(module):
    if module in ("qonnx", "qonnx.__main__"):
        return 0 if module == "qonnx" else 3
    return next(n for n, prefixes in LEVELS.items()
                if any(module == p or module.startswith(p + ".") for p in prefixes))


def test_imports_point_down_the_levels():
    """CLI (3) -> orchestration (2) -> building blocks (1) -> foundations (0): never up."""
    up = sorted(f"{a} ({level(a)}) -> {b} ({level(b)})" for a, targets in graph().items() for b in targets
                if level(b) > level(a))
    assert up == []
