"""The lowering (.tl -> SUBLEQ) against the shared table, the source interpreter and a Python
model of the semantics; O(W) step counts of `*` and `/`; the stack and its overflow trap.

The helpers here (`compile_tl`, `run_image`, `run_tl`) are shared by the other
`test_lowering_*` files.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tl_cases import CASES, INT_MAX, INT_MIN, TlCase

from mlpc.compiler import tl_ast as ast
from mlpc.compiler.checker import check_program
from mlpc.compiler.image import SubleqImage
from mlpc.compiler.lower_expr import _VALUE
from mlpc.compiler.lower_stmt import _STATEMENT
from mlpc.compiler.lowering import LoweringOptions, lower_program, stack_plan
from mlpc.compiler.machine_config import DEFAULT_TAPE_OUT, MachineConfig
from mlpc.compiler.options import CompileOptions
from mlpc.compiler.parser import parse_program
from mlpc.compiler.stack import DEFAULT_STACK_FRAMES
from mlpc.errors import MlpcError
from mlpc.runtime import reference
from mlpc.runtime.machine import MachineState, initial_state, result_of
from mlpc.runtime.report import RunReport, report_from_machine
from mlpc.runtime.source_interp import run_source

GENEROUS_STEPS = 5_000_000


def compile_tl(source: str, word_bits: int = 32, stack: int | None = None,
               optimize: bool = True) -> SubleqImage:
    checked = check_program(parse_program(source, "t.tl"), word_bits)
    return lower_program(checked, CompileOptions(word_bits=word_bits, stack=stack),
                         optimize=optimize)


@dataclass(frozen=True)
class Run:
    report: RunReport
    state: MachineState
    image: SubleqImage
    memory: int


def run_image(image: SubleqImage, inputs: dict[str, int] | None = None,
              tape: tuple[int, ...] = (), word_bits: int = 32, tape_out: int | None = None,
              max_steps: int = GENEROUS_STEPS, extra_memory: int = 0) -> Run:
    words = image.initial_words((inputs or {}).items(), len(tape))
    memory = image.default_memory() + extra_memory
    config = MachineConfig(memory=memory, word_bits=word_bits,
                           tape_out=DEFAULT_TAPE_OUT if tape_out is None else tape_out)
    state = initial_state(config, words, tape)
    reference.run(config, state, max_steps)
    return Run(report_from_machine(image, result_of(state), "reference"), state, image, memory)


def run_tl(source: str, inputs: dict[str, int] | None = None, tape: tuple[int, ...] = (),
           word_bits: int = 32, stack: int | None = None, optimize: bool = True,
           max_steps: int = GENEROUS_STEPS, extra_memory: int = 0) -> Run:
    image = compile_tl(source, word_bits, stack, optimize)
    return run_image(image, inputs, tape, word_bits, None, max_steps, extra_memory)


def run_source_text(source: str, inputs: dict[str, int] | None = None,
                    tape: tuple[int, ...] = (), word_bits: int = 32) -> RunReport:
    checked = check_program(parse_program(source, "t.tl"), word_bits)
    return run_source(checked, inputs or {}, tape, 1_000_000, word_bits=word_bits,
                      plan=stack_plan(checked, LoweringOptions(word_bits)))


def observable(report: RunReport) -> tuple[object, ...]:
    return report.outputs, report.tape, report.status, report.detail


# --- the shared table --------------------------------------------------------------------


def _run_case(case: TlCase, optimize: bool, extra_memory: int = 0) -> RunReport:
    checked = check_program(parse_program(case.source, f"{case.name}.tl"), case.word_bits)
    image = lower_program(checked, CompileOptions(word_bits=case.word_bits),
                          optimize=optimize)
    return run_image(image, dict(case.inputs), case.tape, case.word_bits, case.tape_out,
                     case.max_steps or GENEROUS_STEPS, extra_memory).report


def _source_case(case: TlCase) -> RunReport:
    checked = check_program(parse_program(case.source, f"{case.name}.tl"), case.word_bits)
    extra = {} if case.tape_out is None else {"tape_out": case.tape_out}
    return run_source(checked, dict(case.inputs), case.tape, case.max_steps or 1_000_000,
                      word_bits=case.word_bits,
                      plan=stack_plan(checked, LoweringOptions(case.word_bits)), **extra)


@pytest.mark.parametrize("optimize", [True, False], ids=["opt", "noopt"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_matches_table_and_source_interpreter(case: TlCase, optimize: bool) -> None:
    report = _run_case(case, optimize)
    assert report.status == case.status
    assert report.outputs == case.outputs
    assert report.tape == case.expected_tape
    source = _source_case(case)
    assert (report.outputs, report.tape, report.status) == (
        source.outputs, source.tape, source.status)
    if case.status != "step-limit":
        assert report.detail == case.detail == source.detail


@pytest.mark.parametrize("case", CASES[::5], ids=[c.name for c in CASES[::5]])
def test_case_runs_the_same_in_a_larger_memory(case: TlCase) -> None:
    small = _run_case(case, optimize=True)
    large = _run_case(case, optimize=True, extra_memory=777)
    assert observable(large) == observable(small)
    assert large.steps == small.steps


def test_table_covers_recursion_traps_and_sixteen_bits() -> None:
    statuses = {c.status for c in CASES}
    assert {"halted", "trap", "step-limit"} <= statuses
    assert any(c.word_bits == 16 for c in CASES)
    assert any("stack overflow" in c.detail for c in CASES)


# --- random expressions against a Python model ----------------------------------------------


class _DivZero(Exception):
    pass


def _wrap(v: int, w: int) -> int:
    half = 1 << (w - 1)
    return ((v + half) % (1 << w)) - half


def model(tree: object, env: dict[str, int], w: int) -> int:
    """An independent model of docs/language.md on W-bit words (C99 division, arithmetic
    right shift, unsigned shift counts, short-circuit logic)."""
    if isinstance(tree, int):
        return _wrap(tree, w)
    if isinstance(tree, str):
        return env[tree]
    assert isinstance(tree, tuple)
    if len(tree) == 2:
        op, sub = tree
        v = model(sub, env, w)
        return {"-": _wrap(-v, w), "~": _wrap(-1 - v, w), "!": int(v == 0)}[op]
    op, left, right = tree
    a = model(left, env, w)
    if op == "&&":
        return int(a != 0 and model(right, env, w) != 0)
    if op == "||":
        return int(a != 0 or model(right, env, w) != 0)
    b = model(right, env, w)
    if op in ("/", "%"):
        if b == 0:
            raise _DivZero
        q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
        return _wrap(q if op == "/" else a - q * b, w)
    if op in ("<<", ">>"):
        n = b % (1 << w)
        if op == "<<":
            return 0 if n >= w else _wrap(a * 2**n, w)
        return (-1 if a < 0 else 0) if n >= w else a // 2**n
    table = {
        "+": lambda: _wrap(a + b, w), "-": lambda: _wrap(a - b, w),
        "*": lambda: _wrap(a * b, w), "&": lambda: _wrap(a & b, w),
        "|": lambda: _wrap(a | b, w), "^": lambda: _wrap(a ^ b, w),
        "<": lambda: int(a < b), "<=": lambda: int(a <= b), ">": lambda: int(a > b),
        ">=": lambda: int(a >= b), "==": lambda: int(a == b), "!=": lambda: int(a != b),
    }
    return table[op]()


def render(tree: object) -> str:
    if isinstance(tree, int):
        return f"({tree})" if tree < 0 else str(tree)
    if isinstance(tree, str):
        return tree
    assert isinstance(tree, tuple)
    if len(tree) == 2:
        return f"({tree[0]}{render(tree[1])})"
    return f"({render(tree[1])} {tree[0]} {render(tree[2])})"


BINARY_OPS = ("+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "<", "<=", ">", ">=", "==",
              "!=", "&&", "||")
NAMES = ("v0", "v1", "v2", "v3")


def _values(w: int) -> st.SearchStrategy[int]:
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    edges = [0, 1, -1, 2, -2, lo, hi, lo + 1, hi - 1, w, w - 1, 31, 32, 33]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi), st.integers(-300, 300))


def _trees(w: int) -> st.SearchStrategy[object]:
    literals = st.integers(-(1 << (w - 1)) + 1, (1 << (w - 1)) - 1) | st.sampled_from(
        [0, 1, 2, 3, -1, w, 16, 7])
    leaves = st.sampled_from(NAMES) | literals
    return st.recursive(
        leaves,
        lambda kids: st.tuples(st.sampled_from(BINARY_OPS), kids, kids)
        | st.tuples(st.sampled_from(("-", "~", "!")), kids),
        max_leaves=5,
    )


@st.composite
def _programs(draw: st.DrawFn) -> tuple[int, object, dict[str, int]]:
    w = draw(st.sampled_from((16, 32)))
    tree = draw(_trees(w))
    env = {n: draw(_values(w)) for n in NAMES}
    return w, tree, env


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_programs())
def test_random_expressions_match_the_model(program: tuple[int, object, dict[str, int]]
                                            ) -> None:
    w, tree, env = program
    source = f"input {', '.join(NAMES)};\noutput r;\nr = {render(tree)};\n"
    run = run_tl(source, env, word_bits=w)
    try:
        expected = model(tree, env, w)
    except _DivZero:
        assert (run.report.status, run.report.detail) == ("trap", "division by zero at line 3")
        return
    assert (run.report.status, run.report.outputs) == ("halted", (("r", expected),))


@settings(max_examples=100, deadline=None)
@given(_programs())
def test_random_conditions_match_the_model(program: tuple[int, object, dict[str, int]]
                                           ) -> None:
    """The same trees used as conditions (the branch lowering, not the 0/1 values)."""
    w, tree, env = program
    source = (f"input {', '.join(NAMES)};\noutput r;\n"
              f"if ({render(tree)}) {{ r = 1; }} else {{ r = 2; }}\n")
    run = run_tl(source, env, word_bits=w)
    try:
        expected = 1 if model(tree, env, w) else 2
    except _DivZero:
        assert (run.report.status, run.report.detail) == ("trap", "division by zero at line 3")
        return
    assert run.report.outputs == (("r", expected),)


@pytest.mark.parametrize("w", [16, 32])
def test_comparisons_at_the_extremes(w: int) -> None:
    """All six comparisons on every pair of edge values: no overflow in a - b."""
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    values = [lo, lo + 1, -2, -1, 0, 1, 2, hi - 1, hi]
    source = ("input a, b;\noutput lt, le, gt, ge, eq, ne;\n"
              "lt = a < b; le = a <= b; gt = a > b; ge = a >= b; eq = a == b; ne = a != b;\n")
    image = compile_tl(source, w)
    for a in values:
        for b in values:
            got = run_image(image, {"a": a, "b": b}, word_bits=w).report.outputs
            assert got == (("lt", int(a < b)), ("le", int(a <= b)), ("gt", int(a > b)),
                           ("ge", int(a >= b)), ("eq", int(a == b)), ("ne", int(a != b)))


# --- O(W) step counts ---------------------------------------------------------------------

NEAR_2_30 = ((1 << 30) + 12345, (1 << 30) - 77)


def _statement_steps(op: str, a: int, b: int) -> tuple[int, int]:
    """(result, SUBLEQ steps of `c = a op b;` alone): the program is that statement and the
    final HALT (one step)."""
    run = run_tl(f"input a, b;\noutput c;\nc = a {op} b;\n", {"a": a, "b": b})
    assert run.report.status == "halted"
    return run.report.outputs[0][1], run.report.steps - 1


def test_multiplication_steps_near_2_30() -> None:
    a, b = NEAR_2_30
    value, steps = _statement_steps("*", a, b)
    assert value == _wrap(a * b, 32)
    assert steps == 515  # the loop: both factors are 2^16 or more
    assert steps <= 1500


def test_division_steps_near_2_30() -> None:
    a, b = NEAR_2_30
    value, steps = _statement_steps("/", a, b)
    assert value == 1
    assert steps == 463
    value, steps = _statement_steps("/", a, 3)
    assert value == a // 3
    assert steps == 479
    value, steps = _statement_steps("/", -a, b)
    assert value == -1
    assert steps == 477
    assert steps <= 1500


@pytest.mark.parametrize("op", ["*", "/", "%", "<<", ">>", "&", "|", "^"])
def test_operator_steps_are_bounded_by_w_not_by_value(op: str) -> None:
    """The worst case over edge values stays under 1,500 steps at W=32 and roughly halves
    at W=16: the cost follows W, not the operands."""
    worst = {}
    for w in (16, 32):
        lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
        values = [lo, lo + 1, -12345, -1, 1, 3, 12345, hi - 1, hi]
        image = compile_tl(f"input a, b;\noutput c;\nc = a {op} b;\n", w)
        worst[w] = max(
            run_image(image, {"a": a, "b": b}, word_bits=w).report.steps
            for a in values for b in values
        )
    assert worst[32] <= 1500
    assert worst[16] < 0.6 * worst[32]


# --- functions, the stack and its overflow trap -------------------------------------------

RECURSIVE_SUM = """output s;
var keep = 1234;
func sum(n) {
    if (n == 0) { return 0; }
    return n + sum(n - 1);
}
s = sum(N);
"""


def test_recursion_depth_200_with_the_default_stack() -> None:
    run = run_tl(RECURSIVE_SUM.replace("N", "200"))
    assert observable(run.report) == ((("s", 20100),), (), "halted", "")
    # the default stack: room for 256 saves of (n, return address)
    assert run.image.min_memory - len(run.image.words) == DEFAULT_STACK_FRAMES * 2 == 512


def test_unbounded_recursion_traps_with_stack_overflow_and_memory_intact() -> None:
    source = "output x;\nvar g = 77;\nfunc f(n) {\n    return f(n + 1) + 1;\n}\nx = g;\n" \
             "x = f(0);\n"
    run = run_tl(source, extra_memory=500)
    assert observable(run.report) == ((("x", 77),), (), "trap", "stack overflow at line 4")
    assert run.report.outputs == run_source_text(source).outputs
    image = run.image
    memory = run.state.memory
    assert memory[image.min_memory:] == [0] * 500  # nothing written past the stack
    assert memory[dict(image.symbols)["g"]] == 77
    assert run_source_text(source).detail == "stack overflow at line 4"


def test_stack_overflow_boundary_is_exact() -> None:
    """sum(n) pushes 2 words (n and the return address) per recursive call, so a 100-word
    stack holds exactly 50 of them: sum(50) fits, sum(51) traps."""
    ok = run_tl(RECURSIVE_SUM.replace("N", "50"), stack=100)
    assert ok.report.outputs == (("s", 1275),)
    assert ok.image.min_memory == len(ok.image.words) + 100
    over = run_tl(RECURSIVE_SUM.replace("N", "51"), stack=100)
    assert (over.report.status, over.report.detail) == ("trap", "stack overflow at line 5")


def test_programs_without_recursion_need_no_stack() -> None:
    image = compile_tl("output r;\nfunc f(x) { return x * 2; }\nr = f(f(3));\n")
    assert image.min_memory == len(image.words)
    assert run_image(image).report.outputs == (("r", 12),)


def test_mutual_recursion_and_locals_survive_calls() -> None:
    source = """output r;
