"""What a compiled model does with its inputs and how it reads its results out (issue 21,
sections 2 and 4), through a plain `onnxruntime.InferenceSession`:

- the read-out layers after the loop compute the memory (the pending write landed) and the
  status; `decode` only reads values out, which a walk of its nodes checks;
- every bad input has one documented outcome: out-of-range words fault 'input out of
  range' (9) and a corrupt `resume_state` faults 'invalid resume state' (10), with nothing
  run and every output in its type's range; a negative `max_steps` is a budget of 0; batch
  sizes that differ fail in onnxruntime at a node named after the inputs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import run_python_strictly
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from mlpc.cli import main
from mlpc.compiler.codegen import (
    build_step_network,
    decode_state,
    encode_state,
    read_out,
)
from mlpc.compiler.driver import load_program, machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.export_onnx import READ_OUT_OPS
from mlpc.compiler.machine_config import Fault, MachineConfig, Status
from mlpc.compiler.model import compile_model
from mlpc.compiler.options import CompileOptions
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state
from mlpc.runtime.numpy_exec import NumpyExecutor

REPO = Path(__file__).resolve().parents[1]
GCD = REPO / "examples" / "gcd.tl"
H = 1 << 31
DIVIDE = "input a, b;\noutput q;\nq = a / b;\n"  # traps on b = 0 (line 3)
FORMS = [("families", "int64"), ("families", "float64"), ("sparse", "int64"),
         ("dense", "int64")]


@lru_cache(maxsize=8)
def _model(path: str, weights: str = "families", dtype: str = "int64",
           specialise: bool = False) -> tuple[bytes, int]:
    program = load_program([path], CompileOptions())
    image = program.image
    model = compile_model(image, machine_config(image),
                          ExportOptions(weights=weights, dtype=dtype), specialise)
    return model.SerializeToString(), len(image.words)


@lru_cache(maxsize=8)
def _session(path: str, weights: str = "families", dtype: str = "int64",
             specialise: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the batch-size test expects an error: not on stderr
    return ort.InferenceSession(_model(path, weights, dtype, specialise)[0], options,
                                providers=["CPUExecutionProvider"])


def _run(feeds: dict[str, np.ndarray], path: Path = GCD, **form: object
         ) -> dict[str, np.ndarray]:
    s = _session(str(path), **form)  # type: ignore[arg-type]
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(None, feeds), strict=True))


def _source(tmp_path: Path, text: str, name: str = "prog.tl") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _words_in_range(out: dict[str, np.ndarray]) -> None:
    """Every output is what its type allows: words, codes, counts."""
    for name in ("g", "memory", "output_tape", "trap", "trap_line"):
        if name in out:
            assert np.all((out[name] >= -H) & (out[name] < H)), name
    assert set(out["status"].tolist()) <= {0, 1, 2, 3}
    assert set(out["fault"].tolist()) <= {int(f) for f in Fault}
    assert np.all((out["steps"] >= 0) & (out["steps"] <= 10_000_000))


def _placed_memory(*values: int) -> list[int]:
    """gcd's memory before its first step: the image with the inputs a, b placed."""
    image = load_program([str(GCD)], CompileOptions()).image
    memory = list(image.words) + [0] * (machine_config(image).memory - len(image.words))
    for (_, address), value in zip(image.inputs, values, strict=True):
        memory[address] = value
    return memory


# ---- section 2: the network computes every result; decode reads out ---------------------------


def _function(model: onnx.ModelProto, name: str) -> onnx.FunctionProto:
    return next(f for f in model.functions if f.name == name)


def _decisions_in_decode(model: onnx.ModelProto) -> list[str]:
    """Nodes of `decode` that compute anything but a read-out from what the network
    computed (`final_state`, the read-out's `results`) and from each item's budget: every
    node fed by them must be a read-out op, and a Gather's or Slice's indices constants.
    The output tape's compaction (fed by the scanned events only) is formatting."""
    decode = _function(model, "decode")
    constants = {n.output[0] for n in decode.node if n.op_type == "Constant"}
    derived = {"final_state", "results", "initial_budget"}
    problems = []
    for node in decode.node:
        if not any(i in derived for i in node.input):
            continue
        derived.update(node.output)
        if node.op_type not in READ_OUT_OPS:
            problems.append(f"{node.op_type} {node.name}")
        if node.op_type in ("Gather", "Slice") and not all(i in constants
                                                          for i in node.input[1:]):
            problems.append(f"computed indices in {node.name}")
        if node.op_type == "Sub" and node.input[1] not in constants and list(node.input) != [
                "initial_budget", node.input[1]]:
            problems.append(f"{node.name} subtracts a computed value")
    return problems


@pytest.mark.parametrize(("weights", "dtype", "specialise"),
                         [(*form, False) for form in FORMS] + [("families", "int64", True)])
