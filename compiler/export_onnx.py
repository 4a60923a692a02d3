"""The ONNX exporter: a `Network` and the encoding/decoding around it become one
self-contained ONNX model (SPEC section 4).

    inputs ──encode──> state ──Loop[ K x step ]──> state ──decode──> outputs
                                  └── per step: output event ──┘ (scan outputs)

`encode` and `decode` are ONNX local functions (domain `mlpc`), and so is each layer of the
step: the main graph is the optional inputs' defaults, `encode`, the `Loop` and `decode`, and
the body reads `layer1 -> layer2 -> layer3 -> next_state` per step, each a box that opens in
Netron (with its doc string); onnxruntime inlines the functions when it loads the model.

Three encodings of the same network, chosen by `ExportOptions.weights`:
- `families` (default): the network's own structure. A space's scalars are one `MatMul`
  with a constant matrix; its families that share a formula's vector part are one stacked
  tensor `[batch, k, n]` (vector part `[batch, 1, n]` + per-family scalar part
  `[batch, k, 1]`, then `Max(., 0)`); a reduction over j is a `MatMul` of the stacked
  families with a constant combination (float64: per word first) and a column of ones.
  int64 or float64 (`dtype`).
- `sparse`: the network lowered to sparse matrices (`compiler/sparse.py`), each applied as
  `GatherElements` of constant indices, `Mul` by the weights and row sums by `MatMul`.
- `dense`: the lowered matrices as dense `MatMul`s.
Inside the Loop only affine maps with constant weights and ReLU appear; taps off the state
(the loop condition and the output events) use `Slice`, `ReduceMax` and `Cast`. This module
knows nothing about SUBLEQ: what the state means is described by `ModelInterface`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlpc.compiler.network import FLOAT64_EXACT, Definition, Network, Space
from mlpc.compiler.sparse import SparseLinear, SparseNetwork, lower_to_sparse

OPSET = 18
FUNCTION_DOMAIN = "mlpc"  # the model's local functions (encode, decode)
DEFAULT_MAX_STEPS = 10_000_000
WEIGHTS = ("families", "sparse", "dense")
DTYPES = ("int64", "float64")
MAX_DENSE_ELEMENTS = 1 << 25  # 256 MB of int64 weights


class ExportError(ValueError):
    """The network cannot be exported with these options (the message says why)."""


@dataclass(frozen=True)
class ModelInterface:
    """What the exporter needs to know about the state vector, as plain numbers. The flat
    state is [families (the first `memory` words are memory + offset, then the tape), the
    scalars named in `slot`, in order]."""

    n_state: int
    memory: int  # the first `memory` slots hold memory words + `offset`
    offset: int  # H = 2^(W-1)
    image: tuple[int, ...]  # the program's words (rest of memory zero)
    tape_capacity: int
    tape_start: int  # first tape slot (tape words + offset, padded with -1 + offset)
    slot: tuple[tuple[str, int], ...]  # scalar name -> index in the flat state
    initial_scalars: tuple[tuple[str, int], ...]  # scalars that do not start at 0
    inputs: tuple[tuple[str, int], ...]  # program input name -> memory address
    outputs: tuple[tuple[str, int], ...]  # program output name -> memory address
    trap_code_address: int  # -1 when the program has no traps
    trap_line_address: int
    tape_overflow_fault: int
    max_budget: int
    pending_write: tuple[str, str, str]  # scalars: address + 2, old word + H, new word + H
    # the address of each memory slot of the state when it holds only some words (a
    # specialised network: the others are constants, the image's); () = every word
    state_words: tuple[int, ...] = ()

    def index(self, name: str) -> int:
        return dict(self.slot)[name]

    @property
    def memory_slots(self) -> tuple[int, ...]:
        """The address of each memory slot of the state, in order."""
        return self.state_words or tuple(range(self.memory))

    @property
    def scalars_start(self) -> int:
        return min(i for _, i in self.slot)


@dataclass(frozen=True)
class ExportOptions:
    unroll: int = 8  # SUBLEQ steps per Loop iteration
    weights: str = "families"  # one of WEIGHTS
    dtype: str = "int64"  # one of DTYPES (float64: families only)
    default_max_steps: int = DEFAULT_MAX_STEPS
    op_cost: int = 20000  # padding elements worth one extra op, for sparse bucket planning


def check_options(network: Network, options: ExportOptions) -> None:
    """Refuse what cannot be exported exactly, with a one-line reason."""
    if options.weights not in WEIGHTS:
        raise ExportError(f"unknown weights encoding {options.weights!r}")
    if options.dtype not in DTYPES:
        raise ExportError(f"unknown dtype {options.dtype!r}")
    if options.dtype == "float64":
        if options.weights != "families":
            raise ExportError("float64 needs --weights families (a sparse or dense row sum "
                              "adds terms whose partial sums pass 2^53)")
        worst = network.max_magnitude()
        if worst >= FLOAT64_EXACT:
            raise ExportError(f"float64 is not exact for this machine: a partial sum can "
                              f"reach {worst} >= 2^53 (use int64)")
    if options.weights == "dense":
        elements = sum(f.n_in * f.n_out for f in lower_to_sparse(network).factors())
        if elements > MAX_DENSE_ELEMENTS:
            raise ExportError(f"dense weights would have {elements:,} entries "
                              f"(more than {MAX_DENSE_ELEMENTS:,}); use --weights families")


# ---- graph building helpers ------------------------------------------------------------------


class _Graph:
    """Collects nodes, initializers and value names for one (sub)graph."""

    def __init__(self, prefix: str = "") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.prefix = prefix
        self._n = 0
        self._consts: dict[tuple, str] = {}

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


def _function(name: str, body: _Graph, inputs: Sequence[str], outputs: Sequence[str],
              outer: _Graph, doc: str) -> tuple[onnx.FunctionProto, list[str]]:
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


def _outline_layers(body: _Graph, network: Network) -> list[onnx.FunctionProto]:
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


def _call(g: _Graph, fn: onnx.FunctionProto, inputs: Sequence[str], outputs: Sequence[str]
          ) -> None:
    """A node calling local function `fn` (its doc string shown on the node)."""
    g.nodes.append(helper.make_node(fn.name, list(inputs), list(outputs), name=fn.name,
                                    domain=fn.domain, doc_string=fn.doc_string))


# ---- the families encoding -------------------------------------------------------------------


@dataclass(frozen=True)
class _Ref:
    """Where a family's values live: `tensor` is [batch, k, n]; `index` picks one of the k
    (None: k is 1 and the tensor is the family itself)."""

    tensor: str
    index: int | None
    k: int
    n: int
    offset: int = 0  # the tensor holds family[j] + offset * j (single families only)


def carried_offsets(network: Network) -> dict[str, int]:
    """The slope each state family is carried with inside the Loop: `X + c j` instead of X
    when the first layer's units read X as `X[j] + c j + ...` (c = -S here), so that the
    `+ c j` of every such unit, and of the memory's next read, costs no op. An affine change
    of variables of the loop state, undone when the Loop ends; each value it produces is a
    partial sum of a definition's terms, so the magnitude bound covers it."""
    first = network.spaces[0]
    offsets = {}
    for d in network.state.families:
        slopes = [f.expr.slope for f in first.families
                  if f.expr.vectors == ((d.name, 1),) and not f.passthrough]
        offsets[d.name] = slopes[0] if slopes else 0
    return offsets