func even(n) { var m = n; if (n == 0) { return 1; } var x = odd(n - 1); return x + m - n; }
func odd(n) { if (n == 0) { return 0; } return even(n - 1); }
r = even(100) * 10 + odd(7);
"""
    run = run_tl(source)
    assert run.report.outputs == (("r", 11),) == run_source_text(source).outputs


def test_temporaries_survive_recursive_calls() -> None:
    source = "output r;\nfunc f(n) {\n  if (n < 2) { return n; }\n" \
             "  return f(n - 1) * 3 + f(n - 2) - n * f(n - 2);\n}\nr = f(12);\n"
    run = run_tl(source)
    assert run.report.outputs == run_source_text(source).outputs
    assert run.report.status == "halted"


def test_arguments_that_are_the_callers_parameters_are_passed_in_parallel() -> None:
    source = "output r;\nfunc f(a, b, d) {\n  if (d == 0) { return a * 10 + b; }\n" \
             "  return f(b, a, d - 1);\n}\nr = f(1, 2, 3);\n"
    assert run_tl(source).report.outputs == (("r", 21),)


def test_a_call_in_a_column_index_is_seen_before_the_left_operand_is_used() -> None:
    # `x + g[0][f()]`: f changes x, so x is read (copied) before the call, left to right
    source = "output r;\nvar x = 5;\nvar g[2][2] = {1, 2, 3, 4};\n" \
             "func f() { x = 100; return 1; }\nr = x + g[0][f()];\n"
    assert observable(run_tl(source).report) == observable(run_source_text(source))
    assert run_tl(source).report.outputs == (("r", 7),)


def test_a_destination_named_in_a_column_index_is_not_written_first() -> None:
    # `x = 1 + g[0][x]` reads the old x as the column, then writes x
    source = "output r;\nvar g[2][3] = {10, 20, 30, 40, 50, 60};\nvar x = 2;\n" \
             "x = 1 + g[0][x];\nr = x;\n"
    assert observable(run_tl(source).report) == observable(run_source_text(source))
    assert run_tl(source).report.outputs == (("r", 31),)


# --- the image: symbols, inputs, traps, listing --------------------------------------------


def test_image_describes_itself() -> None:
    source = "input a;\noutput b;\nvar arr[3] = {7, 8, 9};\nfunc f(p) { var q = p; " \
             "return q; }\nb = f(a) + arr[2];\n"
    image = compile_tl(source)
    symbols = dict(image.symbols)
    assert {"a", "b", "arr", "f.p", "f.q"} <= set(symbols)
    assert dict(image.inputs) == {"a": symbols["a"]}
    assert dict(image.outputs) == {"b": symbols["b"]}
    assert image.words[symbols["arr"]:symbols["arr"] + 3] == (7, 8, 9)
    assert image.trap is not None
    assert image.words[image.trap.code_address] == 0
    assert all(0 <= s.start < s.end <= len(image.words) for s in image.spans)
    assert any(s.line == 5 and s.note.startswith("CALL f()") for s in image.spans)
    assert run_image(image, {"a": 5}).report.outputs == (("b", 14),)


def test_listing_shows_words_macros_and_source_lines() -> None:
    image = compile_tl("output x;\nx = 6 * 7;\nwhile (x > 40) { x -= 1; }\n")
    lines = image.listing.splitlines()
    assert any("MOV x, #42" in line and "; 2: x = 6 * 7;" in line for line in lines)
    assert any("SUB x, #1" in line and line.endswith("; 3:") for line in lines)
    assert any("JMP" in line and "; 3: while (x > 40) { x -= 1; }" in line for line in lines)
    assert any(line.split()[:1] == ["0:"] for line in lines)  # address 0, then 3 words
    assert "; data" in lines


def test_sixteen_bit_words() -> None:
    source = "output a, b, c;\na = 300 * 300;\nb = -32768 / -1;\nc = -7 % 3;\n" \
             "print(-32768, \" \", 32767);\n"
    run = run_tl(source, word_bits=16)
    assert run.report.outputs == (("a", 24464), ("b", -32768), ("c", -1))
    assert run.report.text() == "-32768 32767"


def test_cli_run_and_asm(tmp_path: pytest.TempPathFactory) -> None:
    prog = tmp_path / "p.tl"  # type: ignore[operator]
    prog.write_text(RECURSIVE_SUM.replace("N", "30") + 'print("s=", s, "\\n");\n')
    cmd = [sys.executable, "-m", "mlpc.cli"]
    out = subprocess.run(cmd + ["run", str(prog), "--engine", "reference", "--json"],
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert (report["outputs"], report["text"], report["status"]) == ({"s": 465}, "s=465\n",
                                                                     "halted")
    small = subprocess.run(cmd + ["run", str(prog), "--engine", "reference", "--stack", "20",
                                  "--json"], capture_output=True, text=True)
    assert small.returncode == 3
    assert json.loads(small.stdout)["detail"] == "stack overflow at line 5"
    asm = subprocess.run(cmd + ["asm", str(prog)], capture_output=True, text=True, check=True)
    assert "CALL sum() (ra sum.$ra)" in asm.stdout
    assert "SAVE#1 sum.n, sum.$ra" in asm.stdout and "RESTORE#1 sum.n, sum.$ra" in asm.stdout


def test_int_extremes_print_and_wrap() -> None:
    source = f"output a;\na = {INT_MAX} + 1;\nprint(a, \" \", -a, \" \", a - 1, \"\\n\");\n"
    run = run_tl(source)
    assert run.report.outputs == (("a", INT_MIN),)
    assert run.report.text() == f"{INT_MIN} {INT_MIN} {INT_MAX}\n"


def test_multiplication_by_small_constants_is_inlined() -> None:
    """x * 10 and -3 * x are doublings and additions, not a routine call: a handful of steps
    whatever x is."""
    for expr, k in (("a * 10", 10), ("-3 * a", -3), ("a * 0", 0), ("a * 1", 1),
                    ("a * 4096", 4096)):
        image = compile_tl(f"input a;\noutput c;\nc = {expr};\n")
        assert "$mul" not in dict(image.symbols) and "CALL $mul" not in image.listing
        for a in (0, 7, -7, INT_MAX, INT_MIN):
            run = run_image(image, {"a": a})
            assert run.report.outputs == (("c", _wrap(a * k, 32)),)
            assert run.report.steps <= 45  # 4096: a MOV and 12 doublings
    routine = compile_tl("input a;\noutput c;\nc = a * 12345;\n")
    assert "CALL $mul" in routine.listing


def test_recursion_that_never_returns_still_overflows() -> None:
    """Nothing is live after the call, but the return address is still pushed: the
    recursion traps like the source interpreter's instead of running forever."""
    source = "func f(n) {\n  f(n + 1);\n  halt;\n}\nf(0);\n"
    run = run_tl(source)
    assert (run.report.status, run.report.detail) == ("trap", "stack overflow at line 2")
    assert observable(run.report) == observable(run_source_text(source))


