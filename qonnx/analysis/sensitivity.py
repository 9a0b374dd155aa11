"""Layer sensitivity: which units of the graph a quantization method damages.

Two views over the units of `units.py`: `only` quantizes one unit and keeps the rest FP32 (the
damage that unit causes on its own), `all-but` quantizes everything except one unit (what keeping
that unit in higher precision buys back, the view an exclusion search needs). Each build is
evaluated in this process with ONNX Runtime on a held-out split (a demo's validation split by
default, as the budget searches: not the eval split compare scores) against the FP32 export's own
outputs, by the model's task module (qonnx.tasks: its sensitivity_feeds or prepare, sensitivity_outputs,
sensitivity_metrics and SENSITIVITY, the table's columns and the damage it sorts by): KL divergence,
top-1 agreement and accuracy drop for text and image classifiers; perplexity change and next-token
agreement for LMs; cosine with FP32's pooled embeddings and top-10 neighbour overlap for embedding
models; word agreement, KL and entity F1 for token classifiers; span agreement, KL and EM/F1 for
extractive QA; for seq2seq models (encoder-decoder), exact match of the greedy generated ids with FP32's,
KL of the teacher-forced next-token distributions (on FP32's generated text) and ROUGE-L against the
references where --target-column names them. Units are quantized in the export's (unfused) graph, so node names
map to modules; the variants quantize the same weights, in a fused graph for encoders. A seq2seq model's
units are read from its encoder and its merged decoder (inside the If branches), named "encoder ..." and
"decoder ...", and each build is the runtime folder (encoder + merged decoder) run by compare's seq2seq runner
(int8-dynamic only, the one quantized seq2seq variant).
Every finished unit is appended to units.jsonl, so an interrupted analysis resumes.
"""
import collections
import json
import logging
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

from qonnx import data, models, tasks
from qonnx.analysis import sensitivity_report
from qonnx.config import QuantizeConfig, SensitivityConfig
from qonnx.config.parts import demo_split
from qonnx.errors import ConfigError
from qonnx.export import ensure
from qonnx.progress import progress
from qonnx.run.rundir import changed, default_run_dir
from qonnx.runners import seq2seq as seq2seq_runner
from qonnx.runners.ort import OrtRunner
from qonnx.store import tree_digest, work_dir
from qonnx.variants import int8_static
from qonnx.variants import seq2seq as seq2seq_variant
from qonnx.variants.partial import quantize_nodes
from qonnx.variants.units import units

log = logging.getLogger(__name__)

# each family's data columns: the settings of a family that does not read them leave them out, so
# an analysis recorded before a family's columns existed still resumes
FAMILY_COLUMNS = {"tokens": ("tokens_column", "tags_column"),
                  "qa": ("question_column", "context_column", "answers_column"), "images": ("image_column",),
                  "seq2seq": ("target_column", "max_new_tokens")}


def _op_counts(path) -> dict:
    """Op types of a graph, or of every graph a seq2seq build folder runs, inside If branches too."""
    import onnx

    counts = collections.Counter()

    def walk(graph):
        for n in graph.node:
            counts[n.op_type] += 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)

    for f in seq2seq_runner.loaded_files(path) if Path(path).is_dir() else [path]:
        walk(onnx.load(str(f), load_external_data=False).graph)
    return counts


def _matmul_only(method, lm):
    """MatMulNBits quantizes MatMuls only: int4-weight, and int8-dynamic on LMs (blockwise)."""
    return method == "int4-weight" or (method == "int8-dynamic" and lm)


# -- the analysis -----------------------------------------------------------------------------

def _settings(cfg, fp32, source_name, task, kind):
    unread = {c for k, cols in FAMILY_COLUMNS.items() if k != kind for c in cols}
    s = {k: v for k, v in asdict(cfg).items() if k not in ("output", "resume") and k not in unread}
    s.update(output=None, model=cfg.model, source=source_name, task=task, export=str(fp32),
             export_digest=tree_digest(fp32.parent), views=list(cfg.views))
    return json.loads(json.dumps(s, default=str))


