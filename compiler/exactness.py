"""The build-time proof that every value a step of an exported model computes is exact.

The claim, for every `MatMul`, `Gemm`, `Mul`, `Add` and `Sub` an exporter emits in the step
(the Loop body, or the step model), int64 and float64 alike: for each output entry,

    B = sum over the reduction k of |A[i, k]| * max|B[k, j]|  <  LIMIT

where LIMIT is 2^63 for int64 and 2^53 for float64, and `max|x|` is a bound on |x| proven
for every state the network can be in (below). Why this is the right bound:

- Every partial sum of the entry, whatever subset of its terms a runtime has added so far
  and in whatever order, has absolute value at most B (triangle inequality), and so has each
  single product. With B < 2^63 no int64 operation overflows: two's-complement wraparound,
  which C++ leaves undefined for signed integers, never happens, so the result does not
  depend on it. With B < 2^53 every partial sum and product of integer-valued doubles is an
  integer of magnitude below 2^53, which a double holds exactly, so every rounding step is
  exact (fused multiply-adds included: they round once, an exact value); no order of
  summation, blocking, or vectorisation can change the result.
- An elementwise `Add`/`Sub`/`Mul` is one operation: its value is bounded by |a| + |b|
  (|a| * |b|), or by the network's proven range of the quantity it computes when that is
  tighter (the value computed is that quantity, exactly, by induction).
- Weights are constants; each is checked to be an integer below LIMIT (so float64 holds it
  exactly).

Where the `max|x|` come from: the loop-carried state's declared ranges (`Network.state`), and,
for each tensor that is a quantity of the network (a ReLU unit's output, a linear quantity,
a reduction, one word's combination inside a reduction), the range `SpaceBuilder` proved
(ReLU: interval arithmetic) or the code generator declared next to the formula that
guarantees it (linear: `runtime/numpy_exec.py` checks each at run time in the tests). The
emitters attach these as *hints*; a tensor's bound is the smaller of the hint and what its
op's inputs give. Everything else (pending products of folded matrices, Concat, Split,
Reshape, ...) is propagated from the inputs, so a fold of two weight matrices is checked for
what it really multiplies: |W2 W1| * max|x|, not the range of W1 x.

`Prover` walks the nodes of a graph in order and applies these rules to each. It refuses
(`ExactnessError`, an `ExportError`) an op whose bound reaches LIMIT and an op it has no rule
for; the exporters run it on every step they emit, so no model is written without the proof.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from mlpc.compiler.network import FLOAT64_EXACT, INT64_LIMIT
from mlpc.compiler.onnx_graph import ExportError


class ExactnessError(ExportError):
    """An emitted op could compute a value outside its dtype's exact range."""


def limit_of(dtype: str) -> int:
    """The exclusive bound on every magnitude computed in `dtype`."""
    return FLOAT64_EXACT if dtype == "float64" else INT64_LIMIT


def magnitude(array: np.ndarray) -> np.ndarray:
    """|array| as exact Python integers (an object array), for products that must not wrap."""
    return np.array(np.abs(exact(array)), dtype=object)  # (np.abs of a 0-d array is a scalar)


def exact(array: np.ndarray) -> np.ndarray:
    """An integer-valued array as exact Python integers (an object array). Integer arrays
    and floats below 2^62 convert in one C loop (as `int` does, truncating); larger floats
    one by one."""
    a = np.asarray(array)
    if a.dtype.kind in "iub":
        return a.astype(np.int64).astype(object) if a.dtype.kind == "b" else a.astype(object)
    if a.dtype.kind == "f" and np.all(np.abs(a) < 2.0 ** 62):
        return a.astype(np.int64).astype(object)
    return np.vectorize(int, otypes=[object])(a)


# above this many products a MatMul's bound is computed in float64 and rounded up (below)
EXACT_WORK = 1 << 18


