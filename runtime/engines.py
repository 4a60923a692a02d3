"""The engines behind `mlpc run --engine`: each runs a compiled image and returns a report.

Engines register themselves in `ENGINES`; the CLI offers exactly the registered names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlpc.compiler.driver import LoadedProgram
from mlpc.runtime import reference
from mlpc.runtime.machine import MachineConfig, initial_state, result_of
from mlpc.runtime.progress import Progress
from mlpc.runtime.report import RunReport, report_from_machine


@dataclass(frozen=True)
class RunRequest:
    """One run: the program, the machine it runs on, its inputs, tape and step budget."""

    program: LoadedProgram
    config: MachineConfig
    tape: tuple[int, ...] = ()
    inputs: tuple[tuple[str, int], ...] = ()  # named inputs -> values
    max_steps: int = 10_000_000
    show_progress: bool = False


Engine = Callable[[RunRequest], RunReport]


def prepared_image(request: RunRequest) -> list[int]:
    """The image words with the named inputs stored at their addresses."""
    words = list(request.program.image.words)
    addresses = dict(request.program.image.inputs)
    for name, value in request.inputs:
        words[addresses[name]] = value
    return words


def run_reference(request: RunRequest) -> RunReport:
    state = initial_state(request.config, prepared_image(request), request.tape)
    chunk = 1_000_000
    with Progress(request.max_steps, request.show_progress) as progress:
        while state.steps < request.max_steps and state.status == 0:
            target = min(request.max_steps, state.steps + chunk)
            reference.run(request.config, state, target)
            progress.update(state.steps)
    return report_from_machine(request.program.image, result_of(state), "reference")


ENGINES: dict[str, Engine] = {"reference": run_reference}


def engine_names() -> Sequence[str]:
    return tuple(ENGINES)