def _open_output(cfg, out: Path, settings) -> list:
    """Earlier results of the same analysis (resume), after refusing a folder that is not ours."""
    state = out / "analysis.json"
    held = out.is_dir() and any(out.iterdir())
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o {out} is a file, not a folder; choose a folder for the analysis.")
    if held and not state.is_file():
        raise ConfigError(f"{out} is not empty and is not a qonnx analysis; choose another -o folder.")
    if held and not cfg.resume:
        raise ConfigError(f"{out} already holds an analysis; pass --resume to finish it, or choose another -o.")
    if cfg.resume and not held:
        raise ConfigError(f"Nothing to resume in {out}: it holds no analysis.")
    if held:
        before = json.loads(state.read_text()).get("settings")
        if before != settings:
            raise ConfigError(f"--resume: the settings differ from the analysis in {out} "
                              f"({', '.join(changed(before or {}, settings))}); "
                              "choose another -o folder.")
        for stale in out.glob(".sensitivity-*"):  # scratch of a run killed mid-build (ours)
            shutil.rmtree(stale, ignore_errors=True)
        done, kept = out / "units.jsonl", []
        for ln in (done.read_text().splitlines() if done.is_file() else []):
            try:
                kept.append(json.loads(ln))
            except ValueError:  # the line a kill cut short: that unit is measured again
                log.warning("ignoring a cut-off line in %s", done)
        if done.is_file():
            done.write_text("".join(json.dumps(r) + "\n" for r in kept))
        return kept
    out.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"qonnx_analysis": "sensitivity", "settings": settings}, indent=1))
    return []


def _source(cfg):
    """(name, task, is_lm, fp32 model.onnx, tokenizer folder, config, demo name, model folder: the
    one an embedding model's pooling recipe is read from)."""
    folder = Path(cfg.model).expanduser()
    manifest = folder / "manifest.json"
    graph = "model.onnx" if (folder / "model.onnx").is_file() else seq2seq_runner.ENCODER  # seq2seq: the encoder
    if folder.is_dir() and (folder / graph).is_file() and manifest.is_file():
        m = json.loads(manifest.read_text())
        if m.get("kind") not in (None, "export") or m.get("method") not in (None, "export", "fp32"):
            raise ConfigError(f"{folder} is a quantized variant ({m.get('method')}); give the FP32 export "
                              "(qonnx export) or the model, so the analysis starts from full precision.")
        src, raw = m.get("source") or {}, json.loads((folder / "config.json").read_text())
        task = src.get("task") or models.infer_task(raw, str(folder))
        refuse(tasks.kind(task), str(folder), cfg.method, models.is_lm_task(task))
        config = models.with_shape(raw)
        model_dir = Path(src["path"]) if src.get("path") and (Path(src["path"]) / "config.json").is_file() else folder
        return (str(folder), task, models.is_lm_task(task), folder / graph, folder, config, src.get("demo", ""),
                model_dir)
    source = models.resolve(cfg.model)
    refuse(tasks.kind(source.task), source.name, cfg.method, source.is_lm)  # before exporting it
    spec = demo_split(cfg.dataset, source.demo, cfg.split)
    if spec and spec.startswith("demo:"):
        data.demo_file(spec)  # a demo without that split is said before exporting, not after
    onnx_dir = ensure(source)
    graph = seq2seq_runner.ENCODER if tasks.kind(source.task) == "seq2seq" else "model.onnx"
    return (source.name, source.task, source.is_lm, Path(onnx_dir) / graph, onnx_dir, source.config, source.demo,
            source.path)


def default_output(demo, name, method) -> Path:
    return default_run_dir(SimpleNamespace(demo=demo, name=name), f"sensitivity-{method}")


def refuse(kind, name, method, lm):
    if kind == "seq2seq" and method != "int8-dynamic":
        try:
            seq2seq_variant.check(method)
        except seq2seq_variant.NotForSeq2Seq as e:
            raise ConfigError(f"{e} {name}: sensitivity of a seq2seq model is measured for int8-dynamic.") from None
        raise ConfigError(f"{method} sensitivity is not measured for seq2seq models; use int8-dynamic.")
    if lm and method == "int8-static":
        raise ConfigError("int8-static sensitivity is for classifiers; for LMs use int8-dynamic or int4-weight.")
    if method == "int8-static" and kind != "classification":
        raise ConfigError(f"int8-static sensitivity calibrates on text rows (text classifiers); {name} is "
                          f"{tasks.WHAT[kind]}: use int8-dynamic or int4-weight.")


