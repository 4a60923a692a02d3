"""The ONNX exporter: a `Network` and the encoding/decoding around it become one
self-contained ONNX model (docs/onnx.md).

    inputs ──encode──> state ──Loop[ K x step ]──> state ──readout──> results ──decode──> outputs
                                  └── per step: output event ─────────────────────┘ (scan outputs)

`encode` places and validates the inputs; the network computes the run (the step, K times
per iteration) and, once after the Loop, its results (`readout`: the read-out layers, the
pending write landed, the status, the trap cells); `decode` only reads values out. All are
ONNX local functions (domain `mlpc`), and so is each layer of the step: the main graph is
the optional inputs' defaults, `encode`, the `Loop`, `readout` and `decode`, and the body
reads `layer1 -> layer2 -> layer3 -> next_state` per step, each a box that opens in Netron
(with its doc string); onnxruntime inlines the functions when it loads the model.

Three encodings of the same network, chosen by `ExportOptions.weights`, each behind the
`Encoding` interface (`compiler/encodings.py`) and registered in `compiler/limits.py`:
`families` (the default, `compiler/export_families.py`: elementwise ops on stacked
families, int64 or float64), `sparse` and `dense` (`compiler/export_sparse.py`,
`compiler/export_dense.py`: the network lowered to sparse matrices, applied as gathers of
constant indices or as dense `MatMul`s). This module calls only the interface; the read-out
is always in the families encoding. Graph building and the outlining of layers into local
functions are `compiler/onnx_graph.py`.
Inside the Loop only affine maps with constant weights and ReLU appear; taps off the state
(the loop condition and the output events) use `Slice`, `ReduceMax` and `Cast`. This module
knows nothing about SUBLEQ: what the state means is described by `ModelInterface`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mlpc.compiler.encodings import Encoding, ExportOptions, encoding
from mlpc.compiler.export_families import FamilyLoop
from mlpc.compiler.limits import DTYPES, ENCODINGS, TAPE_LENGTH
from mlpc.compiler.network import FLOAT64_EXACT, Network
from mlpc.compiler.onnx_graph import (
    FUNCTION_DOMAIN,
    OPSET,
    ExportError,
    Graph,
    call_function,
    columns,
    i64,
    make_function,
    outline_layers,
)


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
    # where the encoding writes each item's tape length (a program that uses eof()); the
    # model then has the optional input `tape_length`. -1: no such cell, no such input
    tape_length_address: int = -1
    # [lo, hi] of every slot of the flat state (the ranges the network is proven for): a
    # `resume_state` row outside them is refused (`invalid_resume_fault`)
    state_bounds: tuple[tuple[int, int], ...] = ()
    input_range_fault: int = 0  # the fault of an item given a word outside the W-bit range
    invalid_resume_fault: int = 0  # the fault of a resume_state row outside state_bounds

    @property
    def optional_inputs(self) -> tuple[str, ...]:
        """The model's optional inputs, in order."""
        if self.tape_length_address < 0:
            return OPTIONAL_INPUTS
        return ("tape", TAPE_LENGTH, *OPTIONAL_INPUTS[1:])

    def index(self, name: str) -> int:
        return dict(self.slot)[name]

    @property
    def memory_slots(self) -> tuple[int, ...]:
        """The address of each memory slot of the state, in order."""
        return self.state_words or tuple(range(self.memory))

    @property
    def scalars_start(self) -> int:
        return min(i for _, i in self.slot)


def check_options(network: Network, options: ExportOptions) -> None:
    """Refuse what cannot be exported exactly, with a one-line reason."""
    if options.weights not in ENCODINGS:
        raise ExportError(f"unknown weights encoding {options.weights!r}")
    if options.dtype not in DTYPES:
        raise ExportError(f"unknown dtype {options.dtype!r}")
    info = ENCODINGS[options.weights]
    if options.dtype not in info.dtypes:
        offered = " or ".join(e.name for e in ENCODINGS.values() if options.dtype in e.dtypes)
        raise ExportError(f"{options.dtype} needs --weights {offered} "
                          f"({info.why_not_other_dtypes})")
    if options.dtype == "float64":
        worst = network.max_magnitude()
        if worst >= FLOAT64_EXACT:
            raise ExportError(f"float64 is not exact for this machine: a partial sum can "
                              f"reach {worst} >= 2^53 (use int64)")
    encoding(options.weights).check(network, options)