def test_decode_decides_nothing(weights: str, dtype: str, specialise: bool,
                                tmp_path: Path) -> None:
    """decode reads out (slices, constant gathers, the budget's difference) and formats the
    output tape; the status, the trap cells and the memory with the pending write landed
    come from the read-out layers, which are network ops only."""
    for path in (GCD, _source(tmp_path, DIVIDE)):
        model = onnx.load_from_string(_model(str(path), weights, dtype, specialise)[0])
        assert _decisions_in_decode(model) == []
        ops = {n.op_type for n in _function(model, "readout").node}
        assert ops <= {"Slice", "Unsqueeze", "Mul", "Add", "Sub", "Concat", "MatMul", "Max",
                       "Relu", "Reshape", "Split", "Identity", "Cast", "Constant",
                       "GatherElements", "Expand", "Shape"}, ops


def test_a_planted_decision_in_decode_is_caught() -> None:
    """The walk above is not vacuous: a Where on the memory, as decode had, is caught."""
    model = onnx.load_from_string(_model(str(GCD))[0])
    decode = _function(model, "decode")
    memory = next(n for n in decode.node if list(n.output) == ["memory"])
    memory.output[0] = "memory_read"
    decode.node.extend([
        onnx.helper.make_node("Constant", [], ["zero_word"],
                              value=numpy_helper.from_array(np.array(0, np.int64))),
        onnx.helper.make_node("Equal", ["memory_read", "zero_word"], ["is_zero"],
                              name="planted"),
        onnx.helper.make_node("Where", ["is_zero", "zero_word", "memory_read"], ["memory"],
                              name="planted_where"),
    ])
    assert _decisions_in_decode(model) == ["Equal planted", "Where planted_where"]


def test_step_limited_memory_is_the_reference_memory() -> None:
    """Runs stopped by the budget end with a write pending: the read-out layers land it,
    and the memory is the reference interpreter's, for every budget from 0 to 120 (some
    stop right after a write); the numpy engine's read-out agrees."""
    image = load_program([str(GCD)], CompileOptions()).image
    cfg = machine_config(image)
    a, b = image.inputs[0][1], image.inputs[1][1]
    words = list(image.words)
    words[a], words[b] = 1071, 462
    step = build_step_network(cfg)
    executor, readout = NumpyExecutor(step.network), NumpyExecutor(step.readout)
    x = encode_state(step.layout, words + [0] * (cfg.memory - len(words)), [], 10**6)[None]
    differ = 0
    for budget in range(121):
        out = _run({"a": np.array([1071]), "b": np.array([462]),
                    "max_steps": np.array(budget)})
        expected = reference.run(cfg, initial_state(cfg, words), budget)
        assert out["memory"][0].tolist() == expected.memory, budget
        assert int(out["steps"][0]) == expected.steps == budget
        assert int(out["status"][0]) == 0
        before = [int(v) - H for v in x[0, : cfg.memory]]
        differ += before != expected.memory  # V alone is not the memory: the write pends
        memory, status = read_out(step, readout.step(x)[0])
        assert list(memory) == expected.memory == list(decode_state(step.layout, x[0]).memory)
        assert status == Status.RUNNING
        x = executor.step(x)
    assert differ > 30


@pytest.mark.parametrize(("weights", "dtype", "specialise"),
                         [(*form, False) for form in FORMS] + [("families", "int64", True)])
def test_trap_status_and_cells_come_from_the_read_out(weights: str, dtype: str,
                                                      specialise: bool, tmp_path: Path) -> None:
    path = _source(tmp_path, DIVIDE)
    out = _run({"a": np.array([7, 7, -9]), "b": np.array([0, 2, 2]),
                "max_steps": np.array(100_000)}, path, weights=weights, dtype=dtype,
               specialise=specialise)
    assert out["status"].tolist() == [3, 1, 1]
    assert out["trap"].tolist() == [1, 0, 0]  # division by zero
    assert out["trap_line"].tolist()[0] == 3
    assert out["q"].tolist()[1:] == [3, -4]


def test_read_out_matches_decode_state_on_random_states() -> None:
    """On states the network reaches (random programs run a random number of steps), the
    read-out's memory and status are `decode_state`'s (the plain-Python decoding)."""
    rng = np.random.default_rng(21)
    cfg = MachineConfig(memory=32, word_bits=16, tape_in=4, tape_out=8)
    step = build_step_network(cfg)
    executor, readout = NumpyExecutor(step.network, check=True), NumpyExecutor(
        step.readout, check=True)
    for _ in range(40):
        words = rng.integers(-3, 34, size=cfg.memory).tolist()
        x = encode_state(step.layout, words, rng.integers(-5, 5, size=2).tolist(), 200)[None]
        for _ in range(int(rng.integers(0, 60))):
            x = executor.step(x)
        d = decode_state(step.layout, x[0])
        memory, status = read_out(step, readout.step(x)[0])
        assert memory == d.memory and status == d.status


