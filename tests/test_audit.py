"""`mlpc audit` (runtime/audit.py, issue 21 section 3): planted faults are caught, the
examples' models pass in every form (except what issue 21 sections 1 and 2 fix, marked), the
exact evaluator agrees with onnxruntime, the states cover what they promise, and the command
line's exit statuses and JSON."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mlpc.cli import main
from mlpc.compiler.driver import LoadedProgram, machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.limits import ENCODINGS
from mlpc.compiler.machine_config import Fault
from mlpc.compiler.model import compile_model, compile_step_model
from mlpc.compiler.options import CompileOptions
from mlpc.runtime.audit import (
    AuditReport,
    Layout,
    _layout,
    audit_model,
    exact_step,
    make_states,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.name for p in (REPO / "examples").glob("*.tl")) + ["hello.asm"]
# (weights, dtype, specialise): every form the compiler offers
FORMS = [("families", "int64", False), ("families", "float64", False),
         ("families", "int64", True), ("families", "float64", True),
         ("sparse", "int64", False), ("sparse", "int64", True), ("dense", "int64", False)]
STATES = 2  # random states per audit in the fast tests, beside the structured ones (~90)


@cache
def _program(example: str) -> LoadedProgram:
    return LoadedProgram([str(REPO / "examples" / example)], CompileOptions())


@cache
def _model(example: str, weights: str, dtype: str, specialise: bool, unroll: int = 2
           ) -> onnx.ModelProto:
    program = _program(example)
    config = machine_config(program.image)
    return compile_model(program.image, config,
                         ExportOptions(unroll=unroll, weights=weights, dtype=dtype), specialise)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _step_problems(report: AuditReport) -> list[str]:
    return [p for p in report.problems if not p.startswith("decode:")]


def _decode_problems(report: AuditReport) -> list[str]:
    return [p for p in report.problems if p.startswith("decode:")]


# ---- planted faults --------------------------------------------------------------------------


def _function(model: onnx.ModelProto, name: str) -> onnx.FunctionProto:
    return next(f for f in model.functions if f.name == name)


def _replace(fn: onnx.FunctionProto, old: onnx.NodeProto, new: list[onnx.NodeProto]) -> None:
    """Put `new` where `old` was in the function's node list."""
    nodes = list(fn.node)
    at = next(i for i, n in enumerate(nodes) if n is old or n == old)
    del fn.node[:]
    fn.node.extend(nodes[:at] + new + nodes[at + 1:])


def _first(fn: onnx.FunctionProto, op: str, hint: str = "") -> onnx.NodeProto:
    return next(n for n in fn.node if n.op_type == op and hint in n.name)


def _honest_base() -> onnx.ModelProto:
    """gcd as float64 families, one step per iteration: its step path passes the audit
    today, so each planted fault is the only thing wrong with it."""
    model = _copy(_model("gcd.tl", "families", "float64", False, 1))
    assert _step_problems(audit_model(model, states=0)) == []
    return model


def _caught(model: onnx.ModelProto | AuditReport, *words: str) -> str:
    """The audit's problem that names every one of `words` (fails if none)."""
    report = model if isinstance(model, AuditReport) else audit_model(model, states=0)
    assert not report.ok
    found = [p for p in report.problems if all(w in p for w in words)]
    assert found, f"no problem names {words}: {report.problems}"
    return found[0]


def _where_for_a_relu() -> onnx.ModelProto:
    """The honest base with layer 1's first ReLU made a Greater and a Where."""
    model = _honest_base()
    fn = _function(model, "layer1")
    relu = _first(fn, "Max", "relu")
    x, zero = relu.input
    _replace(fn, relu, [
        helper.make_node("Greater", [x, zero], ["planted_cond"], name="planted_greater"),
        helper.make_node("Where", ["planted_cond", x, zero], list(relu.output),
                         name="planted_where"),
    ])
    onnx.checker.check_model(model)
    return model


def test_a_where_in_place_of_a_relu_is_caught() -> None:
    model = _where_for_a_relu()
    _caught(model, "planted_where", "Where on the state path")
    _caught(model, "planted_greater", "Greater on the state path")