# ---- the model -------------------------------------------------------------------------------


def build_model(
    network: Network,
    iface: ModelInterface,
    options: ExportOptions | None = None,
    metadata: Sequence[tuple[str, str]] = (),
    doc: str = "",
    readout: Network | None = None,
) -> onnx.ModelProto:
    """The whole model: encode the inputs, loop the step, run the read-out layers on the
    final state, decode (read the results out). `readout` is the read-out network
    (`codegen.StepNetwork.readout`: the machine state in, per-word `memory`, `halted_word`
    and `status_if_trap_cell` and the scalar `status` out)."""
    options = options or ExportOptions()
    check_options(network, options)
    if readout is None:
        raise ExportError("a model needs its read-out network")
    check_options(readout, _readout_options(options))
    main = Graph()
    loop = encoding(options.weights)(network, main, options)
    inputs = _graph_inputs(main, iface, options)
    encode = Graph("encode/")
    x0, batch, budget, budgets = _encode(encode, iface, main)
    expanded = loop.prepare(encode, lambda: batch)
    trips = _trip_count(encode, budget, options.unroll)
    initial = loop.split(encode, x0)
    encode.nodes.append(helper.make_node("Identity", [budgets], ["initial_budget"],
                                         name="initial_budget"))
    enc_out = [trips, *initial, *expanded, "initial_budget"]
    enc_fn, enc_in = make_function(
        "encode", encode, [name for name, _ in iface.inputs] + [
            f"{name}_value" for name in iface.optional_inputs], enc_out, main,
        "places and validates the inputs: the initial state [batch, n_state] (the program's "
        "image with its inputs placed, the tape, the step budget; or resume_state), split as "
        "the Loop carries it, the trip count ceil(budget / K) and each item's budget. "
        "Validation: batch sizes must agree (1 broadcasts); an item with a word outside the "
        "W-bit range faults 'input out of range', a resume_state row outside the state's "
        "ranges 'invalid resume state', a tape longer than its capacity 'input tape longer "
        "than its capacity': nothing of it runs")
    call_function(main, enc_fn, enc_in, enc_out)
    finals, layers = _loop(main, loop, iface, options, trips, initial, network)
    out = Graph("readout/")
    out.nodes.append(helper.make_node("Identity", [loop.join(out, finals)], ["final_state"],
                                      name="final_state"))
    results = _readout(out, readout, main, options)
    out_fn, out_in = make_function(
        "readout", out, finals, ["final_state", results], main,
        f"the read-out layers ({readout.relu_layers} ReLU layers of the network, once, after "
        "the loop): " + "; ".join(readout.layer_docs))
    call_function(main, out_fn, out_in, ["final_state", results])
    decode = Graph("decode/")
    outputs = _decode(decode, iface, readout, len(loop.event_shape(options.unroll)) + 1)
    decoded = [o.name for o in outputs if o.name != "final_state"]  # the read-out's
    dec_fn, dec_in = make_function(
        "decode", decode, ["final_state", "results", "events_scan", "initial_budget"],
        decoded, main,
        "reads the results out, deciding nothing: slices and constant-index gathers of the "
        "read-out's results (memory, status, trap code and line at the trap cells, named "
        "outputs) and of the final state (fault), steps = each item's budget - the budget "
        "left, and the output tape compacted from the scanned output events")
    call_function(main, dec_fn, dec_in, decoded)
    graph = helper.make_graph(main.nodes, "mlpc", inputs, outputs,
                              initializer=main.inits, doc_string=doc)
    return _model(graph, [enc_fn, *layers, out_fn, dec_fn], [*metadata, _proof(loop)])


def _proof(loop: Encoding) -> tuple[str, str]:
    """The `exactness` metadata: the build-time proof's summary (`compiler/exactness.py`):
    dtype, limit, the ops of the Loop body proven and the largest bound per op type."""
    return "exactness", json.dumps(loop.prover.report())


def _readout_options(options: ExportOptions) -> ExportOptions:
    """The read-out's: the families encoding in the model's dtype (`_readout`)."""
    return replace(options, weights="families")