class _FamilyEmitter:
    """Emits one step of the family form. Weights are initializers of the main graph,
    shared by the K unrolled steps. Carried state: each state family as [batch, 1, n] and
    the scalars as a column [batch, ns + 1, 1] whose last entry is the constant 1 (so every
    bias is a column of the weight matrix, as in an MLP with a bias unit: no `Add` per bias).
    """

    def __init__(self, network: Network, main: _Graph, dtype: str) -> None:
        self.network = network
        self.main = main
        self.np_dtype = np.float64 if dtype == "float64" else np.int64
        self.onnx_dtype = TensorProto.DOUBLE if dtype == "float64" else TensorProto.INT64
        self.combine_first = dtype == "float64"  # float64: no sum of a whole family
        self.zero = main.const("zero", np.array(0, dtype=self.np_dtype))
        self.offsets = carried_offsets(network)

    def c(self, hint: str, array: np.ndarray) -> str:
        return self.main.const(hint, np.asarray(array).astype(self.np_dtype))

    def emit(self, g: _Graph, families: dict[str, str], scalars: str, step: int
             ) -> tuple[dict[str, str], str]:
        lengths = {d.name: d.length for d in self.network.state.families}
        env = {name: _Ref(t, None, 1, lengths[name], self.offsets[name])
               for name, t in families.items()}
        source = self.network.state
        for space in self.network.spaces:
            env, scalars = self._space(g, space, source, env, scalars, f"s{step}/{space.name}")
            source = space
        out = {}
        for d in self.network.state.families:
            ref = env[d.name]
            value = ref.tensor if ref.index is None else self._pick(g, ref, d.name)
            if ref.offset != self.offsets[d.name]:
                value = g.op("Add", [value, self._ramp(self.offsets[d.name] - ref.offset,
                                                       d.positions)], f"{d.name}_offset")
            out[d.name] = value
        return out, scalars

    def _ramp(self, slope: int, positions: tuple[int, ...]) -> str:
        """slope * j over a family's positions, as a [1, 1, n] constant."""
        return self.c("slope", slope * np.asarray(positions).reshape(1, 1, len(positions)))

    def _pick(self, g: _Graph, ref: _Ref, hint: str) -> str:
        assert ref.index is not None
        i = ref.index
        return g.op("Slice", [ref.tensor, self.main.const("i0", np.array([i])),
                              self.main.const("i1", np.array([i + 1])),
                              self.main.const("axis1", np.array([1]))], hint)

    def _space(self, g: _Graph, space: Space, source: Space, env: dict[str, _Ref],
               scalars: str, tag: str) -> tuple[dict[str, _Ref], str]:
        src = {d.name: k for k, d in enumerate(source.scalars)}
        new_env: dict[str, _Ref] = {}
        pending: dict[tuple, list[Definition]] = {}
        for d in space.families:
            if d.passthrough and (space.relu or not d.expr.scalars):
                new_env[d.name] = env[d.expr.vectors[0][0]]
            elif space.relu:
                key = (d.expr.vectors, d.expr.slope, d.positions)
                pending.setdefault(key, []).append(d)
            else:
                tensor, offset = self._linear_family(g, d, env, scalars, src, tag)
                new_env[d.name] = _Ref(tensor, None, 1, d.length, offset)
        groups = list(pending.values())
        parts = self._shared_scalar_parts(g, space, groups, env, scalars, src, tag)
        for i, group in enumerate(groups):
            stacked = self._stack(g, group, env, parts[i], f"{tag}/stack{i}", space.doc)
            for k, d in enumerate(group):
                new_env[d.name] = _Ref(stacked, k, len(group), d.length)
        out = self._scalars(g, space, env, scalars, src, tag, parts[-1])
        return new_env, out

    def _shared_scalar_parts(self, g: _Graph, space: Space, groups: list[list[Definition]],
                             env: dict[str, _Ref], scalars: str, src: dict[str, int],
                             tag: str) -> list[str | None]:
        """The scalar parts of every stack ([batch, k, 1] each) and, when the space has no
        reductions, its scalars too: one MatMul of the source scalars, then `Split`."""
        whole = not self._reductions(space, env)
        blocks = [self._weights(group, src, False) for group in groups]
        if whole:
            blocks.append(self._weights(space.scalars, src, True))
        if not blocks:
            return [None]
        if len(blocks) == 1:
            one = g.op("MatMul", [self.c("weights", blocks[0]), scalars], f"{tag}/scalar_part")
            return [one] if whole else [one, None]
        both = g.op("MatMul", [self.c("weights", np.concatenate(blocks)), scalars],
                    f"{tag}/scalar_parts")
        sizes = self.main.const("sizes", np.array([b.shape[0] for b in blocks]))
        names = [g.name(f"{tag}/part{i}") for i in range(len(blocks))]
        g.nodes.append(helper.make_node("Split", [both, sizes], names, name=names[0], axis=1))
        return names + ([] if whole else [None])

    def _vector_part(self, g: _Graph, expr_vectors: tuple[tuple[str, int], ...], slope: int,
                     positions: tuple[int, ...], env: dict[str, _Ref], tag: str,
                     keep_offset: bool = False
                     ) -> tuple[str | None, int]:
        """sum c * family[j] + slope * j as a [batch, 1, n] tensor (None if zero), and the
        offset slope it still holds (0 unless `keep_offset`)."""
        v, offset = self._combine(g, expr_vectors, env, tag)
        missing = slope - offset
        if keep_offset and v is not None:
            return v, -missing
        if missing:
            ramp = self._ramp(missing, positions)
            v = ramp if v is None else g.op("Add", [v, ramp], f"{tag}/plus_slope")
        return v, 0

    def _combine(self, g: _Graph, terms: tuple[tuple[str, int], ...], env: dict[str, _Ref],
                 tag: str) -> tuple[str | None, int]:
        """sum c * family[j] and the slope it carries (from families carried with one)."""
        by_tensor: dict[str, list[tuple[_Ref, int]]] = {}
        for name, c in terms:
            ref = env[name]
            by_tensor.setdefault(ref.tensor, []).append((ref, c))
        parts = []
        offset = 0
        for tensor, members in by_tensor.items():
            if len(members) == 1 and members[0][0].index is None:
                ref, c = members[0]
                offset += c * ref.offset
                parts.append(tensor if c == 1 else
                             g.op("Mul", [tensor, self.c("coeff", np.array(c))], f"{tag}/scale"))
                continue
            row = np.zeros((1, members[0][0].k))
            for ref, c in members:
                row[0, ref.index or 0] += c
            parts.append(g.op("MatMul", [self.c("combination", row), tensor], f"{tag}/combine"))
        total = None
        for p in parts:
            total = p if total is None else g.op("Add", [total, p], f"{tag}/add")
        return total, offset

    def _weights(self, defs: Sequence[Definition], src: dict[str, int], keep_one: bool
                 ) -> np.ndarray:
        """(len(defs) [+ 1], ns + 1): const + sum c * scalar of each definition, the bias in
        the last column (the constant-1 input); with `keep_one`, a last row copies the 1."""
        w = np.zeros((len(defs) + keep_one, len(src) + 1))
        for k, d in enumerate(defs):
            w[k, -1] = d.expr.const
            for name, c in d.expr.scalars:
                w[k, src[name]] += c
        if keep_one:
            w[-1, -1] = 1
        return w

    def _stack(self, g: _Graph, group: list[Definition], env: dict[str, _Ref], col: str | None,
               tag: str, doc: str) -> str:
        """ReLU(vector part [batch, 1, n] + scalar part `col` [batch, k, 1]): [batch, k, n]."""
        assert col is not None
        d0 = group[0]
        vec, _ = self._vector_part(g, d0.expr.vectors, d0.expr.slope, d0.positions, env, tag)
        pre = col if vec is None else g.op("Add", [vec, col], f"{tag}/pre")
        names = ", ".join(d.name for d in group)
        return g.op("Max", [pre, self.zero], f"{tag}/relu", doc=f"ReLU units {names}: {doc}")

    def _linear_family(self, g: _Graph, d: Definition, env: dict[str, _Ref], scalars: str,
                       src: dict[str, int], tag: str) -> tuple[str, int]:
        """A linear family as a tensor, still carrying the offset of its sources."""
        v, offset = self._vector_part(g, d.expr.vectors, d.expr.slope, d.positions, env,
                                      f"{tag}/{d.name}", keep_offset=True)
        if d.expr.scalars or d.expr.const:
            col = g.op("MatMul", [self.c("weights", self._weights([d], src, False)), scalars],
                       f"{tag}/{d.name}/scalar_part")
            v = col if v is None else g.op("Add", [v, col], f"{tag}/{d.name}/plus")
        assert v is not None
        return v, offset

    def _scalars(self, g: _Graph, space: Space, env: dict[str, _Ref], scalars: str,
                 src: dict[str, int], tag: str, done: str | None = None) -> str:
        """The space's scalars (and the constant 1) as one MatMul of the source scalars and
        the sums over j of its reductions, concatenated: [batch, ns + 1, 1]; `done` when
        that product was already computed (see `_shared_scalar_parts`)."""
        if done is not None:
            return (g.op("Max", [done, self.zero], f"{tag}/relu_scalars", doc=space.doc)
                    if space.relu else done)
        w = self._weights(space.scalars, src, True)
        inputs = [scalars]
        for ref, rows in self._reductions(space, env).values():
            sums, place = self._reduce(g, ref, rows, len(space.scalars) + 1, tag)
            inputs.append(sums)
            w = np.concatenate([w, place], axis=1)
        if len(inputs) > 1:
            scalars = g.op("Concat", inputs, f"{tag}/scalars_and_sums", axis=1)
        out = g.op("MatMul", [self.c("weights", w), scalars], f"{tag}/scalars")
        if space.relu:
            out = g.op("Max", [out, self.zero], f"{tag}/relu_scalars", doc=space.doc)
        return out

    def _reductions(self, space: Space, env: dict[str, _Ref]
                    ) -> dict[str, tuple[_Ref, list[_Sum]]]:
        """For each stacked tensor: (combination over its k families, output scalar,
        weights over its units) of each reduction over it."""
        found: dict[str, tuple[_Ref, list[_Sum]]] = {}
        for out, d in enumerate(space.scalars):
            for red in d.expr.sums:
                first = env[red.terms[0][0]]
                comb = np.zeros(first.k)
                for name, c in red.terms:
                    ref = env[name]
                    if ref.offset:
                        raise ExportError(f"{space.name}.{d.name}: a reduction over a family "
                                          "carried with an offset")
                    if ref.tensor != first.tensor:
                        raise ExportError(f"{space.name}.{d.name}: a reduction over families "
                                          "of different stacks")
                    comb[ref.index or 0] += c
                found.setdefault(first.tensor, (first, []))[1].append(
                    _Sum(comb, out, red.weights))
        return found

    def _reduce(self, g: _Graph, ref: _Ref, rows: list[_Sum], n_out: int, tag: str
                ) -> tuple[str, np.ndarray]:
        """The (weighted) sums over j a space needs from one stacked tensor ([batch, r, 1])
        and the matrix (n_out, r) that places them into its scalars."""
        columns = list(dict.fromkeys(r.weights or (1,) * ref.n for r in rows))
        weights = self.c("ones", np.asarray(columns).T.reshape(ref.n, len(columns)))
        if self.combine_first:  # float64: each reduction's own words, then its own sum
            comb = np.stack([r.comb for r in rows])  # (r, k)
            words = g.op("MatMul", [self.c("combination", comb), ref.tensor], f"{tag}/words")
            sums = g.op("MatMul", [words, weights], f"{tag}/sums")  # [batch, r, columns]
            place = np.zeros((n_out, len(rows) * len(columns)))
            for i, r in enumerate(rows):
                place[r.out, i * len(columns) + columns.index(r.weights or (1,) * ref.n)] += 1
        else:  # int64: sums of whole families wrap modulo 2^64 and still combine exactly
            sums = g.op("MatMul", [ref.tensor, weights], f"{tag}/sums")  # [batch, k, columns]
            place = np.zeros((n_out, ref.k * len(columns)))
            for r in rows:
                q = columns.index(r.weights or (1,) * ref.n)
                place[r.out, q :: len(columns)] += r.comb
        if len(columns) > 1:  # [batch, rows, columns] as one column
            sums = g.op("Reshape", [sums, self.main.const("column", np.array([0, -1, 1]))],
                        f"{tag}/sums_column")
        return sums, place