@pytest.mark.parametrize("w", [16, 32])
def test_bitwise_with_constant_masks(w: int) -> None:
    """Constant operands take shortcuts (identities, the top bit, low masks through the
    unrolled `cmask` routine); every one must agree with the model, on either side of the
    operator."""
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    masks = [0, -1, 1, 3, 0xFF, (1 << (w - 2)) - 1, hi, lo, 0x5A5A, -2]
    values = [lo, lo + 1, -256, -1, 0, 1, 255, 256, 12345 % hi, hi]
    for op in ("&", "|", "^"):
        lines = [f"r{i} = a {op} {m if m >= 0 else f'({m})'}; s{i} = "
                 f"{m if m >= 0 else f'({m})'} {op} a;" for i, m in enumerate(masks)]
        names = ", ".join(f"r{i}, s{i}" for i in range(len(masks)))
        image = compile_tl(f"input a;\noutput {names};\n" + "\n".join(lines) + "\n", w)
        for a in values:
            got = dict(run_image(image, {"a": a}, word_bits=w).report.outputs)
            for i, m in enumerate(masks):
                expected = model((op, "a", m), {"a": a}, w)
                assert got[f"r{i}"] == got[f"s{i}"] == expected, (op, a, m)
    image = compile_tl("input a;\noutput r;\nr = a & 255;\n", w)
    assert "CALL $cmask.256" in image.listing and "CALL $and" not in image.listing
    assert run_image(image, {"a": -1}, word_bits=w).report.steps < 100  # `and`: ~700