def _readout(g: Graph, readout: Network, main: Graph, options: ExportOptions) -> str:
    """The read-out network applied once to `final_state` (int64 [batch, n_state]), its last
    space flat as `results`, int64 [batch, width] (families, then scalars). It is emitted in
    the families encoding whatever `options.weights` (in the model's dtype): it runs once
    per call, and as dense matrices it would weigh as much as the step's (gcd's dense model:
    353 MB instead of 222 MB; families: 19 KB)."""
    value = FamilyLoop(readout, main, _readout_options(options)).readout(g, "final_state")
    g.nodes.append(helper.make_node("Identity", [value], ["results"], name="results"))
    return "results"


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
    g = Graph()
    loop = encoding(options.weights)(network, g, options)
    loop.prepare(g, lambda: g.op("Shape", ["state"], "batch", start=0, end=1))
    finals = loop.emit(g, loop.split(g, "state"), 0)
    g.nodes.append(helper.make_node("Identity", [loop.join(g, finals)], ["next_state"],
                                    name="next_state"))
    layers = outline_layers(g, network)
    n = network.n_state
    graph = helper.make_graph(
        g.nodes, "mlpc_step", [i64("state", ["batch", n])], [i64("next_state", ["batch", n])],
        initializer=g.inits, doc_string=doc or f"one step of the looped ReLU-MLP: {network.doc}")
    return _model(graph, layers, [*metadata, _proof(loop)])


OPTIONAL_INPUTS = ("tape", "max_steps", "resume_state")


def _graph_inputs(g: Graph, iface: ModelInterface, options: ExportOptions
                  ) -> list[onnx.ValueInfoProto]:
    """The program's named inputs, and the optional inputs `tape`, `max_steps` and
    `resume_state` (and `tape_length` when the program uses eof()): ONNX optional tensors (an
    initializer standing in as a default would make onnxruntime warn on every session), each
    resolved to its value or its default by `OptionalHasElement` and `If` before anything
    reads it, as `<name>_value`. `tape_length`'s default is the fed tape's width, computed
    in its `If` from `tape_value`."""
    n = iface.n_state
    inputs = [i64(name, ["batch"]) for name, _ in iface.inputs]
    shapes: tuple[list[int | str], ...] = (["batch", "tape_words"], [], ["resume_batch", n])
    defaults = (np.zeros((1, 0), dtype=np.int64),
                np.array(options.default_max_steps, dtype=np.int64),
                np.zeros((0, n), dtype=np.int64))
    docs = (
        "input tape words, one row per batch item (optional; default: empty)",
        f"step budget of this call, for every item, a resumed one too (optional; default "
        f"{options.default_max_steps}; below 0 it is 0)",
        "a final_state to continue from (optional; default: start afresh); a row no run "
        "could have left faults 'invalid resume state' and runs nothing",
    )
    for name, shape, default, doc in zip(OPTIONAL_INPUTS, shapes, defaults, docs, strict=True):
        inputs.append(_optional_input(g, name, shape, doc, [helper.make_node(
            "Constant", [], [f"{name}_default"], value=numpy_helper.from_array(default))],
            shape))
        if name == "tape" and iface.tape_length_address >= 0:
            width = helper.make_node("Shape", ["tape_value"], [f"{TAPE_LENGTH}_default"],
                                     start=1, end=2)
            inputs.append(_optional_input(
                g, TAPE_LENGTH, ["tape_length_batch"],
                "each batch item's tape length, the words of its row of `tape` that eof() "
                "counts (optional; default: the width of `tape`, for every item)", [width],
                [1]))
    return inputs


def _optional_input(g: Graph, name: str, shape: list[int | str], doc: str,
                    default: list[onnx.NodeProto], default_shape: list[int | str]
                    ) -> onnx.ValueInfoProto:
    """An optional int64 input `name` of `shape`, resolved to `<name>_value` by an `If`:
    the fed tensor, else what the `default` nodes compute as `<name>_default` (of
    `default_shape`)."""
    tensor = helper.make_tensor_type_proto(TensorProto.INT64, shape)
    info = helper.make_value_info(name, helper.make_optional_type_proto(tensor), doc)
    has = g.op("OptionalHasElement", [name], f"{name}_given")
    given = helper.make_graph(
        [helper.make_node("OptionalGetElement", [name], [f"{name}_fed"])], f"{name}_fed",
        [], [i64(f"{name}_fed", shape)])
    absent = helper.make_graph(default, f"{name}_default", [],
                               [i64(f"{name}_default", default_shape)])
    g.nodes.append(helper.make_node("If", [has], [f"{name}_value"], name=f"{name}_value",
                                    then_branch=given, else_branch=absent, doc_string=doc))
    return info


