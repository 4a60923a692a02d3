"""The cheaper operations of issue 13 item 4 (constant divisors, constant shifts, low masks,
the multiply that stops early, decimal print) against an independent model of docs/language.md, at
W = 16 and W = 32: exact edge values (0, +-1, INT_MIN, INT_MAX, the divisor and its
neighbours) and random operands (hypothesis). Each program is compiled once and run on the
reference interpreter with every operand."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_lowering import compile_tl, run_image
from tl_cases import CASES_BY_NAME

from mlpc.compiler import cheap_ops, runtime_lib
from mlpc.compiler import macros as mc
from mlpc.compiler.driver import LoadedProgram, machine_config
from mlpc.compiler.image import SubleqImage
from mlpc.compiler.machine_config import MachineConfig, Status
from mlpc.compiler.options import CompileOptions
from mlpc.runtime import reference
from mlpc.runtime.engines import get_engine
from mlpc.runtime.machine import initial_state
from mlpc.runtime.request import RunRequest


def _wrap(v: int, w: int) -> int:
    v &= (1 << w) - 1
    return v - (1 << w) if v >> (w - 1) else v


def expected(op: str, a: int, b: int, w: int) -> int:
    """docs/language.md on W-bit words: C99 truncating `/` and `%`, arithmetic `>>`, logical `>>>`,
    shift counts read as unsigned (>= W: all bits shifted out), wrapping `*`."""
    if op in ("/", "%"):
        q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
        return _wrap(q if op == "/" else a - q * b, w)
    n = b % (1 << w)
    if op == ">>":
        return (-1 if a < 0 else 0) if n >= w else a >> n
    if op == ">>>":
        return 0 if n >= w else _wrap((a % (1 << w)) >> n, w)
    return _wrap({"&": a & b, "*": a * b}[op], w)


@functools.cache
def _image(expr: str, w: int) -> SubleqImage:
    return compile_tl(f"input x, y;\noutput r;\nr = {expr};\n", w)


def _check(expr: str, op: str, x: int, y: int, k: int, w: int) -> int:
    run = run_image(_image(expr, w), {"x": x, "y": y}, word_bits=w)
    assert run.report.status == "halted", (expr, x, y, run.report)
    got = dict(run.report.outputs)["r"]
    assert got == expected(op, x, k, w), (expr, w, x, y, got)
    return run.report.steps


def _edges(w: int, k: int) -> list[int]:
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    values = {0, 1, -1, 2, -2, 3, -3, 7, -7, 10, -10, 99, -99, 1000, -1000, lo, lo + 1,
              lo + 2, hi, hi - 1, hi - 2, 12345, -12345, (1 << (w - 2)), -(1 << (w - 2))}
    for base in (k, 2 * k, 3 * k, k * k, hi // max(abs(k), 1) * abs(k)):
        values |= {base - 1, base, base + 1, -base - 1, -base, -base + 1}
    return sorted(_wrap(v, w) for v in values)


def _constants(w: int) -> dict[str, list[int]]:
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    divisors = [1, -1, 2, -2, 3, -3, 5, 7, 10, -10, 15, 16, 100, 127, 1000, 12345 % hi,
                1 << (w - 2), (1 << (w - 2)) + 1, -(1 << (w - 2)), hi, -hi, lo, lo + 1]
    shifts = [0, 1, 2, 3, 7, 8, w - 3, w - 2, w - 1, w, w + 1, 100, -1]
    masks = [1, 3, 7, 0xFF, 0xFFF, (1 << (w - 2)) - 1, hi, 0x7F]
    return {"/": divisors, "%": divisors, ">>": shifts, ">>>": shifts, "&": masks}


def _expr(op: str, k: int) -> str:
    """x op k with k a constant expression (negative ones as (0 - (-k - 1) - 1))."""
    return f"x {op} {k}" if k >= 0 else f"x {op} (0 - {-k - 1} - 1)"


CASES = [(op, k, w) for w in (16, 32) for op, ks in _constants(w).items() for k in ks]


@pytest.mark.parametrize(("op", "k", "w"), CASES, ids=[f"{w}:x{op}{k}" for op, k, w in CASES])
def test_constant_operand_edges(op: str, k: int, w: int) -> None:
    expr = _expr(op, k)
    for x in _edges(w, k):
        _check(expr, op, x, 0, k, w)


_CONSTANT = st.sampled_from([c for c in CASES if c[1] not in (0,)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_CONSTANT, st.integers(-(1 << 31), (1 << 31) - 1))
def test_constant_operand_random(case: tuple[str, int, int], x: int) -> None:
    op, k, w = case
    expr = _expr(op, k)
    _check(expr, op, _wrap(x, w), 0, k, w)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([16, 32]), st.sampled_from(["*", "/", "%", ">>", ">>>", "&"]),
       st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 31), (1 << 31) - 1),
       st.integers(0, 31))
def test_variable_operands_random(w: int, op: str, x: int, y: int, bits: int) -> None:
    """Both operands at run time, the second often small (few significant bits)."""
    y = _wrap(y >> bits if bits < 31 else y % 3, w)
    x = _wrap(x, w)
    if op in ("/", "%") and y == 0:
        y = 1
    _check(f"x {op} y", op, x, y, y, w)


def test_steps_of_cheap_operations() -> None:
    """The bars of issue 13 item 4 on typical operands (W = 32, whole program)."""
    assert _check("x >> 1", ">>", 1000, 0, 1, 32) <= 60
    assert _check("x >> 1", ">>", 123456, 0, 1, 32) <= 60
    assert _check("x / 10", "/", 123456789, 0, 10, 32) <= 150
    assert _check("x % 10", "%", -123456789, 0, 10, 32) <= 150
    assert _check("x & 1", "&", 12345, 0, 1, 32) <= 60


def _longest_run(name: str, w: int) -> int:
    """The most SUBLEQ steps one call of the constant-shift routine `name` can take, Ret
    included: its code is acyclic once the steps that always jump are known (those writing
    `nq`, which stays <= 0), so the longest path bounds every operand."""
    routine = runtime_lib.routine(name, w)
    code, nq = routine.code, routine.results[0]
    labels = {m.name: i for i, m in enumerate(code) if isinstance(m, mc.Label)}
    longest: dict[int, int] = {}  # macro index -> the most steps from there
    on_path: set[int] = set()

    def walk(i: int) -> int:
        if i in on_path:
            raise AssertionError(f"{name}: a cycle through macro {i}")
        if i in longest:
            return longest[i]
        on_path.add(i)
        m = code[i]
        if isinstance(m, mc.Label):
            steps = walk(i + 1)
        elif isinstance(m, mc.Ret):
            steps = 3
        elif isinstance(m, mc.Sub):
            steps = 1 + walk(i + 1)
        else:
            assert isinstance(m, mc.Subleq)
            always = m.b == nq and m.c is not None
            nexts = ([] if always else [i + 1]) + ([labels[m.c]] if m.c else [])
            steps = 1 + max(walk(j) for j in nexts)
        on_path.discard(i)
        longest[i] = steps
        return steps

    return walk(0)


def _steps_around_the_call(w: int) -> int:
    """The steps of `r = x >> 1;` outside the routine (copy in, call, negate out, HALT)."""
    image = _image("x >> 1", w)
    entry = int(re.search(r"^\$csar\.2:\s+(\d+):", image.listing, re.M).group(1))
    run = run_image(image, {"x": 5, "y": 0}, word_bits=w)
    config = MachineConfig(memory=run.memory, word_bits=w)
    state = initial_state(config, image.initial_words({"x": 5, "y": 0}.items(), 0))
    outside = 0
    while state.status == Status.RUNNING:
        outside += state.pc < entry
        reference.step(config, state)
    return outside


@pytest.mark.parametrize("w", [16, 32])
def test_shift_right_by_one_meets_the_bar_for_every_operand(w: int) -> None:
    """Issue 13's bar, `x >> 1` in at most 60 steps, for every operand: the routine's
    longest path plus the steps around it; `>>>` the same. Measured: the longest runs
    reach the bound (all-ones and alternating quotients, negative operands)."""
    around = _steps_around_the_call(w)
    assert around == 10
    bound = {32: 58, 16: 37}[w]
    for mode in ("sar", "shr"):
        assert _longest_run(f"c{mode}.2", w) + around == bound
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    alternating = int("01" * (w // 2), 2) & hi
    worst = 0
    for x in (0, 1, -1, 2, -2, lo, lo + 1, hi, hi - 1, alternating, -alternating,
              alternating << 1 & hi, 1000, -1000, 1 << (w - 2), -(1 << (w - 2))):
        worst = max(worst, _check("x >> 1", ">>", x, 0, 1, w), _check("x >>> 1", ">>>", x,
                                                                      0, 1, w))
    assert worst == bound <= 60


def test_constant_shifts_take_one_step_per_bit_and_a_record_per_three() -> None:
    """The longest call of `x >> k` at W = 32: one test per quotient bit (31 - k of them),
    one record per group of three, and about 8 steps of entry, sign and return."""
    for k in (1, 2, 7, 8, 16, 29, 30):
        bits = 31 - k
        assert _longest_run(f"csar.{1 << k}", 32) <= bits + -(-bits // 3) + 8, k
        assert _longest_run(f"cshr.{1 << k}", 32) <= bits + -(-bits // 3) + 8, k


@pytest.mark.parametrize("w", [16, 32])
def test_multiply_edges(w: int) -> None:
    """Either operand the multiplier (the smaller magnitude), signs, INT_MIN, the unrolled
    chain's limits (2^4, 2^8, 2^15, 2^16) and the loop beyond them."""
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    edge = {0, 1, -1, 2, -2, 3, 7, -7, 15, 16, 17, 255, 256, 257, -256, 1000, -1000,
            (1 << 15) - 1, 1 << 15, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, 46340, -46341,
            lo, lo + 1, hi, hi - 1}
    values = sorted({_wrap(v, w) for v in edge})
    for x in values:
        for y in values:
            _check("x * y", "*", x, y, y, w)