def test_max_with_one_is_caught() -> None:
    model = _honest_base()
    fn = _function(model, "layer1")
    relu = _first(fn, "Max", "relu")
    one = helper.make_node("Constant", [], ["planted_one"],
                           value=numpy_helper.from_array(np.array(1.0)))
    _replace(fn, relu, [one, helper.make_node("Max", [relu.input[0], "planted_one"],
                                              list(relu.output), name="planted_max")])
    assert "Max(x, c) with c = 1" in _caught(model, "planted_max", "not a ReLU")


def test_a_product_of_two_activations_is_caught() -> None:
    model = _honest_base()
    fn = _function(model, "layer1")
    add = _first(fn, "Add", "stack0/pre")
    _replace(fn, add, [helper.make_node("Mul", list(add.input), list(add.output),
                                        name="planted_mul")])
    _caught(model, "planted_mul", "a product of two values computed from the state")


def test_a_data_dependent_gather_is_caught() -> None:
    """GatherElements whose indices are computed from the state (always 0 here, so the values
    do not change: only the dependence is wrong)."""
    model = _honest_base()
    fn = _function(model, "layer1")
    add = _first(fn, "Add", "stack0/pre")
    v, part = add.input
    zero = _first(fn, "Max", "relu").input[1]
    _replace(fn, add, [
        helper.make_node("Mul", [v, zero], ["planted_zeros"], name="planted_zeros"),
        helper.make_node("Cast", ["planted_zeros"], ["planted_index"], to=TensorProto.INT64,
                         name="planted_index"),
        helper.make_node("GatherElements", [v, "planted_index"], ["planted_gathered"],
                         axis=1, name="planted_gather"),
        helper.make_node("Add", ["planted_gathered", part], list(add.output), name=add.name),
    ])
    onnx.checker.check_model(model)
    _caught(model, "planted_gather", "data-dependent GatherElements")


def test_a_float64_weight_of_one_half_is_caught() -> None:
    model = _honest_base()
    fn = _function(model, "layer1")
    matmul = _first(fn, "MatMul")
    weights = next(t for t in model.graph.initializer if t.name == matmul.input[0])
    w = numpy_helper.to_array(weights).copy()
    w.flat[int(np.flatnonzero(w == 0)[0])] = 0.5
    weights.CopyFrom(numpy_helper.from_array(w, weights.name))
    assert "(0.5)" in _caught(model, f"weight {weights.name} is not an integer")


def test_int64_partial_sums_past_two_to_63_are_caught_with_unchanged_values() -> None:
    """A sparse int64 model (its step path passes today) whose row sum `rows @ ones` becomes
    `[rows, rows] @ [(1 + K) ones; -K ones]`: every value it computes is the same, and
    onnxruntime's results do not change (int64 wraps around), but the partial sums pass
    2^63: only the bound on sums of |products| catches it."""
    base = _model("gcd.tl", "sparse", "int64", False, 1)
    assert _step_problems(audit_model(base, states=0)) == []
    model = _copy(base)
    fn = _function(model, "layer1")
    matmul = _first(fn, "MatMul")
    rows, ones = matmul.input
    width = next(numpy_helper.to_array(t) for t in model.graph.initializer
                 if t.name == ones).shape[0]
    K = 1 << 40
    planted = np.concatenate([np.full((width, 1), 1 + K), np.full((width, 1), -K)])
    _replace(fn, matmul, [
        helper.make_node("Constant", [], ["planted_weights"],
                         value=numpy_helper.from_array(planted.astype(np.int64))),
        helper.make_node("Concat", [rows, rows], ["planted_rows"], axis=2,
                         name="planted_concat"),
        helper.make_node("MatMul", ["planted_rows", "planted_weights"], list(matmul.output),
                         name="planted_matmul"),
    ])
    onnx.checker.check_model(model)
    report = audit_model(model, states=0)
    problem = _caught(report, "planted_matmul", "sum of |products|")
    assert float(problem.split("2^")[1].split(" ")[0]) >= 63
    assert not any("|value|" in p for p in _step_problems(report))
    feeds = {"a": np.array([48]), "b": np.array([18])}
    got = ort.InferenceSession(model.SerializeToString()).run(["g", "steps"], feeds)
    want = ort.InferenceSession(base.SerializeToString()).run(["g", "steps"], feeds)
    assert [int(v[0]) for v in got] == [int(v[0]) for v in want] and int(got[0][0]) == 6