# ---- section 4: bad input through plain onnxruntime -----------------------------------------


def test_out_of_range_inputs_fault_and_run_nothing() -> None:
    """2^31 no longer wraps to -2^31, 2^40 is no fault 2, a tape word 2^40 is not accepted:
    each faults its own item (9, 'input out of range') with 0 steps; the others run."""
    out = _run({"a": np.array([2**31, 2**40, 1071, 1071, -(2**31) - 1]),
                "b": np.array([462, 462, 462, 462, 462]),
                "tape": np.array([[0], [0], [2**40], [5], [0]])})
    assert out["status"].tolist() == [2, 2, 2, 1, 2]
    assert out["fault"].tolist() == [9, 9, 9, 0, 9]
    assert out["steps"].tolist() == [0, 0, 0, 895, 0]
    assert out["g"].tolist() == [0, 0, 0, 21, 0]
    _words_in_range(out)
    assert Fault(9).describe() == "input out of range"


@settings(max_examples=15, deadline=None)
@given(word=st.one_of(st.integers(H, 2**63 - 1), st.integers(-(2**63), -H - 1)),
       where=st.sampled_from(["a", "b", "tape"]))
def test_any_out_of_range_word_faults(word: int, where: str) -> None:
    feeds = {"a": np.array([1071, 1071]), "b": np.array([462, 462]),
             "tape": np.array([[1, 2], [1, 2]])}
    if where == "tape":
        feeds["tape"] = np.array([[1, word], [1, 2]])
    else:
        feeds[where] = np.array([word, feeds[where][1]])
    out = _run(feeds)
    assert out["fault"].tolist() == [9, 0] and out["status"].tolist() == [2, 1]
    assert out["steps"].tolist() == [0, 895] and out["g"].tolist() == [0, 21]
    _words_in_range(out)


def _real_state(max_steps: int = 300) -> np.ndarray:
    out = _run({"a": np.array([1071]), "b": np.array([462]), "max_steps": np.array(max_steps)})
    return out["final_state"]


def test_resume_continues_a_real_state() -> None:
    """The positive case: 300 steps, then the rest from `final_state`, is one whole run
    (steps count this call's: 595)."""
    out = _run({"a": np.array([1071]), "b": np.array([462]), "resume_state": _real_state()})
    assert out["status"].tolist() == [1] and out["g"].tolist() == [21]
    assert out["steps"].tolist() == [595] and out["fault"].tolist() == [0]


def test_corrupt_resume_state_is_refused() -> None:
    """Random int64 words and a negated real state are refused (10, 'invalid resume
    state'): nothing runs, and no output leaves its range (no g = -664,436,552,617)."""
    real = _real_state()
    rng = np.random.default_rng(5)
    corrupt = np.stack([rng.integers(-(2**63), 2**63 - 1, size=real.shape[1], dtype=np.int64),
                        -real[0], real[0]])
    out = _run({"a": np.array([1071]), "b": np.array([462]), "resume_state": corrupt})
    assert out["fault"].tolist() == [10, 10, 0]
    assert out["status"].tolist() == [2, 2, 1]
    assert out["steps"].tolist() == [0, 0, 595]
    assert out["memory"][0].tolist() == _placed_memory(1071, 462)  # fresh, not run
    _words_in_range(out)
    assert Fault(10).describe() == "invalid resume state"


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_corrupted_slots_of_a_real_state_are_refused_or_harmless(data: st.DataObject
                                                                   ) -> None:
    """A real state with a few slots set to any int64: refused (10, nothing run) when the
    network's ranges or its pending write would not hold, else run; the outputs are
    in range either way."""
    state = _real_state().copy()
    for _ in range(data.draw(st.integers(1, 3))):
        slot = data.draw(st.integers(0, state.shape[1] - 1))
        state[0, slot] = data.draw(st.one_of(st.integers(-(2**63), 2**63 - 1),
                                             st.integers(-3, 3)))
    out = _run({"a": np.array([1071]), "b": np.array([462]), "resume_state": state,
                "max_steps": np.array(2000)})
    if out["fault"][0] == 10:
        assert out["steps"].tolist() == [0] and out["status"].tolist() == [2]
    _words_in_range(out)