def matmul_bound(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An upper bound on |a| @ |b| for non-negative a, b, as exact integers: the exact
    product when it is small, else the float64 product scaled up by its worst relative error.
    Each of the n products of an entry and its sum in any order is off by at most a factor
    (1 + u)^(n + 3) (u = 2^-53; both factors rounded, then the product, then n - 1 sums, all
    terms non-negative), so multiplying by 1 + (n + 3) * 2^-52 > (1 + u)^(n + 3) (while
    n * u < 2^-20) and rounding up gives an integer no smaller than the exact sum."""
    n = a.shape[-1]
    if a.size * (b.shape[-1] if b.ndim > 1 else 1) <= EXACT_WORK:
        return np.matmul(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    assert n < 1 << 30
    up = np.matmul(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    up = np.ceil(up * (1 + (n + 3) * 2.0 ** -52))
    return np.vectorize(int, otypes=[object])(up)


def largest(bound: np.ndarray) -> int:
    return int(np.max(bound)) if bound.size else 0


# ops that only move values: the bound of each output entry is the bound of its source entry
_MOVES = ("Identity", "Reshape", "Unsqueeze", "Squeeze", "Slice", "Concat", "Split",
          "Gather", "GatherElements")
# ops whose exactness is the claim: their bound is compared with the limit
ARITHMETIC = ("MatMul", "Gemm", "Mul", "Add", "Sub")


class Prover:
    """Bounds on |value| for every tensor of a graph under construction, as object arrays
    of exact integers broadcastable to the tensor (the batch dimension as 1), and the check
    of every arithmetic op against the dtype's limit (see the module docstring)."""

    def __init__(self, dtype: str, constants: Mapping[str, np.ndarray]) -> None:
        self.dtype = dtype
        self.limit = limit_of(dtype)
        self.constants = constants  # name -> value of every constant the graph reads
        self.bounds: dict[str, np.ndarray] = {}
        self.hints: dict[str, np.ndarray] = {}
        self.worst: dict[str, int] = {}  # op type -> the largest bound checked
        self.checked = 0  # arithmetic ops proven
        self._done: dict[int, int] = {}  # id(node list) -> nodes visited
        self._constants: dict[str, np.ndarray] = {}
        # replaying a step: each node's signature and output names in the first step proven
        self._template: list[tuple[tuple, list[str]]] | None = None
        self._current: list[tuple[tuple, list[str]]] = []
        self._canon: dict[str, tuple] = {}
        self._diverged = False

    # -- what the emitters tell it ----------------------------------------------------------

    def given(self, name: str, bound: np.ndarray) -> None:
        """A tensor that enters the graph (a loop-carried value) with its proven bound."""
        self.bounds[name] = np.asarray(bound, dtype=object)
        self._canon[name] = ("given", sum(1 for c in self._canon.values() if c[0] == "given"),
                             self.bounds[name].shape, tuple(self.bounds[name].ravel()))

    def hint(self, name: str, bound: np.ndarray) -> None:
        """The network's proven (or declared) range of the quantity `name` holds."""
        b = np.asarray(bound, dtype=object)
        self.hints[name] = b
        if name in self.bounds:
            self.bounds[name] = np.minimum(self.bounds[name], b)

    def begin(self, nodes: list[onnx.NodeProto]) -> None:
        """Prove only the nodes appended to `nodes` from now on (those before are not part
        of the step: the encoding of the inputs, an earlier step's own proof). A later
        step that repeats the first one's nodes (same ops, same constants, same attributes,
        inputs given the same bounds) takes each node's bounds from the first step's: the
        same computation on the same bounds, already proven."""
        self._done[id(nodes)] = len(nodes)
        if self._current and self._template is None:
            self._template = self._current
        self._current = []
        self._canon = {}
        self._diverged = False

    def bound(self, nodes: list[onnx.NodeProto], name: str) -> np.ndarray:
        """The bound of `name`, after visiting every node emitted so far."""
        self.visit(nodes)
        return self.bounds[name] if name in self.bounds else self._constant(name)

    def visit(self, nodes: list[onnx.NodeProto]) -> None:
        """Prove every node of `nodes` not yet visited (the list only grows)."""
        start = self._done.get(id(nodes), 0)
        for node in nodes[start:]:
            self._node(node)
        self._done[id(nodes)] = len(nodes)

    def fits(self, bound: np.ndarray) -> bool:
        return largest(bound) < self.limit

    def report(self) -> dict[str, object]:
        """The proof's summary: the limit, the ops proven and the largest bound per op type."""
        return {"dtype": self.dtype, "limit": self.limit, "ops": self.checked,
                "largest": dict(sorted(self.worst.items()))}

    # -- the rules --------------------------------------------------------------------------

    def _constant(self, name: str) -> np.ndarray:
        if name not in self._constants:
            self._constants[name] = self._magnitude_of_constant(name)
        return self._constants[name]

    def _magnitude_of_constant(self, name: str) -> np.ndarray:
        if name not in self.constants:
            raise ExactnessError(f"no bound for {name!r}: neither computed nor a constant")
        value = np.asarray(self.constants[name])
        if value.dtype.kind == "f" and not np.all(np.round(value) == value):
            raise ExactnessError(f"constant {name!r} is not integer-valued")
        if value.dtype == np.int64 and value.size > EXACT_WORK:  # a large weight matrix
            if value.size and value.min() == np.iinfo(np.int64).min:
                raise ExactnessError(f"constant {name!r} holds -2^63")
            b = np.abs(value)
        else:
            b = magnitude(value)
        if value.dtype.kind in "fi" and not self.fits(b):
            raise ExactnessError(f"constant {name!r} reaches {largest(b)} >= 2^"
                                 f"{self.limit.bit_length() - 1}")
        return b

    def _in(self, name: str) -> np.ndarray:
        return self.bounds[name] if name in self.bounds else self._constant(name)

    def _check(self, node: onnx.NodeProto, bound: np.ndarray) -> None:
        worst = largest(bound)
        if worst >= self.limit:
            raise ExactnessError(
                f"{node.op_type} {node.name}: a partial sum can reach {worst} (2^"
                f"{worst.bit_length() - 1}+), not below 2^{self.limit.bit_length() - 1}: "
                f"{self.dtype} is not exact for it")
        self.worst[node.op_type] = max(self.worst.get(node.op_type, 0), worst)
        self.checked += 1

    def _out(self, name: str, bound: np.ndarray) -> None:
        hint = self.hints.get(name)
        self.bounds[name] = bound if hint is None else np.minimum(bound, hint)

    def _node(self, node: onnx.NodeProto) -> None:
        sig = (node.op_type, tuple(self._canon.get(n, ("const", n)) for n in node.input),
               tuple(a.SerializeToString() for a in node.attribute))
        i = len(self._current)
        for k, out_name in enumerate(node.output):
            self._canon[out_name] = ("node", i, k)
        self._current.append((sig, list(node.output)))
        if self._template is not None and i < len(self._template) and not self._diverged:
            old_sig, old_outputs = self._template[i]
            if old_sig == sig and all(n in self.bounds for n in old_outputs):
                for new, old in zip(node.output, old_outputs, strict=True):
                    self._out(new, self.bounds[old])
                self.checked += node.op_type in ARITHMETIC
                return
        self._diverged = True  # the nodes after this one are proven, not replayed
        self._prove(node)

    def _prove(self, node: onnx.NodeProto) -> None:
        op = node.op_type
        ins = [self._in(n) if n else None for n in node.input]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if op == "MatMul":
            a, b = ins[0], ins[1]
            assert a is not None and b is not None
            if a.shape[-1] == 1 and b.shape[-2 if b.ndim > 1 else 0] != 1:  # a broadcast bound
                a = np.broadcast_to(a, (*a.shape[:-1], b.shape[-2 if b.ndim > 1 else 0]))
            out = matmul_bound(a, b)
            self._check(node, out)
        elif op in ("Add", "Sub", "Mul"):
            out = ins[0] + ins[1] if op != "Mul" else ins[0] * ins[1]
            hint = self.hints.get(node.output[0])
            self._check(node, out if hint is None else np.minimum(out, hint))
        elif op in ("Max", "Min"):  # |max(a, b)| <= max(|a|, |b|)
            out = np.maximum(ins[0], ins[1])
        elif op == "Relu":
            out = ins[0]
        elif op in _MOVES:
            self._move(node, ins, attrs)
            return
        else:
            raise ExactnessError(f"{op} {node.name}: no bound rule for this op")
        self._out(node.output[0], out)

    def _move(self, node: onnx.NodeProto, ins: list[np.ndarray | None],
              attrs: dict[str, object]) -> None:
        op = node.op_type
        x = ins[0]
        assert x is not None
        if op == "Concat":
            parts = [np.asarray(b) for b in ins]
            axis = int(attrs["axis"])  # type: ignore[call-overload]
            rank = max(p.ndim for p in parts)
            shape = [max(p.shape[d] if d != axis % rank else 1 for p in parts)
                     for d in range(rank)]
            full = [np.broadcast_to(p, [s if d != axis % rank else p.shape[d]
                                        for d, s in enumerate(shape)]) for p in parts]
            self._out(node.output[0], np.concatenate(full, axis=axis))
            return
        if op == "Split":
            axis = int(attrs.get("axis", 0))  # type: ignore[call-overload]
            sizes = self._value(node.input[1])
            cuts = np.cumsum(sizes)[:-1]
            for name, part in zip(node.output, np.split(x, cuts, axis=axis), strict=True):
                self._out(name, part)
            return
        if op == "Slice":
            starts, ends, axes = (self._value(n) for n in node.input[1:4])
            index = [slice(None)] * x.ndim
            for s, e, a in zip(starts, ends, axes, strict=True):
                if x.shape[int(a)] != 1:  # a bound broadcast along this axis stays as it is
                    index[int(a)] = slice(int(s), int(e))
            out = x[tuple(index)]
        elif op == "Reshape":
            shape = [int(s) if s else x.shape[i] for i, s in enumerate(self._value(node.input[1]))]
            out = x.reshape(shape)
        elif op == "Unsqueeze":
            out = np.expand_dims(x, tuple(int(a) for a in self._value(node.input[1])))
        elif op == "Squeeze":
            out = np.squeeze(x, tuple(int(a) for a in self._value(node.input[1])))
        elif op == "Gather":  # constant indices: the gathered units' bounds
            index = self._value(node.input[1])
            axis = int(attrs.get("axis", 0))  # type: ignore[call-overload]
            out = x if x.shape[axis] == 1 else np.take(x, index, axis=axis)
        elif op == "GatherElements":
            index = self._value(node.input[1])
            out = np.take_along_axis(x, index, axis=int(attrs.get("axis", 0)))  # type: ignore[call-overload]
        else:  # Identity
            out = x
        self._out(node.output[0], out)

    def _value(self, name: str) -> np.ndarray:
        """The value of a constant argument (shapes, axes, indices)."""
        if name not in self.constants:
            raise ExactnessError(f"{name!r}: a shape or index argument that is not constant")
        return np.asarray(self.constants[name])


def graph_constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """The values of a graph's initializers, by name."""
    return {t.name: numpy_helper.to_array(t) for t in graph.initializer}
