"""The macro level on its own: every macro's SUBLEQ expansion on edge values, with exact step
counts where they are part of the design, and the assembler's layout and errors."""

from __future__ import annotations

import pytest

from mlpc.compiler import macros as mc
from mlpc.compiler.machine_config import MachineConfig, wrap_word
from mlpc.errors import MlpcError
from mlpc.runtime import reference
from mlpc.runtime.machine import MachineState, initial_state


def run(code: list[mc.Macro], data: tuple[mc.DataCell | mc.DataBlock, ...] = (),
        w: int = 32, stack: int = 0, tape: tuple[int, ...] = ()
        ) -> tuple[MachineState, dict[str, int]]:
    assembled = mc.assemble(mc.MacroProgram(tuple(code), data, stack_words=stack), w)
    config = MachineConfig(memory=assembled.stack_end + 5, word_bits=w)
    state = initial_state(config, assembled.words, tape)
    reference.run(config, state, 100_000)
    assert state.pc == -1, f"did not halt: pc={state.pc} fault={state.fault}"
    return state, assembled.label_map()


def edge_values(w: int) -> list[int]:
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    return [lo, lo + 1, -2, -1, 0, 1, 2, hi - 1, hi]


TRUTH = {
    "le": lambda v: v <= 0, "lt": lambda v: v < 0, "eq": lambda v: v == 0,
    "ne": lambda v: v != 0, "gt": lambda v: v > 0, "ge": lambda v: v >= 0,
}


@pytest.mark.parametrize("w", [16, 32])
@pytest.mark.parametrize("cond", mc.CONDITIONS)
def test_conditional_jumps_on_edge_values(cond: str, w: int) -> None:
    for v in edge_values(w):
        code = [mc.Jump(cond, "x", "yes"), mc.Out(mc.const(0)), mc.Halt(),
                mc.Label("yes"), mc.Out(mc.const(1)), mc.Halt()]
        state, labels = run(code, (mc.DataCell("x", v),), w)
        assert state.tape_out == [int(TRUTH[cond](v))], (cond, v)
        assert state.memory[labels["x"]] == v  # the tested cell is left alone
        assert state.memory[labels[mc.Z]] == 0
        # a constant is decided when the jump is expanded: testing its pool word in place
        # would write it (the expander refuses that)
        code[0] = mc.Jump(cond, mc.const(v), "yes")
        state, _ = run(code, (), w)
        assert state.tape_out == [int(TRUTH[cond](v))], (cond, v, "constant")


COMPARISONS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
               ">=": lambda a, b: a >= b}


@pytest.mark.parametrize("w", [16, 32])
@pytest.mark.parametrize("op", sorted(COMPARISONS))
def test_compare_on_edge_values_and_constants(op: str, w: int) -> None:
    """Every pair of edge values, each side a cell or a constant-pool operand (constants
    take shorter expansions; two constants are decided when expanded); Z is left at 0 on
    every path."""
    values = edge_values(w) + [3, -3, 1000, -1000]
    worst = 0
    for a in values:
        for b in values:
            for a_const, b_const in ((False, False), (True, False), (False, True),
                                     (True, True)):
                left = mc.const(a) if a_const else "a"
                right = mc.const(b) if b_const else "b"
                code = [mc.Compare(op, left, right, "yes"), mc.Out(mc.const(0)), mc.Halt(),
                        mc.Label("yes"), mc.Out(mc.const(1)), mc.Halt()]
                state, labels = run(code, (mc.DataCell("a", a), mc.DataCell("b", b)), w)
                assert state.tape_out == [int(COMPARISONS[op](a, b))], (a, b, left, right)
                assert state.memory[labels[mc.Z]] == 0
                assert (state.memory[labels["a"]], state.memory[labels["b"]]) == (a, b)
                worst = max(worst, state.steps - 2)
    assert worst == 12


def test_compare_costs_in_loops() -> None:
    """`i < n` with both positive: 7 steps; `i < 10`: 5 steps."""
    for right, expected in (("b", 7), (mc.const(10), 5)):
        code = [mc.Compare("<", "a", right, "end"), mc.Label("end"), mc.Halt()]
        state, _ = run(code, (mc.DataCell("a", 4), mc.DataCell("b", 10)))
        assert state.steps - 1 == expected


