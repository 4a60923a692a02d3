"""`mlpc trace`: a program's run step by step, on the reference interpreter.

For every traced step: the step number, the pc, the SUBLEQ instruction `a b c`, the macro
instruction and source line its words came from (`SubleqImage.spans`; `.sq`/`.dec` images have
none), the memory cells the step changed (by name where the image knows one) and the word it
output. Steps before the window (`first`) run at full speed without a hook.

Cell names come from `SubleqImage.symbols` (the program's variables and labels) and, for
compiled `.tl` programs, from the data section of the annotated listing (compiler cells such
as `$Z`, `#1` or `$mul.a`, and `buf+2` for the cells after a labelled data block).
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlpc.compiler.image import CodeSpan, SubleqImage
from mlpc.compiler.machine_config import MachineConfig, Status
from mlpc.runtime import reference
from mlpc.runtime.machine import MachineState, initial_state, result_of
from mlpc.runtime.reference import StepEvent
from mlpc.runtime.report import RunReport, report_from_machine, tape_text

_DATA_LINE = re.compile(r"^(\S+):\s+(\d+): ")


class CellNames:
    """Address -> a readable name: a symbol, a listing data label, `label+k` inside a data
    block, else `M[address]`."""

    def __init__(self, image: SubleqImage) -> None:
        exact: dict[int, list[str]] = {}
        for name, address in image.symbols:
            exact.setdefault(address, []).append(name)
        data = _listing_data_labels(image.listing)
        named = set(exact)
        for name, address in data:
            if address not in named:  # the program's own names win over compiler labels
                exact.setdefault(address, []).append(name)
        self._exact = {a: "/".join(names) for a, names in exact.items() if names}
        # data blocks: each labelled data cell covers the words up to the next labelled one
        starts = sorted({a for _, a in data})
        self._block_starts = starts[:-1]  # the last label is the end of memory's layout
        self._block_names = [self._exact[a].split("/")[0] for a in self._block_starts]
        self._block_end = starts[-1] if starts else 0

    def name(self, address: int) -> str | None:
        """The cell's name, or None when nothing is known about it."""
        if address in self._exact:
            return self._exact[address]
        i = bisect.bisect_right(self._block_starts, address) - 1
        if i >= 0 and address < self._block_end:
            return f"{self._block_names[i]}+{address - self._block_starts[i]}"
        return None

    def label(self, address: int) -> str:
        return self.name(address) or f"M[{address}]"

    def address_of(self, name: str) -> int | None:
        for address, text in self._exact.items():
            if name in text.split("/"):
                return address
        return None


def _listing_data_labels(listing: str) -> list[tuple[str, int]]:
    """`name: address: value` lines after `; data` in a compiled program's listing."""
    lines = listing.splitlines()
    try:
        start = lines.index("; data")
    except ValueError:
        return []
    out = []
    for line in lines[start + 1 :]:
        m = _DATA_LINE.match(line)
        if m:
            out.append((m.group(1), int(m.group(2))))
    return out


class SourceMap:
    """pc -> the code span (macro instruction and source line) the word at pc belongs to."""

    def __init__(self, image: SubleqImage) -> None:
        self._spans = sorted(image.spans, key=lambda s: s.start)
        self._starts = [s.start for s in self._spans]
        self._lines = image.source_text.splitlines()

    def __bool__(self) -> bool:
        return bool(self._spans)

    def span(self, pc: int) -> CodeSpan | None:
        i = bisect.bisect_right(self._starts, pc) - 1
        if i >= 0 and pc < self._spans[i].end:
            return self._spans[i]
        return None

    def source_line(self, line: int) -> str:
        if 1 <= line <= len(self._lines):
            return self._lines[line - 1].strip()
        return ""

    def macro(self, span: CodeSpan) -> str:
        """The span's macro instruction; "" for assembly, whose note is the line itself."""
        return "" if span.note.strip() == self.source_line(span.line) else span.note

    @property
    def has_macros(self) -> bool:
        return any(self.macro(s) for s in self._spans)


@dataclass(frozen=True)
class Change:
    address: int
    name: str | None
    old: int
    new: int

    def text(self) -> str:
        return f"{self.name or f'M[{self.address}]'}: {self.old} -> {self.new}"