@dataclass(frozen=True)
class _Sum:
    """One reduction over a stacked tensor: its combination of the k families, the scalar
    it adds to, and its weights over the units (() = all 1)."""

    comb: np.ndarray
    out: int
    weights: tuple[int, ...]


class _FamilyLoop:
    """The families encoding as loop-carried tensors: each state family [batch, 1, n] and
    the scalars as a column [batch, ns + 1, 1] (the last entry the constant 1), in the
    model's dtype."""

    def __init__(self, network: Network, main: _Graph, dtype: str) -> None:
        self.network = network
        self.emitter = _FamilyEmitter(network, main, dtype)
        self.main = main
        self.dtype = dtype
        self.names = [d.name for d in network.state.families] + ["scalars"]
        self.n_families = sum(d.length for d in network.state.families)
        self.ns = len(network.state.scalars)

    def value_infos(self, suffix: str) -> list[onnx.ValueInfoProto]:
        t = self.emitter.onnx_dtype
        infos = [helper.make_tensor_value_info(f"{d.name}{suffix}", t, ["batch", 1, d.length])
                 for d in self.network.state.families]
        infos.append(helper.make_tensor_value_info(f"scalars{suffix}", t,
                                                   ["batch", self.ns + 1, 1]))
        return infos

    def split(self, g: _Graph, x0: str) -> list[str]:
        out, at = [], 0
        cast = self.dtype == "float64"
        x = g.op("Cast", [x0], "state_as_float", to=TensorProto.DOUBLE) if cast else x0
        axis1 = g.const("axis1", np.array([1]))
        for d in self.network.state.families:
            part = _columns(g, x, at, at + d.length, f"initial_{d.name}")
            part = g.op("Unsqueeze", [part, axis1], f"initial_{d.name}_3d")
            offset = self.emitter.offsets[d.name]
            if offset:
                part = g.op("Add", [part, self.emitter._ramp(offset, d.positions)],
                            f"initial_{d.name}_offset")
            out.append(part)
            at += d.length
        scal = _columns(g, x, at, at + self.ns, "initial_scalars")
        ones = g.op("Slice", [g.op("Add", [g.op("Mul", [x, self.emitter.zero], "zeros"),
                                           g.const("one_f", np.array(1).astype(
                                               self.emitter.np_dtype))], "ones"),
                              g.const("c0", np.array([0])), g.const("c1", np.array([1])),
                              axis1], "one_column")
        both = g.op("Concat", [scal, ones], "scalars_and_one", axis=1)
        out.append(g.op("Unsqueeze", [both, g.const("axis2", np.array([2]))], "scalars_col"))
        return out

    def emit(self, g: _Graph, carried: list[str], step: int) -> list[str]:
        families = dict(zip(self.names[:-1], carried[:-1], strict=True))
        new, scalars = self.emitter.emit(g, families, carried[-1], step)
        return [new[n] for n in self.names[:-1]] + [scalars]

    def event_shape(self, K: int) -> list[int | str]:
        return ["batch", 2 * K, 1]

    def tap(self, g: _Graph, carried: list[str], start: int, end: int, hint: str) -> str:
        """Flat state slots [start, end) (scalars only) as int64 [batch, end - start, 1]."""
        m = self.main
        cols = g.op("Slice", [carried[-1], m.const("c_start", np.array([start - self.n_families])),
                              m.const("c_end", np.array([end - self.n_families])),
                              m.const("axis1", np.array([1]))], hint)
        if self.dtype == "float64":
            cols = g.op("Cast", [cols], f"{hint}_int", to=TensorProto.INT64)
        return cols

    def join(self, g: _Graph, finals: list[str]) -> str:
        flat = g.const("flat2", np.array([0, -1]))
        parts = []
        for d, v in zip(self.network.state.families, finals[:-1], strict=True):
            offset = self.emitter.offsets[d.name]
            if offset:
                v = g.op("Sub", [v, self.emitter._ramp(offset, d.positions)],
                         f"final_{d.name}_j")
            parts.append(g.op("Reshape", [v, flat], f"final_{d.name}"))
        scal = g.op("Reshape", [finals[-1], flat], "final_scalars_flat")
        parts.append(_columns(g, scal, 0, self.ns, "final_scalars"))
        x = g.op("Concat", parts, "final_state_raw", axis=1)
        if self.dtype == "float64":
            x = g.op("Cast", [x], "final_state_int", to=TensorProto.INT64)
        return x