def _encode(g: Graph, iface: ModelInterface, outer: Graph) -> tuple[str, str, str, str]:
    """Places and validates the inputs. Returns the initial flat state [batch, n_state], the
    batch size, the step budget of the call and each item's budget ([batch]). The program's
    image is an initializer of `outer` (the program's data, apart from the encoding's
    constants).

    - Batch sizes: every input's first dimension (and `resume_state`'s, when given) must
      be the batch size or 1 (broadcast); one `Max` node of zeros of those sizes, named after
      the inputs, fails in onnxruntime otherwise, before anything else reads them.
    - Words: a named input or tape word outside [-H, H) (H = 2^(W-1)) faults the item
      ('input out of range', `iface.input_range_fault`): nothing of it runs, and the words
      placed are clipped into the range so that the state stays in the network's ranges.
    - `max_steps` is clamped to [0, max_budget] (a negative budget runs no step).
    - `resume_state`: each row replaces the item's fresh state when every slot lies in its
      range (`iface.state_bounds`) and its pending write is one a step makes (the old word
      is the word at the address; none outside the state's words); any other row is
      refused: the item gets the fresh state with the fault 'invalid resume state', and
      nothing runs. A resumed item's budget is `max_steps`, as a fresh one's (the state's
      own budget is what its last call left).
    """
    H = iface.offset
    one = g.const("one", np.array([1], dtype=np.int64))
    zero1 = g.const("zero1", np.array([0], dtype=np.int64))
    placed = list(iface.inputs)
    if iface.tape_length_address >= 0:
        placed.append((_tape_length_word(g, iface), iface.tape_length_address))
    # the batch size, checked: a variadic Max broadcasts its inputs' shapes (1 to the batch,
    # any other mismatch fails in onnxruntime, naming this node)
    sized = [("tape", "tape_value")] + [(name, name) for name, _ in iface.inputs]
    if iface.tape_length_address >= 0:
        sized.append((TAPE_LENGTH, f"{TAPE_LENGTH}_value"))
    resume_rows = g.op("Shape", ["resume_state_value"], "resume_rows", start=0, end=1)
    zeros = [g.op("ConstantOfShape", [g.op("Shape", [value], f"{name}_size", start=0, end=1)],
                  f"{name}_zeros", value=numpy_helper.from_array(np.zeros(1, np.int64)))
             for name, value in sized]
    # resume_state: its rows count when given (0 rows: not given)
    zeros.append(g.op("ConstantOfShape", [g.op("Max", [resume_rows, one], "resume_size")],
                      "resume_zeros", value=numpy_helper.from_array(np.zeros(1, np.int64))))
    check = "batch_sizes_of_" + "_".join(name for name, _ in sized) + "_resume_state_must_agree"
    g.nodes.append(helper.make_node("Max", zeros, [check], name=check, doc_string=(
        "fails unless every input's batch size is the batch's or 1")))
    batch = g.op("Shape", [check], "batch", start=0, end=1)
    lo_w = g.const("word_min", np.array(-H, dtype=np.int64))
    hi_w = g.const("word_max_", np.array(H - 1, dtype=np.int64))

    def outside(value: str, hint: str) -> str:
        """1 where a word lies outside [-H, H), else 0 (int64)."""
        fits = g.op("And", [g.op("GreaterOrEqual", [value, lo_w], f"{hint}_ge"),
                            g.op("LessOrEqual", [value, hi_w], f"{hint}_le")], f"{hint}_fits")
        return g.op("Cast", [g.op("Not", [fits], f"{hint}_outside")], f"{hint}_bad",
                    to=TensorProto.INT64)

    image = np.zeros(iface.memory, dtype=np.int64)
    image[: len(iface.image)] = iface.image
    slots = list(iface.memory_slots)
    mem = outer.const("image", (image[slots] + H)[None, :],
                      doc="the program's memory image + H (the words the state holds)")
    bad = g.op("ConstantOfShape", [batch], "no_bad_word",
               value=numpy_helper.from_array(np.zeros(1, np.int64)))
    for name, addr in placed:
        value = g.op("Expand", [name, batch], f"{name}_batched")
        if (name, addr) in iface.inputs:
            bad = g.op("Max", [bad, outside(value, name)], f"bad_{name}")
            value = g.op("Clip", [value, lo_w, hi_w], f"{name}_clipped")
        onehot = np.zeros((1, len(slots)), dtype=np.int64)
        onehot[0, slots.index(addr)] = 1
        col = g.op("Unsqueeze", [value, one], f"{name}_col")
        delta = g.op("Sub", [col, g.const(f"{name}_old", np.array(image[addr]))], f"{name}_delta")
        mem = g.op("Add", [mem, g.op("Mul", [delta, g.const(f"{name}_at", onehot)],
                                     f"{name}_placed")], f"memory_with_{name}")
    mem = g.op("Expand", [mem, g.op("Concat", [batch, g.const("m", np.array([len(slots)]))],
                                    "mem_shape", axis=0)], "initial_memory")
    tin = iface.tape_capacity
    tape_len = g.op("Shape", ["tape_value"], "tape_len", start=1, end=2)
    tape_b = g.op("Expand", ["tape_value", g.op("Concat", [batch, tape_len], "tape_shape_b",
                                                 axis=0)], "tape_batched")
    tape_bad = g.op("ReduceMax", [g.op("Concat", [outside(tape_b, "tape"), g.op(
        "ConstantOfShape", [g.op("Concat", [batch, one], "one_col_shape", axis=0)],
        "tape_ok_col", value=numpy_helper.from_array(np.zeros(1, np.int64)))],
        "tape_bad_or_none", axis=1), one], "tape_bad_item", keepdims=0)
    bad = g.op("Max", [bad, tape_bad], "bad_word")
    fill = g.op("ConstantOfShape", [g.op("Concat", [batch, g.const("tin", np.array([tin]))],
                                         "fill_shape", axis=0)], "tape_fill",
                value=numpy_helper.from_array(np.array([-1], dtype=np.int64)))
    padded = g.op("Concat", [g.op("Clip", [tape_b, lo_w, hi_w], "tape_clipped"), fill],
                  "tape_padded", axis=1)
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
    # the fault of a fresh item: input out of range, else tape too long
    code = g.op("Max", [g.op("Mul", [too_long, g.const("too_long_code", np.array(
        iface.tape_overflow_fault))], "too_long_fault"), g.op("Mul", [bad, g.const(
            "range_code", np.array(iface.input_range_fault))], "range_fault")], "fresh_fault")
    fault = g.op("Mul", [g.op("Unsqueeze", [code, one], "fault_col"),
                         g.const("fault_at", column("fault"))], "initial_fault")
    steps = g.op("Mul", [budget, g.const("budget_col", column("budget"))], "initial_budget")
    scal = g.op("Add", [g.op("Add", [g.const("scalars0", base), fault], "scalars_f"), steps],
                "scalars_fb")
    scal = g.op("Expand", [scal, g.op("Concat", [batch, g.const("ns", np.array([len(names)]))],
                                      "scal_shape", axis=0)], "initial_scalars")
    x0 = g.op("Concat", [mem, tape_slots, scal], "encoded_state", axis=1)
    # resume_state: 0 rows (not given), else broadcast to the batch; each row checked
    n = iface.n_state
    rows = g.op("Mul", [g.op("Min", [resume_rows, one], "resume_given"), batch], "rows")
    resume = g.op("Expand", ["resume_state_value", g.op("Concat", [rows, g.const(
        "n_state", np.array([n]))], "resume_shape", axis=0)], "resume_batched")
    checks = []
    for first, end in ((0, start), (start, n)):  # the words (one range), then the scalars
        part = columns(g, resume, first, end, f"resume_{first}")
        lows, highs = zip(*iface.state_bounds[first:end], strict=True)
        lo = np.array(lows[0]) if len(set(lows)) == 1 else np.array([lows])
        hi = np.array(highs[0]) if len(set(highs)) == 1 else np.array([highs])
        fits = g.op("And", [g.op("GreaterOrEqual", [part, g.const("state_lo", lo)], "ge"),
                            g.op("LessOrEqual", [part, g.const("state_hi", hi)], "le")],
                    f"resume_{first}_in_range")
        checks.append(g.op("ReduceMin", [g.op("Cast", [fits], "in_range_i",
                                              to=TensorProto.INT64), one],
                           f"resume_{first}_ranged", keepdims=1))
    ranged = g.op("Min", checks, "resume_ranged")
    # the pending write's old word is the word at its address (a state slot), and a write
    # outside the slots changes nothing: the network's ranges rest on it (landing
    # V[j] + [wa == j] (wv - wo) stays a word)
    def slot(name: str) -> str:
        return g.op("Gather", [resume, g.const(f"{name}_i", np.array([iface.index(name)]))],
                    f"resume_{name}", axis=1)

    wa2, wo, wv = (slot(name) for name in iface.pending_write)
    held = g.op("Slice", [resume, zero1, g.const("n_slots", np.array([len(slots)])), one],
                "resume_memory")
    at = g.op("Equal", [g.const("slot_addresses", np.array([slots], np.int64) + 2), wa2],
              "resume_write_at")
    old = g.op("ReduceMax", [g.op("Where", [at, held, g.const("no_word", np.array(-1))],
                                  "resume_word_at"), one], "resume_old_word", keepdims=1)
    expected = g.op("Where", [g.op("Equal", [old, g.const("minus1", np.array(-1))],
                                   "resume_no_slot"), wv, old], "resume_expected_old")
    consistent = g.op("Cast", [g.op("Equal", [wo, expected], "resume_old_matches")],
                      "resume_consistent", to=TensorProto.INT64)
    valid = g.op("Min", [ranged, consistent], "resume_valid")
    fresh = g.op("Slice", [x0, zero1, rows, zero1], "fresh_for_resume")
    # a refused row: the fresh state with the fault 'invalid resume state'
    code = g.op("Mul", [g.op("ConstantOfShape", [g.op("Concat", [rows, one], "code_shape",
                                                      axis=0)], "ones_col",
                             value=numpy_helper.from_array(np.ones(1, np.int64))),
                        g.const("invalid_code", np.array(iface.invalid_resume_fault))],
                "invalid_col")
    refused = _set_column(g, fresh, iface.index("fault"), code, n, "refused_resume")
    chosen = g.op("Where", [g.op("Cast", [valid], "resume_ok", to=TensorProto.BOOL), resume,
                            refused], "resumed")
    both = g.op("Concat", [chosen, x0], "resume_or_encoded", axis=0)
    x = g.op("Slice", [both, zero1, batch, zero1], "chosen_state")
    # every item's budget is this call's, a resumed one's too (its own is what was left)
    budgets = g.op("Expand", [budget, batch], "item_budget")
    x = _set_column(g, x, iface.index("budget"), g.op("Unsqueeze", [budgets, one],
                                                      "item_budget_col"), n, "initial_state")
    return x, batch, budget, budgets


