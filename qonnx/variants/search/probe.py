"""The logits of a build that differs from a base build in a few MatMuls, computed from the part of
the graph downstream of them: every other node computes what it computes in the base build, so its
outputs are read once from a base run and fed to the part. For the LM budget search's per-unit
costs (lm_rank.costs), each of which changes one unit: a unit in layer L runs layers L and up only,
about half the graph on average, and only that half is quantized, written and loaded."""
from pathlib import Path

import numpy as np

from qonnx.runners.ort import prompt_feed, session


def downstream(model, changed) -> tuple:
    """([index of each node of model's graph that reads, directly or not, an output of a node named
    in `changed`, those included], [the tensors those nodes read that other nodes write]): the part
    a change of those nodes can change, and what it needs from the rest."""
    names, inside, made = set(changed), [], set()
    for i, n in enumerate(model.graph.node):
        if n.name in names or made.intersection(n.input):
            inside.append(i)
            made.update(o for o in n.output if o)
    written = {o for n in model.graph.node for o in n.output if o}
    needed = {t for i in inside for t in model.graph.node[i].input if t}
    return inside, sorted((needed & written) - made)


def has_subgraphs(model) -> bool:
    from onnx import AttributeProto

    return any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for n in model.graph.node for a in n.attribute)


def part_model(model, inside, fed: dict, output: str, leave_out=()):
    """A model of model's nodes `inside` (indices), its inputs the tensors in `fed` ({name: array})
    and the graph inputs those nodes read, its one output `output`; its initializers those the nodes
    read (copied), but those named in leave_out (float weights a build replaces)."""
    import onnx
    from onnx import helper
    from onnx.helper import np_dtype_to_tensor_dtype

    g = model.graph
    nodes = [g.node[i] for i in inside]
    read = {t for n in nodes for t in n.input}
    inputs = [i for i in g.input if i.name in read]
    inputs += [helper.make_tensor_value_info(k, np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in fed.items()]
    out = next((o for o in g.output if o.name == output), None) or onnx.ValueInfoProto(name=output)
    inits = [t for t in g.initializer if t.name in read and t.name not in leave_out]
    graph = helper.make_graph(nodes, f"{g.name}.part", inputs, [out], inits)
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)


class PartProbe:
    """logits(plan, changed): the logits of builder's build of `plan` on `ids` (one window, no past),
    where plan differs from `base` in the MatMuls named in `changed` only, computed by the part of
    the graph downstream of them (downstream) with what the rest computes read from one run of the
    base build. Equal to the whole build's logits up to float rounding where ONNX Runtime fuses
    across the cut. Graphs with subgraphs (If, Loop) are run whole: `whole` says why."""

    def __init__(self, builder, base, ids, threads, config, work: Path, groups=()):
        self.builder, self.base, self.threads, self.config, self.work = builder, base, threads, config, Path(work)
        self.groups = [list(g) for g in groups]  # the MatMuls changed together: their parts' inputs kept at once
        self.ids = np.asarray(ids, dtype=np.int64)[None]
        self.whole = "the graph has subgraphs (If, Loop)" if has_subgraphs(builder.model) else None
        self.values, self.parts = None, {}

    def _part(self, changed):
        key = frozenset(changed)
        if key not in self.parts:
            self.parts[key] = downstream(self.builder.model, changed)
        return self.parts[key]

    def prepare(self, groups) -> None:
        """Run the base build once, keeping every tensor the parts of `groups` (lists of MatMul names,
        each changed together) read from outside them."""
        import onnx

        needed = sorted({t for names in groups for t in self._part(names)[1]})
        # unfused: every MatMul's own output is there to read (a head's ranges in one format are one node)
        path = self.builder.build(self.base, self.work / "base.onnx", fuse=False)
        m = onnx.load(str(path), load_external_data=False)
        self.output = "logits" if any(o.name == "logits" for o in m.graph.output) else m.graph.output[0].name
        known = {o.name for o in m.graph.output}
        m.graph.output.extend(onnx.ValueInfoProto(name=t) for t in needed if t not in known)
        tapped = self.work / "base_tapped.onnx"  # beside base.onnx: its weights stay in base.onnx.data
        tapped.write_bytes(m.SerializeToString())
        sess = session(tapped, "cpu", self.threads)
        self.feed = prompt_feed(sess.get_inputs(), self.ids, self.config)
        outs = [self.output, *needed]
        self.values = dict(zip(outs, sess.run(outs, self.feed)))
        del sess
        for f in (tapped, path, Path(str(path) + ".data")):
            f.unlink(missing_ok=True)

    def logits(self, plan, changed):
        inside, frontier = self._part(changed)
        if self.values is None:
            self.prepare([*self.groups, changed])
        if not any(self.output in self.builder.model.graph.node[i].output for i in inside):
            return self.values[self.output][0]  # the logits do not read these MatMuls
        fed = {t: self.values[t] for t in frontier}
        part = part_model(self.builder.model, inside, fed, self.output, self.builder.replaced(plan))
        path = self.builder.build(plan, self.work / "part.onnx", model=part)
        sess = session(path, "cpu", self.threads)
        feed = {**{k: v for k, v in self.feed.items() if k in {i.name for i in sess.get_inputs()}}, **fed}
        out = sess.run([self.output], feed)[0]
        return out[0].astype(np.float32, copy=False)