def _sixteen_bit_variant(case: TlCase) -> tuple[object, ...] | None:
    """The case re-checked at W=16 with its inputs wrapped (None if it does not check)."""
    try:
        checked = check_program(parse_program(case.source, f"{case.name}.tl"), 16)
    except MlpcError:
        return None
    inputs = {n: _wrap(v, 16) for n, v in case.inputs}
    tape = tuple(_wrap(v, 16) for v in case.tape)
    return checked, inputs, tape


@pytest.mark.parametrize("case", [c for c in CASES if c.word_bits == 32 and not c.max_steps],
                         ids=[c.name for c in CASES if c.word_bits == 32 and not c.max_steps])
def test_case_at_sixteen_bits_matches_source_interpreter(case: TlCase) -> None:
    """Every table program that also checks at W=16 behaves there as the source interpreter
    says (other wrap-arounds, other print widths, other traps)."""
    variant = _sixteen_bit_variant(case)
    if variant is None:
        pytest.skip("does not check at W=16 (a literal out of range)")
    checked, inputs, tape = variant
    extra = {} if case.tape_out is None else {"tape_out": case.tape_out}
    expected = run_source(checked, inputs, tape, 1_000_000, word_bits=16,
                          plan=stack_plan(checked, LoweringOptions(16)), **extra)
    image = lower_program(checked, CompileOptions(word_bits=16))
    got = run_image(image, inputs, tape, 16, case.tape_out).report
    assert observable(got) == observable(expected)