def test_multiply_steps() -> None:
    """A small operand on either side: under 120 steps (issue 13 item 4)."""
    for x, y in ((123456, 7), (7, 123456), (-123456, 7), (7, -123456), (1000, -3),
                 (-3, 1000), (46340, 46340)):
        assert _check("x * y", "*", x, y, y, 32) <= 120, (x, y)


@pytest.mark.parametrize("w", [16, 32])
def test_print_decimal_edges(w: int) -> None:
    """print(x) around every power of ten (the start table and the unit counting), signs
    and INT_MIN."""
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    values = {0, lo, lo + 1, hi, hi - 1}
    p = 1
    while p <= hi:
        values |= {p - 1, p, p + 1, 9 * p, -p, -(p - 1), -9 * p}
        p *= 10
    image = compile_tl("input x;\nprint(x);\n", w)
    for x in sorted(v for v in values if lo <= v <= hi):
        run = run_image(image, {"x": x}, word_bits=w)
        assert "".join(map(chr, run.report.tape)) == str(x), (w, x)


@pytest.mark.parametrize("name", ["shift_right_by_constants_at_the_edges",
                                  "shift_right_by_constants_sixteen_bits"])
def test_constant_shift_cases_on_every_engine(name: str, tmp_path: Path) -> None:
    """The table's edge cases of `>>` and `>>>` by constants (INT_MIN, -1, 0, INT_MAX,
    both signs, W = 32 and 16) on all four engines."""
    case = CASES_BY_NAME[name]
    path = tmp_path / f"{name}.tl"
    path.write_text(case.source, encoding="utf-8")
    program = LoadedProgram([str(path)], CompileOptions(word_bits=case.word_bits))
    config = machine_config(program.image, word_bits=case.word_bits)
    for engine in ("source", "reference", "numpy", "onnx"):
        report = get_engine(engine)(RunRequest(program, config, (), case.inputs, 100_000))
        assert (report.outputs, report.status) == (case.outputs, "halted"), engine