def analyze(cfg: SensitivityConfig, on_unit=None) -> dict:
    import onnx

    name, task, lm, fp32, tok_dir, config, demo, model_dir = _source(cfg)
    kind = tasks.kind(task)  # _source refused the methods this kind does not take
    family = tasks.module(kind)
    tok = getattr(family, "processor", models.load_tokenizer)(tok_dir)  # images: the image processor
    spec = demo_split(cfg.dataset, demo, cfg.split)
    if not spec:
        raise ConfigError(f"Give the held-out data with --dataset for {name}.")
    evald = tasks.read_data(kind, spec, cfg, config, lm, name)
    settings = _settings(cfg, fp32, name, task, kind)
    ctx = {"block_size": cfg.block_size}
    if cfg.method == "int8-static":  # the variant's own graph (fused for encoders), recipe and ranges
        calib = demo_split(cfg.calibration, demo, "calibration")
        if not calib:
            raise ConfigError("int8-static needs --calibration (a file or demo split).")
        texts = data.load(calib, lm=True, text_column="text" if calib.startswith("demo:") else cfg.text_column).texts
        scratch = tempfile.TemporaryDirectory(prefix="qonnx-sensitivity-")  # removed when analyze returns
        ctx.update(int8_static.context(fp32, scratch.name, QuantizeConfig(onnx_dir=fp32.parent, method="int8-static"),
                                       config, tok, texts[:cfg.num_calibration_samples], lm))
        fp32, settings["graph"] = ctx["pre"], ctx["graph"]
    seq2seq, fp32 = kind == "seq2seq", Path(fp32).resolve()  # the quantizers run in a scratch cwd: absolute paths
    if seq2seq:  # both graphs compare's int8-dynamic row runs; fp32 is then the export folder
        fp32 = fp32.parent
        graph_units = seq2seq_variant.unit_nodes(fp32, cfg.method)
    else:
        graph = onnx.load(str(fp32), load_external_data=False)
        graph_units = units(graph)
    if _matmul_only(cfg.method, lm):
        matmuls = {n.name for n in graph.graph.node if n.op_type == "MatMul"}
        graph_units = {u: [n for n in ns if n in matmuls] for u, ns in graph_units.items()}
        graph_units = {u: ns for u, ns in graph_units.items() if ns}
    all_nodes = [n for ns in graph_units.values() for n in ns]
    out = Path(cfg.output) if cfg.output else default_output(demo, name, cfg.method)
    done = _open_output(cfg, out, settings)
    # the family's feeds (token ids, pixels, word and window maps) made once; every build gets the same
    job = SimpleNamespace(batch_size=cfg.batch_size, latency_samples=1, batch_sizes=None, sequence_lengths=None,
                          config=config, eval_tokens=cfg.eval_tokens, window=cfg.window, stride=cfg.stride,
                          max_new_tokens=cfg.max_new_tokens, model_path=tok_dir)
    arrays = getattr(family, "sensitivity_feeds", family.prepare)(
        tok, {"texts": evald.texts, "labels": evald.labels, "corpus": evald.corpus, "source": evald.source,
              "pairs": evald.pairs, "scores": evald.scores, "records": evald.records, "targets": evald.targets,
              "model_path": model_dir}, job)

    def evaluate(path):
        if seq2seq:  # the encoder and merged decoder through optimum, as compare's onnx rows
            r = seq2seq_runner.make(path, "onnx", task, threads=cfg.threads).load()
            try:
                return family.sensitivity_outputs(r, arrays, job)
            finally:
                r.close()
        with OrtRunner(path, threads=cfg.threads, config=config) as r:
            return family.sensitivity_outputs(r, arrays, job)

    def metrics(ref, o):
        return family.sensitivity_metrics(ref, o, arrays)

    ref = evaluate(fp32)
    fp32_ops = _op_counts(fp32)
    plan = [("all", "all", all_nodes)] + [(view, u, [n for n in all_nodes if (n in ns) == (view == "only")])
                                         for view in cfg.views for u, ns in graph_units.items()]
    finished = {(d["view"], d["unit"]) for d in done}
    results = list(done)
    with progress() as bar, work_dir(out, "sensitivity") as tmp:
        task_bar = bar.add_task(f"{cfg.method} sensitivity of {len(graph_units)} units", total=len(plan))
        for view, unit, nodes in plan:
            if (view, unit) in finished:
                bar.advance(task_bar)
                continue
            bar.update(task_bar, description=f"{view}: {unit}")
            dst = Path(tmp).resolve() / ("q" if seq2seq else "q.onnx")
            if seq2seq:
                seq2seq_variant.quantize_folder(cfg.method, fp32, dst, nodes, ctx)
            else:
                quantize_nodes(cfg.method, fp32, dst, nodes, all_nodes, lm, ctx)
            m = metrics(ref, evaluate(dst))
            rec = {"view": view, "unit": unit, "nodes": len(nodes), **m}
            if view == "only" and _op_counts(dst) == fp32_ops:  # e.g. Gemm under dynamic INT8
                rec["untouched"] = True
            results.append(rec)
            with open(out / "units.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            if dst.is_dir():
                shutil.rmtree(dst)
            else:
                dst.unlink()
            if on_unit:
                on_unit(rec)
            bar.advance(task_bar)
    own = metrics(ref, ref)  # FP32 against itself: its own figures against the data's labels
    doc = {"kind": "sensitivity", "method": cfg.method, "model": name, "task": task, "family": kind, "lm": lm,
           "data": {"source": evald.source, "selection": evald.selection,
                    "samples": None if lm else len(evald.texts), "tokens": len(arrays["corpus"]) if lm else None},
           "units": {u: ns for u, ns in graph_units.items()},
           "reference": {k: own[k] for k in family.SENSITIVITY["reference"]},
           "settings": settings, "results": results}

    sensitivity_report.write(out, doc)
    return {**doc, "output": str(out)}
