"""The SUBLEQ reference interpreter: the oracle every other engine is tested against.

`run` executes docs/machine.md exactly. The hot loop handles every instruction that executes
normally (subtract-and-branch, input, output) with plain list indexing; an instruction that
faults leaves the fast loop through an exception or a test and is handled by `step`, which is
also the single-step function used for tracing and lock-step comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlpc.compiler.machine_config import Fault, MachineConfig, Status
from mlpc.runtime.machine import MachineState


@dataclass(frozen=True)
class StepEvent:
    """What one step did, for tracing: the instruction and the cells it changed."""

    step: int
    pc: int
    a: int
    b: int
    c: int
    writes: tuple[tuple[int, int, int], ...]  # (address, old value, new value)
    output: int | None
    next_pc: int


StepHook = Callable[[StepEvent], None]


def step(config: MachineConfig, state: MachineState) -> StepEvent | None:
    """Execute one step in place. Returns the event, or None when the state is a fixed point
    (halted or faulted) or the step faulted (the fault is recorded in `state.fault`)."""
    if state.status != Status.RUNNING:
        return None
    mem = state.memory
    m = config.memory
    pc = state.pc
    if pc > m - 3:
        state.fault = Fault.PC_RANGE
        return None
    a, b, c = mem[pc], mem[pc + 1], mem[pc + 2]
    if not -1 <= a < m:
        state.fault = Fault.A_RANGE
        return None
    if not -1 <= b < m:
        state.fault = Fault.B_RANGE
        return None
    if a == -1 and b == -1:
        state.fault = Fault.IO_BOTH
        return None
    writes: tuple[tuple[int, int, int], ...] = ()
    output = None
    if a == -1:
        if state.in_pos < len(state.tape_in):
            value = state.tape_in[state.in_pos]
            state.in_pos += 1
        else:
            value = -1
        writes = ((b, mem[b], value),)
        mem[b] = value
        next_pc = pc + 3
    elif b == -1:
        if len(state.tape_out) >= config.tape_out:
            state.fault = Fault.OUTPUT_FULL
            return None
        output = mem[a]
        state.tape_out.append(output)
        next_pc = pc + 3
    else:
        value = config.wrap(mem[b] - mem[a])
        writes = ((b, mem[b], value),)
        mem[b] = value
        next_pc = c if value <= 0 else pc + 3
    state.pc = next_pc
    state.steps += 1
    return StepEvent(state.steps, pc, a, b, c, writes, output, next_pc)


def run(
    config: MachineConfig,
    state: MachineState,
    max_steps: int,
    hook: StepHook | None = None,
) -> MachineState:
    """Run until halt, fault, or `max_steps` steps in total (`state.steps` counts them)."""
    if hook is not None:
        while state.steps < max_steps and state.status == Status.RUNNING:
            event = step(config, state)
            if event is not None:
                hook(event)
        return state
    while state.steps < max_steps and state.status == Status.RUNNING:
        _run_fast(config, state, max_steps)
        if state.steps < max_steps and state.status == Status.RUNNING:
            step(config, state)  # the instruction the fast loop declined
    return state


def _run_fast(config: MachineConfig, state: MachineState, max_steps: int) -> None:
    """Execute steps that neither fault nor fill the output tape, stopping at a halt, at
    `max_steps`, or before an instruction that `step` must handle (a fault, or an output with
    the tape full). Returns with `state` consistent and that instruction not yet executed.

    This is the hot loop and is separate code from `step`, tested against it: the `for` over
    `range` counts steps in C, and an operand or pc beyond memory shows up as the IndexError
    of reading it (`memory` has exactly `config.memory` words), before anything is written.
    """
    start = state.steps
    if state.pc < 0 or start >= max_steps:
        return
    mem = state.memory
    lo, hi = config.word_min, config.word_max
    span = 1 << config.word_bits
    out = state.tape_out
    out_capacity = config.tape_out
    tape = state.tape_in
    in_pos = state.in_pos
    pc = state.pc
    steps = start
    try:
        for steps in range(start, max_steps):  # noqa: B007 - `steps` is used after the loop
            a = mem[pc]  # IndexError: pc > m - 3 (a negative pc ends the loop below)
            b = mem[pc + 1]
            c = mem[pc + 2]  # read before M[b] is written: b may be pc + 2
            if a >= 0 and b >= 0:
                v = mem[b] - mem[a]  # IndexError: a or b >= m
                if v < lo:
                    v += span
                elif v > hi:
                    v -= span
                mem[b] = v
                if v > 0:
                    pc += 3
                elif c >= 0:
                    pc = c
                else:  # halt
                    pc = c
                    steps += 1
                    break
            elif b == -1 and a >= 0:  # output
                if len(out) >= out_capacity:
                    break
                out.append(mem[a])  # IndexError: a >= m
                pc += 3
            elif a == -1 and b >= 0:  # input
                if in_pos < len(tape):
                    mem[b] = tape[in_pos]  # IndexError: b >= m
                    in_pos += 1
                else:
                    mem[b] = -1
                pc += 3
            else:  # a or b < -1, or a == b == -1: a fault
                break
        else:
            steps = max_steps
    except IndexError:
        pass  # the instruction at pc faults; nothing of it was executed
    state.pc = pc
    state.steps = steps
    state.in_pos = in_pos