def test_states_that_pass_the_checks_keep_every_proven_range() -> None:
    """Why range checks plus the pending write's consistency suffice: random states that
    pass them (in range, the old word at the write's address) keep every value of the step
    and the read-out inside its proven or declared range (`NumpyExecutor(check=True)`),
    step after step."""
    cfg = MachineConfig(memory=24, word_bits=16, tape_in=3, tape_out=4)
    step = build_step_network(cfg)
    layout = step.layout
    bounds = [(d.lo, d.hi) for d in step.network.state.families for _ in range(d.length)]
    bounds += [(d.lo, d.hi) for d in step.network.state.scalars]
    lo, hi = np.array(bounds).T
    executor = NumpyExecutor(step.network, check=True)
    readout = NumpyExecutor(step.readout, check=True)
    rng = np.random.default_rng(7)
    for trial in range(1500):
        x = rng.integers(lo, hi + 1)
        ends = rng.random(len(x))
        x = np.where(ends < 0.2, lo, np.where(ends < 0.4, hi, x))
        if trial % 2:  # small scalars (pc, positions, faults) more often
            for i in range(layout.scalars.start, layout.size):
                x[i] = rng.integers(lo[i], min(hi[i], lo[i] + 30) + 1)
        wa = int(x[layout.index("wa2")]) - 2
        if 0 <= wa < cfg.memory:
            x[layout.index("wo")] = x[wa]
        else:
            x[layout.index("wv")] = x[layout.index("wo")]
        y = x[None, :]
        for _ in range(3):
            readout.step(y)
            y = executor.step(y)


def test_negative_max_steps_is_a_budget_of_zero() -> None:
    """Documented: max_steps is clamped to [0, 2^50 - 1]; -5 runs no step (status 0, step
    limit) and the memory is the image with the inputs placed."""
    out = _run({"a": np.array([1071]), "b": np.array([462]), "max_steps": np.array(-5)})
    assert out["status"].tolist() == [0] and out["steps"].tolist() == [0]
    assert out["fault"].tolist() == [0]
    assert out["memory"][0].tolist() == _placed_memory(1071, 462)


def test_batch_sizes_that_differ_name_the_inputs() -> None:
    with pytest.raises(Exception, match="batch_sizes_of_tape_a_b_resume_state_must_agree"):
        _run({"a": np.array([1, 2]), "b": np.array([1, 2, 3])})
    with pytest.raises(Exception, match="batch_sizes_of_tape_a_b_resume_state_must_agree"):
        _run({"a": np.array([1, 2]), "b": np.array([1, 2]),
              "resume_state": np.concatenate([_real_state()] * 3)})
    # size 1 broadcasts, as documented
    out = _run({"a": np.array([1071, 48]), "b": np.array([6])})
    assert out["g"].tolist() == [3, 6]


def test_plain_session_prints_nothing_for_bad_input(tmp_path: Path) -> None:
    """The refusals are outputs, not warnings: a fresh interpreter with warnings as errors
    runs the faulting cases and prints nothing on stderr."""
    path = tmp_path / "gcd.onnx"
    path.write_bytes(_model(str(GCD))[0])
    script = (
        "import numpy as np, onnxruntime as ort\n"
        f"s = ort.InferenceSession({str(path)!r})\n"
        "names = [o.name for o in s.get_outputs()]\n"
        "out = dict(zip(names, s.run(None, {'a': np.array([2**31]), 'b': np.array([4])})))\n"
        "print(out['status'].tolist(), out['fault'].tolist(), out['steps'].tolist())\n"
        "bad = np.full((1, out['final_state'].shape[1]), -7)\n"
        "out = dict(zip(names, s.run(None, {'a': np.array([1]), 'b': np.array([4]),\n"
        "                                   'resume_state': bad})))\n"
        "print(out['status'].tolist(), out['fault'].tolist(), out['steps'].tolist())\n"
    )
    assert run_python_strictly(script).splitlines() == ["[2] [9] [0]", "[2] [10] [0]"]


def test_the_command_line_refuses_out_of_range_input(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """The CLI's path: refused before running, exit status 1, naming the input (for a
    program and for a model alike)."""
    assert main(["run", str(GCD), "--input", "a=2147483648", "--input", "b=4", "--json"]) == 1
    err = capsys.readouterr().err
    assert "input a = 2147483648 does not fit in 32 bits" in err


def test_fault_texts_are_shared() -> None:
    """The new faults' wording is the engines' report and the web page's (`fault_text`)."""
    from mlpc.runtime.onnx_model import BatchRun
    from mlpc.runtime.web import page_tables

    texts = page_tables()["fault_text"]
    assert (texts["9"], texts["10"]) == ("input out of range", "invalid resume state")
    out = _run({"a": np.array([2**31]), "b": np.array([4])})
    run = BatchRun(out["status"], out["fault"], out["steps"], out["memory"], ((),),
                   (("g", out["g"]),), None, None)
    report = run.report(0)
    assert (report.status, report.detail, report.exit_status) == ("fault",
                                                                   "input out of range", 3)