def test_a_decision_added_to_decode_on_the_memory_output_is_caught() -> None:
    model = _copy(_model("gcd.tl", "families", "float64", False, 1))
    _output_through(model, "memory", [
        helper.make_node("Constant", [], ["planted_five"],
                         value=numpy_helper.from_array(np.array(5, dtype=np.int64))),
        helper.make_node("Greater", ["planted_raw", "planted_five"], ["planted_big"],
                         name="planted_greater"),
        helper.make_node("Where", ["planted_big", "planted_raw", "planted_five"], ["memory"],
                         name="planted_where"),
    ])
    onnx.checker.check_model(model)
    problem = _caught(model, "decode: Where", "planted_where")
    assert "memory" in problem.split("flows into")[1]
    _caught(model, "decode: Greater", "planted_greater")


def _output_through(model: onnx.ModelProto, output: str, nodes: list[onnx.NodeProto]
                    ) -> None:
    """decode's `output` computed by `nodes` from `planted_raw` (what it was)."""
    fn = _function(model, "decode")
    node = next(n for n in fn.node if output in n.output)
    raw = onnx.NodeProto()
    raw.CopyFrom(node)
    raw.output[0] = "planted_raw"
    _replace(fn, node, [raw, *nodes])


@pytest.mark.parametrize(("c", "honest"), [(0, True), (1, False)])
def test_relu_units_after_the_loop_are_network_units(c: int, honest: bool) -> None:
    """decode may compute with units of the network (a pending write can land in a ReLU
    layer after the Loop): Max(x, 0) there is allowed and evaluated exactly, Max(x, 1) is a
    decision."""
    model = _copy(_model("gcd.tl", "families", "float64", False, 1))
    _output_through(model, "fault", [
        helper.make_node("Constant", [], ["planted_c"],
                         value=numpy_helper.from_array(np.array(c, dtype=np.int64))),
        helper.make_node("Max", ["planted_raw", "planted_c"], ["fault"], name="planted_max")])
    onnx.checker.check_model(model)
    report = audit_model(model, states=0)
    named = [p for p in report.problems if "planted_max" in p]
    if honest:
        assert named == [] and "Max int64 (decode)" in report.magnitudes
    else:
        assert named and "Max other than Max(x, 0)" in named[0]


# ---- every example in every form -------------------------------------------------------------


def _forms() -> list[object]:
    cases = []
    for example in EXAMPLES:
        for weights, dtype, specialise in FORMS:
            if specialise and example.endswith(".asm"):
                continue  # SUBLEQ code needs --read-only ranges to specialise
            program = _program(example)
            memory = machine_config(program.image).memory
            if 0 < ENCODINGS[weights].memory_limit < memory:
                continue  # the CLI refuses dense weights past 512 words
            if (dtype, specialise) == ("float64", True) and example in (
                    "brainfuck.tl", "crc32.tl", "fizzbuzz.tl", "isqrt.tl", "modpow.tl"):
                continue  # refused: float64 is not exact for their specialised networks
            name = f"{example}-{weights}-{dtype}-{'specialised' if specialise else 'universal'}"
            marks = []
            if example != "gcd.tl" and weights != "dense" and (example, dtype) != (
                    "hello.asm", "float64"):
                marks.append(pytest.mark.slow)  # fast: gcd in every form, dense, SUBLEQ code
            cases.append(pytest.param(example, weights, dtype, specialise, id=name,
                                      marks=marks))
    return cases


@pytest.mark.parametrize(("example", "weights", "dtype", "specialise"), _forms())
def test_the_step_path_of_every_example_is_honest_and_exact(
        example: str, weights: str, dtype: str, specialise: bool) -> None:
    """Only affine maps with constant integer weights and Max(x, 0) on the Loop's state path,
    and every value and partial sum inside the dtype's exact range (two unrolled steps)."""
    report = audit_model(_model(example, weights, dtype, specialise), states=STATES)
    assert report.evaluated and report.states >= 80
    assert _step_problems(report) == []
    assert report.path_ops["MatMul"] > 0
    for kind, magnitude in report.magnitudes.items():
        if "(decode)" not in kind:  # decode reads the state out as int64
            assert magnitude.dtype == dtype
        assert magnitude.bits() < magnitude.limit_bits


