"""One run of a program as the engines take it (`RunRequest`), and the memory image it
starts from.

Below every engine: the machine-level and source engines (`runtime/engines.py`) and the
network engines (`runtime/onnx_engine.py`) take the same request, and neither imports the
other for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlpc.compiler.driver import LoadedProgram
from mlpc.compiler.limits import DTYPES, WEIGHTS
from mlpc.compiler.machine_config import DEFAULT_MAX_STEPS, MachineConfig, tape_length_word
from mlpc.runtime.report import RunReport


@dataclass(frozen=True)
class RunRequest:
    """One run: the program, the machine it runs on, its inputs, tape and step budget, and
    for the network engines the encoding of the network (`weights`, onnx only) and its
    number type (`dtype`, onnx and numpy)."""

    program: LoadedProgram
    config: MachineConfig
    tape: tuple[int, ...] = ()
    inputs: tuple[tuple[str, int], ...] = ()  # named inputs -> values
    max_steps: int = DEFAULT_MAX_STEPS
    show_progress: bool = False
    budget_given: bool = False  # the user chose max_steps: the progress display shows it
    weights: str = WEIGHTS[0]  # one of limits.WEIGHTS
    dtype: str = DTYPES[0]  # one of limits.DTYPES
    specialise: bool = False  # the network specialised to the program's constant words
    runs: bool = True  # specialised: a straight-line run per iteration where one starts

    @property
    def progress_total(self) -> int | None:
        """The total the progress display shows: the step budget when the user set it."""
        return self.max_steps if self.budget_given else None


Engine = Callable[[RunRequest], RunReport]


def prepared_image(request: RunRequest) -> list[int]:
    """The image words with the named inputs stored at their addresses, and the tape's
    length in its cell when the program has one (it uses eof())."""
    image = request.program.image
    length = len(request.tape)
    if image.tape_length_address is not None:
        length = tape_length_word(length, request.config.word_bits)
    return image.initial_words(request.inputs, length)
