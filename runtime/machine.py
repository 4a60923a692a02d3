"""The running SUBLEQ machine of docs/machine.md: its state, the initial state and the
outcome of a run (its configuration, statuses and faults: `compiler/machine_config.py`).

Every engine (reference interpreter, numpy layers, onnxruntime) produces a `RunResult` built
from these types, so engines can be compared field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from mlpc.compiler.machine_config import Fault, MachineConfig, Status, canonical_pc
from mlpc.errors import MlpcError


@dataclass
class MachineState:
    """A mutable machine state. `pc < 0` means halted; `fault != NONE` means faulted."""

    memory: list[int]
    pc: int = 0
    tape_in: list[int] = field(default_factory=list)
    in_pos: int = 0
    tape_out: list[int] = field(default_factory=list)
    fault: Fault = Fault.NONE
    steps: int = 0

    @property
    def status(self) -> Status:
        if self.fault != Fault.NONE:
            return Status.FAULT
        if self.pc < 0:
            return Status.HALTED
        return Status.RUNNING


def initial_state(
    config: MachineConfig, image: Sequence[int], tape: Sequence[int] = ()
) -> MachineState:
    """The state before the first step: `image` at address 0, zeros after it, pc = 0.

    Raises `MlpcError` when the image or tape does not fit (nothing is truncated or wrapped).
    """
    if len(image) > config.memory:
        raise MlpcError(
            f"memory image has {len(image)} words but memory is {config.memory} words"
        )
    config.check_words("memory image", image)
    config.check_words("input tape", tape)
    if len(tape) > config.tape_in:
        raise MlpcError(
            f"input tape has {len(tape)} words but its capacity is {config.tape_in} "
            "(use --tape-in)"
        )
    memory = list(image) + [0] * (config.memory - len(image))
    return MachineState(memory=memory, tape_in=list(tape))


class EndReason(IntEnum):
    HALTED = 0
    FAULT = 1
    STEP_LIMIT = 2


@dataclass(frozen=True)
class RunResult:
    """The outcome of a machine-level run, comparable across engines."""

    status: Status
    fault: Fault
    steps: int
    tape_out: tuple[int, ...]
    memory: tuple[int, ...]
    pc: int

    @property
    def step_limited(self) -> bool:
        return self.status == Status.RUNNING

    def status_name(self) -> str:
        if self.status == Status.RUNNING:
            return "step-limit"
        return {Status.HALTED: "halted", Status.FAULT: "fault"}[self.status]


def result_of(state: MachineState) -> RunResult:
    return RunResult(
        status=state.status,
        fault=state.fault,
        steps=state.steps,
        tape_out=tuple(state.tape_out),
        memory=tuple(state.memory),
        pc=canonical_pc(state.pc, len(state.memory)),
    )