def _columns(g: _Graph, x: str, start: int, end: int, hint: str, consts: _Graph | None = None
             ) -> str:
    """Columns [start, end) of a [batch, n] tensor (constants in `consts`, default `g`)."""
    c = consts or g
    return g.op("Slice", [x, c.const("c_start", np.array([start])),
                          c.const("c_end", np.array([end])),
                          c.const("axis1", np.array([1]))], hint)


# ---- the sparse and dense encodings -------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Bucket:
    rows: np.ndarray  # original row ids, in the order the bucket outputs them
    width: int
    cols: np.ndarray  # (len(rows) * width,) original column ids (padding: 0)
    vals: np.ndarray  # (len(rows) * width,) weights (padding: 0)


def plan_buckets(counts: np.ndarray, op_cost: int) -> list[np.ndarray]:
    """Partition rows into groups padded to the group's widest row, minimising
    (padded entries + op_cost per group): a dynamic program over the distinct counts."""
    order = np.argsort(counts, kind="stable")
    distinct, first = np.unique(counts[order], return_index=True)
    sizes = np.diff(np.append(first, len(order)))
    k = len(distinct)
    best = [0.0] + [float("inf")] * k  # best[i]: cost of the first i distinct counts
    cut = [0] * (k + 1)
    for i in range(1, k + 1):
        rows = 0
        for j in range(i, 0, -1):  # group = distinct counts j-1 .. i-1
            rows += int(sizes[j - 1])
            cost = best[j - 1] + rows * max(int(distinct[i - 1]), 1) + op_cost
            if cost < best[i]:
                best[i], cut[i] = cost, j - 1
    groups = []
    i = k
    while i > 0:
        j = cut[i]
        groups.append(order[first[j] : (first[i] if i < k else len(order))])
        i = j
    return groups[::-1]


def sparse_buckets(f: SparseLinear, op_cost: int) -> list[Bucket]:
    counts = f.row_counts()
    starts = np.concatenate([[0], np.cumsum(counts)])
    buckets = []
    for rows in plan_buckets(counts, op_cost):
        width = max(int(counts[rows].max()), 1)
        cols = np.zeros((len(rows), width), dtype=np.int64)
        vals = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            n = counts[r]
            cols[i, :n] = f.cols[starts[r] : starts[r] + n]
            vals[i, :n] = f.vals[starts[r] : starts[r] + n]
        buckets.append(Bucket(np.asarray(rows, dtype=np.int64), width, cols.ravel(), vals.ravel()))
    return buckets
