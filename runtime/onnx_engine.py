"""Running compiled models: the `onnx` engine (onnxruntime) and the `numpy` engine (the same
layers executed by `runtime/numpy_exec.py`).

A model file is self-contained: `OnnxModel` reads what it needs (memory size, state layout,
named inputs and outputs, trap cells) from its `metadata_props`. Long runs go in chunks:
the model's `final_state` output is fed back as `resume_state`, which lets the CLI show
progress and keeps the per-step output events of one call small.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from mlpc.compiler.codegen import (
    MAX_BUDGET,
    build_step_network,
    decode_state,
    encode_state,
    read_out,
)
from mlpc.compiler.driver import compile_model, read_only_of
from mlpc.compiler.export_onnx import TAPE_LENGTH, ExportOptions, check_options
from mlpc.errors import MlpcError
from mlpc.runtime.engines import RunRequest, prepared_image, tape_length_word
from mlpc.runtime.machine import Fault, RunResult, initial_state
from mlpc.runtime.numpy_exec import NumpyExecutor
from mlpc.runtime.progress import TARGET_SECONDS, ChunkSizer, Progress
from mlpc.runtime.report import TRAP_KINDS, RunReport, report_from_machine

FIRST_CHUNK = 1024  # steps in the first call of a run (then sized by time)
MIN_CHUNK = 16
MAX_EVENT_STEPS = 1 << 22  # steps x batch items per call (64 MiB of output events)
STATUS_NAMES = {0: "step-limit", 1: "halted", 2: "fault", 3: "trap"}


@dataclass(frozen=True)
class BatchRun:
    """Results of one model run, one entry per batch item."""

    status: np.ndarray
    fault: np.ndarray
    steps: np.ndarray
    memory: np.ndarray
    tapes: tuple[tuple[int, ...], ...]
    outputs: tuple[tuple[str, np.ndarray], ...]
    trap: np.ndarray | None
    trap_line: np.ndarray | None

    def report(self, item: int = 0, engine: str = "onnx") -> RunReport:
        code = int(self.status[item])
        status = STATUS_NAMES[code]
        detail = ""
        if status == "fault":
            detail = Fault(int(self.fault[item])).describe()
        elif status == "trap" and self.trap is not None and self.trap_line is not None:
            kind = int(self.trap[item])
            detail = f"{TRAP_KINDS.get(kind, f'trap {kind}')} at line {int(self.trap_line[item])}"
        elif status == "step-limit":
            detail = f"stopped after {int(self.steps[item])} steps (max_steps)"
        outputs = tuple((name, int(v[item])) for name, v in self.outputs)
        return RunReport(outputs, self.tapes[item], status, detail, int(self.steps[item]), engine)


DEFAULT_THREADS = 1  # measured (benchmarks/run.py, thread study): one onnxruntime thread is
# as fast as all cores at batch 1 and faster at batch 64 on a 2-core machine; the ops of a
# step are small and sequential, so threads mostly add synchronisation


class OnnxModel:
    """An mlpc model loaded into onnxruntime (`threads`: onnxruntime's intra- and inter-op
    threads; 0 lets onnxruntime choose, i.e. all cores)."""

    def __init__(self, model: onnx.ModelProto | bytes | str,
                 threads: int = DEFAULT_THREADS) -> None:
        import onnxruntime as ort

        if isinstance(model, str):
            model = load_model_file(model)
        data = model if isinstance(model, bytes) else model.SerializeToString()
        proto = model if isinstance(model, onnx.ModelProto) else onnx.load_from_string(data)
        meta = {p.key: p.value for p in proto.metadata_props}
        if "state_layout" not in meta:
            raise MlpcError("this ONNX model was not made by mlpc (no state layout metadata)")
        refuse_step_model(meta, "this model")
        self.meta = meta
        layout = json.loads(meta["state_layout"])
        self.budget_slot = int(layout["scalars"]["budget"])
        self.inputs = tuple(json.loads(meta["inputs"]))
        self.output_names = tuple(json.loads(meta["outputs"]))
        tensors = json.loads(meta.get("tensor_names", '{"inputs": {}, "outputs": {}}'))
        self._input_tensor = {n: tensors["inputs"].get(n, n) for n in self.inputs}
        self._output_tensor = {n: tensors["outputs"].get(n, n) for n in self.output_names}
        self.word_bits = int(meta["word_bits"])
        self.tape_in = int(meta["tape_in"])
        options = ort.SessionOptions()
        options.log_severity_level = 4  # errors are reported as MlpcError
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise MlpcError(f"onnxruntime cannot load the model: {exc}") from None
        self._outputs = [o.name for o in self.session.get_outputs()]
        # the program uses eof(): each item's tape length is fed (the tapes are padded)
        self.takes_tape_length = any(i.name == TAPE_LENGTH for i in self.session.get_inputs())

    def _fits(self, value: int) -> bool:
        return -(1 << (self.word_bits - 1)) <= value < (1 << (self.word_bits - 1))

    def _check_words(self, what: str, words: Sequence[int]) -> None:
        """W-bit words only: the network is exact for those (nothing is silently wrapped)."""
        low, high = -(1 << (self.word_bits - 1)), (1 << (self.word_bits - 1)) - 1
        for k, w in enumerate(words):
            if not self._fits(int(w)):
                raise MlpcError(f"{what} word {k} is {int(w)}, outside the {self.word_bits}-bit "
                                f"range [{low}, {high}]")

    def run(
        self,
        inputs: dict[str, Sequence[int]] | None = None,
        tapes: Sequence[Sequence[int]] = ((),),
        max_steps: int = 10_000_000,
        chunk: int | None = None,
        show_progress: bool = False,
        show_total: bool = False,
        target_s: float = TARGET_SECONDS,
    ) -> BatchRun:
        """Run a batch: `tapes` has one tape per item, `inputs` one value (or a sequence of
        one value per item) per named input.

        The batch size is the largest of `len(tapes)` and the inputs' lengths; each of them
        must be that size or 1, and a size of 1 (a single tape, a single value) is used for
        every item. Any other mismatch is an error (`MlpcError`), never a silent broadcast.

        The run is made of calls of the model, each continuing from the last one's
        `final_state`: `chunk` steps each, or (None) as many as take about `target_s`
        seconds (starting at `FIRST_CHUNK` steps, doubled or halved by the measured time), so
        that the progress display moves a few times a second. The results do not depend on
        the chunks. The display shows `max_steps` as its total only with `show_total`."""
        tapes = [tuple(t) for t in tapes] or [()]
        values_of = {name: np.atleast_1d(np.asarray(values, dtype=object))
                     for name, values in (inputs or {}).items()}
        for name, values in values_of.items():
            if values.ndim != 1:
                raise MlpcError(f"input {name}: expected one value per batch item, got an "
                                f"array of shape {values.shape}")
        unknown = sorted(set(values_of) - set(self.inputs))
        if unknown:
            raise MlpcError(f"unknown input {unknown[0]!r} (the program's inputs: "
                            f"{', '.join(self.inputs) or 'none'})")
        sizes = {"tapes": len(tapes), **{f"input {n}": len(v) for n, v in values_of.items()}}
        batch = max(sizes.values())
        wrong = [(what, size) for what, size in sizes.items() if size not in (1, batch)]
        if wrong:
            what, size = wrong[0]
            raise MlpcError(f"batch sizes differ: {what} has {size} items, the batch has "
                            f"{batch} (each input and the tapes must have {batch} items or 1)")
        if len(tapes) == 1:
            tapes = tapes * batch
        width = max((len(t) for t in tapes), default=0)
        tape = np.full((batch, width), -1, dtype=np.int64)
        for i, t in enumerate(tapes):
            if len(t) > self.tape_in:
                raise MlpcError(f"input tape has {len(t)} words but its capacity is "
                                f"{self.tape_in} (compile with --tape-in)")
            self._check_words(f"input tape {i}" if batch > 1 else "input tape", t)
            if self.takes_tape_length:
                tape_length_word(len(t), self.word_bits)
            tape[i, : len(t)] = t
        feeds: dict[str, np.ndarray] = {}
        for name in self.inputs:
            values = values_of.get(name)
            if values is None:
                raise MlpcError(f"missing input: {name}")
            for v in values:
                if not self._fits(int(v)):
                    raise MlpcError(f"input {name} = {int(v)} does not fit in {self.word_bits} "
                                    "bits")
            feeds[self._input_tensor[name]] = np.broadcast_to(
                np.asarray(values.tolist(), dtype=np.int64), (batch,)).copy()
        # the model caps its budget there too; beyond int64 the numpy arithmetic below fails
        max_steps = min(max(max_steps, 0), MAX_BUDGET)
        collected: list[list[int]] = [[] for _ in range(batch)]
        done = np.zeros(batch, dtype=np.int64)
        state = None
        going = np.ones(batch, dtype=bool)  # items still running, below the budget
        result: dict[str, np.ndarray] = {}
        # a call's output events are (steps, batch, 2) int64: at most MAX_EVENT_STEPS rows
        sizer = ChunkSizer(FIRST_CHUNK, target_s, smallest=MIN_CHUNK,
                           largest=max(FIRST_CHUNK, MAX_EVENT_STEPS // batch))
        with Progress(max_steps if show_total else None, show_progress) as progress:
            while True:
                # every item still running has run the same steps (a halted one fewer)
                remaining = (max_steps - int(done[going].max()) if state is not None
                             else max_steps)
                this = min(sizer.size if chunk is None else chunk, remaining)
                call = dict(feeds)
                call["max_steps"] = np.array(this, dtype=np.int64)
                if state is None:
                    call["tape"] = tape
                    if self.takes_tape_length:
                        call[TAPE_LENGTH] = np.array([len(t) for t in tapes], dtype=np.int64)
                else:
                    call["tape"] = np.zeros((batch, 0), dtype=np.int64)
                    call["resume_state"] = state  # the model gives each item `this` steps
                before = np.full(batch, this, dtype=np.int64)
                started = time.perf_counter()
                try:
                    values = self.session.run(None, call)
                except Exception as exc:  # onnxruntime raises its own exception types
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise MlpcError(f"onnxruntime failed to run the model: {first}") from None
                if chunk is None:
                    sizer.record(this, time.perf_counter() - started)
                out = dict(zip(self._outputs, values, strict=True))
                state = out["final_state"]
                done += before - state[:, self.budget_slot]
                lengths = out["output_length"]
                for i in range(batch):
                    collected[i].extend(int(w) for w in out["output_tape"][i, : lengths[i]])
                result = out
                progress.update(int(done.min()))
                going = (out["status"] == 0) & (done < max_steps)
                if not np.any(going):
                    break
        return BatchRun(
            status=result["status"],
            fault=result["fault"],
            steps=done,
            memory=result["memory"],
            tapes=tuple(tuple(c) for c in collected),
            outputs=tuple((n, result[self._output_tensor[n]]) for n in self.output_names),
            trap=result.get("trap"),
            trap_line=result.get("trap_line"),
        )


def refuse_step_model(meta: dict[str, str], what: str) -> None:
    """A step model (`mlpc compile --step-model`) holds one step, not a program: say so."""
    if meta.get("model_kind") == "step":
        raise MlpcError(f"{what} is a step model (state in, next_state out: apply it with "
                        f"onnxruntime); mlpc runs and describes full models (mlpc compile -o)")


def load_model_file(path: str) -> onnx.ModelProto:
    p = Path(path)
    if p.is_dir():
        raise MlpcError(f"{path}: is a directory, not a file")
    try:
        return onnx.load(str(p))
    except FileNotFoundError:
        raise MlpcError(f"{path}: no such file") from None
    except Exception as exc:  # truncated or corrupted protobuf
        raise MlpcError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None


def run_onnx(request: RunRequest) -> RunReport:
    """Compile the program's image for the request's machine (in the request's encoding and
    number type) and run it in onnxruntime."""
    return run_onnx_batch([request])[0]


def run_onnx_batch(requests: Sequence[RunRequest]) -> list[RunReport]:
    """Several runs of one program as one onnxruntime batch: the requests differ only in
    their inputs and tapes (the first one's program, machine, budget, encoding and progress
    settings are used for all); one report per request, in order."""
    first = requests[0]
    options = ExportOptions(weights=first.weights, dtype=first.dtype)
    model = OnnxModel(compile_model(first.program.image, first.config, options,
                                    first.specialise))
    return run_model_batch(model, [(r.inputs, r.tape) for r in requests], first.max_steps,
                           show_progress=first.show_progress, show_total=first.budget_given)


def run_model_batch(model: OnnxModel,
                    items: Sequence[tuple[tuple[tuple[str, int], ...], tuple[int, ...]]],
                    max_steps: int, show_progress: bool = False,
                    show_total: bool = False) -> list[RunReport]:
    """Items (named inputs, tape) as one batch of `model`: one report per item, in order.
    Every item names the same inputs."""
    names = [name for name, _ in items[0][0]] if items else []
    inputs = {name: [dict(given)[name] for given, _ in items] for name in names}
    run = model.run(inputs=inputs, tapes=[tape for _, tape in items], max_steps=max_steps,
                    show_progress=show_progress, show_total=show_total)
    return [run.report(i, "onnx") for i in range(len(items))]


def run_numpy(request: RunRequest) -> RunReport:
    """Run the compiled layers in numpy (int64 or float64, as the request says), one step
    at a time (output events collected); the final state goes through the read-out layers
    (the pending write landed, the status), as in the model."""
    image = request.program.image
    config = request.config
    words = prepared_image(request)
    state0 = initial_state(config, words, request.tape)  # validates sizes and ranges
    try:
        read_only = read_only_of(image, config) if request.specialise else None
        step = build_step_network(config, read_only)
        # the numpy engine runs the family form: refused in float64 where the exporter
        # refuses it (a partial sum could pass 2^53)
        check_options(step.network, ExportOptions(dtype=request.dtype))
    except ValueError as exc:
        raise MlpcError(str(exc)) from None
    dtype = np.float64 if request.dtype == "float64" else np.int64
    executor = NumpyExecutor(step.network, dtype=dtype)
    layout = step.layout
    x = encode_state(layout, state0.memory, request.tape, request.max_steps)[None, :]
    x = x.astype(dtype)
    oflag, oval = layout.index("oflag"), layout.index("oval")
    live, budget = layout.index("live"), layout.index("budget")
    budget0 = int(x[0, budget])
    H = 1 << (config.word_bits - 1)
    tape_out: list[int] = []
    with Progress(request.progress_total, request.show_progress) as progress:
        while True:
            x = executor.step(x)
            if x[0, oflag]:
                tape_out.append(int(x[0, oval]) - H)
            progress.update(budget0 - int(x[0, budget]))  # redraws at most 10 times a second
            if not x[0, live]:
                break
    d = decode_state(layout, x[0])
    # the memory and status as the model's read-out layers compute them (decode_state lands
    # the pending write in Python: the tests check that both agree)
    assert step.readout is not None
    memory, status = read_out(step, NumpyExecutor(step.readout, dtype=dtype).step(x)[0])
    result = RunResult(
        status=status,
        fault=d.fault,
        steps=budget0 - d.budget,
        tape_out=tuple(tape_out),
        memory=memory,
        pc=d.pc,
    )
    return report_from_machine(image, result, "numpy")


def is_model_path(paths: Sequence[str]) -> bool:
    return len(paths) == 1 and paths[0].endswith(".onnx")

