"""The model an edge check reads: its file and folder, and what the graph asks of a runtime (ops,
opsets, dynamic inputs, size, external data)."""
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from qonnx.errors import ConfigError, ModelError


@dataclass
class Artifact:
    folder: Path
    path: Path      # the .onnx file
    proto: object   # onnx.ModelProto without its external weights

    @cached_property
    def config(self) -> dict:
        p = self.folder / "config.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    @cached_property
    def manifest(self) -> dict:
        p = self.folder / "manifest.json"
        try:
            return json.loads(p.read_text()) if p.is_file() else {}
        except ValueError:
            return {}

    @property
    def name(self) -> str:
        return self.folder.name if self.path.name == "model.onnx" else self.path.stem

    @cached_property
    def external_files(self) -> list:
        """Files the graph's weights live in beside the .onnx (external data), by name."""
        found = set()
        for init in _initializers(self.proto.graph):
            if init.data_location == 1:  # onnx.TensorProto.EXTERNAL
                found.update(e.value for e in init.external_data if e.key == "location")
        return sorted(found)

    @property
    def size_mb(self) -> float:
        """The .onnx file and its external data: what a device downloads and loads."""
        files = [self.path, *(self.folder / f for f in self.external_files)]
        return sum(p.stat().st_size for p in files if p.is_file()) / 2**20

    @cached_property
    def ops(self) -> list:
        """Every op type the graph and its subgraphs use: 'MatMul', or 'domain:Op' outside ai.onnx."""
        return sorted({op_name(n) for n in _nodes(self.proto.graph)})

    @property
    def opset(self) -> int | None:
        return next((o.version for o in self.proto.opset_import if o.domain in ("", "ai.onnx")), None)

    @cached_property
    def inputs(self) -> list:
        """(name, numpy dtype, dims) of each graph input; a dim is an int or a symbolic name (None:
        unnamed and unknown)."""
        from onnx import helper

        inits = {i.name for i in self.proto.graph.initializer}
        out = []
        for i in self.proto.graph.input:
            if i.name in inits or not i.type.HasField("tensor_type"):
                continue
            t = i.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or None)
                    for d in t.shape.dim]
            out.append((i.name, helper.tensor_dtype_to_np_dtype(t.elem_type), dims))
        return out

    @property
    def dynamic_inputs(self) -> dict:
        """{input: dims} of the inputs whose shape is not fixed."""
        return {name: dims for name, _, dims in self.inputs if not all(isinstance(d, int) for d in dims)}

    @property
    def dim_params(self) -> list:
        return sorted({d for _, _, dims in self.inputs for d in dims if isinstance(d, str)})

    def dynamic_summary(self, names=3) -> str:
        """'input_ids, attention_mask and 60 more, over the symbolic dims batch_size, sequence_length'."""
        dyn = list(self.dynamic_inputs)
        if not dyn:
            return "none"
        shown = ", ".join(dyn[:names]) + (f" and {len(dyn) - names} more" if len(dyn) > names else "")
        dims = ", ".join(self.dim_params) or "unnamed dims"
        return f"{shown}, over the symbolic dims {dims}"


def op_name(node) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}:{node.op_type}"


# "Could not find an implementation for Foo(13) node with name 'x'", "my.domain:Foo(-1) is not a registered ..."
OP_IN_ERROR = (re.compile(r"implementation for (\w+)\(\d+\) node"),
               re.compile(r"([\w.]+:\w+|\w+)\(-?\d+\) is not a registered function/op"),
               re.compile(r"[Oo]p(?:erator)? type '?(\w+)'? is not (?:supported|registered)"))


def ops_in_error(message: str) -> list:
    return sorted({m.group(1) for rx in OP_IN_ERROR for m in rx.finditer(message)})


def _nodes(graph):
    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.HasField("g"):
                yield from _nodes(a.g)
            for g in a.graphs:
                yield from _nodes(g)


def _initializers(graph):
    yield from graph.initializer
    for n in graph.node:
        for a in n.attribute:
            if a.HasField("g"):
                yield from _initializers(a.g)


def open_artifact(given) -> Artifact:
    """An artifact folder holding model.onnx (a qonnx build, or the user's own), or an .onnx file."""
    import onnx
    from google.protobuf.message import DecodeError

    p = Path(given).expanduser()
    fix = "give an artifact folder holding model.onnx (qonnx export and qonnx quantize write one) or an .onnx file"
    if not p.exists():
        raise ConfigError(f"{given} does not exist; {fix}.")
    if p.is_file():
        if p.suffix != ".onnx":
            raise ConfigError(f"{given} is not an .onnx file; {fix}.")
        path = p
    elif (p / "model.onnx").is_file():
        path = p / "model.onnx"
    else:
        found = sorted(p.glob("*.onnx"))
        if len(found) != 1:
            held = f"several .onnx files ({', '.join(f.name for f in found)}): name one" if found else "no .onnx file"
            raise ConfigError(f"{given} holds {held}; {fix}.")
        path = found[0]
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError) as e:
        raise ModelError(f"{path} is not a readable ONNX model ({str(e).splitlines()[0] or type(e).__name__}).")
    if not proto.graph.node:
        raise ModelError(f"{path} holds no graph nodes; is it an ONNX model?")
    return Artifact(folder=path.parent.resolve(), path=path.resolve(), proto=proto)
