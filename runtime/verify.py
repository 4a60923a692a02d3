"""`mlpc verify`: the machine-level engines in lock-step, and the first divergence if any.

Each engine is a `Stepper`: `step()` executes one SUBLEQ step and returns a `Snapshot` of the
machine (memory, pc, fault, step count, output tape so far).

- `reference`: `runtime.reference.step` on a `MachineState`;
- `numpy`: the compiled layers (`NumpyExecutor`) applied once to the state vector;
- `onnx`: the program compiled with `ExportOptions(unroll=1)` and run in onnxruntime one step
  per call, its `final_state` fed back as `resume_state` with a budget of one step, so the
  model's own input encoding, Loop and output decoding are all exercised.

After every step each engine's snapshot is compared with the first engine's (the reference
interpreter by default). For `.tl` programs the `source` engine (the AST interpreter) is
compared with a full-speed reference run on the final outputs, tape, status and detail.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import onnxruntime as ort

from mlpc.compiler.codegen import build_step_network, decode_state, encode_state
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.image import SubleqImage
from mlpc.compiler.machine_config import Fault, MachineConfig, Status, canonical_pc
from mlpc.compiler.model import compile_model
from mlpc.errors import MlpcError
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state
from mlpc.runtime.numpy_exec import NumpyExecutor
from mlpc.runtime.progress import Progress
from mlpc.runtime.report import RunReport
from mlpc.runtime.trace import CellNames, SourceMap

MACHINE_ENGINES = ("reference", "numpy", "onnx")
DEFAULT_STEPS = 2000
BUDGET = 10**12  # the step budget the network engines start from (never reached)
MAX_LISTED_CELLS = 8


@dataclass(frozen=True)
class Snapshot:
    """The machine after a step, as every engine can represent it."""

    memory: tuple[int, ...]
    pc: int  # canonical: -1 halted, at most m - 2
    fault: Fault
    steps: int
    tape_out: tuple[int, ...]

    @property
    def status(self) -> Status:
        if self.fault != Fault.NONE:
            return Status.FAULT
        return Status.HALTED if self.pc < 0 else Status.RUNNING


class Stepper(Protocol):
    name: str

    def step(self) -> Snapshot: ...


class ReferenceStepper:
    name = "reference"

    def __init__(self, image: SubleqImage, config: MachineConfig, words: Sequence[int],
                 inputs: dict[str, int], tape: Sequence[int]) -> None:
        self.config = config
        self.state = initial_state(config, words, tape)

    def step(self) -> Snapshot:
        reference.step(self.config, self.state)
        s = self.state
        return Snapshot(tuple(s.memory), canonical_pc(s.pc, self.config.memory), s.fault,
                        s.steps, tuple(s.tape_out))


class NumpyStepper:
    name = "numpy"

    def __init__(self, image: SubleqImage, config: MachineConfig, words: Sequence[int],
                 inputs: dict[str, int], tape: Sequence[int]) -> None:
        state = initial_state(config, words, tape)  # validates sizes and ranges
        net = build_step_network(config)
        self.layout = net.layout
        self.executor = NumpyExecutor(net.network)
        self.x = encode_state(net.layout, state.memory, tape, BUDGET)[None, :]
        self.tape_out: list[int] = []

    def step(self) -> Snapshot:
        self.x = self.executor.step(self.x)
        d = decode_state(self.layout, self.x[0])
        if d.out_event is not None:
            self.tape_out.append(d.out_event)
        m = self.layout.config.memory
        return Snapshot(d.memory, canonical_pc(d.pc, m), d.fault, BUDGET - d.budget,
                        tuple(self.tape_out))


class OnnxStepper:
    name = "onnx"

    def __init__(self, image: SubleqImage, config: MachineConfig, words: Sequence[int],
                 inputs: dict[str, int], tape: Sequence[int]) -> None:
        initial_state(config, words, tape)  # the same validation as the other engines
        model = compile_model(image, config, ExportOptions(unroll=1))
        meta = {p.key: p.value for p in model.metadata_props}
        scalars = json.loads(meta["state_layout"])["scalars"]
        self.budget_slot = int(scalars["budget"])
        self.pc_slot = int(scalars["pc1"])
        self.memory_size = config.memory
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # one step per call is latency-bound: a single thread is about twice as fast
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.feeds = {name: np.array([inputs[name]], dtype=np.int64) for name, _ in image.inputs}
        self.tape = np.array([list(tape)], dtype=np.int64).reshape(1, len(tape))
        self.state: np.ndarray | None = None
        self.steps = 0
        self.tape_out: list[int] = []

    def step(self) -> Snapshot:
        call = dict(self.feeds)
        call["max_steps"] = np.array(1, dtype=np.int64)
        if self.state is None:
            call["tape"] = self.tape
        else:
            call["tape"] = np.zeros((1, 0), dtype=np.int64)
            resume = self.state.copy()
            resume[:, self.budget_slot] = 1
            call["resume_state"] = resume
        out = dict(zip(self.outputs, self.session.run(None, call), strict=True))
        self.state = out["final_state"]
        self.steps += 1 - int(self.state[0, self.budget_slot])
        self.tape_out.extend(int(w) for w in out["output_tape"][0, : int(out["output_length"][0])])
        pc = int(self.state[0, self.pc_slot]) - 1
        return Snapshot(tuple(out["memory"][0].tolist()),
                        canonical_pc(pc, self.memory_size), Fault(int(out["fault"][0])),
                        self.steps, tuple(self.tape_out))


STEPPERS: dict[str, type[ReferenceStepper] | type[NumpyStepper] | type[OnnxStepper]] = {
    "reference": ReferenceStepper,
    "numpy": NumpyStepper,
    "onnx": OnnxStepper,
}


@dataclass(frozen=True)
class Difference:
    what: str  # "memory", "pc", "fault", "steps", "output"
    label: str  # e.g. "count (M[18])"
    expected: str
    actual: str


@dataclass(frozen=True)
class Divergence:
    step: int
    engine: str
    baseline: str
    pc: int  # the baseline's pc before the step
    instruction: tuple[int, int, int] | None
    where: str  # macro and source line of that pc, if known
    differences: tuple[Difference, ...]
    more_cells: int = 0  # differing memory cells not listed


@dataclass
class VerifyResult:
    program: str
    engines: tuple[str, ...]
    steps: int = 0  # steps compared
    final: Snapshot | None = None
    divergence: Divergence | None = None
    source_note: str = ""  # the .tl comparison with the source engine, or why it was skipped
    source_differences: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return self.divergence is None and not self.source_differences

    def render(self, step_limit: int) -> str:
        lines = []
        names = ", ".join(self.engines)
        if self.divergence is None:
            assert self.final is not None
            state = {Status.HALTED: "halted", Status.FAULT: "fault"}.get(
                self.final.status, f"still running, --steps {step_limit}")
            plural = "" if self.steps == 1 else "s"
            lines.append(f"agree: {names} for {self.steps} step{plural} ({state})")
        else:
            d = self.divergence
            lines.append(f"DIVERGENCE at step {d.step}: {d.engine} differs from {d.baseline}")
            ins = " ".join(str(w) for w in d.instruction) if d.instruction else "?"
            lines.append(f"  step {d.step} executed pc {d.pc}: {ins}"
                         + (f"   {d.where}" if d.where else ""))
            for diff in d.differences:
                what = f"{diff.what} {diff.label}" if diff.label else diff.what
                lines.append(f"  {what}: {d.baseline} {diff.expected}, {d.engine} {diff.actual}")
            if d.more_cells:
                lines.append(f"  ... and {d.more_cells} more memory cells")
        if self.source_note:
            lines.append(self.source_note)
        lines.extend(f"  {text}" for text in self.source_differences)
        return "\n".join(lines)


def compare(base: Snapshot, other: Snapshot, names: CellNames
            ) -> tuple[list[Difference], int]:
    """The differences of `other` from `base` (memory cells first, at most a few listed) and
    how many differing cells were left unlisted."""
    diffs: list[Difference] = []
    more = 0
    if base.memory != other.memory:
        a = np.asarray(base.memory, dtype=np.int64)
        b = np.asarray(other.memory, dtype=np.int64)
        if a.shape != b.shape:
            diffs.append(Difference("memory", "size", str(a.size), str(b.size)))
        else:
            cells = np.flatnonzero(a != b)
            for addr in cells[:MAX_LISTED_CELLS]:
                name = names.name(int(addr))
                label = f"{name} (M[{addr}])" if name else f"M[{addr}]"
                diffs.append(Difference("memory", label, str(a[addr]), str(b[addr])))
            more = max(0, len(cells) - MAX_LISTED_CELLS)
    if base.pc != other.pc:
        diffs.append(Difference("pc", "", str(base.pc), str(other.pc)))
    if base.fault != other.fault:
        diffs.append(Difference("fault", "", base.fault.describe(), other.fault.describe()))
    if base.steps != other.steps:
        diffs.append(Difference("step count", "", str(base.steps), str(other.steps)))
    if base.tape_out != other.tape_out:
        i = next((k for k, (x, y) in enumerate(zip(base.tape_out, other.tape_out, strict=False))
                  if x != y), min(len(base.tape_out), len(other.tape_out)))
        diffs.append(Difference("output", f"word {i}", _word(base.tape_out, i),
                                _word(other.tape_out, i)))
    return diffs, more


def _word(tape: tuple[int, ...], i: int) -> str:
    return str(tape[i]) if i < len(tape) else "(none)"


def lockstep(
    image: SubleqImage,
    config: MachineConfig,
    words: Sequence[int],
    inputs: dict[str, int],
    tape: Sequence[int],
    engines: Sequence[str],
    steps: int,
    show_progress: bool = False,
) -> VerifyResult:
    """Step every engine up to `steps` times (fewer if the machine stops), comparing each
    with the first after every step."""
    if not engines:
        raise MlpcError("no machine-level engines to compare")
    steppers: list[Stepper] = [STEPPERS[name](image, config, words, inputs, tape)
                               for name in engines]
    names = CellNames(image)
    source = SourceMap(image)
    result = VerifyResult(image.source_path, tuple(engines))
    memory = list(initial_state(config, words, tape).memory)
    pc = 0
    with Progress(steps, show_progress) as progress:
        for k in range(1, steps + 1):
            snaps = [s.step() for s in steppers]
            base = snaps[0]
            for stepper, snap in zip(steppers[1:], snaps[1:], strict=True):
                diffs, more = compare(base, snap, names)
                if diffs:
                    instruction = ((memory[pc], memory[pc + 1], memory[pc + 2])
                                   if 0 <= pc <= len(memory) - 3 else None)
                    span = source.span(pc) if pc >= 0 else None
                    where = ""
                    if span is not None:
                        parts = [source.macro(span)]
                        if span.line:
                            parts.append(f"line {span.line}: {source.source_line(span.line)}")
                        where = " ; ".join(p for p in parts if p)
                    result.divergence = Divergence(
                        k, stepper.name, steppers[0].name, pc, instruction, where,
                        tuple(diffs), more)
                    result.steps = k
                    result.final = base
                    return result
            result.steps = k
            result.final = base
            memory, pc = list(base.memory), base.pc
            progress.update(k)  # redrawn at most 10 times a second
            if base.status != Status.RUNNING:
                break
    return result


def compare_with_source(result: VerifyResult, reference_report: RunReport,
                        source_report: RunReport) -> None:
    """Compare a full reference run of a .tl program with the source engine."""
    if reference_report.status == "step-limit" or source_report.status == "step-limit":
        who = "reference" if reference_report.status == "step-limit" else "source"
        result.source_note = (f"source: not compared (the {who} engine did not finish within "
                              "--max-steps)")
        return
    diffs = []
    if reference_report.outputs != source_report.outputs:
        for (name, want), (_, got) in zip(reference_report.outputs, source_report.outputs,
                                          strict=False):
            if want != got:
                diffs.append(f"output {name}: reference {want}, source {got}")
    if reference_report.tape != source_report.tape:
        diffs.append(f"tape: reference {list(reference_report.tape)[:20]}, "
                     f"source {list(source_report.tape)[:20]}")
    if (reference_report.status, reference_report.detail) != (source_report.status,
                                                               source_report.detail):
        diffs.append(f"status: reference {_status(reference_report)}, "
                     f"source {_status(source_report)}")
    if diffs:
        result.source_note = "DIVERGENCE from the source engine (final results):"
        result.source_differences = diffs
    else:
        outs = "".join(f", {n} = {v}" for n, v in reference_report.outputs)
        result.source_note = (f"source: agrees with the full reference run "
                              f"({_status(reference_report)}, {reference_report.steps} SUBLEQ "
                              f"steps, {_words(len(reference_report.tape))}{outs})")


def _words(n: int) -> str:
    return f"{n} output word{'' if n == 1 else 's'}"


def _status(report: RunReport) -> str:
    return f"{report.status}: {report.detail}" if report.detail else report.status