@pytest.mark.parametrize(("example", "weights", "dtype", "specialise"), [
    ("gcd.tl", "families", "int64", False), ("gcd.tl", "families", "float64", True),
    ("gcd.tl", "sparse", "int64", False), ("hello.asm", "families", "float64", False),
    ("fib_iter.tl", "dense", "int64", False)])
def test_decode_only_reads_the_final_state_out(example: str, weights: str, dtype: str,
                                                specialise: bool) -> None:
    report = audit_model(_model(example, weights, dtype, specialise, 1), states=0)
    assert _decode_problems(report) == []
    assert "Equal" not in report.decode["memory"] and "Where" not in report.decode["status"]


def test_the_default_unroll_is_audited_step_by_step() -> None:
    """Eight unrolled steps: every step's copy of a layer is on the state path."""
    one = audit_model(_model("gcd.tl", "families", "float64", False, 1), states=0)
    eight = audit_model(_model("gcd.tl", "families", "float64", False, 8), states=0)
    assert _step_problems(eight) == []
    assert eight.path_ops["MatMul"] == 8 * one.path_ops["MatMul"]
    assert eight.path_ops["Max"] == 8 * one.path_ops["Max"]


def test_the_decode_listing_names_what_each_output_reads() -> None:
    report = audit_model(_model("gcd.tl", "families", "float64", False, 1), states=0)
    assert set(report.decode) >= {"memory", "status", "steps", "final_state", "g",
                                  "output_tape", "output_length"}
    assert "ScatterElements" in report.decode["output_tape"]  # formatting: allowed
    assert not any("output_tape" in p.split("flows into")[-1]
                   for p in _decode_problems(report))
    assert report.taps["ReduceMax"] == 1  # the loop condition: listed, not on the path


# ---- the evaluator against onnxruntime; the states --------------------------------------------


@pytest.mark.parametrize(("weights", "dtype"), [("families", "float64"), ("sparse", "int64")])
def test_the_exact_evaluator_agrees_with_onnxruntime_on_a_step_model(weights: str,
                                                                     dtype: str) -> None:
    program = _program("fib_iter.tl")
    step = compile_step_model(machine_config(program.image),
                              ExportOptions(weights=weights, dtype=dtype))
    rows, _ = make_states(_layout({p.key: p.value for p in step.metadata_props}, "step"), 4, 1)
    (ours,) = exact_step(step, rows)
    (theirs,) = ort.InferenceSession(step.SerializeToString()).run(["next_state"],
                                                                   {"state": rows})
    assert ours.dtype == np.int64 and np.array_equal(ours, theirs)
    assert not np.array_equal(ours, rows)  # the step changed something


@pytest.mark.slow
@pytest.mark.parametrize(("weights", "dtype", "specialise"), [
    ("families", "float64", False), ("families", "float64", True), ("sparse", "int64", False)])
def test_many_random_states(weights: str, dtype: str, specialise: bool) -> None:
    """A thousand random states besides the structured ones, at the default unroll."""
    report = audit_model(_model("gcd.tl", weights, dtype, specialise, 8), states=1000, seed=3)
    assert report.states >= 2000 and report.state_kinds["random"] == 2000
    assert _step_problems(report) == []


def _gcd_layout() -> Layout:
    model = _model("gcd.tl", "families", "float64", False, 1)
    return _layout({p.key: p.value for p in model.metadata_props}, "gcd")