class _StepEmitter:
    """Emits one network step into a graph. Weights are initializers of the main graph,
    shared by the K unrolled steps. Sparse factors gather with `GatherElements`, whose index
    tensors must have the batch dimension: each constant index row is expanded to the batch
    once, before the Loop (`expand_indices`), and the body reads those loop-invariant values."""

    def __init__(self, network: SparseNetwork, main: _Graph, options: ExportOptions) -> None:
        self.network = network
        self.options = options
        self.main = main
        self._shared: dict[str, str] = {}
        self._indices: list[tuple[str, np.ndarray]] = []  # (name, constant index row)
        self._expanded: dict[str, str] = {}
        self.plans: list[tuple[SparseLinear, list[tuple[Bucket, str, str | None]], str, str]] = []
        self.dense: list[tuple[SparseLinear, str, str]] = []
        if options.weights == "dense":
            for f in network.factors():
                w = main.const(f"{f.name}.W", f.dense().T.copy(), doc=f.doc)
                b = main.const(f"{f.name}.bias", f.bias)
                self.dense.append((f, w, b))
            return
        position = np.arange(network.n_state)  # where each input row sits in the input vector
        factors = list(network.factors())
        for n, f in enumerate(factors):
            emitted = []
            for i, bk in enumerate(sparse_buckets(f, options.op_cost)):
                idx = self._index(f"{f.name}.b{i}.index", position[bk.cols])
                val = None
                if not np.all(bk.vals == 1):
                    val = main.const(f"{f.name}.b{i}.weight", bk.vals[None, :])
                emitted.append((bk, idx, val))
            # the factor outputs its rows bucket by bucket; the next factor reads that order
            order = np.concatenate([bk.rows for bk, _, _ in emitted])
            bias = main.const(f"{f.name}.bias", f.bias[order][None, :])
            perm = ""
            if n == len(factors) - 1 and not np.array_equal(order, np.arange(len(order))):
                perm = self._index(f"{f.name}.order", np.argsort(order))
            self.plans.append((f, emitted, bias, perm))
            position = np.argsort(order)

    def _index(self, hint: str, row: np.ndarray) -> str:
        name = self.main.name(hint)
        self._indices.append((name, row.astype(np.int64)))
        return name

    def expand_indices(self, g: _Graph, batch: str) -> list[str]:
        """Broadcast every constant index row to (batch, len) before the Loop; returns the
        expanded values (the Loop body reads them)."""
        for name, row in self._indices:
            const = g.const(name + ".row", row[None, :])
            shape = g.op("Concat", [batch, g.const(name + ".len", np.array([row.size]))],
                         name + ".shape", axis=0)
            self._expanded[name] = g.op("Expand", [const, shape], name)
        return list(self._expanded.values())

    def emit(self, g: _Graph, x: str, step: int) -> str:
        v = x
        factors = iter(self.plans if self.plans else self.dense)
        last_plan = None
        for layer in self.network.layers:
            for _ in layer.factors:
                item = next(factors)
                if self.plans:
                    v = self._sparse(g, v, item, step)  # type: ignore[arg-type]
                    last_plan = item
                else:
                    f, w, b = item  # type: ignore[misc]
                    mm = g.op("MatMul", [v, w], f"s{step}/{f.name}/matmul", doc=f.doc)
                    v = g.op("Add", [mm, b], f"s{step}/{f.name}")
            if layer.relu:
                v = g.op("Relu", [v], f"s{step}/{layer.name}/relu", doc=layer.doc)
        if last_plan is not None and last_plan[3]:
            v = g.op("GatherElements", [v, self._expanded[last_plan[3]]],
                     f"s{step}/state_order", axis=1)
        return v

    def shared(self, key: str, array: np.ndarray) -> str:
        if key not in self._shared:
            self._shared[key] = self.main.const(key, array)
        return self._shared[key]

    def _sparse(self, g: _Graph, v: str, plan: tuple, step: int) -> str:
        f, emitted, bias, _ = plan
        parts = []
        for i, (bk, idx, val) in enumerate(emitted):
            tag = f"s{step}/{f.name}/b{i}"
            gathered = g.op("GatherElements", [v, self._expanded[idx]], f"{tag}/gather", axis=1)
            prod = gathered if val is None else g.op("Mul", [gathered, val], f"{tag}/mul")
            if bk.width > 1:
                # row sums as a product with a column of ones: onnxruntime's int64 MatMul is
                # exact (and faster), its int64 ReduceSum is not (it is exact only to 2^53);
                # a (w, 1) column is ~4x faster than a 1-D vector of ones (measured)
                shape = self.shared(f"shape_{len(bk.rows)}x{bk.width}",
                                    np.array([0, len(bk.rows), bk.width], dtype=np.int64))
                r = g.op("Reshape", [prod, shape], f"{tag}/rows")
                ones = self.shared(f"ones_{bk.width}", np.ones((bk.width, 1), dtype=np.int64))
                col = g.op("MatMul", [r, ones], f"{tag}/sum")
                flat = self.shared(f"shape_{len(bk.rows)}",
                                   np.array([0, len(bk.rows)], dtype=np.int64))
                prod = g.op("Reshape", [col, flat], f"{tag}/flat")
            parts.append(prod)
        cat = parts[0] if len(parts) == 1 else g.op("Concat", parts, f"s{step}/{f.name}/concat",
                                                    axis=1)
        return g.op("Add", [cat, bias], f"s{step}/{f.name}", doc=f.doc)




class _SparseLoop:
    """The sparse and dense encodings: one loop-carried int64 state [batch, n_state]."""

    def __init__(self, network: Network, main: _Graph, options: ExportOptions) -> None:
        self.emitter = _StepEmitter(lower_to_sparse(network), main, options)
        self.main = main
        self.n = network.n_state

    def value_infos(self, suffix: str) -> list[onnx.ValueInfoProto]:
        return [_i64(f"state{suffix}", ["batch", self.n])]

    def split(self, g: _Graph, x0: str) -> list[str]:
        return [x0]

    def emit(self, g: _Graph, carried: list[str], step: int) -> list[str]:
        return [self.emitter.emit(g, carried[0], step)]

    def event_shape(self, K: int) -> list[int | str]:
        return ["batch", 2 * K]

    def tap(self, g: _Graph, carried: list[str], start: int, end: int, hint: str) -> str:
        return _columns(g, carried[0], start, end, hint, self.main)

    def join(self, g: _Graph, finals: list[str]) -> str:
        return finals[0]


# ---- the model -------------------------------------------------------------------------------


def _i64(name: str, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, list(shape))


