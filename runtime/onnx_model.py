"""A compiled model in onnxruntime: `OnnxModel` runs batches of a model file, in chunks, and
decodes their results.

A model file is self-contained: `OnnxModel` reads what it needs (memory size, state layout,
named inputs and outputs, trap cells) from its `metadata_props`, through onnxruntime. This
module imports neither the `onnx` package nor the compiler, so `mlpc run MODEL.onnx` (and a
run of a cached model) starts without them. Long runs go in chunks: the model's
`final_state` output is fed back as `resume_state`, which lets the CLI show progress and keeps
the per-step output events of one call small.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mlpc.compiler.limits import MAX_BUDGET, TAPE_LENGTH
from mlpc.compiler.machine_config import Fault, tape_length_word
from mlpc.errors import MlpcError
from mlpc.runtime.progress import TARGET_SECONDS, ChunkSizer, Progress
from mlpc.runtime.report import TRAP_KINDS, RunReport


class SerializableModel(Protocol):
    """An `onnx.ModelProto`, without importing onnx here."""

    def SerializeToString(self) -> bytes: ...  # noqa: N802 (protobuf's name)


FIRST_CHUNK = 1024  # steps in the first call of a run (then sized by time)
MIN_CHUNK = 16
# steps x batch items per call: 96 MiB of output events (live, flag, word per step)
MAX_EVENT_STEPS = 1 << 22
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
    iterations: np.ndarray | None = None  # the network iterations that ran the machine

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
        iterations = None if self.iterations is None else int(self.iterations[item])
        return RunReport(outputs, self.tapes[item], status, detail, int(self.steps[item]), engine,
                         iterations)


DEFAULT_THREADS = 1  # measured (benchmarks/run.py, thread study): one onnxruntime thread is
# as fast as all cores at batch 1 and faster at batch 64 on a 2-core machine; the ops of a
# step are small and sequential, so threads mostly add synchronisation


class OnnxModel:
    """An mlpc model loaded into onnxruntime (`threads`: onnxruntime's intra- and inter-op
    threads; 0 lets onnxruntime choose, i.e. all cores)."""

    def __init__(self, model: SerializableModel | bytes | str,
                 threads: int = DEFAULT_THREADS) -> None:
        import onnxruntime as ort  # here: the CLI imports this module on paths that do not run

        data = (read_model_bytes(model) if isinstance(model, str)
                else model if isinstance(model, bytes) else model.SerializeToString())
        options = ort.SessionOptions()
        options.log_severity_level = 4  # errors are reported as MlpcError
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = threads
        where = f"{model}: " if isinstance(model, str) else ""
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            text = str(exc)
            if "INVALID_PROTOBUF" in text or "Protobuf parsing failed" in text:
                raise MlpcError(f"{where}not a readable ONNX model (DecodeError)") from None
            raise MlpcError(f"{where}onnxruntime cannot load the model: {text}") from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if "state_layout" not in meta:
            raise MlpcError(f"{where}this ONNX model was not made by mlpc (no state layout "
                            "metadata)")
        refuse_step_model(meta, f"{model}" if isinstance(model, str) else "this model")
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
        iterations = np.zeros(batch, dtype=np.int64)
        state = None
        going = np.ones(batch, dtype=bool)  # items still running, below the budget
        result: dict[str, np.ndarray] = {}
        # a call's output events are (steps, batch, 3) int64: at most MAX_EVENT_STEPS rows
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
                if "iterations" in out:  # (a model compiled before this output has none)
                    iterations += out["iterations"]
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
            iterations=iterations if "iterations" in result else None,
        )


def refuse_step_model(meta: dict[str, str], what: str) -> None:
    """A step model (`mlpc compile --step-model`) holds one step, not a program: say so."""
    if meta.get("model_kind") == "step":
        raise MlpcError(f"{what} is a step model (state in, next_state out: apply it with "
                        f"onnxruntime); mlpc runs and describes full models (mlpc compile -o)")



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


def read_model_bytes(path: str) -> bytes:
    """A model file's bytes, with one-line errors for a missing file or a directory."""
    p = Path(path)
    if p.is_dir():
        raise MlpcError(f"{path}: is a directory, not a file")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise MlpcError(f"{path}: no such file") from None
    except OSError as exc:
        raise MlpcError(f"{path}: cannot read: {exc.strerror}") from None
