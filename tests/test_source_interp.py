"""The source interpreter against the shared table of programs (`tests/tl_cases.py`), plus
its own rules: operator semantics, step budget, recursion limit, input validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tl_cases import CASES, INT_MAX, INT_MIN, RandomProgram, TlCase, random_program

from mlpc.compiler.checker import CheckedProgram, DivisionByZero, binary_op, check_program
from mlpc.compiler.lowering import LoweringOptions, stack_plan
from mlpc.compiler.machine_config import MachineConfig
from mlpc.compiler.options import CompileOptions
from mlpc.compiler.parser import parse_program
from mlpc.compiler.stack import StackPlan
from mlpc.errors import MlpcError, SourceError
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state, result_of
from mlpc.runtime.report import RunReport, report_from_machine
from mlpc.runtime.source_interp import run_source

GENEROUS_STEPS = 1_000_000


def plan_of(checked: CheckedProgram, stack: int | None = None) -> StackPlan:
    """The stack the compiled program has (`--stack`, None: the default), as `mlpc run
    --engine source` hands it to the interpreter."""
    return stack_plan(checked, LoweringOptions(checked.word_bits, stack))


def run_case(case: TlCase) -> RunReport:
    checked = check_program(parse_program(case.source, f"{case.name}.tl"), case.word_bits)
    extra = {} if case.tape_out is None else {"tape_out": case.tape_out}
    return run_source(
        checked,
        dict(case.inputs),
        case.tape,
        case.max_steps or GENEROUS_STEPS,
        word_bits=case.word_bits,
        plan=plan_of(checked),
        **extra,
    )


def run_text(source: str, *, inputs: dict[str, int] | None = None, tape: tuple[int, ...] = (),
             max_steps: int = GENEROUS_STEPS, word_bits: int = 32, **options: int
             ) -> RunReport:
    checked = check_program(parse_program(source, "t.tl"), word_bits)
    plan = plan_of(checked, options.pop("stack", None))
    return run_source(checked, inputs or {}, tape, max_steps, word_bits=word_bits, plan=plan,
                      **options)


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: TlCase) -> None:
    report = run_case(case)
    assert report.engine == "source"
    assert report.status == case.status
    assert report.outputs == case.outputs
    assert report.tape == case.expected_tape
    if case.status != "step-limit":
        assert report.detail == case.detail


# --- steps -------------------------------------------------------------------------------


def test_step_limit_detail_and_count() -> None:
    report = run_text("while (1) { }\n", max_steps=10)
    assert (report.status, report.steps) == ("step-limit", 10)
    assert report.detail == "stopped after 10 steps (max_steps)"


def test_steps_count_statements_iterations_and_calls() -> None:
    # 1 (output) + 1 (func) + 1 (assignment) + 1 (call) + 1 (return) = 5;
    # the while: 1 statement + 3 condition tests + 2 bodies (block + assignment each) = 8.
    report = run_text(
        "output r;\nfunc f() { return 1; }\nr = f();\nwhile (r < 3) { r += 1; }\n"
    )
    assert report.outputs == (("r", 3),)
    assert report.steps == 5 + 1 + 3 + 2 * 2


def test_zero_steps_stops_before_the_first_statement() -> None:
    report = run_text("output x;\nx = 1;\n", max_steps=0)
    assert (report.status, report.steps, report.outputs) == ("step-limit", 0, (("x", 0),))


def test_empty_program_halts_even_with_zero_steps() -> None:
    assert run_text("", max_steps=0).status == "halted"


# --- recursion limit ---------------------------------------------------------------------

SUM = (
    "input n;\noutput s;\nfunc sum(k) {\n  if (k == 0) { return 0; }\n"
    "  return k + sum(k - 1);\n}\ns = sum(n);\n"
)


def test_recursion_up_to_the_limit_works() -> None:
    # each recursive call saves k and the return address: the default stack holds 256 such
    # saves (512 words), so sum(256) .. sum(0) fit
    report = run_text(SUM, inputs={"n": 256})
    assert (report.status, report.outputs) == ("halted", (("s", 32896),))


def test_recursion_past_the_limit_traps_at_the_call() -> None:
    report = run_text(SUM, inputs={"n": 257})
    assert (report.status, report.detail) == ("trap", "stack overflow at line 5")


def test_the_stack_size_is_a_parameter() -> None:
    assert run_text(SUM, inputs={"n": 10}, stack=20).outputs == (("s", 55),)
    report = run_text(SUM, inputs={"n": 11}, stack=20)
    assert (report.status, report.detail) == ("trap", "stack overflow at line 5")


def test_very_deep_recursion_with_a_large_stack() -> None:
    report = run_text(SUM, inputs={"n": 20000}, stack=40000)
    assert report.outputs == (("s", 200010000),)


# --- tapes -------------------------------------------------------------------------------


def test_output_tape_capacity_zero() -> None:
    report = run_text("write(1);\n", tape_out=0)
    assert (report.status, report.detail, report.tape) == ("fault", "output tape full", ())


def test_exactly_full_output_tape_is_fine() -> None:
    report = run_text("write(1);\nwrite(2);\n", tape_out=2)
    assert (report.status, report.tape) == ("halted", (1, 2))


def test_input_tape_longer_than_its_capacity_is_an_error() -> None:
    with pytest.raises(MlpcError, match="input tape has 3 words but its capacity is 2"):
        run_text("", tape=(1, 2, 3), tape_in=2)


def test_input_tape_word_out_of_range_is_an_error() -> None:
    with pytest.raises(MlpcError, match=r"input tape word 1 is 32768, outside the 16-bit"):
        run_text("", tape=(1, 32768), word_bits=16)


# --- inputs ------------------------------------------------------------------------------


def test_unknown_input_is_an_error() -> None:
    with pytest.raises(MlpcError, match=r"unknown input 'y' \(the program's inputs: x\)"):
        run_text("input x;", inputs={"x": 1, "y": 2})


def test_missing_inputs_are_an_error() -> None:
    with pytest.raises(MlpcError, match="missing inputs: x, z"):
        run_text("input x, y, z;", inputs={"y": 2})


def test_input_out_of_range_is_an_error() -> None:
    with pytest.raises(MlpcError, match="input x = 2147483648 does not fit in 32 bits"):
        run_text("input x;", inputs={"x": INT_MAX + 1})


def test_word_size_must_match_the_check() -> None:
    checked = check_program(parse_program("output x;", "t.tl"), 16)
    with pytest.raises(MlpcError, match="checked for 16-bit words, not 32"):
        run_source(checked, {}, (), 10, word_bits=32, plan=plan_of(checked))


# --- operator semantics, against independent definitions ---------------------------------


def _wrap32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


words = st.integers(min_value=INT_MIN, max_value=INT_MAX)


@settings(max_examples=300, deadline=None)
@given(words, words)
def test_division_is_c99(a: int, b: int) -> None:
    if b == 0:
        with pytest.raises(DivisionByZero):
            binary_op("/", a, b, 32)
        return
    quotient = binary_op("/", a, b, 32)
    remainder = binary_op("%", a, b, 32)
    exact = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)  # truncated
    assert quotient == _wrap32(exact)
    assert remainder == a - b * exact
    assert remainder == 0 or (remainder < 0) == (a < 0)


@settings(max_examples=300, deadline=None)
@given(words, st.integers(min_value=-40, max_value=40))
def test_shifts_follow_the_unsigned_count_rule(a: int, count: int) -> None:
    left = binary_op("<<", a, count, 32)
    right = binary_op(">>", a, count, 32)
    if 0 <= count < 32:
        assert left == _wrap32(a * 2**count)
        assert right == a // 2**count  # floor division: arithmetic shift
    else:
        assert left == 0
        assert right == (-1 if a < 0 else 0)


@settings(max_examples=300, deadline=None)
@given(words, words)
def test_wrapping_arithmetic_and_bits(a: int, b: int) -> None:
    assert binary_op("+", a, b, 32) == _wrap32(a + b)
    assert binary_op("-", a, b, 32) == _wrap32(a - b)
    assert binary_op("*", a, b, 32) == _wrap32(a * b)
    assert binary_op("&", a, b, 32) == _wrap32((a & 0xFFFFFFFF) & (b & 0xFFFFFFFF))
    assert binary_op("|", a, b, 32) == _wrap32((a & 0xFFFFFFFF) | (b & 0xFFFFFFFF))
    assert binary_op("^", a, b, 32) == _wrap32((a & 0xFFFFFFFF) ^ (b & 0xFFFFFFFF))
    assert binary_op("<", a, b, 32) == int(a < b)
    assert binary_op("==", a, b, 32) == int(a == b)


# --- robustness: mutated programs either fail to check or run to a report ----------------

_VALID = [case for case in CASES if case.source]
_SNIPPETS = st.sampled_from([
    "", "x", "1", "-", "/", "%", "(", ")", "{", "}", ";", "[0]", "f(", "return 1;", "break;",
    "var q;", "var q = 0;", "n", "a", "i", "read()", "0x7FFFFFFF", "*", "<<", "&&", "!",
    " while (1) { } ", " halt; ", "assert(0);", "write(-1);", "print(\"z\");", "1 / 0",
])


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(_VALID),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 4), _SNIPPETS),
             min_size=1, max_size=3),
)
def test_mutated_programs_check_cleanly_or_run(case: TlCase,
                                               edits: list[tuple[int, int, str]]) -> None:
    text = case.source
    for where, cut, insert in edits:
        at = where % (len(text) + 1)
        text = text[:at] + insert + text[at + cut:]
    try:
        checked = check_program(parse_program(text, "m.tl"), case.word_bits)
    except SourceError as err:
        assert err.path == "m.tl" and err.pos.line >= 1
        return
    report = run_source(checked, dict.fromkeys(checked.input_names, 0), (1, 2), 2000,
                        word_bits=case.word_bits, tape_out=64, plan=plan_of(checked, 100))
    assert report.status in ("halted", "trap", "fault", "step-limit")
    assert report.steps <= 2000 and len(report.tape) <= 64


# --- random programs: the source interpreter is the oracle of the lowering ---------------

RANDOM_SEEDS = range(60)


def _random_case(seed: int) -> tuple[RandomProgram, RunReport]:
    program = random_program(seed, word_bits=16 if seed % 4 == 3 else 32)
    checked = check_program(parse_program(program.source, f"random{seed}.tl"),
                            program.word_bits)
    report = run_source(checked, dict(program.inputs), program.tape, 100_000,
                        word_bits=program.word_bits, plan=plan_of(checked))
    return program, report


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_programs_check_and_terminate(seed: int) -> None:
    _, report = _random_case(seed)
    assert report.status in ("halted", "trap")
    assert report.status == "halted" or report.detail.endswith(
        tuple(f" at line {n}" for n in range(1, 200)))


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_programs_agree_with_the_lowering(seed: int) -> None:
    lowering = pytest.importorskip("mlpc.compiler.lowering")
    program, expected = _random_case(seed)
    checked = check_program(parse_program(program.source, "r.tl"), program.word_bits)
    image = lowering.lower_program(checked, CompileOptions(word_bits=program.word_bits))
    words = list(image.words)
    for name, address in image.inputs:
        words[address] = dict(program.inputs)[name]
    config = MachineConfig(memory=image.default_memory(), word_bits=program.word_bits)
    state = initial_state(config, words, program.tape)
    reference.run(config, state, 5_000_000)
    report = report_from_machine(image, result_of(state), "reference")
    assert (report.status, report.detail, report.outputs, report.tape) == (
        expected.status, expected.detail, expected.outputs, expected.tape), program.source