def build_model(
    network: Network,
    iface: ModelInterface,
    options: ExportOptions | None = None,
    metadata: Sequence[tuple[str, str]] = (),
    doc: str = "",
) -> onnx.ModelProto:
    """The whole model: encode the inputs, loop the step, decode the final state."""
    options = options or ExportOptions()
    check_options(network, options)
    main = _Graph()
    loop = _loop_state(network, main, options)
    inputs = _graph_inputs(main, iface, options)
    encode = _Graph("encode/")
    x0, batch, budget = _encode(encode, iface, main)
    expanded = []
    if isinstance(loop, _SparseLoop):
        expanded = loop.emitter.expand_indices(encode, batch)
    trips = _trip_count(encode, budget, options.unroll)
    initial = loop.split(encode, x0)
    enc_fn, enc_in = _function(
        "encode", encode, [name for name, _ in iface.inputs] + [
            f"{name}_value" for name in OPTIONAL_INPUTS], [trips, *initial, *expanded], main,
        "the initial state [batch, n_state] (the program's image with its inputs placed, the "
        "tape, the step budget; or resume_state), split as the Loop carries it, and the "
        "trip count ceil(budget / K)")
    _call(main, enc_fn, enc_in, [trips, *initial, *expanded])
    finals, layers = _loop(main, loop, iface, options, trips, initial, network)
    decode = _Graph("decode/")
    decode.nodes.append(helper.make_node("Identity", [loop.join(decode, finals)],
                                         ["final_state"], name="final_state"))
    outputs = _decode(decode, iface, len(loop.event_shape(options.unroll)) + 1)
    dec_fn, dec_in = _function(
        "decode", decode, [*finals, "events_scan", "max_steps_value"],
        [o.name for o in outputs], main,
        "the outputs from the final state (the pending write landed, status, steps, named "
        "outputs) and the output tape from the scanned output events")
    _call(main, dec_fn, dec_in, [o.name for o in outputs])
    graph = helper.make_graph(main.nodes, "mlpc", inputs, outputs,
                              initializer=main.inits, doc_string=doc)
    return _model(graph, [enc_fn, *layers, dec_fn], metadata)


def _loop_state(network: Network, g: _Graph, options: ExportOptions
                ) -> _FamilyLoop | _SparseLoop:
    """The emitter of the chosen encoding, with its constants in `g`."""
    if options.weights == "families":
        return _FamilyLoop(network, g, options.dtype)
    return _SparseLoop(network, g, options)


def _model(graph: onnx.GraphProto, functions: Sequence[onnx.FunctionProto],
           metadata: Sequence[tuple[str, str]]) -> onnx.ModelProto:
    """A model of `graph` and its local functions, with the metadata as metadata_props."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid(FUNCTION_DOMAIN, 1)],
                              producer_name="mlpc", doc_string=graph.doc_string,
                              functions=list(functions))
    model.ir_version = 9
    for key, value in metadata:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


def build_step_model(
    network: Network,
    options: ExportOptions | None = None,
    metadata: Sequence[tuple[str, str]] = (),
    doc: str = "",
) -> onnx.ModelProto:
    """One step of the network as its own model: `next_state = step(state)`, both int64
    [batch, n_state] (the flat state the full model's Loop carries, before its change of
    variables). The same emitters as the Loop body, applied once, with the weights as this
    model's own initializers, each layer a local function; `options.unroll` and the budget
    do not apply. The caller describes the state in `metadata` (e.g. its layout)."""
    options = options or ExportOptions()
    check_options(network, options)
    g = _Graph()
    loop = _loop_state(network, g, options)
    if isinstance(loop, _SparseLoop):
        loop.emitter.expand_indices(g, g.op("Shape", ["state"], "batch", start=0, end=1))
    finals = loop.emit(g, loop.split(g, "state"), 0)
    g.nodes.append(helper.make_node("Identity", [loop.join(g, finals)], ["next_state"],
                                    name="next_state"))
    layers = _outline_layers(g, network)
    n = network.n_state
    graph = helper.make_graph(
        g.nodes, "mlpc_step", [_i64("state", ["batch", n])], [_i64("next_state", ["batch", n])],
        initializer=g.inits, doc_string=doc or f"one step of the looped ReLU-MLP: {network.doc}")
    return _model(graph, layers, metadata)


OPTIONAL_INPUTS = ("tape", "max_steps", "resume_state")


def _graph_inputs(g: _Graph, iface: ModelInterface, options: ExportOptions
                  ) -> list[onnx.ValueInfoProto]:
    """The program's named inputs, and the optional inputs `tape`, `max_steps` and
    `resume_state`: ONNX optional tensors (an initializer standing in as a default would make
    onnxruntime warn on every session), each resolved to its value or its default by
    `OptionalHasElement` and `If` before anything reads it, as `<name>_value`."""
    n = iface.n_state
    inputs = [_i64(name, ["batch"]) for name, _ in iface.inputs]
    shapes: tuple[list[int | str], ...] = (["batch", "tape_length"], [], ["resume_batch", n])
    defaults = (np.zeros((1, 0), dtype=np.int64),
                np.array(options.default_max_steps, dtype=np.int64),
                np.zeros((0, n), dtype=np.int64))
    docs = (
        "input tape words, one row per batch item (optional; default: empty)",
        f"step budget (optional; default {options.default_max_steps})",
        "a final_state to continue from (optional; default: start afresh)",
    )
    for name, shape, default, doc in zip(OPTIONAL_INPUTS, shapes, defaults, docs, strict=True):
        tensor = helper.make_tensor_type_proto(TensorProto.INT64, shape)
        info = helper.make_value_info(name, helper.make_optional_type_proto(tensor), doc)
        inputs.append(info)
        has = g.op("OptionalHasElement", [name], f"{name}_given")
        given = helper.make_graph(
            [helper.make_node("OptionalGetElement", [name], [f"{name}_fed"])], f"{name}_fed",
            [], [_i64(f"{name}_fed", shape)])
        absent = helper.make_graph(
            [helper.make_node("Constant", [], [f"{name}_default"],
                              value=numpy_helper.from_array(default))], f"{name}_default",
            [], [_i64(f"{name}_default", shape)])
        g.nodes.append(helper.make_node("If", [has], [f"{name}_value"], name=f"{name}_value",
                                        then_branch=given, else_branch=absent, doc_string=doc))
    return inputs


def _encode(g: _Graph, iface: ModelInterface, outer: _Graph) -> tuple[str, str, str]:
    """The initial flat state [batch, n_state] (or `resume_state`), the batch size and the
    step budget. The program's image is an initializer of `outer` (the program's data, apart
    from the encoding's constants)."""
    H = iface.offset
    one = g.const("one", np.array([1], dtype=np.int64))
    zero1 = g.const("zero1", np.array([0], dtype=np.int64))
    batch = g.op("Shape", ["tape_value"], "tape_shape", start=0, end=1)
    for name, _ in iface.inputs:
        batch = g.op("Max", [batch, g.op("Shape", [name], f"{name}_shape", start=0, end=1)],
                     "batch")
    image = np.zeros(iface.memory, dtype=np.int64)
    image[: len(iface.image)] = iface.image
    slots = list(iface.memory_slots)
    mem = outer.const("image", (image[slots] + H)[None, :],
                      doc="the program's memory image + H (the words the state holds)")
    for name, addr in iface.inputs:
        onehot = np.zeros((1, len(slots)), dtype=np.int64)
        onehot[0, slots.index(addr)] = 1
        col = g.op("Unsqueeze", [name, one], f"{name}_col")
        delta = g.op("Sub", [col, g.const(f"{name}_old", np.array(image[addr]))], f"{name}_delta")
        mem = g.op("Add", [mem, g.op("Mul", [delta, g.const(f"{name}_at", onehot)],
                                     f"{name}_placed")], f"memory_with_{name}")
    mem = g.op("Expand", [mem, g.op("Concat", [batch, g.const("m", np.array([len(slots)]))],
                                    "mem_shape", axis=0)], "initial_memory")
    tin = iface.tape_capacity
    tape_len = g.op("Shape", ["tape_value"], "tape_len", start=1, end=2)
    tape_b = g.op("Expand", ["tape_value", g.op("Concat", [batch, tape_len], "tape_shape_b",
                                                 axis=0)], "tape_batched")
    fill = g.op("ConstantOfShape", [g.op("Concat", [batch, g.const("tin", np.array([tin]))],
                                         "fill_shape", axis=0)], "tape_fill",
                value=numpy_helper.from_array(np.array([-1], dtype=np.int64)))
    padded = g.op("Concat", [tape_b, fill], "tape_padded", axis=1)
    tape_words = g.op("Slice", [padded, zero1, g.const("tin_end", np.array([tin])), one],
                      "tape_words")
    tape_slots = g.op("Add", [tape_words, g.const("H", np.array(H, dtype=np.int64))],
                      "tape_slots")
    too_long = g.op("Cast", [g.op("Greater", [tape_len, g.const("tin1", np.array([tin]))],
                                  "tape_too_long")], "tape_too_long_i", to=TensorProto.INT64)
    budget = g.op("Max", [g.op("Min", ["max_steps_value", g.const("max_budget",
                                                         np.array(iface.max_budget))],
                                "budget_capped"), g.const("no_budget", np.array(0))],
                  "budget0")
    names = [name for name, _ in iface.slot]
    start = iface.scalars_start
    assert [i for _, i in iface.slot] == list(range(start, start + len(names)))
    assert iface.tape_start == len(slots) and start == len(slots) + tin

    def column(name: str, value: int = 1) -> np.ndarray:
        row = np.zeros((1, len(names)), dtype=np.int64)
        row[0, names.index(name)] = value
        return row

    base = sum((column(n, v) for n, v in iface.initial_scalars), np.zeros((1, len(names)),
                                                                          dtype=np.int64))
    fault = g.op("Mul", [g.op("Unsqueeze", [too_long, zero1], "too_long_col"),
                         g.const("fault_col", column("fault", iface.tape_overflow_fault))],
                 "initial_fault")
    steps = g.op("Mul", [budget, g.const("budget_col", column("budget"))], "initial_budget")
    scal = g.op("Add", [g.op("Add", [g.const("scalars0", base), fault], "scalars_f"), steps],
                "scalars_fb")
    scal = g.op("Expand", [scal, g.op("Concat", [batch, g.const("ns", np.array([len(names)]))],
                                      "scal_shape", axis=0)], "initial_scalars")
    x0 = g.op("Concat", [mem, tape_slots, scal], "encoded_state", axis=1)
    both = g.op("Concat", ["resume_state_value", x0], "resume_or_encoded", axis=0)
    return g.op("Slice", [both, zero1, batch, zero1], "initial_state"), batch, budget


