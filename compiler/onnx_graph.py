"""Building ONNX graphs: a node and initializer collector, local functions, and the
outlining of a step's layers into functions (so that Netron shows each layer as one box).
Nothing here knows about SUBLEQ or about the network's encodings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlpc.compiler.network import Network, Space

OPSET = 18
FUNCTION_DOMAIN = "mlpc"  # the model's local functions (encode, decode, the layers)


class ExportError(ValueError):
    """The network cannot be exported with the options asked for."""



class Graph:
    """Collects nodes, initializers and value names for one (sub)graph."""

    def __init__(self, prefix: str = "") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.prefix = prefix
        self._n = 0
        self._consts: dict[tuple, str] = {}
        self.arrays: dict[str, np.ndarray] = {}  # each initializer's value, by name

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{self.prefix}{hint}#{self._n}"

    def const(self, hint: str, array: np.ndarray | int | bool, doc: str = "") -> str:
        arr = np.asarray(array)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key in self._consts and not doc:
            return self._consts[key]
        name = self.name(hint)
        t = numpy_helper.from_array(arr, name)
        self.arrays[name] = arr
        if doc:
            t.doc_string = doc
        self.inits.append(t)
        if not doc:
            self._consts[key] = name
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str, doc: str = "", **attrs: object
           ) -> str:
        out = self.name(hint)
        node = helper.make_node(op_type, list(inputs), [out], name=out, **attrs)
        if doc:
            node.doc_string = doc
        self.nodes.append(node)
        return out


def make_function(name: str, body: Graph, inputs: Sequence[str], outputs: Sequence[str],
              outer: Graph, doc: str) -> tuple[onnx.FunctionProto, list[str]]:
    """`body` as an ONNX local function `mlpc.name(inputs) -> outputs`. A function sees only
    its inputs: the constants `body` made become `Constant` nodes inside it, and the
    initializers of `outer` it reads (weights, the program's image) become extra inputs
    after `inputs`. Returns the function and the inputs of a call to it."""
    known = set(inputs) | {o for n in body.nodes for o in n.output}
    own = {t.name: t for t in body.inits}
    shared = {t.name for t in outer.inits}
    constants, extra = [], []
    for node in body.nodes:
        for value in node.input:
            if not value or value in known:
                continue
            known.add(value)
            if value in own:
                constants.append(helper.make_node("Constant", [], [value], value=own[value]))
            elif value in shared:
                extra.append(value)
            else:
                raise AssertionError(f"{name}: {value} comes from nowhere")
    fn = helper.make_function(FUNCTION_DOMAIN, name, [*inputs, *extra], list(outputs),
                              constants + body.nodes, [helper.make_opsetid("", OPSET)],
                              doc_string=doc)
    return fn, [*inputs, *extra]


def outline_layers(body: Graph, network: Network) -> list[onnx.FunctionProto]:
    """Each layer of each unrolled step (the body's consecutive nodes named `s{k}/{space}/..`
    for the spaces of one of `network.layers()`) becomes a call of the local function named
    after the layer: one definition, called once per step, with the layer's doc string. Its
    inputs are the values it reads (the previous layer's, and the weights: a function sees
    only its inputs), its outputs the values read after it. Nothing is computed differently:
    onnxruntime inlines the calls."""
    layer_of = {space.name: group[-1] for group in network.layers() for space in group}
    segments: list[tuple[tuple[str, Space] | None, list[onnx.NodeProto]]] = []
    for node in body.nodes:
        step, _, rest = node.name.split("#")[0].partition("/")
        space = layer_of.get(rest.partition("/")[0]) if rest else None
        key = (step, space) if space is not None else None
        if key is not None and segments and segments[-1][0] == key:
            segments[-1][1].append(node)
        else:
            segments.append((key, [node]))
    reads: dict[str, int] = {}  # value -> how many nodes read it
    for node in body.nodes:
        for value in node.input:
            reads[value] = reads.get(value, 0) + 1
    functions: dict[str, tuple[onnx.FunctionProto, tuple]] = {}
    nodes: list[onnx.NodeProto] = []
    for key, group in segments:
        if key is None:
            nodes.extend(group)
            continue
        layer = key[1]
        made = [o for n in group for o in n.output]
        inside = {o: 0 for o in made}
        inputs: list[str] = []
        for n in group:
            for value in n.input:
                if value in inside:
                    inside[value] += 1
                elif value and value not in inputs:
                    inputs.append(value)
        outputs = [o for o in made if reads.get(o, 0) > inside[o]]
        shape = _structure(group, inputs, outputs)
        if layer.name not in functions:
            fn = helper.make_function(FUNCTION_DOMAIN, layer.name, inputs, outputs, group,
                                      [helper.make_opsetid("", OPSET)], doc_string=layer.doc)
            functions[layer.name] = (fn, shape)
        assert functions[layer.name][1] == shape, f"{key[0]}/{layer.name} differs from s0"
        nodes.append(helper.make_node(layer.name, inputs, outputs, name=f"{key[0]}/{layer.name}",
                                      domain=FUNCTION_DOMAIN, doc_string=layer.doc))
    body.nodes = nodes
    return [fn for fn, _ in functions.values()]


def _structure(nodes: Sequence[onnx.NodeProto], inputs: list[str], outputs: list[str]
               ) -> tuple:
    """A segment of nodes up to the names of its values: what each node computes from which
    input or earlier value, and which values leave it (equal structures: one function)."""
    made = [o for n in nodes for o in n.output]
    where = {v: ("in", i) for i, v in enumerate(inputs)} | {v: ("made", i)
                                                           for i, v in enumerate(made)}
    return (tuple((n.op_type, tuple(where.get(v, v) for v in n.input),
                   tuple(a.SerializeToString() for a in n.attribute)) for n in nodes),
            tuple(made.index(o) for o in outputs))


def call_function(g: Graph, fn: onnx.FunctionProto, inputs: Sequence[str], outputs: Sequence[str]
          ) -> None:
    """A node calling local function `fn` (its doc string shown on the node)."""
    g.nodes.append(helper.make_node(fn.name, list(inputs), list(outputs), name=fn.name,
                                    domain=fn.domain, doc_string=fn.doc_string))



def columns(g: Graph, x: str, start: int, end: int, hint: str, consts: Graph | None = None
             ) -> str:
    """Columns [start, end) of a [batch, n] tensor (constants in `consts`, default `g`)."""
    c = consts or g
    return g.op("Slice", [x, c.const("c_start", np.array([start])),
                          c.const("c_end", np.array([end])),
                          c.const("axis1", np.array([1]))], hint)


def i64(name: str, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, list(shape))


