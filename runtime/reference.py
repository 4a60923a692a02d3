"""The SUBLEQ reference interpreter: the oracle every other engine is tested against.

`run` executes SPEC section 2 exactly. The hot loop handles the common subtract-and-branch
instruction with plain list indexing; anything unusual (I/O, faults, halting) leaves the fast
loop through an exception or a test and is handled by `step`, which is also the single-step
function used for tracing and lock-step comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlpc.runtime.machine import Fault, MachineConfig, MachineState, Status


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
    """Subtract-and-branch steps with operands in [0, m) until something else comes up.

    Returns with `state` consistent and the next instruction not yet executed.
    """
    mem = state.memory
    lo, hi = config.word_min, config.word_max
    span = 1 << config.word_bits
    last_pc = config.memory - 3
    pc = state.pc
    steps = state.steps
    budget = max_steps
    try:
        while steps < budget and 0 <= pc <= last_pc:
            a = mem[pc]
            b = mem[pc + 1]
            if a < 0 or b < 0:
                break
            c = mem[pc + 2]  # read before M[b] is written: b may be pc + 2
            v = mem[b] - mem[a]  # IndexError for a or b >= m: handled by step()
            if v < lo:
                v += span
            elif v > hi:
                v -= span
            mem[b] = v
            pc = c if v <= 0 else pc + 3
            steps += 1
    except IndexError:
        pass  # a or b >= m; nothing was written
    state.pc = pc
    state.steps = steps