def _trip_count(g: _Graph, budget: str, K: int) -> str:
    """ceil(budget / K) iterations, at least one (a no-op without budget), so the event scan
    is never empty."""
    return g.op("Max", [g.op("Div", [g.op("Add", [budget, g.const("K1", np.array(K - 1))],
                                          "ms_k"), g.const("K", np.array(K))], "trips"),
                        g.const("one_trip", np.array(1))], "trip_count")


def _loop(g: _Graph, loop: _FamilyLoop | _SparseLoop, iface: ModelInterface,
          options: ExportOptions, trips: str, initial: list[str], network: Network
          ) -> tuple[list[str], list[onnx.FunctionProto]]:
    """The Loop node: K unrolled steps per iteration, until no item runs; returns the final
    carried values (`loop_final_*`); the scan of output events (flag, word + H) per step is
    `events_scan`; and the local functions of the step's layers, called in the body."""
    K = options.unroll
    body = _Graph("")
    carried = [f"{name}_in" for name in _carried_names(loop)]
    events = []
    oflag, oval, live = iface.index("oflag"), iface.index("oval"), iface.index("live")
    assert oval == oflag + 1
    for k in range(K):
        carried = loop.emit(body, carried, k)
        events.append(loop.tap(body, carried, oflag, oval + 1, f"s{k}/output_event"))
    live_col = loop.tap(body, carried, live, live + 1, "live")
    any_live = body.op("ReduceMax", [live_col], "any_live", keepdims=0)
    cond = body.op("Cast", [any_live], "cond", to=TensorProto.BOOL)
    ev = body.op("Concat", events, "events", axis=1) if K > 1 else events[0]
    outs = [f"{name}_out" for name in _carried_names(loop)]
    for value, name in zip(carried, outs, strict=True):
        body.nodes.append(helper.make_node("Identity", [value], [name], name=name))
    body.nodes.append(helper.make_node("Identity", [cond], ["cond_out"], name="cond_out"))
    body.nodes.append(helper.make_node("Identity", [ev], ["events_out"], name="events_out"))
    layers = _outline_layers(body, network)
    body_graph = helper.make_graph(
        body.nodes, "subleq_step",
        [helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])]
        + loop.value_infos("_in"),
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])]
        + loop.value_infos("_out") + [_i64("events_out", loop.event_shape(K))],
        doc_string=f"{K} unrolled steps of the looped ReLU-MLP: {network.doc}",
    )
    finals = [f"loop_final_{name}" for name in _carried_names(loop)]
    g.nodes.append(helper.make_node("Loop", [trips, g.const("true", np.array(True)), *initial],
                                    [*finals, "events_scan"], name="loop", body=body_graph,
                                    doc_string="iterate the step until no batch item runs"))
    return finals, layers


def _carried_names(loop: _FamilyLoop | _SparseLoop) -> list[str]:
    return [info.name.removesuffix("_in") for info in loop.value_infos("_in")]