def test_conditional_jump_costs() -> None:
    """JLE is one instruction; JGT two; the others at most five steps."""
    for cond, positive_steps in (("le", 1), ("gt", 2), ("lt", 2), ("ge", 2), ("eq", 2),
                                 ("ne", 2)):
        state, _ = run([mc.Jump(cond, "x", "end"), mc.Label("end"), mc.Halt()],
                       (mc.DataCell("x", 5),))
        assert state.steps - 1 == positive_steps, cond
    for cond in ("lt", "ge", "eq", "ne"):
        for v in (-5, 0, -(1 << 31)):
            state, _ = run([mc.Jump(cond, "x", "end"), mc.Label("end"), mc.Halt()],
                           (mc.DataCell("x", v),))
            assert state.steps - 1 <= 5


@pytest.mark.parametrize("w", [16, 32])
def test_moves_and_arithmetic_wrap(w: int) -> None:
    for a in edge_values(w):
        for b in edge_values(w)[::2]:
            code = [mc.Mov("m", "a"), mc.Add("s", "a"), mc.Sub("d", "a"), mc.Neg("n", "a"),
                    mc.Mov("nn", "a"), mc.Neg("nn", "nn"), mc.Clear("c"), mc.Halt()]
            data = (mc.DataCell("a", a), mc.DataCell("m", 99), mc.DataCell("s", b),
                    mc.DataCell("d", b), mc.DataCell("n", 5), mc.DataCell("nn"),
                    mc.DataCell("c", 42))
            state, labels = run(code, data, w)
            mem = state.memory
            assert mem[labels["m"]] == a
            assert mem[labels["s"]] == wrap_word(b + a, w)
            assert mem[labels["d"]] == wrap_word(b - a, w)
            assert mem[labels["n"]] == wrap_word(-a, w)
            assert mem[labels["nn"]] == wrap_word(-a, w)
            assert mem[labels["c"]] == 0


def test_constant_operands_take_shorter_expansions() -> None:
    """MOV x, #k is `x x; #-k x` (2 steps), ADD x, #k is `#-k x` (1 step), while a MOV or
    ADD between cells goes through Z (4 and 3 steps)."""
    for macro, steps in ((mc.Mov("x", mc.const(-5)), 2), (mc.Add("x", mc.const(7)), 1),
                         (mc.Mov("x", mc.addr("x")), 2), (mc.Mov("x", "y"), 4),
                         (mc.Add("x", "y"), 3), (mc.Call("f", "ra"), 3)):
        code = [macro, mc.Label("f"), mc.Halt()]
        state, labels = run(code, (mc.DataCell("x", 3), mc.DataCell("y", 4),
                                   mc.DataCell("ra")))
        assert state.steps - 1 == steps, macro.text()
        expected = {"MOV x, #-5": -5, "ADD x, #7": 10, "MOV x, &x": labels["x"],
                    "MOV x, y": 4, "ADD x, y": 7}.get(macro.text())
        if expected is not None:
            assert state.memory[labels["x"]] == expected


def test_load_store_through_pointers() -> None:
    code = [
        mc.Mov("p", mc.addr("arr", 2)), mc.Load("y", "p"), mc.Out("y"),
        mc.Store("p", mc.const(-77)), mc.Mov("p", mc.addr("arr")), mc.Load("y", "p"),
        mc.Out("y"), mc.Store("p", "p"), mc.Halt(),
    ]
    data = (mc.DataCell("y"), mc.DataCell("p"), mc.DataBlock("arr", (10, 11, 12)))
    state, labels = run(code, data)
    base = labels["arr"]
    assert state.tape_out == [12, 10]
    assert state.memory[base:base + 3] == [base, 11, -77]
    assert state.steps == 2 + 8 + 1 + 12 + 2 + 8 + 1 + 12 + 1  # MOV &x 2, LOAD 8, STORE 12


@pytest.mark.parametrize("w", [16, 32])
@pytest.mark.parametrize("offset", [0, 1, -2, 3])
def test_index_checks_bounds_and_negates_the_address(w: int, offset: int) -> None:
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    for i in [lo, lo + 1, lo + 2, -3, -1, 0, 1, 2, 3, 4, 5, hi - 2, hi - 1, hi]:
        k = wrap_word(i + offset, w)  # the element a[i + offset] names
        code = [mc.Index("np", "i", "arr", 3, "bad", offset),
                mc.Load("y", "np", negated=True), mc.Out("y"),
                mc.Store("np", mc.const(9), negated=True), mc.Halt(),
                mc.Label("bad"), mc.Out(mc.const(-5)), mc.Halt()]
        data = (mc.DataCell("i", i), mc.DataCell("np"), mc.DataCell("y"),
                mc.DataBlock("arr", (10, 11, 12)))
        state, labels = run(code, data, w)
        base = labels["arr"]
        if 0 <= k < 3:
            assert state.tape_out == [10 + k]
            assert state.memory[labels["np"]] == -(base + k)
            assert state.memory[base + k] == 9
            # INDEX 4 (5 with an offset), LOAD 6, OUT, STORE 10, HALT
            assert state.steps == 4 + (offset != 0) + 6 + 1 + 10 + 1
        else:
            assert state.tape_out == [-5], i
            assert state.memory[base:base + 3] == [10, 11, 12]