@dataclass(frozen=True)
class TraceStep:
    step: int
    pc: int
    a: int
    b: int
    c: int
    macro: str  # "" when the image has no spans
    line: int  # 0 when unknown
    source: str
    changes: tuple[Change, ...]
    output: int | None
    input: int | None
    next_pc: int
    input_cell: str = ""
    # the specialised network's iteration that executes this step (`run_starts` given)
    iteration: int | None = None
    run_length: int = 1  # the steps that iteration executes (a straight-line run: > 1)
    run_first: int = 0  # the number of that iteration's first step

    def effects(self) -> str:
        if self.input is not None:
            parts = [f"in {self.input} -> {self.input_cell}"]
        else:
            parts = [c.text() for c in self.changes]
        if self.output is not None:
            parts.append(f"out {self.output}{_char_note(self.output)}")
        if self.next_pc < 0:
            parts.append("halt")
        elif self.next_pc != self.pc + 3:
            parts.append(f"jump {self.next_pc}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "pc": self.pc,
            "instruction": [self.a, self.b, self.c],
            "macro": self.macro,
            "line": self.line,
            "source": self.source,
            "changes": [
                {"address": c.address, "name": c.name, "old": c.old, "new": c.new}
                for c in self.changes
            ],
            "input": self.input,
            "output": self.output,
            "next_pc": self.next_pc,
            **({} if self.iteration is None else {"iteration": self.iteration,
                                                 "iteration_steps": self.run_length}),
        }


def _char_note(word: int) -> str:
    if 32 <= word < 127:
        return f" {chr(word)!r}"
    if word == 10:
        return " '\\n'"
    return ""


@dataclass
class Trace:
    """A traced run: the steps in the window, the memory at the window's start (for plots)
    and the outcome."""

    image: SubleqImage
    config: MachineConfig
    first: int
    last: int
    steps: list[TraceStep] = field(default_factory=list)
    window_memory: list[int] = field(default_factory=list)  # memory before step `first`
    state: MachineState | None = None
    report: RunReport | None = None
    has_spans: bool = False  # a source line per step
    has_macros: bool = False  # a macro instruction per step (compiled .tl programs)

    def to_json(self) -> str:
        assert self.report is not None and self.state is not None
        return json.dumps({
            "program": self.image.source_path,
            "from": self.first,
            "to": self.last,
            "trace": [s.to_dict() for s in self.steps],
            "status": self.report.status,
            "detail": self.report.detail,
            "steps": self.state.steps,
            "pc": self.state.pc,
            "tape": list(self.state.tape_out),
            "text": tape_text(self.state.tape_out),
            "outputs": dict(self.report.outputs),
        })

    def render(self) -> str:
        assert self.report is not None and self.state is not None
        out = [_header(self.has_spans, self.has_macros)]
        last_line = -1
        shown_iteration = None
        for s in self.steps:
            if s.iteration is not None and s.run_length > 1 and s.iteration != shown_iteration:
                out.append(f"; iteration {s.iteration}: steps {s.run_first} to "
                           f"{s.run_first + s.run_length - 1}, a straight-line run, one pass "
                           "of the network")
            shown_iteration = s.iteration
            if self.has_spans and s.line and s.line != last_line:
                out.append(f"; {s.line}: {s.source}")
            last_line = s.line if s.line else last_line
            out.append(format_step(s, self.has_spans, self.has_macros))
        out.append(self.summary())
        return "\n".join(out)

    def summary(self) -> str:
        assert self.report is not None and self.state is not None
        report, state = self.report, self.state
        if state.status == Status.RUNNING:
            text = f"; still running after {_steps(state.steps)} (pc {state.pc})"
        else:
            detail = f": {report.detail}" if report.detail else ""
            where = f" at pc {state.pc}" if state.status == Status.FAULT else ""
            text = f"; {report.status}{detail}{where} after {_steps(state.steps)}"
        if state.tape_out:
            text += f"; {output_summary(state.tape_out)}"
        for name, value in report.outputs:
            text += f"; {name} = {value}"
        return text


MACRO_WIDTH = 28


def _steps(n: int) -> str:
    return f"{n} step{'' if n == 1 else 's'}"


SUMMARY_CHARS = 60
SUMMARY_WORDS = 16


