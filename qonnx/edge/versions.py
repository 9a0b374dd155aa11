"""Opset and IR version limits per target: what the target's runtime version reads. The runtime is
asked, not a table: a tiny model stamped with an IR version (and one with an opset) far beyond any
release fails to load, and ONNX Runtime's message names its limit ("max supported IR version: 14",
"official support for domain ai.onnx is till opset 28"). wasm asks onnxruntime-web in Node.js;
ort-mobile, nnapi, coreml and qnn ask the ONNX Runtime installed here (the .ort converter's, and
the version whose EPs are checked): an app that bundles an older ONNX Runtime reads less."""
import functools
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from qonnx.edge import wasm

TOO_NEW = 1000
IR_LIMIT = re.compile(r"max supported IR version: (\d+)")
OPSET_LIMIT = re.compile(r"support for domain ai\.onnx is till opset (\d+)")
NODE_PROBE = """
const { createRequire } = require('module'); const fs = require('fs'); const path = require('path');
const [prefix, ...files] = process.argv.slice(1);
const ort = createRequire(path.join(prefix, 'package.json'))('onnxruntime-web');
ort.env.wasm.numThreads = 1; ort.env.logLevel = 'fatal';
(async () => { const out = [];
  for (const f of files) { try { await ort.InferenceSession.create(new Uint8Array(fs.readFileSync(f)));
    out.push(''); } catch (e) { out.push(String(e && e.message || e)); } }
  console.log(JSON.stringify(out)); })();
"""


def probe(ir_version, opset) -> bytes:
    """x -> Identity -> y, stamped with this IR version and ai.onnx opset."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y]),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return model.SerializeToString()


def _limits(runtime, ir_message, opset_message) -> dict:
    ir, opset = IR_LIMIT.search(ir_message), OPSET_LIMIT.search(opset_message)
    return {"runtime": runtime, "ir_version": int(ir.group(1)) if ir else None,
            "opset": int(opset.group(1)) if opset else None,
            "unread": [m[:200] for m, hit in ((ir_message, ir), (opset_message, opset)) if not hit]}


@functools.lru_cache(maxsize=None)
def ort_limits() -> dict:
    """{"runtime", "ir_version", "opset"} of the ONNX Runtime installed here."""
    import onnxruntime as ort

    messages = []
    for ir, opset in ((TOO_NEW, 17), (8, TOO_NEW)):
        try:
            ort.InferenceSession(probe(ir, opset), providers=["CPUExecutionProvider"])
            messages.append("")
        except Exception as e:
            messages.append(str(e))
    return _limits(f"onnxruntime {ort.__version__}", *messages)


@functools.lru_cache(maxsize=None)
def web_limits(version=wasm.ORT_WEB_VERSION) -> dict:
    """The same of onnxruntime-web in Node.js (installed on first use, as the wasm target does)."""
    prefix = wasm.ensure_runtime(version)
    with tempfile.TemporaryDirectory(prefix="qonnx-probe-") as work:
        files = []
        for i, (ir, opset) in enumerate(((TOO_NEW, 17), (8, TOO_NEW))):
            files.append(Path(work) / f"probe-{i}.onnx")
            files[-1].write_bytes(probe(ir, opset))
        done = subprocess.run([shutil.which("node"), "-e", NODE_PROBE, str(prefix), *map(str, files)], cwd=work,
                              capture_output=True, text=True, timeout=300)
    try:
        messages = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        messages = [" ".join((done.stderr or done.stdout).split())[-200:]] * 2
    return _limits(f"onnxruntime-web {version}", *messages)


def limits(target) -> dict:
    return web_limits() if target == "wasm" else ort_limits()


def judge(r, art, lim) -> bool:
    """Fail r where the model's IR version or ai.onnx opset is newer than the runtime reads; True
    when the runtime can read it (or a limit could not be learnt: said so)."""
    r.figures["reads"] = {"ir_version": lim["ir_version"], "opset": lim["opset"], "runtime": lim["runtime"]}
    ir, opset, runtime = art.proto.ir_version, art.opset, lim["runtime"]
    fine = True
    if lim["ir_version"] is not None and ir > lim["ir_version"]:
        r.fail(f"IR version {ir} is newer than {runtime} reads (IR {lim['ir_version']} at most); save the model with "
               f"an older onnx package or set model.ir_version = {lim['ir_version']} if nothing newer is used.")
        fine = False
    if lim["opset"] is not None and opset is not None and opset > lim["opset"]:
        r.fail(f"opset {opset} (ai.onnx) is newer than {runtime} reads (opset {lim['opset']} at most); export with "
               f"opset {lim['opset']} or lower (onnx.version_converter can convert).")
        fine = False
    if lim["unread"]:
        r.note(f"{runtime}'s version limits were not learnt (it said: {'; '.join(lim['unread'])}); IR and opset "
               "not checked.")
    elif fine:
        r.note(f"IR version {ir} and opset {opset} are within what {runtime} reads (IR <= {lim['ir_version']}, "
               f"opset <= {lim['opset']}).")
    return fine
