"""`mlpc audit MODEL.onnx`: the honesty and exactness audit of a model file (docs/onnx.md,
"The audit"), from the file alone.

It reads only the ONNX model, its local functions and its metadata (the state layout and the
declared range of each state component); it never uses the compiler. It

- expands the local functions and the If branches, finds the Loop and marks its state path:
  the nodes between the loop-carried state and the next state. Every node there must be an
  affine map with constant weights (MatMul, Gemm or Mul with one constant operand; Add, Sub)
  or `Max(x, 0)` / `Relu`, or a shape op with constant arguments (Reshape, Split, Concat,
  Slice, Identity, Squeeze, Unsqueeze, Expand, Gather, GatherElements). Nodes off the path
  (the loop condition, the output-event taps) are listed, and so is what `encode` computes
  (placing and validating inputs) and what `decode` computes; `decode` may only read values
  out (no decision on the machine's state may flow into memory, status, steps, ...).
- checks that every weight of the path is an integer, in either dtype;
- runs the path in exact integer arithmetic on many states drawn from the declared ranges
  (random ones, extreme words, pc at both ends, every fault, full and empty tapes, budgets
  0 and 1, each with and without a pending write) and checks every value and every partial
  sum of every MatMul, Gemm, Mul, Add and Sub against its dtype's exact range: |v| < 2^63
  for int64, and for float64 a sum of absolute values <= 2^53 (then every order of
  summation is exact).

A partial sum is bounded by the sum of its terms' absolute values, |A| @ |B| for a MatMul,
computed in float64 and inflated by (1 + (k + 2) 2^-52), a rigorous bound of that float
computation's rounding for k terms. Below the limit the integer computation is exact, so the
values themselves are computed in float64 (bound <= 2^53) or int64; past it in Python ints,
so that the audit still reports how far a model goes.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

INT64_LIMIT = 1 << 63  # int64 holds |v| < 2^63
FLOAT64_EXACT = 1 << 53  # float64 holds every integer |v| <= 2^53
EPS = 2.0**-52
DEFAULT_STATES = 32  # random states beside the structured ones
BATCH = 32  # states evaluated together

# decode's outputs that only format or count the scanned output events (allowed to decide)
FORMATTING = ("output_tape", "output_length", "iterations")
# what `encode` may compute to validate its inputs (listed as such)
VALIDATION_OPS = frozenset({
    "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Not", "Xor",
    "Where", "Min", "Max", "Clip", "If", "ReduceMax", "ReduceMin", "Abs", "Sign",
})
# ops that only read values out, when their index or shape arguments are constant
READ_OUTS = frozenset({
    "Identity", "Slice", "Reshape", "Squeeze", "Unsqueeze", "Concat", "Transpose", "Cast",
    "Expand", "Flatten", "Split", "Gather", "GatherElements", "Add", "Sub",
    "Shape", "Size",  # the batch size: a tensor's shape, none of its values
})
# on the state path: op -> the inputs that must be constant (None: all but the first)
SHAPE_OPS: dict[str, tuple[int, ...] | None] = {
    "Identity": (), "Concat": (), "Reshape": (1,), "Split": (1,), "Slice": None,
    "Squeeze": (1,), "Unsqueeze": (1,), "Expand": (1,), "Gather": (1,), "GatherElements": (1,),
}
DTYPES = {TensorProto.INT64: "int64", TensorProto.DOUBLE: "float64"}


class AuditError(ValueError):
    """The file cannot be audited (unreadable, or not a model of the expected shape)."""


# ---- the graph, functions and If branches expanded ------------------------------------------


@dataclass
class Op:
    """One node, with names made unique across the expanded functions; `origin` is the local
    function it came from (outermost first, e.g. `encode` or `layer1`), `branches` its
    subgraphs, expanded too."""

    op_type: str
    inputs: list[str]
    outputs: list[str]
    name: str
    origin: str
    attrs: dict[str, AttributeProto]
    branches: list[Branch] = field(default_factory=list)

    @cached_property
    def outer(self) -> set[str]:
        """The enclosing scope's values its subgraphs read."""
        found: set[str] = set()
        for b in self.branches:
            made = set(b.inputs) | {o for op in b.ops for o in op.outputs}
            for op in b.ops:
                found.update(v for v in [*op.inputs, *op.outer] if v and v not in made)
        return found

    @cached_property
    def reads(self) -> list[str]:
        return [v for v in self.inputs if v] + sorted(self.outer)

    def describe(self) -> str:
        where = f" (in {self.origin})" if self.origin else ""
        return f"{self.op_type} {self.name or self.outputs[0]}{where}"

    def attr(self, name: str, default: Any = None) -> Any:
        a = self.attrs.get(name)
        return default if a is None else helper.get_attribute_value(a)


@dataclass
class Branch:
    inputs: list[str]
    ops: list[Op]
    outputs: list[str]


def expand(nodes: Iterable[onnx.NodeProto], functions: dict[tuple[str, str], onnx.FunctionProto],
           names: dict[str, str] | None = None, prefix: str = "", origin: str = "") -> list[Op]:
    """`nodes` with every call of a local function replaced by the function's nodes. `names`
    maps a function's own value names to the caller's (None: a graph's scope, kept)."""

    def rename(v: str) -> str:
        if not v or names is None:
            return v
        if v not in names:
            names[v] = prefix + v
        return names[v]

    ops: list[Op] = []
    for node in nodes:
        inputs = [rename(v) for v in node.input]
        outputs = [rename(v) for v in node.output]
        fn = functions.get((node.domain, node.op_type))
        if fn is not None:
            if any(a.ref_attr_name for n in fn.node for a in n.attribute) or fn.attribute:
                raise AuditError(f"function {fn.name} takes attributes: not supported")
            inner = dict(zip(fn.input, inputs, strict=False))
            inner.update(zip(fn.output, outputs, strict=False))
            ops += expand(fn.node, functions, inner, f"{prefix}{node.name or fn.name}::",
                          origin or fn.name)
            continue
        if node.domain not in ("", "ai.onnx"):
            raise AuditError(f"node {node.name}: op {node.domain}.{node.op_type} is neither "
                             "standard ONNX nor a local function of the model")
        branches = []
        for a in node.attribute:
            if a.type == AttributeProto.GRAPH:
                scope = None if names is None else dict(names)
                sub_prefix = prefix if names is None else f"{prefix}{node.name}.{a.name}/"

                def local(v: str, scope: dict[str, str] | None = scope,
                          p: str = sub_prefix) -> str:
                    if not v or scope is None:
                        return v
                    return scope.setdefault(v, p + v)

                b_inputs = [local(i.name) for i in a.g.input]
                b_ops = expand(a.g.node, functions, scope, sub_prefix, origin)
                branches.append(Branch(b_inputs, b_ops, [local(o.name) for o in a.g.output]))
            elif a.type == AttributeProto.GRAPHS:
                raise AuditError(f"node {node.name}: graph-list attributes are not supported")
        ops.append(Op(node.op_type, inputs, outputs, prefix + node.name if names is not None
                      else node.name, origin, {a.name: a for a in node.attribute}, branches))
    return ops


