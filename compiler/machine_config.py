"""The SUBLEQ machine's configuration and outcomes (docs/machine.md): `MachineConfig`, the
statuses and faults, W-bit word arithmetic and the machine's defaults.

A leaf module (it imports only `mlpc.errors`): the front end, the network codegen, the
exporters and every engine share these, so they sit below all of them. The running machine
(state, steps, results) is `runtime/machine.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from mlpc.errors import MlpcError

DEFAULT_TAPE_IN = 256
DEFAULT_TAPE_OUT = 65536
DEFAULT_EXTRA_MEMORY = 1024
DEFAULT_MAX_STEPS = 10_000_000


class Fault(IntEnum):
    """Why a run stopped abnormally. The order is the order the machine checks them in."""

    NONE = 0
    PC_RANGE = 1  # pc > m-3 at the start of a step
    A_RANGE = 2  # a outside [-1, m)
    B_RANGE = 3  # b outside [-1, m)
    IO_BOTH = 4  # a == b == -1
    OUTPUT_FULL = 5  # output instruction with a full output tape
    TAPE_TOO_LONG = 6  # the input tape given to an ONNX model exceeds its capacity
    READ_ONLY = 7  # a specialised model: an instruction would write a word it holds constant
    # a specialised `.tl` model: an operand word the program writes names a constant word
    # (its lowering records that it never does; see `codegen.ReadOnly.direct_reads`)
    INDIRECT_READ = 8
    # a model run through onnxruntime directly (the command line refuses such input first):
    # a named input or tape word outside the W-bit range; nothing runs
    INPUT_RANGE = 9
    # a model's `resume_state` row outside the ranges of the state; nothing runs
    INVALID_RESUME = 10

    def describe(self) -> str:
        return _FAULT_TEXT[self]


_FAULT_TEXT = {
    Fault.NONE: "no fault",
    Fault.PC_RANGE: "pc out of range",
    Fault.A_RANGE: "operand a out of range",
    Fault.B_RANGE: "operand b out of range",
    Fault.IO_BOTH: "a == b == -1 (input and output at once)",
    Fault.OUTPUT_FULL: "output tape full",
    Fault.TAPE_TOO_LONG: "input tape longer than its capacity",
    Fault.READ_ONLY: "write to a read-only word",
    Fault.INDIRECT_READ: "read of a read-only word through a written operand",
    Fault.INPUT_RANGE: "input out of range",
    Fault.INVALID_RESUME: "invalid resume state",
}


class Status(IntEnum):
    RUNNING = 0
    HALTED = 1
    FAULT = 2


@dataclass(frozen=True)
class MachineConfig:
    """Everything the network's weights depend on: memory size, word size, tape capacities."""

    memory: int
    word_bits: int = 32
    tape_in: int = DEFAULT_TAPE_IN
    tape_out: int = DEFAULT_TAPE_OUT

    def __post_init__(self) -> None:
        if self.word_bits not in (16, 32):
            raise MlpcError(f"word size must be 16 or 32 bits, not {self.word_bits}")
        if self.memory < 3:
            raise MlpcError(f"memory must have at least 3 words, not {self.memory}")
        if self.tape_in < 0 or self.tape_out < 0:
            raise MlpcError("tape capacities must not be negative")

    @property
    def word_min(self) -> int:
        return -(1 << (self.word_bits - 1))

    @property
    def word_max(self) -> int:
        return (1 << (self.word_bits - 1)) - 1

    def wrap(self, value: int) -> int:
        """`wrap_W`: the W-bit two's-complement value congruent to `value`."""
        return wrap_word(value, self.word_bits)

    def fits(self, value: int) -> bool:
        return self.word_min <= value <= self.word_max

    def check_words(self, where: str, values: Sequence[int]) -> None:
        """Refuse (`MlpcError`, one line) the first of `values` outside the W-bit range:
        nothing is wrapped or truncated, by any engine or by the compiler."""
        for i, v in enumerate(values):
            if not self.fits(v):
                raise MlpcError(f"{where} word {i} is {v}, outside the {self.word_bits}-bit "
                                f"range [{self.word_min}, {self.word_max}]")


def wrap_word(value: int, word_bits: int) -> int:
    """Two's-complement wrap of an integer to `word_bits` bits."""
    half = 1 << (word_bits - 1)
    return ((value + half) & ((1 << word_bits) - 1)) - half


def canonical_pc(pc: int, memory_size: int) -> int:
    """The pc as every engine can represent it: -1 when halted, `m-2` for any pc past the last
    instruction (the network stores pc clamped to that range; both mean the same thing)."""
    if pc < 0:
        return -1
    return min(pc, memory_size - 2)


def tape_length_word(length: int, word_bits: int) -> int:
    """A tape length as the word eof() counts down; a one-line error when a tape is too long
    to be counted in a W-bit word (possible at W = 16 with --tape-in above 32,767)."""
    largest = (1 << (word_bits - 1)) - 1
    if length > largest:
        raise MlpcError(f"input tape has {length} words: a program that uses eof() takes at "
                        f"most {largest} at W = {word_bits}")
    return length