def _set_column(g: Graph, x: str, index: int, column: str, n: int, hint: str) -> str:
    """[batch, n] `x` with its column `index` replaced by `column` [batch, 1]."""
    return g.op("Concat", [columns(g, x, 0, index, f"{hint}_before"), column,
                           columns(g, x, index + 1, n, f"{hint}_after")], hint, axis=1)


def _tape_length_word(g: Graph, iface: ModelInterface) -> str:
    """Each item's tape length as the word its program's eof() counts down: `tape_length`
    clamped to [0, the tape's width] (the words an item can have; past the capacity the run
    faults anyway) and to the largest W-bit word, so the state stays in range."""
    width = g.op("Shape", ["tape_value"], "tape_width", start=1, end=2)
    largest = g.const("word_max", np.array([iface.offset - 1], dtype=np.int64))
    top = g.op("Min", [width, largest], "tape_length_top")
    return g.op("Max", [g.op("Min", [f"{TAPE_LENGTH}_value", top], "tape_length_capped"),
                        g.const("no_words", np.array([0], dtype=np.int64))], "tape_length_word")


def _trip_count(g: Graph, budget: str, K: int) -> str:
    """ceil(budget / K) iterations, at least one (a no-op without budget), so the event scan
    is never empty."""
    return g.op("Max", [g.op("Div", [g.op("Add", [budget, g.const("K1", np.array(K - 1))],
                                          "ms_k"), g.const("K", np.array(K))], "trips"),
                        g.const("one_trip", np.array(1))], "trip_count")


