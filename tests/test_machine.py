"""The SUBLEQ machine of docs/machine.md, rule by rule, on hand-built images with exact states.

Every rule is checked through both code paths of the reference interpreter: `reference.step`
(the single-step oracle) and `reference.run` (whose hot loop is separate code).
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpc.compiler.machine_config import Fault, MachineConfig, Status, canonical_pc, wrap_word
from mlpc.errors import MlpcError
from mlpc.runtime import reference
from mlpc.runtime.machine import MachineState, initial_state, result_of
from mlpc.runtime.reference import StepEvent

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


def machine(
    image: list[int],
    memory: int | None = None,
    tape: list[int] | tuple[int, ...] = (),
    word_bits: int = 32,
    tape_in: int = 16,
    tape_out: int = 16,
) -> tuple[MachineConfig, MachineState]:
    config = MachineConfig(
        memory=len(image) if memory is None else memory,
        word_bits=word_bits,
        tape_in=tape_in,
        tape_out=tape_out,
    )
    return config, initial_state(config, image, tape)


def run_to_end(
    image: list[int], max_steps: int = 1000, **kwargs: object
) -> MachineState:
    config, state = machine(image, **kwargs)  # type: ignore[arg-type]
    return reference.run(config, state, max_steps)


# --- subtract and branch ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m_a", "m_b", "result", "next_pc"),
    [
        (5, 5, 0, 9),  # result 0: branch taken
        (7, 5, -2, 9),  # result < 0: branch taken
        (3, 5, 2, 3),  # result > 0: fall through to pc + 3
        (-4, -9, -5, 9),
        (-9, -4, 5, 3),
    ],
)
def test_subtract_and_branch_step(m_a: int, m_b: int, result: int, next_pc: int) -> None:
    image = [6, 7, 9, 0, 0, 0, m_a, m_b, 0, 0, 0, 0]
    config, state = machine(image)
    event = reference.step(config, state)
    assert event == StepEvent(
        step=1, pc=0, a=6, b=7, c=9, writes=((7, m_b, result),), output=None, next_pc=next_pc
    )
    assert state.memory == [6, 7, 9, 0, 0, 0, m_a, result, 0, 0, 0, 0]
    assert (state.pc, state.steps, state.status) == (next_pc, 1, Status.RUNNING)
    assert state.tape_out == []


@pytest.mark.parametrize(("m_a", "m_b", "taken"), [(5, 5, True), (7, 5, True), (3, 5, False)])
def test_subtract_and_branch_run(m_a: int, m_b: int, taken: bool) -> None:
    # 0: A B -1     halt if the result <= 0
    # 3: Z Z -1     otherwise halt one step later
    image = [6, 7, -1, 8, 8, -1, m_a, m_b, 0]
    state = run_to_end(image)
    assert state.status == Status.HALTED
    assert state.pc == -1
    assert state.steps == (1 if taken else 2)
    assert state.memory == [6, 7, -1, 8, 8, -1, m_a, m_b - m_a, 0]


def test_subtract_from_itself_clears() -> None:
    state = run_to_end([3, 3, -1, 1234])
    assert (state.memory, state.pc, state.steps) == ([3, 3, -1, 0], -1, 1)


def test_self_modifying_code() -> None:
    # 0: K 5 ?    M[5] (the jump target of the next instruction) -= 12: 15 -> 3 (> 0)
    # 3: Z Z 15   Z - Z = 0 jumps to M[5], which is now 3 (not 15): an endless loop at 3,
    #             stopped after 10 steps (15 would have faulted: past the 16-word memory)
    image = [7, 5, 3, 8, 8, 15, 0, 12, 0]
    config, state = machine(image, memory=16)
    reference.run(config, state, 10)
    assert state.memory[:9] == [7, 5, 3, 8, 8, 3, 0, 12, 0]
    assert (state.pc, state.steps, state.status) == (3, 10, Status.RUNNING)


@pytest.mark.parametrize("use_run", [False, True])
def test_jump_target_read_before_write(use_run: bool) -> None:
    """`c` is read before `M[b]` is written, even when b == pc + 2 (the instruction rewrites
    its own jump target): 0: 3 2 0 with M[3] = 1 makes M[2] = -1 and jumps to the OLD c = 0."""
    config, state = machine([3, 2, 0, 1])
    if use_run:
        reference.run(config, state, 1)
    else:
        reference.step(config, state)
    assert (state.memory, state.pc, state.steps) == ([3, 2, -1, 1], 0, 1)
    # The next step executes 3 2 -1: M[2] = -1 - 1 = -2 <= 0, jump to -1: halted.
    reference.run(config, state, 10)
    assert (state.memory, state.pc, state.steps, state.status) == (
        [3, 2, -2, 1], -1, 2, Status.HALTED
    )


# --- wrap-around at both ends of the W-bit range ------------------------------------------

WRAP_CASES = [
    # (W, M[a], M[b], wrapped M[b] - M[a], branch taken)
    (32, 1, INT32_MIN, INT32_MAX, False),  # INT_MIN - 1 -> INT_MAX: > 0, no branch
    (32, -1, INT32_MAX, INT32_MIN, True),  # INT_MAX + 1 -> INT_MIN: <= 0, branch
    (32, INT32_MAX, INT32_MIN, 1, False),  # INT_MIN - INT_MAX -> 1
    (32, INT32_MIN, INT32_MAX, -1, True),  # INT_MAX - INT_MIN -> -1
    (32, INT32_MIN, 0, INT32_MIN, True),  # 0 - INT_MIN -> INT_MIN
    (32, INT32_MIN, INT32_MIN, 0, True),
    (32, 2, INT32_MIN + 1, INT32_MAX, False),
    (32, 1, INT32_MIN + 1, INT32_MIN, True),  # the edge, no wrap
    (32, -1, INT32_MAX - 1, INT32_MAX, False),  # the edge, no wrap
    (16, 1, INT16_MIN, INT16_MAX, False),
    (16, -1, INT16_MAX, INT16_MIN, True),
    (16, INT16_MAX, INT16_MIN, 1, False),
    (16, INT16_MIN, INT16_MAX, -1, True),
    (16, INT16_MIN, 0, INT16_MIN, True),
    (16, -1, INT16_MAX - 1, INT16_MAX, False),
]


@pytest.mark.parametrize(("bits", "m_a", "m_b", "result", "taken"), WRAP_CASES)
def test_wrap_around_step(bits: int, m_a: int, m_b: int, result: int, taken: bool) -> None:
    image = [6, 7, -1, 8, 8, -1, m_a, m_b, 0]
    config, state = machine(image, word_bits=bits)
    reference.step(config, state)
    assert state.memory[7] == result
    assert state.pc == (-1 if taken else 3)
    assert state.steps == 1


@pytest.mark.parametrize(("bits", "m_a", "m_b", "result", "taken"), WRAP_CASES)
def test_wrap_around_run(bits: int, m_a: int, m_b: int, result: int, taken: bool) -> None:
    state = run_to_end([6, 7, -1, 8, 8, -1, m_a, m_b, 0], word_bits=bits)
    assert state.memory == [6, 7, -1, 8, 8, -1, m_a, result, 0]
    assert (state.pc, state.steps, state.status) == (-1, 1 if taken else 2, Status.HALTED)


def test_wrap_word() -> None:
    assert wrap_word(2**31, 32) == INT32_MIN
    assert wrap_word(-(2**31) - 1, 32) == INT32_MAX
    assert wrap_word(2**32 + 5, 32) == 5
    assert wrap_word(2**15, 16) == INT16_MIN
    assert wrap_word(-(2**15) - 1, 16) == INT16_MAX
    assert wrap_word(-7, 16) == -7
    config = MachineConfig(memory=3, word_bits=16)
    assert (config.word_min, config.word_max) == (INT16_MIN, INT16_MAX)
    assert config.wrap(INT16_MAX + 2) == INT16_MIN + 1


# --- input and output --------------------------------------------------------------------


def test_input_reads_tape_then_minus_one() -> None:
    # 0: -1 9 -1   input into M[9]; c is ignored: pc += 3 (no branch, no halt)
    # 3: -1 10 -1  input into M[10]: the tape is exhausted, so -1
    # 6: -1 11 -1  input into M[11]: -1 again
    image = [-1, 9, -1, -1, 10, -1, -1, 11, -1, 5, 5, 5]
    config, state = machine(image, memory=14, tape=[-42])
    event = reference.step(config, state)
    assert event == StepEvent(1, 0, -1, 9, -1, ((9, 5, -42),), None, 3)
    assert (state.pc, state.in_pos, state.memory[9]) == (3, 1, -42)
    reference.step(config, state)
    assert (state.pc, state.in_pos, state.memory[10]) == (6, 1, -1)
    reference.run(config, state, 3)
    assert state.memory[9:12] == [-42, -1, -1]
    assert (state.pc, state.steps, state.in_pos) == (9, 3, 1)
    assert state.tape_out == []


def test_input_run_exact() -> None:
    # 0: -1 9 ?     M[9] <- 3
    # 3: -1 10 ?    M[10] <- -1 (end of tape)
    # 6: 11 11 -1   halt
    image = [-1, 9, 3, -1, 10, 6, 11, 11, -1, 0, 0, 0]
    state = run_to_end(image, tape=[3])
    assert state.memory == [-1, 9, 3, -1, 10, 6, 11, 11, -1, 3, -1, 0]
    assert (state.pc, state.steps, state.in_pos, state.status) == (-1, 3, 1, Status.HALTED)


def test_output_appends_word_and_ignores_c() -> None:
    # 0: 9 -1 -1   output M[9]; c is ignored: pc += 3
    # 3: 10 -1 -1  output M[10]
    # 6: 11 11 -1  halt
    image = [9, -1, -1, 10, -1, -1, 11, 11, -1, INT32_MIN, 72, 0]
    config, state = machine(image)
    event = reference.step(config, state)
    assert event == StepEvent(1, 0, 9, -1, -1, (), INT32_MIN, 3)
    assert state.memory == image
    reference.run(config, state, 100)
    assert state.tape_out == [INT32_MIN, 72]
    assert (state.pc, state.steps, state.status) == (-1, 3, Status.HALTED)
    assert state.memory == image


# --- halting -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", [-1, -2, -3, INT32_MIN])
def test_halt_on_negative_pc(target: int) -> None:
    state = run_to_end([3, 3, target, 0])
    assert (state.pc, state.steps, state.status, state.fault) == (
        target, 1, Status.HALTED, Fault.NONE
    )
    assert canonical_pc(state.pc, 4) == -1
    result = result_of(state)
    assert (result.pc, result.status_name(), result.step_limited) == (-1, "halted", False)


def test_step_limit() -> None:
    # 0: Z Z 0 loops forever
    config, state = machine([3, 3, 0, 0])
    reference.run(config, state, 57)
    assert (state.pc, state.steps, state.status) == (0, 57, Status.RUNNING)
    result = result_of(state)
    assert (result.status_name(), result.step_limited) == ("step-limit", True)
    reference.run(config, state, 57)
    assert state.steps == 57
    reference.run(config, state, 60)
    assert state.steps == 60


# --- faults ------------------------------------------------------------------------------

FAULT_CASES = [
    # (image, memory, tape_out capacity, steps before the fault, expected fault)
    pytest.param([5, 5, 4, 0, 0, 0], 6, 16, 1, Fault.PC_RANGE, id="pc>m-3"),
    pytest.param([5, 5, 5, 0, 0, 0], 6, 16, 1, Fault.PC_RANGE, id="pc=m-1"),
    pytest.param([6, 6, 10**6, 0, 0, 0, 0], 7, 16, 1, Fault.PC_RANGE, id="pc far"),
    pytest.param([6, 5, -1, 0, 0, 0], 6, 16, 0, Fault.A_RANGE, id="a=m"),
    pytest.param([-2, 5, -1, 0, 0, 0], 6, 16, 0, Fault.A_RANGE, id="a=-2"),
    pytest.param([INT32_MIN, 5, -1, 0, 0, 0], 6, 16, 0, Fault.A_RANGE, id="a=INT_MIN"),
    pytest.param([5, 6, -1, 0, 0, 0], 6, 16, 0, Fault.B_RANGE, id="b=m"),
    pytest.param([5, -2, -1, 0, 0, 0], 6, 16, 0, Fault.B_RANGE, id="b=-2"),
    pytest.param([INT32_MAX, 5, -1, 0, 0, 0], 6, 16, 0, Fault.A_RANGE, id="a=INT_MAX"),
    pytest.param([-2, 6, -1, 0, 0, 0], 6, 16, 0, Fault.A_RANGE, id="a checked before b"),
    pytest.param([-1, 6, -1, 0, 0, 0], 6, 16, 0, Fault.B_RANGE, id="input to b=m"),
    pytest.param([-2, -1, -1, 0, 0, 0], 6, 16, 0, Fault.A_RANGE, id="output of a=-2"),
    pytest.param([-1, -1, -1, 0, 0, 0], 6, 16, 0, Fault.IO_BOTH, id="a=b=-1"),
    pytest.param([5, -1, -1, 0, 0, 0], 6, 0, 0, Fault.OUTPUT_FULL, id="tape_out=0"),
    pytest.param([6, -1, 3, 6, -1, 6, 7], 7, 1, 1, Fault.OUTPUT_FULL, id="tape_out=1"),
]


@pytest.mark.parametrize(("image", "memory", "tape_out", "steps", "fault"), FAULT_CASES)
def test_faults(image: list[int], memory: int, tape_out: int, steps: int, fault: Fault) -> None:
    for use_run in (False, True):
        config, state = machine(image, memory=memory, tape=[9], tape_out=tape_out)
        if use_run:
            reference.run(config, state, 100)
        else:
            for _ in range(steps):
                assert reference.step(config, state) is not None
            before = copy.deepcopy(state)
            assert reference.step(config, state) is None
            # The faulting step changes nothing but the fault field.
            assert state.memory == before.memory
            assert (state.pc, state.steps, state.in_pos, state.tape_out) == (
                before.pc, before.steps, before.in_pos, before.tape_out
            )
        assert state.fault == fault
        assert state.status == Status.FAULT
        assert state.steps == steps
        assert state.in_pos == 0  # no fault consumes input
        result = result_of(state)
        assert (result.status_name(), result.fault, result.steps) == ("fault", fault, steps)


def test_fault_keeps_state_exactly() -> None:
    # 0: 6 -1 ?   output M[6]
    # 3: 6 7 ?    faults: b = 7 = m
    image = [6, -1, 3, 6, 7, 0, 33]
    state = run_to_end(image)
    assert state.memory == image
    assert state.tape_out == [33]
    assert (state.pc, state.steps, state.fault) == (3, 1, Fault.B_RANGE)


def test_last_instruction_slot_is_valid() -> None:
    # pc = m - 3 is the last valid instruction address: 0: 0 0 3 jumps there,
    # 3: 1 1 -1 halts.
    state = run_to_end([0, 0, 3, 1, 1, -1], memory=6)
    assert (state.pc, state.steps, state.status) == (-1, 2, Status.HALTED)
    assert state.memory == [0, 0, 3, 1, 1, -1]


def test_canonical_pc_past_the_end() -> None:
    state = run_to_end([5, 5, 1000, 0, 0, 0], memory=6)
    assert state.fault == Fault.PC_RANGE
    assert state.pc == 1000
    assert result_of(state).pc == 4  # m - 2: every pc past the last instruction
    assert canonical_pc(3, 6) == 3
    assert canonical_pc(5, 6) == 4


def test_fault_descriptions() -> None:
    # The machine's faults (the enum may hold more kinds, for other engines).
    assert {f: f.describe() for f in list(Fault)[:6]} == {
        Fault.NONE: "no fault",
        Fault.PC_RANGE: "pc out of range",
        Fault.A_RANGE: "operand a out of range",
        Fault.B_RANGE: "operand b out of range",
        Fault.IO_BOTH: "a == b == -1 (input and output at once)",
        Fault.OUTPUT_FULL: "output tape full",
    }
    assert all(f.describe() for f in Fault)


# --- fixed points ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        pytest.param([3, 3, -1, 7], id="halted"),
        pytest.param([-1, -1, 0, 0], id="faulted"),
        pytest.param([3, -1, 6, 3, 3, 100, 0], id="faulted-after-output"),
    ],
)
def test_halted_and_faulted_states_are_fixed_points(image: list[int]) -> None:
    config, state = machine(image, tape=[1, 2])
    reference.run(config, state, 100)
    assert state.status != Status.RUNNING
    frozen = copy.deepcopy(state)
    for _ in range(3):
        assert reference.step(config, state) is None
        assert state == frozen
    reference.run(config, state, 10_000)
    assert state == frozen
    events: list[StepEvent] = []
    reference.run(config, state, 10_000, hook=events.append)
    assert state == frozen
    assert events == []


# --- loading errors ----------------------------------------------------------------------


def test_image_larger_than_memory() -> None:
    config = MachineConfig(memory=4)
    with pytest.raises(MlpcError, match=r"^memory image has 5 words but memory is 4 words$"):
        initial_state(config, [0, 0, 0, 0, 0])
    assert initial_state(config, [1, 2, 3, 4]).memory == [1, 2, 3, 4]
    assert initial_state(config, [1]).memory == [1, 0, 0, 0]


def test_tape_longer_than_capacity() -> None:
    config = MachineConfig(memory=3, tape_in=2)
    with pytest.raises(MlpcError, match=r"^input tape has 3 words but its capacity is 2"):
        initial_state(config, [], [1, 2, 3])
    assert initial_state(config, [], [1, 2]).tape_in == [1, 2]


@pytest.mark.parametrize(
    ("bits", "word"),
    [(32, 2**31), (32, -(2**31) - 1), (16, 2**15), (16, -(2**15) - 1), (16, 10**9)],
)
def test_words_outside_word_range(bits: int, word: int) -> None:
    config = MachineConfig(memory=8, word_bits=bits, tape_in=4)
    with pytest.raises(MlpcError, match=rf"^memory image word 2 is {word}, outside the {bits}-bit"):
        initial_state(config, [0, 0, word])
    with pytest.raises(MlpcError, match=rf"^input tape word 1 is {word}, outside the {bits}-bit"):
        initial_state(config, [], [0, word])


@pytest.mark.parametrize("bits", [16, 32])
def test_words_at_the_edges_of_the_range_load(bits: int) -> None:
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    config = MachineConfig(memory=4, word_bits=bits, tape_in=2)
    state = initial_state(config, [lo, hi], [hi, lo])
    assert state.memory == [lo, hi, 0, 0]
    assert state.tape_in == [hi, lo]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory": 8, "word_bits": 8}, "word size must be 16 or 32 bits, not 8"),
        ({"memory": 2}, "memory must have at least 3 words, not 2"),
        ({"memory": 8, "tape_in": -1}, "tape capacities must not be negative"),
        ({"memory": 8, "tape_out": -1}, "tape capacities must not be negative"),
    ],
)
def test_bad_machine_config(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(MlpcError) as info:
        MachineConfig(**kwargs)
    assert str(info.value) == message


# --- the fast path agrees with the single-step oracle ------------------------------------


@st.composite
def machines(draw: st.DrawFn) -> tuple[MachineConfig, list[int], list[int], int]:
    bits = draw(st.sampled_from([16, 32]))
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    m = draw(st.integers(3, 14))
    # Mostly valid instructions (subtract, input, output) or addresses, so that runs go on for
    # a while, do I/O and modify themselves; then a few words that fault or wrap.
    addr = st.integers(0, m - 1)
    target = st.integers(-1, m - 1)
    instruction = st.one_of(
        st.tuples(addr, addr, target),
        st.tuples(st.just(-1), addr, target),
        st.tuples(addr, st.just(-1), target),
    )
    if draw(st.booleans()):
        code = draw(st.lists(instruction, min_size=1, max_size=m // 3 + 1))
        image = [w for triple in code for w in triple][:m]
    else:
        image = draw(st.lists(st.integers(-1, m - 1), min_size=max(0, m - 3), max_size=m))
    odd = st.sampled_from([-2, m, m + 1, lo, lo + 1, hi - 1, hi])
    for _ in range(draw(st.integers(0, 3)) if image else 0):
        image[draw(st.integers(0, len(image) - 1))] = draw(odd)
    tape_in = draw(st.integers(0, 4))
    tape = draw(st.lists(st.integers(lo, hi), min_size=tape_in // 2, max_size=tape_in))
    config = MachineConfig(
        memory=m, word_bits=bits, tape_in=tape_in, tape_out=draw(st.integers(0, 4))
    )
    return config, image, tape, draw(st.integers(0, 300))


def _step_until(config: MachineConfig, state: MachineState, total: int) -> list[StepEvent]:
    events = []
    while state.steps < total and state.status == Status.RUNNING:
        event = reference.step(config, state)
        if event is not None:
            events.append(event)
    return events


@settings(max_examples=400, deadline=None)
@given(machines(), st.data())
def test_run_agrees_with_stepping(
    case: tuple[MachineConfig, list[int], list[int], int], data: st.DataObject
) -> None:
    config, image, tape, total = case
    slow = initial_state(config, image, tape)
    events = _step_until(config, slow, total)
    assert slow.steps == len(events) <= total

    fast = reference.run(config, initial_state(config, image, tape), total)
    assert fast == slow

    # In two chunks: stopping and resuming anywhere gives the same state.
    split = data.draw(st.integers(0, total))
    chunked = initial_state(config, image, tape)
    reference.run(config, chunked, split)
    reference.run(config, chunked, total)
    assert chunked == slow

    # With a hook: the same events as stepping.
    seen: list[StepEvent] = []
    hooked = reference.run(config, initial_state(config, image, tape), total, hook=seen.append)
    assert hooked == slow
    assert seen == events


def test_hook_reports_every_step() -> None:
    # 0: 9 -1 ?     output M[9] = 'A'
    # 3: -1 10 ?    M[10] <- input
    # 6: 10 10 -1   clear M[10], halt
    image = [9, -1, 3, -1, 10, 6, 10, 10, -1, 65, 0]
    config, state = machine(image, tape=[5])
    seen: list[StepEvent] = []
    reference.run(config, state, 100, hook=seen.append)
    assert seen == [
        StepEvent(1, 0, 9, -1, 3, (), 65, 3),
        StepEvent(2, 3, -1, 10, 6, ((10, 0, 5),), None, 6),
        StepEvent(3, 6, 10, 10, -1, ((10, 5, 0),), None, -1),
    ]
    assert (state.status, state.steps, state.tape_out) == (Status.HALTED, 3, [65])