def flatten(ops: Sequence[Op]) -> list[Op]:
    """The ops and every op of their branches, recursively (for listing)."""
    out = []
    for op in ops:
        out.append(op)
        for b in op.branches:
            out += flatten(b.ops)
    return out


def constant_value(op: Op) -> np.ndarray:
    """The value of a `Constant` node."""
    for key, a in op.attrs.items():
        if key == "value":
            return numpy_helper.to_array(a.t)
        if key in ("value_int", "value_ints"):
            return np.array(helper.get_attribute_value(a), dtype=np.int64)
        if key in ("value_float", "value_floats"):
            return np.array(helper.get_attribute_value(a), dtype=np.float32)
    raise AuditError(f"Constant {op.name}: no supported value attribute")


# ---- the report ------------------------------------------------------------------------------


@dataclass
class Magnitude:
    """The largest magnitude one kind of op reached (`measure`: of what), and where."""

    dtype: str
    measure: str
    largest: float = 0.0
    node: str = ""
    state: str = ""

    @property
    def limit_bits(self) -> int:
        return 63 if self.dtype == "int64" else 53

    def bits(self) -> float:
        return math.log2(self.largest) if self.largest > 0 else 0.0


@dataclass
class AuditReport:
    model: str
    kind: str  # "loop" (a whole model) or "step" (a step model)
    dtype: str
    weights: str
    problems: list[str] = field(default_factory=list)
    path_ops: Counter[str] = field(default_factory=Counter)
    path_weights: int = 0  # constant operands of MatMul/Gemm/Mul/Add/Sub on the path
    taps: Counter[str] = field(default_factory=Counter)
    encode_ops: Counter[str] = field(default_factory=Counter)
    validation_ops: Counter[str] = field(default_factory=Counter)
    decode: dict[str, list[str]] = field(default_factory=dict)
    states: int = 0
    state_kinds: Counter[str] = field(default_factory=Counter)
    magnitudes: dict[str, Magnitude] = field(default_factory=dict)
    evaluated: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and self.evaluated

    def verdict(self) -> str:
        if self.ok:
            return "honest and exact"
        return f"NOT honest and exact ({len(self.problems)} problem" \
               f"{'s' if len(self.problems) != 1 else ''})"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "ok": self.ok,
            "verdict": self.verdict(),
            "kind": self.kind,
            "dtype": self.dtype,
            "weights": self.weights,
            "problems": list(self.problems),
            "state_path": {"ops": dict(self.path_ops), "weights": self.path_weights},
            "off_path": dict(self.taps),
            "encode": {"ops": dict(self.encode_ops), "validation": dict(self.validation_ops)},
            "decode": dict(self.decode),
            "states": {"count": self.states, "kinds": dict(self.state_kinds),
                       "evaluated": self.evaluated},
            "magnitudes": {
                kind: {"dtype": m.dtype, "measure": m.measure, "largest": int(m.largest),
                       "bits": round(m.bits(), 2), "limit_bits": m.limit_bits,
                       "margin_bits": round(m.limit_bits - m.bits(), 2),
                       "node": m.node, "state": m.state}
                for kind, m in sorted(self.magnitudes.items())},
        }

    def text(self) -> str:
        lines = [f"{self.model}: {'a step model' if self.kind == 'step' else 'a looped model'}"
                 f", {self.weights} weights, {self.dtype}"]
        lines.append(f"state path: {sum(self.path_ops.values())} ops ({_counts(self.path_ops)}),"
                     f" {self.path_weights} constant weight operands")
        if self.taps:
            lines.append(f"off the state path (listed): {_counts(self.taps)}")
        if self.kind == "loop":
            lines.append(f"encode: {sum(self.encode_ops.values())} ops; input validation: "
                         f"{_counts(self.validation_ops) or 'none'}")
            for name, ops in self.decode.items():
                role = " (formatting)" if name in FORMATTING else ""
                lines.append(f"decode: {name}{role} <- {', '.join(ops) or 'the state as is'}")
        if self.evaluated:
            lines.append(f"evaluated {self.states} states ({_counts(self.state_kinds)}); "
                         "largest magnitude per op (limit: int64 2^63, float64 2^53):")
            for kind, m in sorted(self.magnitudes.items()):
                lines.append(f"  {kind:<24} {m.measure:<18} 2^{m.bits():5.2f}  margin "
                             f"{m.limit_bits - m.bits():6.2f} bits  ({m.node}, "
                             f"state '{m.state}')")
        else:
            lines.append("not evaluated: the state path is not made of the allowed ops")
        lines.append(f"verdict: {self.verdict()}")
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def _counts(c: Counter[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


# ---- the audit -------------------------------------------------------------------------------


def audit_file(path: str, states: int = DEFAULT_STATES, seed: int = 0) -> AuditReport:
    """Audit the model at `path` (AuditError when it cannot be read or audited)."""
    try:
        model = onnx.load(path)
    except Exception as exc:  # onnx raises several kinds for a file that is not a model
        raise AuditError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    return audit_model(model, states, seed, name=path)


def audit_model(model: onnx.ModelProto, states: int = DEFAULT_STATES, seed: int = 0,
                name: str = "model") -> AuditReport:
    """The audit of `model` (see the module docstring)."""
    plan = _Plan(model, name)
    report = AuditReport(name, "step" if plan.loop is None else "loop",
                         plan.meta.get("dtype", "?"), plan.meta.get("weights", "?"))
    body = plan.body
    for op in body.ops:
        if id(op) in plan.path:
            report.path_ops[op.op_type] += 1
        elif id(op) not in plan.feeders:
            report.taps[op.op_type] += 1
    for op in body.ops:
        if id(op) in plan.feeders and id(op) not in plan.path and \
                not all(v in plan.static for v in op.reads):
            bad = [v for v in op.reads if v in body.inputs]
            why = f" from {', '.join(bad)}" if bad else ""
            report.problems.append(f"{op.describe()} feeds the state{why} without being "
                                   "computed from the state or constants")
    structure_ok = True
    for op in body.ops:
        if id(op) in plan.path:
            problem = _check_path_op(op, plan.static, plan.consts)
            if problem:
                report.problems.append(problem)
                structure_ok = False
    if plan.loop is not None:
        _list_encode(plan.main, plan.loop, report)
        _check_decode(plan.main, plan.loop, [o.name for o in model.graph.output], plan.static,
                      plan.consts, report)
    if structure_ok:
        rows, labels = make_states(plan.layout, states, seed)
        report.states = len(rows)
        report.state_kinds = Counter(label.split(":")[0] for label in labels)
        evaluator = _Evaluator(report, plan.inits, plan.static)
        try:
            for start in range(0, len(rows), BATCH):
                plan.evaluate(evaluator, rows[start:start + BATCH],
                              labels[start:start + BATCH])
        finally:
            _FLOATS.clear()
        report.evaluated = True
        report.problems.extend(p for p in evaluator.problems() if p not in report.problems)
    return report


def exact_step(model: onnx.ModelProto, states: np.ndarray) -> list[np.ndarray]:
    """The carried values after one Loop iteration (a step model: `next_state`) from the
    flat `states`, as the audit computes them (exact integers): for comparing its evaluator
    with a runtime."""
    plan = _Plan(model, "model")
    report = AuditReport("model", "", "", "")
    evaluator = _Evaluator(report, plan.inits, plan.static)
    try:
        out = plan.evaluate(evaluator, states, [f"state {i}" for i in range(len(states))])
    finally:
        _FLOATS.clear()
    return [out[v] for v in plan.carried_out]


class _Plan:
    """A model with its functions expanded: the Loop (None: a step model), the body, its
    state path and the values that are constant."""

    def __init__(self, model: onnx.ModelProto, name: str) -> None:
        self.model, self.name = model, name
        self.meta = {p.key: p.value for p in model.metadata_props}
        functions = {(f.domain, f.name): f for f in model.functions}
        self.main = expand(model.graph.node, functions)
        self.inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for array in self.inits.values():
            array.setflags(write=False)  # the weights: their float copies are remembered
        loops = [op for op in self.main if op.op_type == "Loop"]
        if len(loops) > 1:
            raise AuditError(f"{name}: {len(loops)} Loop nodes in the main graph (expected one)")
        self.loop = loops[0] if loops else None
        if self.loop is None:
            graph_inputs = [i.name for i in model.graph.input]
            if graph_inputs != ["state"] or "next_state" not in [o.name for o in
                                                                  model.graph.output]:
                raise AuditError(f"{name}: no Loop, and not a step model (state -> "
                                 "next_state)")
            self.body = Branch(["state"], self.main, ["next_state"])
            self.carried_in, self.carried_out = ["state"], ["next_state"]
        else:
            self.body = self.loop.branches[0]
            n = len(self.loop.inputs) - 2
            self.carried_in = self.body.inputs[2:]
            self.carried_out = self.body.outputs[1:1 + n]
        self.layout = _layout(self.meta, name)
        self.static = _static_values(self.main, self.inits)
        if self.loop is not None:
            self.static = _static_values(self.body.ops, self.static)
        self.path, self.feeders = _state_path(self.body, self.carried_in, self.carried_out)
        self.consts = constants(self.main, self.inits)

    def evaluate(self, evaluator: _Evaluator, rows: np.ndarray, labels: list[str]
                 ) -> dict[str, np.ndarray]:
        """Run the path on a batch of flat states (and what follows the Loop, taking the
        path's result as the final state)."""
        if self.loop is None:
            values = {"state": rows}
        else:
            values = _loop_inputs(self.model, self.loop, self.body, self.carried_in, rows,
                                  self.layout, self.name)
        out, kinds = evaluator.run(self.body, values, set(self.carried_in), self.path, labels)
        if self.loop is not None:
            at = next(i for i, op in enumerate(self.main) if op is self.loop)
            env = {final: out[v] for final, v in zip(self.loop.outputs, self.carried_out,
                                                     strict=False) if v in out}
            types = {final: kinds[v] for final, v in zip(self.loop.outputs, self.carried_out,
                                                         strict=False) if v in kinds}
            evaluator.run_after(self.main[at + 1:], env, types, self.consts)
        return out


@dataclass(frozen=True)
class Layout:
    n_state: int
    slots: dict[str, int]  # scalar -> index
    memory_slots: tuple[int, ...]  # the address each memory slot holds
    tape_start: int
    tape_in: int
    memory: int
    ranges: dict[str, tuple[int, int]]
    pending: tuple[str, str, str]


def _layout(meta: dict[str, str], name: str) -> Layout:
    try:
        layout = json.loads(meta["state_layout"])
        m = int(meta["memory_words"])
        words = tuple(json.loads(meta["state_words"])) if "state_words" in meta \
            else tuple(range(m))
        ranges = {k: (int(v[0]), int(v[1])) for k, v in layout["ranges"].items()}
        return Layout(int(layout["n_state"]), dict(layout["scalars"]), words,
                      int(layout["tape_start"]), int(meta["tape_in"]), m, ranges,
                      tuple(layout["pending_write"]))
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise AuditError(f"{name}: the metadata has no usable state layout with ranges "
                         f"({type(exc).__name__}: {exc}); recompile the model") from None


def _static_values(ops: Sequence[Op], known: Iterable[str]) -> set[str]:
    """Values that do not depend on any input's data: the `known` ones (constants), shapes,
    and what is computed from them alone."""
    static = set(known)
    for op in ops:
        if op.op_type in ("Constant", "Shape", "Size") or (
                not op.branches and op.inputs and all(v in static for v in op.inputs if v)):
            static.update(op.outputs)
    return static


def _state_path(body: Branch, carried_in: Sequence[str], carried_out: Sequence[str]
                ) -> tuple[set[int], set[int]]:
    """The ops (by id) computed from the state that the next state reads (the path), and
    every op the next state reads (feeders)."""
    from_state = set(carried_in)
    for op in body.ops:
        if op.op_type not in ("Shape", "Size") and any(v in from_state for v in op.reads):
            from_state.update(op.outputs)
    needed = set(carried_out)
    feeders: list[Op] = []
    for op in reversed(body.ops):
        if any(o in needed for o in op.outputs):
            feeders.append(op)
            needed.update(op.reads)
    path = {id(op) for op in feeders if any(o in from_state for o in op.outputs)}
    return path, {id(op) for op in feeders}


def _not_relu(op: Op, c: np.ndarray) -> str:
    return (f"{op.describe()}: Max(x, c) with c = {c.ravel()[np.flatnonzero(c)[0]]}, not 0: "
            "not a ReLU")


def _check_path_op(op: Op, static: set[str], consts: dict[str, np.ndarray]) -> str | None:
    """Why `op` may not be on the state path (None: it may)."""
    inputs = [v for v in op.inputs]
    const = [bool(v) and v in static for v in inputs]
    t = op.op_type
    if t in ("MatMul", "Mul"):
        if len(inputs) != 2 or not any(const):
            return (f"{op.describe()}: a product of two values computed from the state "
                    "(a weight must be constant)")
    elif t == "Gemm":
        if not (const[0] or const[1]):
            return f"{op.describe()}: a product of two values computed from the state"
    elif t in ("Add", "Sub", "Relu"):
        pass
    elif t == "Cast":
        if op.attr("to") not in DTYPES:
            return f"{op.describe()}: a Cast to a type other than int64 and float64"
    elif t == "Max":
        if len(inputs) != 2 or const.count(True) != 1:
            return f"{op.describe()}: Max other than Max(x, 0) with a constant zero"
        c = consts.get(inputs[const.index(True)])
        if c is not None and np.any(c != 0):
            return _not_relu(op, np.asarray(c))
    elif t in SHAPE_OPS:
        need = SHAPE_OPS[t]
        positions = range(1, len(inputs)) if need is None else need
        bad = [inputs[i] for i in positions if i < len(inputs) and inputs[i] and not const[i]]
        if bad:
            return (f"{op.describe()}: its {'indices' if 'Gather' in t else 'arguments'} "
                    f"({', '.join(bad)}) depend on data: a data-dependent {t}")
    else:
        return (f"{op.describe()}: {t} on the state path (only affine maps with constant "
                "weights, Max(x, 0) and shape ops with constant arguments are allowed)")
    if op.branches:
        return f"{op.describe()}: a subgraph on the state path"
    return None


def _list_encode(main: Sequence[Op], loop: Op, report: AuditReport) -> None:
    """What runs before the Loop: placing the inputs, and validating them."""
    at = next(i for i, op in enumerate(main) if op is loop)
    for op in flatten(main[:at]):
        report.encode_ops[op.op_type] += 1
        if op.op_type in VALIDATION_OPS:
            report.validation_ops[op.op_type] += 1


def _check_decode(main: Sequence[Op], loop: Op, outputs: Sequence[str], static: set[str],
                  consts: dict[str, np.ndarray], report: AuditReport) -> None:
    """After the Loop: every output other than the output tape may only read out values of
    the machine's final state, or compute them with units of the network (no decision on
    it, no data-dependent index)."""
    at = next(i for i, op in enumerate(main) if op is loop)
    after = list(main[at + 1:])
    tainted = set(loop.outputs)
    for op in after:
        if op.op_type not in ("Shape", "Size") and any(v in tainted for v in op.reads):
            tainted.update(op.outputs)
    producer = {o: op for op in after for o in op.outputs}
    feeds: dict[int, set[str]] = {}
    for out in outputs:
        stack, seen = [out], set()
        ops: list[str] = []
        while stack:
            v = stack.pop()
            op = producer.get(v)
            if op is None or id(op) in seen:
                continue
            seen.add(id(op))
            feeds.setdefault(id(op), set()).add(out)
            if any(x in tainted for x in op.reads):
                ops.append(op.op_type)
            stack.extend(op.reads)
        report.decode[out] = sorted(set(ops))
    for op in after:
        protected = sorted(o for o in feeds.get(id(op), ()) if o not in FORMATTING)
        if not protected or not any(v in tainted for v in op.reads):
            continue
        why = _decision(op, tainted, static, consts)
        if why:
            report.problems.append(f"decode: {op.describe()} {why} and flows into "
                                   f"{', '.join(protected)}")


def _decision(op: Op, tainted: set[str], static: set[str], consts: dict[str, np.ndarray]
              ) -> str | None:
    """Why `op` (reading the machine's state after the Loop) is neither a read-out nor a
    unit of the network (an affine map with constant weights, Max(x, 0)); None: it is one
    of them."""
    t = op.op_type
    if op.branches:
        return f"decides on the machine's state ({t} with subgraphs)"
    if t in ("MatMul", "Gemm", "Mul"):
        if not any(v in static for v in op.inputs[:2]):
            return f"multiplies two values of the machine's state ({t})"
        return None
    if t == "Max":
        zero = [consts.get(v) for v in op.inputs if v in static]
        if len(op.inputs) != 2 or len(zero) != 1 or zero[0] is None or np.any(zero[0] != 0):
            return "decides on the machine's state (Max other than Max(x, 0))"
        return None
    if t == "Relu":
        return None
    if t == "Cast" and op.attr("to") not in DTYPES:
        return "casts the machine's state to a type other than int64 and float64"
    if t not in READ_OUTS:
        return f"decides on the machine's state ({t} is not a read-out)"
    if t in ("Gather", "GatherElements") and op.inputs[1] not in static:
        return f"is a data-dependent {t}"
    if t in ("Reshape", "Expand", "Slice", "Squeeze", "Unsqueeze", "Split") and any(
            v in tainted for v in op.inputs[1:] if v):
        return f"has data-dependent arguments ({t})"
    return None


def constants(ops: Sequence[Op], inits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The initializers and the values of the `Constant` nodes."""
    out = dict(inits)
    for op in flatten(ops):
        if op.op_type == "Constant":
            out[op.outputs[0]] = constant_value(op)
    return out


# ---- the states --------------------------------------------------------------------------


def make_states(layout: Layout, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """States from the declared ranges: the structured ones (each with and without a pending
    write) and `count` random ones. Labels are `kind: detail`."""
    rng = np.random.default_rng(seed)
    r = layout.ranges
    s = layout.slots
    m = layout.memory
    where = {a: i for i, a in enumerate(layout.memory_slots)}
    v_lo, v_hi = r["V"]
    H = (v_hi + 1) // 2  # words are stored + H, in [0, 2H)

    def draw(name: str) -> int:
        lo, hi = r[name]
        if hi - lo > 1 << 20:  # a wide range (the budget): log-uniform, ends included
            return int(min(hi, lo + int(2 ** rng.uniform(0, math.log2(hi - lo + 1)))))
        return int(rng.integers(lo, hi + 1))

    def random_state() -> np.ndarray:
        x = np.zeros(layout.n_state, dtype=np.int64)
        x[:len(layout.memory_slots)] = rng.integers(v_lo, v_hi + 1, len(layout.memory_slots))
        if layout.tape_in:
            t_lo, t_hi = r.get("t", (v_lo, v_hi))
            x[layout.tape_start:layout.tape_start + layout.tape_in] = rng.integers(
                t_lo, t_hi + 1, layout.tape_in)
        for name in s:
            x[s[name]] = draw(name)
        return x

    def word(x: np.ndarray, address: int, value: int) -> None:
        if address in where:
            x[where[address]] = min(max(value + H, v_lo), v_hi)

    def instruction(x: np.ndarray, a: int, b: int, c: int) -> None:
        pc = int(x[s["pc1"]]) - 1
        for o, w in enumerate((a, b, c)):
            word(x, pc + o, w)

    def running(x: np.ndarray, pc: int) -> None:
        x[s["pc1"]] = pc + 1
        x[s["fault"]] = 0
        x[s["live"]] = 1
        x[s["budget"]] = max(x[s["budget"]], 1)

    cases: list[tuple[str, np.ndarray]] = []

    def case(label: str, edit: Any) -> None:
        x = random_state()
        edit(x)
        cases.append((label, x))

    lo_pc, hi_pc = r["pc1"]
    for pc1 in sorted({lo_pc, lo_pc + 1, lo_pc + 2, hi_pc - 3, hi_pc - 2, hi_pc - 1, hi_pc}):
        def at_pc(x: np.ndarray, pc1: int = pc1) -> None:
            running(x, pc1 - 1)
            instruction(x, int(rng.integers(0, m)), int(rng.integers(0, m)),
                        int(rng.integers(-1, m)))
        case(f"pc: pc = {pc1 - 1}", at_pc)
    operands = [("subtract", 0, 1, 2), ("input", -1, m - 1, -1), ("output", m - 1, -1, 0),
                ("input and output", -1, -1, 0), ("a out of range", m, 0, 0),
                ("b out of range", 0, m, 0), ("a = -2", -2, 0, 0), ("jump to m-3", 0, 0, m - 3)]
    for label, a, b, c in operands:
        def op_case(x: np.ndarray, a: int = a, b: int = b, c: int = c) -> None:
            running(x, int(rng.integers(0, max(m - 2, 1))))
            instruction(x, a, b, c)
        case(f"instruction: {label}", op_case)
    for lo_word, hi_word, label in ((v_lo, v_hi, "M[a] lowest, M[b] highest"),
                                   (v_hi, v_lo, "M[a] highest, M[b] lowest"),
                                   (v_hi, v_hi, "both highest"), (v_lo, v_lo, "both lowest")):
        def extreme(x: np.ndarray, wa: int = lo_word, wb: int = hi_word) -> None:
            pc = int(rng.integers(0, max(m - 4, 1)))
            running(x, pc)
            a, b = (pc + 3) % m, (pc + 4) % m
            instruction(x, a, b, int(rng.integers(-1, m)))
            word(x, a, wa - H)
            word(x, b, wb - H)
        case(f"extreme words: {label}", extreme)
    for value, label in ((v_lo, "lowest"), (v_hi, "highest")):
        def fill(x: np.ndarray, value: int = value) -> None:
            x[:len(layout.memory_slots)] = value
            if layout.tape_in:
                x[layout.tape_start:layout.tape_start + layout.tape_in] = value
            running(x, int(rng.integers(0, max(m - 2, 1))))
        case(f"extreme words: every word {label}", fill)
    lo_f, hi_f = r["fault"]
    for f in range(lo_f, hi_f + 1):
        def fault(x: np.ndarray, f: int = f) -> None:
            x[s["fault"]] = f
        case(f"fault: {f}", fault)
    for name, label in (("ol", "output tape"), ("ip", "input tape")):
        lo, hi = r[name]
        for value, end in ((lo, "empty"), (hi, "full")):
            def tape(x: np.ndarray, name: str = name, value: int = value) -> None:
                running(x, int(rng.integers(0, max(m - 2, 1))))
                x[s[name]] = value
                instruction(x, -1 if name == "ip" else 0, -1 if name == "ol" else 1, 0)
            case(f"tape: {label} {end}", tape)
    lo_b, hi_b = r["budget"]
    for value in sorted({lo_b, lo_b + 1, hi_b}):
        def budget(x: np.ndarray, value: int = value) -> None:
            running(x, int(rng.integers(0, max(m - 2, 1))))
            x[s["budget"]] = value
        case(f"budget: {value}", budget)
    wa2, wo, wv = layout.pending
    lo_w, hi_w = r[wa2]
    for value in sorted({lo_w, lo_w + 2, hi_w - 1, hi_w}):
        def target(x: np.ndarray, value: int = value) -> None:
            x[s[wa2]] = value
        case(f"write address: {value - 2}", target)
    for o in range(3):
        def at_fetch(x: np.ndarray, o: int = o) -> None:
            pc = int(rng.integers(0, max(m - 2, 1)))
            running(x, pc)
            x[s[wa2]] = pc + o + 2
        case(f"write address: pc + {o}", at_fetch)
    for _ in range(count):
        case("random: ", lambda x: None)
    rows, labels = [], []
    for label, x in cases:
        for pending in (True, False):
            y = x.copy()
            if pending:
                if y[s[wv]] == y[s[wo]]:
                    y[s[wv]] = r[wv][1] if y[s[wo]] != r[wv][1] else r[wv][0]
            else:
                y[s[wv]] = y[s[wo]]
            rows.append(y)
            labels.append(f"{label}{len(rows) if label.endswith(': ') else ''}, "
                          f"{'a' if pending else 'no'} pending write")
    return np.stack(rows), labels


def _loop_inputs(model: onnx.ModelProto, loop: Op, body: Branch, carried_in: Sequence[str],
                 states: np.ndarray, layout: Layout, name: str) -> dict[str, np.ndarray]:
    """The Loop's carried values for `states` (fed as `resume_state` through the model's own
    `encode`, which changes variables as the Loop carries them), and the loop-invariant
    values the body reads from outside (sparse index rows expanded to the batch)."""
    nodes = list(model.graph.node)
    at = next((i for i, n in enumerate(nodes) if n.op_type == "Loop"), None)
    if at is None:
        raise AuditError(f"{name}: the Loop is not a node of the main graph")
    made = set(body.inputs) | {o for op in body.ops for o in op.outputs}
    inits = {t.name for t in model.graph.initializer}
    outer = sorted({v for op in body.ops for v in op.reads if v not in made and v not in inits})
    want = list(dict.fromkeys([*loop.inputs[2:], *outer]))
    graph = helper.make_graph(nodes[:at], "audit_encode", list(model.graph.input),
                              [helper.make_value_info(w, onnx.TypeProto()) for w in want],
                              initializer=list(model.graph.initializer))
    pre = helper.make_model(graph, opset_imports=list(model.opset_import),
                            functions=list(model.functions))
    pre.ir_version = model.ir_version
    B = len(states)
    feeds: dict[str, Any] = {}
    for info in model.graph.input:
        if info.name == "resume_state":
            feeds[info.name] = states
        elif info.name == "tape":
            feeds[info.name] = np.zeros((B, 0), dtype=np.int64)
        elif info.name == "max_steps":
            feeds[info.name] = np.array(layout.ranges["budget"][1], dtype=np.int64)
        elif info.name == "tape_length":
            feeds[info.name] = np.zeros(B, dtype=np.int64)
        elif info.type.HasField("tensor_type"):
            feeds[info.name] = np.zeros(B, dtype=np.int64)
    if "resume_state" not in feeds:
        raise AuditError(f"{name}: the model has no resume_state input to start from a state")
    try:
        values = ReferenceEvaluator(pre).run(want, feeds)
    except Exception as exc:  # the reference evaluator raises many kinds
        raise AuditError(f"{name}: cannot evaluate encode on the audit's states "
                         f"({type(exc).__name__}: {exc})") from None
    out = dict(zip(want, (np.asarray(v) for v in values), strict=True))
    return {v: out[v] for v in [*outer]} | dict(zip(carried_in, (out[v] for v in loop.inputs[2:]),
                                                    strict=True))


# ---- exact evaluation ------------------------------------------------------------------------


class _Evaluator:
    """Runs the state path in exact integers, recording each op kind's largest magnitude and
    every value or partial-sum bound past its dtype's exact range."""

    def __init__(self, report: AuditReport, inits: dict[str, np.ndarray], static: set[str]
                 ) -> None:
        self.report = report
        self.inits = inits
        self.static = static
        # node (one per layer function, whichever unrolled step) -> (worst, what, state, steps)
        self.bad: dict[str, tuple[float, str, str, set[str]]] = {}
        self.weights: set[str] = set()
        self.other: list[str] = []
        self.after = False  # evaluating what follows the Loop

    def problems(self) -> list[str]:
        out = list(self.other)
        for node, (worst, what, state, calls) in self.bad.items():
            where = f" (in {len(calls)} unrolled steps)" if len(calls) > 1 else ""
            out.append(f"{node}{where}: {what} reaches 2^{math.log2(worst):.2f} on state "
                       f"'{state}', past the exact range")
        self.report.path_weights = len(self.weights)
        return out

    def run(self, body: Branch, values: dict[str, np.ndarray], carried: set[str],
            path: set[int], labels: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """Evaluate the path on one batch of states: the body's outputs it computed, and
        their dtypes."""
        env: dict[str, np.ndarray] = {}
        kinds: dict[str, str] = {}
        for name, v in values.items():
            v = np.asarray(v)
            if name in carried:
                env[name], kinds[name] = self._exact_state(name, v), _kind(v)
            else:
                env[name] = v
        self.labels = labels
        self.after = False
        last = {v: i for i, op in enumerate(body.ops) for v in op.reads}
        keep = set(body.outputs)
        for i, op in enumerate(body.ops):
            if id(op) in path:
                self._path_op(op, env, kinds)
            elif all(o in self.static for o in op.outputs):  # a constant the path may read
                outs = _static_op(op, [env.get(v, self.inits.get(v)) if v else None
                                       for v in op.inputs])
                env.update(zip(op.outputs, outs, strict=False))
            for v in op.reads:  # free what no later op reads (a batch of states is large)
                if last.get(v) == i and v not in keep:
                    env.pop(v, None)
        return ({v: env[v] for v in body.outputs if v in env},
                {v: kinds[v] for v in body.outputs if v in kinds})

    def run_after(self, ops: Sequence[Op], env: dict[str, np.ndarray], kinds: dict[str, str],
                  consts: dict[str, np.ndarray]) -> None:
        """Evaluate what follows the Loop from its final state `env`, as far as it reads out
        or computes with units of the network (the decisions are reported, not run)."""
        self.after = True
        for op in ops:
            ready = all(not v or v in env or v in self.inits for v in op.inputs) \
                and not op.branches
            if not ready:
                continue
            if all(o in self.static for o in op.outputs):
                outs = _static_op(op, [env.get(v, self.inits.get(v)) if v else None
                                       for v in op.inputs])
                env.update(zip(op.outputs, outs, strict=False))
            elif any(v in kinds for v in op.inputs) and \
                    _decision(op, set(kinds), self.static, consts) is None:
                self._path_op(op, env, kinds)

    def _exact_state(self, name: str, v: np.ndarray) -> np.ndarray:
        if v.dtype.kind == "f":
            if not np.all(np.isfinite(v)) or not np.all(v == np.round(v)):
                self.other.append(f"the carried value {name} holds non-integers")
            return np.round(v).astype(np.int64)
        if v.dtype.kind not in "iu":
            raise AuditError(f"the carried value {name} is {v.dtype}, not a number type")
        return v.astype(np.int64)

    def _operand(self, op: Op, v: str, env: dict[str, np.ndarray], kinds: dict[str, str]
                 ) -> tuple[np.ndarray, str]:
        """An input as exact integers and its dtype; constants checked to be integers."""
        if v in kinds:
            return env[v], kinds[v]
        raw = np.asarray(env[v] if v in env else self.inits[v])
        kind = _kind(raw)
        if op.op_type in ("MatMul", "Gemm", "Mul", "Add", "Sub", "Max"):
            self.weights.add(v)
            if raw.dtype.kind == "f" and (not np.all(np.isfinite(raw))
                                          or not np.all(raw == np.round(raw))):
                bad = raw[raw != np.round(raw)].ravel()[:1]
                self.other.append(f"{op.describe()}: weight {v} is not an integer "
                                  f"({bad[0] if bad.size else 'not finite'})")
            elif raw.dtype.kind not in "fiu":
                self.other.append(f"{op.describe()}: weight {v} is of type {raw.dtype}")
        if raw.dtype.kind == "f":
            safe = np.where(np.isfinite(raw), np.round(raw), 0)
            if np.all(np.abs(safe) < 2.0**62):
                return safe.astype(np.int64), kind
            return np.array([int(x) for x in safe.ravel()], dtype=object).reshape(raw.shape), kind
        return raw.astype(np.int64, copy=False) if raw.dtype != object else raw, kind

    def _note(self, kind: str, op: Op, bound: np.ndarray, what: str) -> None:
        """Record the largest magnitude of this op kind, and a violation of the range."""
        if bound.size == 0:
            return
        flat = bound.reshape(bound.shape[0], -1) if bound.ndim else bound.reshape(1, 1)
        per_state = flat.max(axis=1)
        i = int(np.argmax(per_state))
        worst = float(per_state[i])
        label = self.labels[i] if flat.shape[0] == len(self.labels) else "every state"
        dtype = kind.rsplit(" ", 1)[-1]
        if self.after:
            kind = f"{kind} (decode)"
        m = self.report.magnitudes.setdefault(kind, Magnitude(dtype, what))
        if worst > m.largest or not m.node:
            m.largest, m.node, m.state = worst, op.name or op.outputs[0], label
        over = worst >= INT64_LIMIT if dtype == "int64" else worst > FLOAT64_EXACT
        if over:
            call, _, inner = (op.name or op.outputs[0]).rpartition("::")
            node = f"{op.op_type} {inner}" + (f" (in {op.origin})" if op.origin else "")
            old = self.bad.get(node)
            calls = (old[3] if old else set()) | {call}
            if old is None or worst > old[0]:
                self.bad[node] = (worst, what, label, calls)
            else:
                self.bad[node] = (*old[:3], calls)

    def _path_op(self, op: Op, env: dict[str, np.ndarray], kinds: dict[str, str]) -> None:
        t = op.op_type
        ins: list[np.ndarray | None] = []
        in_kinds: list[str] = []
        for v in op.inputs:
            if not v:
                ins.append(None)
                continue
            x, k = self._operand(op, v, env, kinds)
            ins.append(x)
            in_kinds.append(k)
        kind = in_kinds[0] if in_kinds else "int64"
        if t in ("MatMul", "Mul", "Add", "Sub", "Gemm", "Max", "Relu") and \
                len(set(in_kinds)) > 1:
            raise AuditError(f"{op.describe()}: operands of types {in_kinds}")
        label = f"{t} {kind}"
        if t == "MatMul":
            a, b = ins[0], ins[1]
            assert a is not None and b is not None
            bound = _matmul_bound(a, b)
            self._note(label, op, bound, "sum of |products|")
            outs = [_exact_matmul(a, b, bound)]
        elif t == "Gemm":
            outs = [self._gemm(op, ins, label)]
        elif t == "Mul":
            a, b = ins[0], ins[1]
            assert a is not None and b is not None
            bound = _absf(a) * _absf(b) * (1 + 3 * EPS)
            self._note(label, op, bound, "|product|")
            outs = [_exact(lambda p, q: p * q, a, b, bound)]
        elif t in ("Add", "Sub"):
            a, b = ins[0], ins[1]
            assert a is not None and b is not None
            fn = (lambda p, q: p + q) if t == "Add" else (lambda p, q: p - q)
            value = _exact(fn, a, b, (_absf(a) + _absf(b)) * (1 + 4 * EPS))
            self._note(label, op, _absf(value), "|value|")
            outs = [value]
        elif t in ("Max", "Relu"):
            x = ins[0]
            assert x is not None
            if t == "Max":
                const = [i for i, v in enumerate(op.inputs) if v not in kinds]
                x = ins[1 - const[0]]
                zero = ins[const[0]]
                assert x is not None and zero is not None
                if np.any(zero != 0):
                    self.other.append(_not_relu(op, zero))
                value = np.maximum(x, zero)
            else:
                value = np.maximum(x, 0)
            self._note(label, op, _absf(value), "|value|")
            outs = [value]
        elif t == "Cast":
            x = ins[0]
            assert x is not None
            to = DTYPES[op.attr("to")]
            if "float64" in (kind, to):
                self._note("Cast float64", op, _absf(x), "|value|")
            kind = to
            outs = [x]
        else:
            try:
                outs = _static_op(op, ins)
            except (IndexError, ValueError) as exc:
                self.other.append(f"{op.describe()}: {exc}")
                outs = [np.zeros(0, dtype=np.int64)] * len(op.outputs)
        for name, value in zip(op.outputs, outs, strict=False):
            env[name] = value
            kinds[name] = kind

    def _gemm(self, op: Op, ins: list[np.ndarray | None], label: str) -> np.ndarray:
        a, b, c = (ins + [None])[:3]
        assert a is not None and b is not None
        alpha, beta = op.attr("alpha", 1.0), op.attr("beta", 1.0)
        if alpha != int(alpha) or beta != int(beta):
            self.other.append(f"{op.describe()}: alpha/beta {alpha}, {beta} not integers")
        a = a.T if op.attr("transA", 0) else a
        b = b.T if op.attr("transB", 0) else b
        bound = _matmul_bound(a, b) * abs(int(alpha))
        if c is not None:
            bound = bound + _absf(c) * abs(int(beta))
        self._note(label, op, bound, "sum of |products|")
        value = _exact_matmul(a, b, bound) * int(alpha)
        if c is not None:
            value = value + c * int(beta)
        return value


def _kind(v: np.ndarray) -> str:
    return "float64" if v.dtype.kind == "f" else "int64"


# float64 copies of the weights during one audit (cleared after it)
_FLOATS: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _floats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and |x| as float64; remembered for the weights (large, read on every batch)."""
    hit = _FLOATS.get(id(x))
    if hit is not None and hit[0] is x:
        return hit[1], hit[2]
    f = x.astype(np.float64)
    out = (f, np.abs(f))
    if x.dtype != object and not x.flags.writeable and x.size > 4096:
        _FLOATS[id(x)] = (x, *out)  # keeps x alive, so the id stays its own
    return out


def _absf(x: np.ndarray) -> np.ndarray:
    if x.dtype == object:
        return np.abs(x).astype(np.float64)
    return _floats(x)[1]


def _fmatmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b in float64 without BLAS: numpy's own loops run in this thread, where a threaded
    BLAS on a busy machine can be a hundred times slower on these small products."""
    if a.ndim >= 2 and b.ndim >= 2:
        return np.einsum("...ij,...jk->...ik", a, b)
    return a @ b


def _matmul_bound(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    k = a.shape[-1]
    return _fmatmul(_absf(a), _absf(b)) * (1 + (k + 2) * EPS)


def _exact_matmul(a: np.ndarray, b: np.ndarray, bound: np.ndarray) -> np.ndarray:
    top = float(bound.max()) if bound.size else 0.0
    if top <= FLOAT64_EXACT:  # every partial sum an integer float64 holds: exact
        return np.rint(_fmatmul(_floats(a)[0], _floats(b)[0])).astype(np.int64)
    if top < INT64_LIMIT:
        return a.astype(np.int64) @ b.astype(np.int64)
    return a.astype(object) @ b.astype(object)


def _exact(fn: Any, a: np.ndarray, b: np.ndarray, bound: np.ndarray) -> np.ndarray:
    top = float(bound.max()) if bound.size else 0.0
    if top < INT64_LIMIT and a.dtype != object and b.dtype != object:
        return fn(a.astype(np.int64), b.astype(np.int64))
    value = fn(a.astype(object), b.astype(object))
    if all(abs(int(v)) < INT64_LIMIT for v in np.ravel(value)):
        return value.astype(np.int64)
    return value


def _indices(v: np.ndarray | None, n: int, op: str) -> np.ndarray:
    """Gather indices, checked in [-n, n) and made non-negative."""
    idx = np.asarray(v).astype(np.int64, copy=False)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"{op} index out of range [-{n}, {n})")
    return np.where(idx < 0, idx + n, idx) if idx.size and idx.min() < 0 else idx


def _static_op(op: Op, ins: list[np.ndarray | None]) -> list[np.ndarray]:
    """Shape ops and constants, as ONNX defines them."""
    t = op.op_type
    x = ins[0] if ins else None

    def ints(v: np.ndarray | None) -> list[int]:
        return [int(i) for i in np.ravel(v)] if v is not None else []

    if t == "Constant":
        return [constant_value(op)]
    assert x is not None, f"{t} without input"
    if t == "Identity":
        return [x]
    if t == "Shape":
        shape = np.array(x.shape, dtype=np.int64)
        return [shape[op.attr("start", 0):op.attr("end", None)]]
    if t == "Cast":
        to = op.attr("to")
        return [x.astype(helper.tensor_dtype_to_np_dtype(to))]
    if t == "Reshape":
        shape = ints(ins[1])
        if not op.attr("allowzero", 0):
            shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return [x.reshape(shape)]
    if t == "Concat":
        parts = [p for p in ins if p is not None]
        if any(p.dtype == object for p in parts):
            parts = [p.astype(object) for p in parts]
        return [np.concatenate(parts, axis=op.attr("axis"))]
    if t == "Split":
        axis = op.attr("axis", 0)
        sizes = ints(ins[1]) if len(ins) > 1 and ins[1] is not None else op.attr("split")
        if not sizes:
            sizes = [x.shape[axis] // len(op.outputs)] * len(op.outputs)
        return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))
    if t == "Slice":
        starts, ends = ints(ins[1]), ints(ins[2])
        axes = ints(ins[3]) if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = ints(ins[4]) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
            index[a] = slice(s, e, st)
        return [x[tuple(index)]]
    if t in ("Squeeze", "Unsqueeze"):
        axes = ints(ins[1]) if len(ins) > 1 and ins[1] is not None else op.attr("axes", [])
        if t == "Squeeze":
            return [np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)]
        rank = x.ndim + len(axes)
        for a in sorted(a % rank for a in axes):
            x = np.expand_dims(x, a)
        return [x]
    if t == "Expand":
        shape = np.broadcast_shapes(x.shape, tuple(ints(ins[1])))
        return [np.broadcast_to(x, shape)]
    if t in ("Gather", "GatherElements"):
        idx = _indices(ins[1], x.shape[op.attr("axis", 0)], t)
        axis = op.attr("axis", 0)
    if t == "Gather":
        return [np.take(x, idx, axis=axis)]
    if t == "GatherElements":
        if idx.shape[0] != x.shape[0] and idx.shape[0] == 1:  # a row broadcast to the batch
            idx = np.broadcast_to(idx, (x.shape[0], *idx.shape[1:]))
        return [np.take_along_axis(x, idx, axis=axis)]
    if t == "Transpose":
        perm = op.attr("perm")
        return [np.transpose(x, perm)]
    if t == "Flatten":
        axis = op.attr("axis", 1) % max(x.ndim, 1)
        return [x.reshape(int(np.prod(x.shape[:axis])), -1)]
    if t == "ConstantOfShape":
        value = op.attrs.get("value")
        fill = numpy_helper.to_array(value.t) if value is not None else np.zeros(1, np.float32)
        return [np.full(ints(x), fill.ravel()[0], dtype=fill.dtype)]
    if t in ("Add", "Sub", "Mul", "Max", "Min", "Div"):
        y = ins[1]
        assert y is not None
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Max": np.maximum,
              "Min": np.minimum, "Div": np.floor_divide}[t]
        return [fn(x, y)]
    raise AuditError(f"{op.describe()}: cannot evaluate {t}")