def _loop(g: Graph, loop: Encoding, iface: ModelInterface,
          options: ExportOptions, trips: str, initial: list[str], network: Network
          ) -> tuple[list[str], list[onnx.FunctionProto]]:
    """The Loop node: K unrolled steps per iteration, until no item runs; returns the final
    carried values (`loop_final_*`); the scan of output events (flag, word + H) per step is
    `events_scan`; and the local functions of the step's layers, called in the body."""
    K = options.unroll
    body = Graph("")
    carried = [f"{name}_in" for name in _carried_names(loop)]
    events = []
    oflag, oval, live = iface.index("oflag"), iface.index("oval"), iface.index("live")
    assert oflag == live + 1 and oval == oflag + 1
    for k in range(K):
        carried = loop.emit(body, carried, k)
        # (live, flag, word + H): the iteration ran the machine; it output a word
        events.append(loop.tap(body, carried, live, oval + 1, f"s{k}/output_event"))
    live_col = loop.tap(body, carried, live, live + 1, "live")
    any_live = body.op("ReduceMax", [live_col], "any_live", keepdims=0)
    cond = body.op("Cast", [any_live], "cond", to=TensorProto.BOOL)
    ev = body.op("Concat", events, "events", axis=1) if K > 1 else events[0]
    outs = [f"{name}_out" for name in _carried_names(loop)]
    for value, name in zip(carried, outs, strict=True):
        body.nodes.append(helper.make_node("Identity", [value], [name], name=name))
    body.nodes.append(helper.make_node("Identity", [cond], ["cond_out"], name="cond_out"))
    body.nodes.append(helper.make_node("Identity", [ev], ["events_out"], name="events_out"))
    layers = outline_layers(body, network)
    body_graph = helper.make_graph(
        body.nodes, "subleq_step",
        [helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])]
        + loop.value_infos("_in"),
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, [])]
        + loop.value_infos("_out") + [i64("events_out", loop.event_shape(K))],
        doc_string=f"{K} unrolled steps of the looped ReLU-MLP: {network.doc}",
    )
    finals = [f"loop_final_{name}" for name in _carried_names(loop)]
    g.nodes.append(helper.make_node("Loop", [trips, g.const("true", np.array(True)), *initial],
                                    [*finals, "events_scan"], name="loop", body=body_graph,
                                    doc_string="iterate the step until no batch item runs"))
    return finals, layers