def test_the_states_cover_what_the_audit_promises() -> None:
    layout = _gcd_layout()
    rows, labels = make_states(layout, 5, 0)
    s, r, m = layout.slots, layout.ranges, layout.memory
    assert rows.shape[1] == layout.n_state and len(rows) == len(labels)
    for name, (lo, hi) in r.items():  # every component inside its declared range
        cols = ([s[name]] if name in s else list(range(len(layout.memory_slots)))
                if name == "V" else list(range(layout.tape_start,
                                               layout.tape_start + layout.tape_in)))
        assert rows[:, cols].min() >= lo and rows[:, cols].max() <= hi, name
    column = {name: rows[:, i] for name, i in s.items()}
    assert set(column["fault"]) == {int(f) for f in Fault}  # every fault
    assert {0, 1, m + 1} <= set(column["pc1"])  # halted, pc 0, pc past the end
    assert {0, 1} <= set(column["budget"]) and r["budget"][1] in set(column["budget"])
    assert {0, r["ol"][1]} <= set(column["ol"]) and {0, r["ip"][1]} <= set(column["ip"])
    pending = column["wv"] != column["wo"]
    assert pending.sum() == len(rows) // 2  # each state with and without a pending write
    assert all(("a pending" in label) == bool(p) for label, p in zip(labels, pending,
                                                                     strict=True))
    assert sum(label.startswith("random") for label in labels) == 10
    extremes = [i for i, label in enumerate(labels) if "every word highest" in label]
    assert extremes and (rows[extremes[0], : len(layout.memory_slots)] == r["V"][1]).all()
    again, _ = make_states(layout, 5, 0)
    assert np.array_equal(rows, again)  # the seed decides
    assert not np.array_equal(rows, make_states(layout, 5, 1)[0])


# ---- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def step_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    program = _program("gcd.tl")
    path = tmp_path_factory.mktemp("audit") / "gcd_step.onnx"
    onnx.save(compile_step_model(machine_config(program.image),
                                 ExportOptions(dtype="float64")), path)
    return path


def test_cli_an_honest_model_exits_0(step_model: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    assert main(["audit", str(step_model), "--states", "1"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("verdict: honest and exact")
    assert re.search(r"MatMul float64 +sum of \|products\| +2\^", out) and "margin" in out


def test_cli_json(step_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--json", str(step_model), "--states", "3", "--seed", "7"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["problems"] == [] and data["kind"] == "step"
    assert data["states"]["evaluated"] and data["states"]["kinds"]["random"] == 6
    matmul = data["magnitudes"]["MatMul float64"]
    assert matmul["limit_bits"] == 53 and matmul["measure"] == "sum of |products|"
    assert matmul["margin_bits"] == pytest.approx(53 - matmul["bits"], abs=0.011)
    assert 0 < matmul["largest"] <= 2**53
    assert data["state_path"]["ops"]["MatMul"] > 0 and data["state_path"]["weights"] > 0


def test_cli_a_dishonest_model_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    assert audit_model(_honest_base(), states=0).ok
    path = tmp_path / "gcd.onnx"
    onnx.save(_where_for_a_relu(), path)
    assert main(["audit", str(path), "--states", "0", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["verdict"].startswith("NOT honest")
    assert any("planted_where" in p for p in data["problems"])


@pytest.mark.parametrize(("argv", "status", "message"), [
    (["audit"], 2, "the following arguments are required: MODEL.onnx"),
    (["audit", "examples/gcd.tl"], 2, "not a program"),
    (["audit", "m.onnx", "--states", "-1"], 2, "must not be negative"),
    (["audit", "missing.onnx"], 1, "missing.onnx: no such file"),
    (["audit", "garbage.onnx"], 1, "not a readable ONNX model"),
    (["audit", "foreign.onnx"], 1, "no Loop, and not a step model (state -> next_state)"),
])
def test_cli_errors(argv: list[str], status: int, message: str, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])],
                                                  "foreign", [x], [y])),
              tmp_path / "foreign.onnx")
    assert main(argv) == status
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_a_model_without_state_ranges_is_refused(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    model = _copy(_model("gcd.tl", "families", "float64", False, 1))
    entry = next(p for p in model.metadata_props if p.key == "state_layout")
    layout = json.loads(entry.value)
    del layout["ranges"]
    entry.value = json.dumps(layout)
    onnx.save(model, tmp_path / "old.onnx")
    assert main(["audit", str(tmp_path / "old.onnx")]) == 1
    assert "no usable state layout with ranges" in capsys.readouterr().err