def _decode(g: _Graph, iface: ModelInterface, event_rank: int) -> list[onnx.ValueInfoProto]:
    H = iface.offset
    one = g.const("d_one", np.array([1], dtype=np.int64))
    zero = g.const("d_zero", np.array([0], dtype=np.int64))

    def column(i: int, hint: str) -> str:
        return g.op("Gather", ["final_state", g.const(f"{hint}_i", np.array(i))], hint, axis=1)

    hconst = g.const("d_H", np.array(H, dtype=np.int64))
    slots = iface.memory_slots
    mem_u = g.op("Slice", ["final_state", zero, g.const("d_m", np.array([len(slots)])), one],
                 "memory_before_write")
    if iface.state_words:  # the constant words from the image, the others from the state
        image = np.zeros(iface.memory, dtype=np.int64)
        image[: len(iface.image)] = iface.image
        batch = g.op("Shape", ["final_state"], "d_batch", start=0, end=1)
        constants = g.op("Expand", [g.const("d_image", (image + H)[None, :]),
                                    g.op("Concat", [batch, g.const("d_mm", np.array(
                                        [iface.memory]))], "d_image_shape", axis=0)],
                         "d_constants")
        where = np.arange(iface.memory) + len(slots)
        where[list(slots)] = np.arange(len(slots))
        both = g.op("Concat", [mem_u, constants], "d_state_and_constants", axis=1)
        mem_u = g.op("Gather", [both, g.const("d_words", where)], "memory_full", axis=1)
    # the pending write lands: M[wa] = wv - H where wa = wa2 - 2 (no write: wv == wo)
    wa2, wo, wv = (g.op("Unsqueeze", [column(iface.index(n), n), one], f"{n}_col")
                   for n in iface.pending_write)
    at = g.op("Equal", [g.const("d_addresses", np.arange(iface.memory)[None, :] + 2), wa2],
              "write_at")
    delta = g.op("Mul", [g.op("Cast", [at], "write_at_i", to=TensorProto.INT64),
                         g.op("Sub", [wv, wo], "write_delta")], "write_delta_at")
    mem_w = g.op("Add", [mem_u, delta], "memory_written")
    g.nodes.append(helper.make_node("Sub", [mem_w, hconst], ["memory"], name="memory"))
    pc1 = column(iface.index("pc1"), "pc1")
    fault = column(iface.index("fault"), "fault_code")
    budget = column(iface.index("budget"), "budget")
    g.nodes.append(helper.make_node("Identity", [fault], ["fault"], name="fault"))
    ms = g.op("Max", [g.op("Min", ["max_steps_value",
                                   g.const("d_maxb", np.array(iface.max_budget))], "ms_capped"),
                      g.const("d_nob", np.array(0))], "ms")
    g.nodes.append(helper.make_node("Sub", [ms, budget], ["steps"], name="steps"))
    zero_s = g.const("d_zero_s", np.array(0, dtype=np.int64))
    faulted = g.op("Greater", [fault, zero_s], "faulted")
    halted = g.op("Equal", [pc1, zero_s], "halted")
    status = g.op("Where", [halted, g.const("st1", np.array(1)), zero_s], "status_h")
    status = g.op("Where", [faulted, g.const("st2", np.array(2)), status], "status_f")
    if iface.trap_code_address >= 0:
        code = g.op("Gather", ["memory", g.const("trap_i", np.array(iface.trap_code_address))],
                    "trap_code", axis=1)
        line = g.op("Gather", ["memory", g.const("line_i", np.array(iface.trap_line_address))],
                    "trap_line_raw", axis=1)
        trapped = g.op("And", [g.op("Equal", [status, g.const("st1b", np.array(1))], "is_h"),
                               g.op("Not", [g.op("Equal", [code, zero_s], "c0")], "c_nz")],
                       "trapped")
        status = g.op("Where", [trapped, g.const("st3", np.array(3)), status], "status_t")
        g.nodes.append(helper.make_node("Where", [trapped, code, zero_s], ["trap"], name="trap"))
        g.nodes.append(helper.make_node("Where", [trapped, line, zero_s], ["trap_line"],
                                        name="trap_line"))
    g.nodes.append(helper.make_node("Identity", [status], ["status"], name="status"))
    _decode_output_tape(g, H, one, zero, event_rank)
    outs = [
        _i64("output_tape", ["batch", "output_words"]),
        _i64("output_length", ["batch"]),
        _i64("status", ["batch"]),
        _i64("fault", ["batch"]),
        _i64("steps", ["batch"]),
        _i64("memory", ["batch", iface.memory]),
        _i64("final_state", ["batch", iface.n_state]),
    ]
    if iface.trap_code_address >= 0:
        outs += [_i64("trap", ["batch"]), _i64("trap_line", ["batch"])]
    for name, addr in iface.outputs:
        g.nodes.append(helper.make_node("Gather", ["memory", g.const(f"out_{name}",
                                                                     np.array(addr))],
                                        [name], name=f"output {name}", axis=1))
        outs.append(_i64(name, ["batch"]))
    return outs


def _decode_output_tape(g: _Graph, H: int, one: str, zero: str, rank: int) -> None:
    """events_scan is (iterations, batch, 2K[, 1]) = K (flag, word + H) pairs per row: the
    flagged words, in order, become `output_tape` and `output_length`."""
    hconst = g.const("d_H", np.array(H, dtype=np.int64))
    ev = g.op("Transpose", ["events_scan"], "events_bt", perm=[1, 0, *range(2, rank)])
    pairs = g.op("Reshape", [ev, g.const("ev_shape", np.array([0, -1, 2]))], "event_pairs")
    flag = g.op("Gather", [pairs, g.const("e0", np.array(0))], "event_flag", axis=2)
    word = g.op("Sub", [g.op("Gather", [pairs, g.const("e1", np.array(1))], "event_val",
                             axis=2), hconst], "event_word")
    pos = g.op("Sub", [g.op("CumSum", [flag, g.const("e_ax", np.array(1))], "event_pos1"),
                       one], "event_pos")
    n_events = g.op("Shape", [flag], "n_events", start=1, end=2)
    # unflagged events go to a column past every real position
    target = g.op("Where", [g.op("Cast", [flag], "flag_b", to=TensorProto.BOOL), pos,
                            g.op("Squeeze", [n_events], "dump")], "event_target")
    width = g.op("Add", [n_events, one], "tape_width")
    tshape = g.op("Concat", [g.op("Shape", [flag], "b_dim", start=0, end=1), width],
                  "tape_shape_out", axis=0)
    blank = g.op("ConstantOfShape", [tshape], "tape_blank",
                 value=numpy_helper.from_array(np.array([0], dtype=np.int64)))
    scattered = g.op("ScatterElements", [blank, target, word], "tape_scattered", axis=1)
    length = g.op("ReduceSum", [flag, one], "out_len", keepdims=0)
    g.nodes.append(helper.make_node("Identity", [length], ["output_length"],
                                    name="output_length"))
    longest = g.op("ReduceMax", [length], "longest", keepdims=1)
    g.nodes.append(helper.make_node("Slice", [scattered, zero, longest, one], ["output_tape"],
                                    name="output_tape"))