def test_spans_tile_the_code_and_shadowed_locals_get_their_own_cells() -> None:
    source = """output r;
func f(x) {
    var y = x;
    { var y = x * 2; r += y; }
    return y;
}
{ var y = 5; r += f(y); }
"""
    image = compile_tl(source)
    spans = sorted(image.spans, key=lambda s: s.start)
    assert spans[0].start == 0
    assert all(a.end == b.start for a, b in zip(spans, spans[1:], strict=False))  # tiled
    code_end = spans[-1].end
    rows = [re.match(r"^(?:\S+:)?\s*(\d+):(\s+-?\d+){3}", line)
            for line in image.listing.splitlines()]
    addresses = [int(m.group(1)) for m in rows if m and int(m.group(1)) < code_end]
    assert addresses == list(range(0, code_end, 3))  # one listing line per instruction
    symbols = dict(image.symbols)
    assert {"f.x", "f.y", "f.y#2", "<main>.y", "r"} <= set(symbols)
    assert len({symbols[n] for n in ("f.y", "f.y#2", "<main>.y")}) == 3
    run = run_image(image)
    assert run.report.outputs == (("r", 15),) == run_source_text(source).outputs


def test_dispatch_tables_cover_every_node_type() -> None:
    # a node type added to tl_ast without its lowering fails here; an IntLit is always
    # constant, so `value` never looks one up
    assert set(_STATEMENT) == set(get_args(ast.Stmt))
    assert set(_VALUE) == set(get_args(ast.Expr)) - {ast.IntLit}
