"""The ONNX exporter: a `Network` (layers of sparse int64 affine maps and ReLUs) and the
encoding/decoding around it become one self-contained ONNX model (SPEC section 4).

    inputs ──encode──> state ──Loop[ K x (layer, layer, ...) ]──> state ──decode──> outputs
                                        └── per step: output event ──┘ (scan outputs)

The loop body contains only the network's operations: for a sparse factor
`GatherElements(state, constant indices) * constant weights -> Reshape -> MatMul(ones)
(+ bias)`, rows
grouped into buckets of equal padded width (`plan_buckets`); for a dense factor `MatMul`;
and `Relu`. Taps off the state (the loop condition and the output events) use `Slice`,
`ReduceMax` and `Cast`; they do not feed the next state. This module knows nothing about
SUBLEQ: what the state means is described by `ModelInterface`, built by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlpc.compiler.network import Network, SparseLinear

OPSET = 18
DEFAULT_MAX_STEPS = 10_000_000


@dataclass(frozen=True)
class ModelInterface:
    """What the exporter needs to know about the state vector, as plain numbers."""

    n_state: int
    memory: int  # the first `memory` slots hold memory words + `offset`
    offset: int  # H = 2^(W-1)
    image: tuple[int, ...]  # the program's words (rest of memory zero)
    tape_capacity: int
    tape_start: int  # first tape slot (tape words + offset, padded with -1 + offset); the
    # state is [memory, the 8 scalars of `slot` in order, tape]
    slot: tuple[tuple[str, int], ...]  # scalar slot name -> index: pc1 fault budget ip ol
    # live oflag oval
    inputs: tuple[tuple[str, int], ...]  # program input name -> memory address
    outputs: tuple[tuple[str, int], ...]  # program output name -> memory address
    trap_code_address: int  # -1 when the program has no traps
    trap_line_address: int
    tape_overflow_fault: int
    max_budget: int

    def index(self, name: str) -> int:
        return dict(self.slot)[name]


@dataclass(frozen=True)
class ExportOptions:
    unroll: int = 8  # SUBLEQ steps per Loop iteration
    weights: str = "sparse"  # "sparse" or "dense"
    default_max_steps: int = DEFAULT_MAX_STEPS
    op_cost: int = 20000  # padding elements worth one extra op, for bucket planning


# ---- sparse factors as buckets of equal-width rows ------------------------------------------


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


# ---- graph building helpers ------------------------------------------------------------------


class _Graph:
    """Collects nodes, initializers and value names for one (sub)graph."""

    def __init__(self, prefix: str = "") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.prefix = prefix
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{self.prefix}{hint}#{self._n}"

    def const(self, hint: str, array: np.ndarray | int | bool, doc: str = "") -> str:
        name = self.name(hint)
        arr = np.asarray(array)
        t = numpy_helper.from_array(arr, name)
        if doc:
            t.doc_string = doc
        self.inits.append(t)
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str, doc: str = "", **attrs: object
           ) -> str:
        out = self.name(hint)
        node = helper.make_node(op_type, list(inputs), [out], name=out, **attrs)
        if doc:
            node.doc_string = doc
        self.nodes.append(node)
        return out


class _StepEmitter:
    """Emits one network step into a graph. Weights are initializers of the main graph,
    shared by the K unrolled steps. Sparse factors gather with `GatherElements`, whose index
    tensors must have the batch dimension: each constant index row is expanded to the batch
    once, before the Loop (`expand_indices`), and the body reads those loop-invariant values."""

    def __init__(self, network: Network, main: _Graph, options: ExportOptions) -> None:
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

    def expand_indices(self, g: _Graph, batch: str) -> None:
        """Broadcast every constant index row to (batch, len) before the Loop."""
        for name, row in self._indices:
            const = g.const(name + ".row", row[None, :])
            shape = g.op("Concat", [batch, g.const(name + ".len", np.array([row.size]))],
                         name + ".shape", axis=0)
            self._expanded[name] = g.op("Expand", [const, shape], name)

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
    main = _Graph()
    emitter = _StepEmitter(network, main, options)
    K = options.unroll
    n = iface.n_state
    H = iface.offset

    # --- graph inputs (with defaults) -------------------------------------------------------
    inputs = [_i64(name, ["batch"]) for name, _ in iface.inputs]
    inputs += [
        _i64("tape", ["batch", "tape_length"]),
        _i64("max_steps", []),
        _i64("resume_state", ["resume_batch", n]),
    ]
    defaults = [
        numpy_helper.from_array(np.zeros((1, 0), dtype=np.int64), "tape"),
        numpy_helper.from_array(np.array(options.default_max_steps, dtype=np.int64), "max_steps"),
        numpy_helper.from_array(np.zeros((0, n), dtype=np.int64), "resume_state"),
    ]
    docs = (
        "input tape words, one row per batch item (default: empty)",
        f"step budget (default {options.default_max_steps})",
        "a final_state to continue from (default: start afresh)",
    )
    for t, d in zip(defaults, docs, strict=True):
        t.doc_string = d

    # --- encode -----------------------------------------------------------------------------
    g = main
    one = g.const("one", np.array([1], dtype=np.int64))
    zero1 = g.const("zero", np.array([0], dtype=np.int64))
    batch_dims = [g.op("Shape", ["tape"], "tape_shape", start=0, end=1)]
    for name, _ in iface.inputs:
        batch_dims.append(g.op("Shape", [name], f"{name}_shape", start=0, end=1))
    batch = batch_dims[0]
    for d in batch_dims[1:]:
        batch = g.op("Max", [batch, d], "batch")
    image = np.zeros(iface.memory, dtype=np.int64)
    image[: len(iface.image)] = iface.image
    mem = g.const("image", (image + H)[None, :], doc="the program's memory image + H")
    for name, addr in iface.inputs:
        onehot = np.zeros((1, iface.memory), dtype=np.int64)
        onehot[0, addr] = 1
        col = g.op("Unsqueeze", [name, one], f"{name}_col")
        delta = g.op("Sub", [col, g.const(f"{name}_old", np.array(image[addr]))], f"{name}_delta")
        mem = g.op("Add", [mem, g.op("Mul", [delta, g.const(f"{name}_at", onehot)],
                                     f"{name}_placed")], f"memory_with_{name}")
    bshape_m = g.op("Concat", [batch, g.const("m", np.array([iface.memory]))], "mem_shape",
                    axis=0)
    mem = g.op("Expand", [mem, bshape_m], "initial_memory")
    tin = iface.tape_capacity
    tape_shape = g.op("Shape", ["tape"], "tape_len", start=1, end=2)
    bshape_t = g.op("Concat", [batch, tape_shape], "tape_shape_b", axis=0)
    tape_b = g.op("Expand", ["tape", bshape_t], "tape_batched")
    fill_shape = g.op("Concat", [batch, g.const("tin", np.array([tin]))], "fill_shape", axis=0)
    fill = g.op("ConstantOfShape", [fill_shape], "tape_fill",
                value=numpy_helper.from_array(np.array([-1], dtype=np.int64)))
    padded = g.op("Concat", [tape_b, fill], "tape_padded", axis=1)
    tape_words = g.op("Slice", [padded, zero1, g.const("tin_end", np.array([tin])),
                                one], "tape_words")
    tape_slots = g.op("Add", [tape_words, g.const("H", np.array(H, dtype=np.int64))],
                      "tape_slots")
    too_long = g.op("Cast", [g.op("Greater", [tape_shape, g.const("tin1", np.array([tin]))],
                                  "tape_too_long")], "tape_too_long_i", to=TensorProto.INT64)
    budget = g.op("Max", [g.op("Min", ["max_steps", g.const("max_budget",
                                                         np.array(iface.max_budget))],
                                "budget_capped"), g.const("no_budget", np.array(0))],
                  "budget0")
    scal = np.zeros(8, dtype=np.int64)
    order = ["pc1", "fault", "budget", "ip", "ol", "live", "oflag", "oval"]
    base = {"pc1": 1, "live": 1}
    for i, s in enumerate(order):
        scal[i] = base.get(s, 0)
        assert iface.index(s) == iface.memory + i
    scal_row = g.const("scalars0", scal[None, :])
    fault_col = np.zeros((1, 8), dtype=np.int64)
    fault_col[0, 1] = iface.tape_overflow_fault
    budget_col = np.zeros((1, 8), dtype=np.int64)
    budget_col[0, 2] = 1
    scal_b = g.op("Add", [scal_row, g.op("Mul", [g.op("Unsqueeze", [too_long, zero1], "tl2"),
                                                  g.const("fault_col", fault_col)], "f0")],
                  "scalars_f")
    scal_b = g.op("Add", [scal_b, g.op("Mul", [budget, g.const("budget_col", budget_col)],
                                       "b0")], "scalars_fb")
    shape8 = g.op("Concat", [batch, g.const("eight", np.array([8]))], "scal_shape", axis=0)
    scal_b = g.op("Expand", [scal_b, shape8], "initial_scalars")
    assert iface.tape_start == iface.memory + len(order)
    x0 = g.op("Concat", [mem, scal_b, tape_slots], "encoded_state", axis=1)
    both = g.op("Concat", ["resume_state", x0], "resume_or_encoded", axis=0)
    x0 = g.op("Slice", [both, zero1, batch, zero1], "initial_state")
    emitter.expand_indices(g, batch)

    # --- the loop -----------------------------------------------------------------------------
    body = _Graph("")
    v = "state_in"
    events_per_step = []
    oflag, oval, live = iface.index("oflag"), iface.index("oval"), iface.index("live")
    ev_start = main.const("ev_start", np.array([oflag], dtype=np.int64))
    ev_end = main.const("ev_end", np.array([oval + 1], dtype=np.int64))
    axis1 = main.const("axis1", np.array([1], dtype=np.int64))
    for k in range(K):
        v = emitter.emit(body, v, k)
        ev = body.op("Slice", [v, ev_start, ev_end, axis1], f"s{k}/output_event")
        events_per_step.append(ev)
    live_s = main.const("live_start", np.array([live], dtype=np.int64))
    live_e = main.const("live_end", np.array([live + 1], dtype=np.int64))
    live_col = body.op("Slice", [v, live_s, live_e, axis1], "live")
    any_live = body.op("ReduceMax", [live_col], "any_live", keepdims=0)
    cond = body.op("Cast", [any_live], "cond", to=TensorProto.BOOL)
    events = (body.op("Concat", events_per_step, "events", axis=1) if K > 1
              else events_per_step[0])
    body.nodes.append(helper.make_node("Identity", [v], ["state_out"], name="state_out"))
    body.nodes.append(helper.make_node("Identity", [cond], ["cond_out"], name="cond_out"))
    body.nodes.append(helper.make_node("Identity", [events], ["events_out"], name="events_out"))
    body_graph = helper.make_graph(
        body.nodes,
        "subleq_step",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            _i64("state_in", ["batch", n]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            _i64("state_out", ["batch", n]),
            _i64("events_out", ["batch", 2 * K]),
        ],
        doc_string=f"{K} unrolled steps of the looped ReLU-MLP: {network.doc}",
    )
    kk = main.const("K", np.array(K, dtype=np.int64))
    # at least one iteration (a no-op without budget), so the event scan is never empty
    trips = g.op("Max", [g.op("Div", [g.op("Add", [budget, g.const("K1", np.array(K - 1))],
                                           "ms_k"), kk], "trips"),
                         g.const("one_trip", np.array(1))], "trip_count")
    true = g.const("true", np.array(True))
    loop_out = ["final_state", "events_scan"]
    g.nodes.append(helper.make_node("Loop", [trips, true, x0], loop_out, name="loop",
                                    body=body_graph,
                                    doc_string="iterate the step until no batch item runs"))

    # --- decode -------------------------------------------------------------------------------
    outputs = _decode(g, iface)
    graph = helper.make_graph(
        g.nodes,
        "mlpc",
        inputs,
        outputs,
        initializer=defaults + g.inits,
        doc_string=doc,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mlpc", doc_string=doc)
    model.ir_version = 9
    for key, value in metadata:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


def _decode(g: _Graph, iface: ModelInterface) -> list[onnx.ValueInfoProto]:
    H = iface.offset
    one = g.const("d_one", np.array([1], dtype=np.int64))
    zero = g.const("d_zero", np.array([0], dtype=np.int64))

    def column(i: int, hint: str) -> str:
        return g.op("Gather", ["final_state", g.const(f"{hint}_i", np.array(i))], hint, axis=1)

    hconst = g.const("d_H", np.array(H, dtype=np.int64))
    mem_u = g.op("Slice", ["final_state", zero, g.const("d_m", np.array([iface.memory])), one],
                 "memory_u")
    g.nodes.append(helper.make_node("Sub", [mem_u, hconst], ["memory"], name="memory"))
    pc1 = column(iface.index("pc1"), "pc1")
    fault = column(iface.index("fault"), "fault_code")
    budget = column(iface.index("budget"), "budget")
    g.nodes.append(helper.make_node("Identity", [fault], ["fault"], name="fault"))
    ms = g.op("Max", [g.op("Min", ["max_steps", g.const("d_maxb", np.array(iface.max_budget))],
                           "ms_capped"), g.const("d_nob", np.array(0))], "ms")
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
    # output tape: events_scan is (iterations, batch, 2K) = K (flag, word+H) pairs per row
    ev = g.op("Transpose", ["events_scan"], "events_bt", perm=[1, 0, 2])
    pairs = g.op("Reshape", [ev, g.const("ev_shape", np.array([0, -1, 2]))], "event_pairs")
    flag = g.op("Gather", [pairs, g.const("e0", np.array(0))], "event_flag", axis=2)
    word = g.op("Sub", [g.op("Gather", [pairs, g.const("e1", np.array(1))], "event_val",
                             axis=2), hconst], "event_word")
    pos = g.op("Sub", [g.op("CumSum", [flag, g.const("e_ax", np.array(1))], "event_pos1"),
                       one], "event_pos")
    n_events = g.op("Shape", [flag], "n_events", start=1, end=2)
    dump = n_events  # unflagged events go to a column past every real position
    target = g.op("Where", [g.op("Cast", [flag], "flag_b", to=TensorProto.BOOL), pos,
                            g.op("Squeeze", [dump], "dump")], "event_target")
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
