"""What a user sees after a run, the same for every engine (docs/machine.md, `--json`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlpc.compiler.image import SubleqImage
from mlpc.compiler.machine_config import Status
from mlpc.errors import EXIT_OK, EXIT_STEP_LIMIT, EXIT_TRAP
from mlpc.runtime.machine import RunResult

TRAP_KINDS = {
    1: "division by zero",
    2: "index out of range",
    3: "stack overflow",
    4: "assertion failed",
}


@dataclass(frozen=True)
class RunReport:
    outputs: tuple[tuple[str, int], ...]
    tape: tuple[int, ...]
    status: str  # halted | trap | fault | step-limit
    detail: str
    steps: int
    engine: str
    # network iterations that ran the machine: steps for an engine without a network or a
    # model of one step per iteration, fewer where a specialised network ran straight-line
    # runs (None: a model too old to count them)
    iterations: int | None = None

    @property
    def exit_status(self) -> int:
        if self.status == "halted":
            return EXIT_OK
        if self.status == "step-limit":
            return EXIT_STEP_LIMIT
        return EXIT_TRAP

    def text(self) -> str:
        return tape_text(self.tape)

    def to_json(self) -> str:
        return json.dumps(
            {
                "outputs": dict(self.outputs),
                "tape": list(self.tape),
                "text": self.text(),
                "status": self.status,
                "detail": self.detail,
                "steps": self.steps,
                "iterations": self.steps if self.iterations is None else self.iterations,
                "engine": self.engine,
            }
        )


def tape_text(tape: tuple[int, ...] | list[int]) -> str:
    """The tape as text: each word one character; words that are not characters are shown as
    `\\u{N}` so nothing is silently dropped."""
    out = []
    for w in tape:
        if 0 <= w < 0x110000 and not 0xD800 <= w < 0xE000:
            out.append(chr(w))
        else:
            out.append(f"\\u{{{w}}}")
    return "".join(out)


def report_from_machine(image: SubleqImage, result: RunResult, engine: str,
                        iterations: int | None = None) -> RunReport:
    """Interpret a machine-level result through what the image says about itself: named
    outputs are read from memory, and a halt with a trap code set is a trap."""
    outputs = tuple((name, result.memory[addr]) for name, addr in image.outputs)
    status = result.status_name()
    detail = ""
    if result.status == Status.FAULT:
        detail = result.fault.describe()
    elif result.status == Status.HALTED and image.trap is not None:
        code = result.memory[image.trap.code_address]
        if code != 0:
            status = "trap"
            line = result.memory[image.trap.line_address]
            detail = f"{TRAP_KINDS.get(code, f'trap {code}')} at line {line}"
    elif status == "step-limit":
        detail = f"stopped after {result.steps} steps (max_steps)"
    return RunReport(outputs, result.tape_out, status, detail, result.steps, engine,
                     iterations)