class _Emitter:
    """The part of the lowering the rewrites use (`cheap_ops.Emitter`), recording."""

    def __init__(self, w: int = 32) -> None:
        self.w = w
        self.routines: set[str] = set()
        self.code: list[mc.Macro] = []
        self.temps = 0

    def temp(self) -> str:
        self.temps += 1
        return f"t{self.temps}"

    def label(self, stem: str) -> str:
        return f".{stem}"

    def emit(self, *items: mc.Macro) -> None:
        self.code.extend(items)


def test_rewrites_are_one_function_each_tried_in_order() -> None:
    """`cheap_ops.rewrite` takes the first of `REWRITES` that applies; None (and no code)
    leaves the operation to its general routine."""
    assert [r.__name__ for r in cheap_ops.REWRITES] == [
        "shift_left", "multiply", "bitwise", "divide"]
    e = _Emitter()
    assert cheap_ops.rewrite(e, "*", "x", 123456789, "r", 3) is None  # dense: the routine
    assert cheap_ops.rewrite(e, "<<", "x", 9, "r", 3) is None
    assert (e.code, e.routines, e.temps) == ([], set(), 0)
    assert cheap_ops.rewrite(e, "*", "x", 5, "x", 3) == "x"  # x = x * 5: beside x, then copied
    assert [m.text() for m in e.code] == ["MOV t1, x", "ADD t1, t1", "ADD t1, t1", "ADD t1, x",
                                         "MOV x, t1"]
    e = _Emitter()
    assert cheap_ops.rewrite(e, "&", "x", -1, None, 3) == "x" and e.code == []  # x itself
    assert cheap_ops.rewrite(e, "/", "x", 10, None, 3) == "t1"
    assert e.routines == {runtime_lib.const_name("div", 10)}
    assert isinstance(e.code[-1], mc.Neg) and e.code[-1].dst == "t1"
