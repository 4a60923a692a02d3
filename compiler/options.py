"""The options a program is compiled with (word size, stack, `--read-only`), from the files
a user names to its SUBLEQ image.

A leaf module: the driver takes them and the lowering reads them, so neither imports the
other for them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompileOptions:
    word_bits: int = 32
    stack: int | None = None  # words of stack for .tl programs (None: the default)
    # words declared never written, [start, end) ranges (`--read-only`, SUBLEQ code only)
    read_only: tuple[tuple[int, int], ...] = ()
