"""The compiled program's stack, as the lowering lays it out and the source interpreter
accounts for it: the default size, and the words each recursive call pushes.

A leaf module: the lowering decides a `StackPlan` (`lowering.stack_plan`) and the source
interpreter, the oracle the lowering is tested against, runs out of stack at the same call
with it, without importing the lowering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlpc.errors import SourcePos

DEFAULT_STACK_FRAMES = 256  # default stack: 256 nested saves of the largest frame


@dataclass(frozen=True)
class StackPlan:
    """The compiled program's stack, for the source engine to run out of it at the same call:
    its size in words, and the words each recursive call pushes (by the position of its
    `Call` node; a call not listed pushes nothing and cannot overflow). A call traps when its
    words do not fit on top of those its unfinished callers pushed."""

    words: int
    pushes: Mapping[SourcePos, int]  # saved cells plus the callee's local arrays
