"""The O(W) runtime routines called directly: results against a Python model on edge and
random values, and step counts that depend on W, never on the values."""

from __future__ import annotations

import random

import pytest

from mlpc.compiler import macros as mc
from mlpc.compiler import runtime_lib
from mlpc.compiler.checker import binary_op
from mlpc.compiler.machine_config import MachineConfig, wrap_word
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state


def call(name: str, w: int, args: tuple[int, ...]) -> tuple[list[int], int]:
    """Run routine `name` on `args`; returns (its results or output, steps of the call)."""
    routine = runtime_lib.routine(name, w)
    code: list[mc.Macro] = [mc.Mov(c, mc.const(wrap_word(v, w)))
                            for c, v in zip(routine.args, args, strict=True)]
    code += [mc.Call(routine.entry, routine.ra), mc.Halt(), *routine.code]
    assembled = mc.assemble(mc.MacroProgram(tuple(code), routine.data), w)
    config = MachineConfig(memory=assembled.stack_end + 3, word_bits=w)
    state = initial_state(config, assembled.words)
    reference.run(config, state, 1_000_000)
    assert state.pc == -1
    labels = assembled.label_map()
    setup = 4 * len(args)
    results = [state.memory[labels[r]] for r in routine.results]
    return (results if name != "print" else state.tape_out), state.steps - setup - 1


def values(w: int, count: int = 12) -> list[int]:
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    rng = random.Random(w)
    return [0, 1, -1, 2, -2, 3, 10, -10, lo, lo + 1, hi, hi - 1] + [
        rng.randint(lo, hi) for _ in range(count)]


def c_div(a: int, b: int) -> tuple[int, int]:
    q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    return q, a - q * b


@pytest.mark.parametrize("w", [16, 32])
def test_mul(w: int) -> None:
    for a in values(w):
        for b in values(w):
            assert call("mul", w, (a, b))[0] == [wrap_word(a * b, w)]


@pytest.mark.parametrize("w", [16, 32])
def test_divmod_c99(w: int) -> None:
    for a in values(w):
        for b in values(w):
            if b == 0:
                continue
            q, r = c_div(a, b)
            assert call("divmod", w, (a, b))[0] == [wrap_word(q, w), wrap_word(r, w)], (a, b)


@pytest.mark.parametrize("w", [16, 32])
def test_int_min_divided_by_minus_one_wraps(w: int) -> None:
    lo = -(1 << (w - 1))
    assert call("divmod", w, (lo, -1))[0] == [lo, 0]
    assert call("divmod", w, (lo, lo))[0] == [1, 0]
    assert call("divmod", w, (lo + 1, lo))[0] == [0, lo + 1]


@pytest.mark.parametrize("w", [16, 32])
@pytest.mark.parametrize("name,op", [("and", "&"), ("or", "|"), ("xor", "^")])
def test_bitwise(w: int, name: str, op: str) -> None:
    for a in values(w, 6):
        for b in values(w, 6):
            assert call(name, w, (a, b))[0] == [binary_op(op, a, b, w)]


@pytest.mark.parametrize("w", [16, 32])
def test_shifts_with_unsigned_counts(w: int) -> None:
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    counts = [0, 1, 2, w - 1, w, w + 1, -1, -w, lo, hi]
    for a in values(w, 4):
        for k in counts:
            assert call("shl", w, (a, k))[0] == [binary_op("<<", a, k, w)], (a, k)
            assert call("sar", w, (a, k))[0] == [binary_op(">>", a, k, w)], (a, k)
            logical = (a % (1 << w)) >> (k % (1 << w)) if k % (1 << w) < w else 0
            assert call("shr", w, (a, k))[0] == [wrap_word(logical, w)], (a, k)


@pytest.mark.parametrize("w", [16, 32])
def test_unsigned_divmod(w: int) -> None:
    mask = (1 << w) - 1
    for a in values(w):
        for b in values(w):
            if b == 0:
                continue
            q, r = divmod(a & mask, b & mask)
            assert call("udivmod", w, (a, b))[0] == [wrap_word(q, w), wrap_word(r, w)], (a, b)


@pytest.mark.parametrize("w", [16, 32])
def test_print_decimal(w: int) -> None:
    for a in values(w):
        out, _ = call("print", w, (a,))
        assert "".join(map(chr, out)) == str(a)


def test_powers_of_ten_table() -> None:
    assert runtime_lib.powers_of_ten(16) == (10000, 1000, 100, 10)
    assert runtime_lib.powers_of_ten(32)[0] == 10**9


# Worst-case steps per routine over the value set, measured at W = 32 and W = 16.
WORST = {
    "mul": {32: 546, 16: 268},
    "divmod": {32: 593, 16: 321},
    "and": {32: 676, 16: 340},
    "or": {32: 676, 16: 340},
    "xor": {32: 708, 16: 356},
    "shl": {32: 202, 16: 106},
    "sar": {32: 459, 16: 235},
    "shr": {32: 464, 16: 240},
    "udivmod": {32: 567, 16: 295},
}


@pytest.mark.parametrize("name", sorted(WORST))
def test_worst_case_steps_follow_w(name: str) -> None:
    for w in (16, 32):
        vs = values(w)
        ks = [0, 1, w - 1, w, -1] if name in ("shl", "sar", "shr") else vs
        worst = max(call(name, w, (a, b))[1] for a in vs for b in ks
                    if "divmod" not in name or b != 0)
        assert worst == WORST[name][w], (name, w, worst)
        assert worst <= 30 * w  # a bounded cost per bit, whatever the values


@pytest.mark.parametrize("w", [16, 32])
def test_low_bits(w: int) -> None:
    for a in values(w, 6):
        for k in (1, 2, 8, w - 2):
            out, steps = call("low", w, (a, w - k, k))
            assert out == [a & ((1 << k) - 1)], (a, k)
            assert steps <= 6 * (w - k) + 14 * k + 12  # 6 steps per skipped bit, 14 per kept