def _carried_names(loop: Encoding) -> list[str]:
    return [info.name.removesuffix("_in") for info in loop.value_infos("_in")]


# what decode may do with the read-out's results and the final state: read values out
# (tests/test_model_io.py walks decode's nodes and checks it)
READ_OUT_OPS = ("Slice", "Gather", "Concat", "Expand", "Shape", "Identity", "Sub", "Reshape")


def _decode(g: Graph, iface: ModelInterface, readout: Network, event_rank: int
            ) -> list[onnx.ValueInfoProto]:
    """The outputs, read out of `results` (the read-out layers' values, `_readout`) and
    `final_state`: slices and gathers at constant indices, `steps` = each item's budget
    minus the budget left; nothing decides on the machine's state. The output tape is
    compacted from the scanned events (`_decode_output_tape`)."""
    last = readout.spaces[-1]
    at, start = {}, 0
    for d in last.families:
        at[d.name] = start
        start += d.length
    status_at = start + [d.name for d in last.scalars].index("status")
    one = g.const("d_one", np.array([1], dtype=np.int64))
    zero = g.const("d_zero", np.array([0], dtype=np.int64))
    slots = list(iface.memory_slots)

    def read(index: int, hint: str, source: str = "results") -> str:
        return g.op("Gather", [source, g.const(f"{hint}_i", np.array(index))], hint, axis=1)

    mem_u = g.op("Slice", ["results", g.const("d_m0", np.array([at["memory"]])),
                           g.const("d_m1", np.array([at["memory"] + len(slots)])), one],
                 "memory_slots")
    if iface.state_words:  # the constant words from the image, the others from the state
        image = np.zeros(iface.memory, dtype=np.int64)
        image[: len(iface.image)] = iface.image
        batch = g.op("Shape", ["results"], "d_batch", start=0, end=1)
        constants = g.op("Expand", [g.const("d_image", image[None, :]),
                                    g.op("Concat", [batch, g.const("d_mm", np.array(
                                        [iface.memory]))], "d_image_shape", axis=0)],
                         "d_constants")
        where = np.arange(iface.memory) + len(slots)
        where[slots] = np.arange(len(slots))
        both = g.op("Concat", [mem_u, constants], "d_state_and_constants", axis=1)
        mem_u = g.op("Gather", [both, g.const("d_words", where)], "memory_full", axis=1)
    g.nodes.append(helper.make_node("Identity", [mem_u], ["memory"], name="memory"))
    g.nodes.append(helper.make_node("Identity", [read(iface.index("fault"), "fault_code",
                                                      "final_state")], ["fault"], name="fault"))
    left = read(iface.index("budget"), "budget_left", "final_state")
    g.nodes.append(helper.make_node("Sub", ["initial_budget", left], ["steps"], name="steps"))
    status = read(status_at, "status_base")
    outs = [
        i64("output_tape", ["batch", "output_words"]),
        i64("output_length", ["batch"]),
        i64("status", ["batch"]),
        i64("fault", ["batch"]),
        i64("steps", ["batch"]),
        i64("iterations", ["batch"]),
        i64("memory", ["batch", iface.memory]),
        i64("final_state", ["batch", iface.n_state]),
    ]
    if iface.trap_code_address >= 0:
        code, line = iface.trap_code_address, iface.trap_line_address
        if code not in slots or line not in slots:
            raise ExportError("the trap cells must be words the network holds")
        status = read(at["status_if_trap_cell"] + slots.index(code), "status_trap")
        g.nodes.append(helper.make_node("Identity", [read(
            at["halted_word"] + slots.index(code), "trap_code")], ["trap"], name="trap"))
        g.nodes.append(helper.make_node("Identity", [read(
            at["halted_word"] + slots.index(line), "trap_line_word")], ["trap_line"],
            name="trap_line"))
        outs += [i64("trap", ["batch"]), i64("trap_line", ["batch"])]
    g.nodes.append(helper.make_node("Identity", [status], ["status"], name="status"))
    _decode_output_tape(g, iface.offset, one, zero, event_rank)
    for name, addr in iface.outputs:
        g.nodes.append(helper.make_node("Gather", ["memory", g.const(f"out_{name}",
                                                                     np.array(addr))],
                                        [name], name=f"output {name}", axis=1))
        outs.append(i64(name, ["batch"]))
    return outs


def _decode_output_tape(g: Graph, H: int, one: str, zero: str, rank: int) -> None:
    """events_scan is (iterations, batch, 3K[, 1]) = K (live, flag, word + H) triples per
    row: the flagged words, in order, become `output_tape` and `output_length`; the live
    flags summed are `iterations`, the network iterations that ran the machine."""
    hconst = g.const("d_H", np.array(H, dtype=np.int64))
    ev = g.op("Transpose", ["events_scan"], "events_bt", perm=[1, 0, *range(2, rank)])
    pairs = g.op("Reshape", [ev, g.const("ev_shape", np.array([0, -1, 3]))], "event_triples")
    live = g.op("Gather", [pairs, g.const("e0", np.array(0))], "event_live", axis=2)
    g.nodes.append(helper.make_node("ReduceSum", [live, one], ["iterations"], name="iterations",
                                    keepdims=0))
    flag = g.op("Gather", [pairs, g.const("e1", np.array(1))], "event_flag", axis=2)
    word = g.op("Sub", [g.op("Gather", [pairs, g.const("e2", np.array(2))], "event_val",
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