def output_summary(tape: Sequence[int]) -> str:
    """The output tape in a few words: as quoted text when every word is a printable
    character (or a newline or tab), else as integers; long tapes are cut short."""
    n = len(tape)
    count = f"{n} word{'s' if n != 1 else ''}"
    if all(32 <= w < 127 or w in (9, 10) for w in tape):
        text = json.dumps("".join(map(chr, tape[:SUMMARY_CHARS])))
        more = " ..." if n > SUMMARY_CHARS else ""
        return f"output {text}{more}"
    words = " ".join(str(w) for w in tape[:SUMMARY_WORDS])
    more = " ..." if n > SUMMARY_WORDS else ""
    return f"output ({count}): {words}{more}"


def _header(spans: bool, macros: bool) -> str:
    cols = f"{'step':>7} {'pc':>6}: {'a':>6} {'b':>6} {'c':>6}"
    if spans:
        cols += f"  {'line':>4}"
    if macros:
        cols += f"  {'macro':<{MACRO_WIDTH}}"
    return f";{cols[1:]}  changes"


def format_step(s: TraceStep, spans: bool, macros: bool) -> str:
    text = f"{s.step:>7} {s.pc:>6}: {s.a:>6} {s.b:>6} {s.c:>6}"
    if spans:
        line = str(s.line) if s.line else ""
        text += f"  {line:>4}"
    if macros:
        text += f"  {s.macro:<{MACRO_WIDTH}}"
    return f"{text}  {s.effects()}".rstrip()


class Iterations:
    """Which iteration of a specialised network executes each step: at an iteration's
    start, a straight-line run starting at pc (`run_starts`: its length) is one iteration
    when the budget left holds it, else the step is (docs/network.md, "Many steps per
    iteration")."""

    def __init__(self, run_starts: dict[int, int], budget: int) -> None:
        self.starts = run_starts
        self.budget = budget
        self.number = 0
        self.end = 0  # the last step of the current iteration
        self.length = 1

    def of(self, step: int, pc: int) -> tuple[int, int, int]:
        """(iteration, its steps, its first step) of step number `step` (1-based) at `pc`."""
        if step > self.end:
            length = self.starts.get(pc, 1)
            self.length = length if length <= self.budget - (step - 1) else 1
            self.number += 1
            self.end = step - 1 + self.length
        return self.number, self.length, self.end - self.length + 1


def trace_run(
    image: SubleqImage,
    config: MachineConfig,
    words: list[int],
    tape: tuple[int, ...],
    steps: int,
    first: int = 1,
    last: int | None = None,
    run_starts: dict[int, int] | None = None,
) -> Trace:
    """Run at most `steps` steps; record steps `first..last` (1-based, inclusive). With
    `run_starts` (a specialised network's straight-line runs: start -> length), each step
    says which iteration of the network executes it."""
    last = steps if last is None else min(last, steps)
    state = initial_state(config, words, tape)
    names = CellNames(image)
    source = SourceMap(image)
    trace = Trace(image, config, first, last, has_spans=bool(source),
                  has_macros=source.has_macros)
    iterations = Iterations(run_starts, steps) if run_starts is not None else None
    if first > 1:
        if iterations is None:
            reference.run(config, state, min(first - 1, last))
        else:  # every step counts towards the iterations
            reference.run(config, state, min(first - 1, last),
                          hook=lambda e: iterations.of(e.step, e.pc))
    trace.window_memory = list(state.memory)

    def hook(event: StepEvent) -> None:
        span = source.span(event.pc)
        changes = tuple(
            Change(addr, names.name(addr), old, new)
            for addr, old, new in event.writes
            if old != new
        )
        trace.steps.append(TraceStep(
            step=event.step,
            pc=event.pc,
            a=event.a,
            b=event.b,
            c=event.c,
            macro=source.macro(span) if span else "",
            line=span.line if span else 0,
            source=source.source_line(span.line) if span else "",
            changes=changes,
            output=event.output,
            input=event.writes[0][2] if event.a == -1 and event.writes else None,
            next_pc=event.next_pc,
            input_cell=names.label(event.b) if event.a == -1 else "",
            **({} if iterations is None else dict(zip(("iteration", "run_length", "run_first"),
                                                      iterations.of(event.step, event.pc),
                                                      strict=True))),
        ))

    if state.steps < last:
        reference.run(config, state, last, hook=hook)
    trace.state = state
    trace.report = report_from_machine(image, result_of(state), "reference")
    return trace
