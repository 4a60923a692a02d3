"""The SUBLEQ memory image: the IR between the front ends (.tl lowering, assembler, .sq/.dec
loader) and the back ends (reference interpreter, network codegen, ONNX export)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CodeSpan:
    """Words [start, end) of the image came from `line` of the source (with a note, e.g. the
    macro instruction they implement)."""

    start: int
    end: int
    line: int
    note: str = ""


@dataclass(frozen=True)
class TrapInfo:
    """How the runtime recognises a trap: the program halts with the trap code stored at
    `code_address` (0 = no trap) and the source line at `line_address`."""

    code_address: int
    line_address: int


@dataclass(frozen=True)
class SubleqImage:
    """A memory image loaded at address 0, with what is known about its words."""

    words: tuple[int, ...]
    source_path: str = "<image>"
    symbols: tuple[tuple[str, int], ...] = ()  # name -> address, in address order
    spans: tuple[CodeSpan, ...] = ()
    inputs: tuple[tuple[str, int], ...] = ()  # named program inputs -> address
    outputs: tuple[tuple[str, int], ...] = ()  # named program outputs -> address
    # where every engine writes the run's input tape length before the first step (a `.tl`
    # program that uses eof(); None: no such cell)
    tape_length_address: int | None = None
    min_memory: int = 0  # words the program needs (image + stack); 0 = just the image
    default_extra: int = 1024  # words past the image in the default memory size
    trap: TrapInfo | None = None
    source_text: str = ""
    listing: str = ""
    # the words the program can write, as [start, end) ranges, when the front end knows
    # them (a `.tl` lowering; `--read-only` for other programs); None: not known
    writable: tuple[tuple[int, int], ...] | None = None
    # every operand word the program writes names a writable word (a `.tl` lowering patches
    # operands with addresses of variables, arrays and stack slots only): see ReadOnly
    direct_reads: bool = False

    def default_memory(self) -> int:
        if self.min_memory:
            return self.min_memory
        return len(self.words) + self.default_extra

    def symbol_table(self) -> dict[str, int]:
        return dict(self.symbols)

    def initial_words(self, inputs: Iterable[tuple[str, int]], tape_length: int) -> list[int]:
        """The words as a run starts: the named inputs' values at their addresses and the
        tape's length in its cell, if the program has one (what every engine loads)."""
        words = list(self.words)
        addresses = dict(self.inputs)
        for name, value in inputs:
            words[addresses[name]] = value
        if self.tape_length_address is not None:
            words[self.tape_length_address] = tape_length
        return words


def merge_ranges(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, non-empty, non-overlapping [start, end) ranges covering the same words."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)