def test_call_ret_push_pop_and_word_operands() -> None:
    code = [
        mc.Push(mc.const(5)), mc.Push(mc.const(6)), mc.Pop("y"), mc.Out("y"), mc.Pop("y"),
        mc.Out("y"), mc.Call("f", "ra"), mc.Out("arr+1"), mc.Call("f", "ra"), mc.Halt(),
        mc.Label("f"), mc.Out(mc.const(8)), mc.Ret("ra"),
    ]
    data = (mc.DataCell("y"), mc.DataCell("ra"), mc.DataBlock("arr", (3, 4)))
    state, labels = run(code, data, stack=4)
    assert state.tape_out == [6, 5, 8, 4, 8]
    # PUSH 11 steps, POP 7, OUT 1, CALL 3, RET 3, HALT 1
    assert state.steps == 2 * 11 + 2 * (7 + 1) + 2 * (3 + 1 + 3) + 1 + 1
    assert state.memory[labels[mc.SP]] == -labels[mc.STACK_BASE]  # minus the pointer


def test_stack_check_boundary_and_trap_cells() -> None:
    def attempt(words: int) -> list[int]:
        code = [mc.Push(mc.const(1)), mc.StackCheck(words, "over"), mc.Halt(),
                mc.Label("over"), mc.Trap(3, line=12)]
        state, labels = run(code, stack=4)
        return [state.memory[labels[mc.TRAP_CODE]], state.memory[labels[mc.TRAP_LINE]]]

    assert attempt(3) == [0, 0]  # 1 + 3 words fit in 4
    assert attempt(4) == [3, 12]


def test_input_output_and_halt() -> None:
    state, labels = run([mc.In("x"), mc.In("y"), mc.Out("x"), mc.Out("y"), mc.Halt()],
                        (mc.DataCell("x"), mc.DataCell("y")), tape=(42,))
    assert state.tape_out == [42, -1]


def test_layout_code_then_data_then_stack() -> None:
    program = mc.MacroProgram((mc.Mov("x", mc.const(7)), mc.Halt()), (mc.DataCell("x", 3),),
                              stack_words=10)
    assembled = mc.assemble(program, 32)
    labels = assembled.label_map()
    assert assembled.code_words == 9  # MOV x, #7 is 2 instructions, HALT 1
    assert labels[mc.Z] == 9
    assert assembled.words[labels["#-7"]] == -7  # the pool holds the negated constant
    assert assembled.words[labels["x"]] == 3
    assert assembled.stack_base == len(assembled.words)
    assert assembled.stack_end == len(assembled.words) + 10
    assert assembled.words[labels[mc.SP]] == -assembled.stack_base


def test_assembler_errors() -> None:
    with pytest.raises(ValueError, match="undefined label 'nowhere'"):
        mc.assemble(mc.MacroProgram((mc.Jmp("nowhere"),), ()), 32)
    with pytest.raises(ValueError, match="defined twice"):
        mc.assemble(mc.MacroProgram((mc.Label("a"), mc.Label("a")), ()), 32)
    with pytest.raises(MlpcError, match="more than 16-bit addresses reach"):
        mc.assemble(mc.MacroProgram((mc.Halt(),), (mc.DataBlock("big", (0,) * 40000),)), 16)


def test_macro_texts_and_dataflow() -> None:
    assert mc.Mov("a", "b").text() == "MOV a, b"
    assert mc.Jump("lt", "x", "L").text() == "JLT x, L"
    assert mc.Load("d", "p").reads() == ("p",) and mc.Load("d", "p").writes() == ("d",)
    assert mc.Add("d", "s").reads() == ("d", "s") and mc.Add("d", "s").writes() == ()
    assert mc.negate("lt") == "ge" and mc.negate("eq") == "ne"
