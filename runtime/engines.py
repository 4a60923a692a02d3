"""The engines behind `mlpc run --engine`: each runs a program and returns a report.

`get_engine` takes the names `mlpc run --engine` offers (`limits.ENGINE_NAMES`); it imports
the network engines (and with them onnx and onnxruntime) only when one is asked for.
"""

from __future__ import annotations

import time

from mlpc.compiler.lowering import LoweringOptions, stack_plan
from mlpc.compiler.machine_config import tape_length_word
from mlpc.compiler.tl_ast import uses_eof
from mlpc.errors import MlpcError
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state, result_of
from mlpc.runtime.progress import ChunkSizer, Progress
from mlpc.runtime.report import RunReport, report_from_machine
from mlpc.runtime.request import Engine, RunRequest, prepared_image
from mlpc.runtime.source_interp import run_source


def run_reference(request: RunRequest) -> RunReport:
    state = initial_state(request.config, prepared_image(request), request.tape)
    sizer = ChunkSizer(first=1 << 16)  # pieces of ~0.25 s: the progress display moves
    with Progress(request.progress_total, request.show_progress) as progress:
        while state.steps < request.max_steps and state.status == 0:
            piece = min(request.max_steps - state.steps, sizer.size)
            started = time.perf_counter()
            reference.run(request.config, state, state.steps + piece)
            sizer.record(piece, time.perf_counter() - started)
            progress.update(state.steps)
    return report_from_machine(request.program.image, result_of(state), "reference")


def run_source_engine(request: RunRequest) -> RunReport:
    """The AST interpreter (`runtime/source_interp.py`): .tl programs only, no SUBLEQ."""
    checked = request.program.checked
    if checked is None:
        raise MlpcError("the source engine runs .tl programs only")
    if uses_eof(checked.program.items):  # the same refusal as the compiled program's
        tape_length_word(len(request.tape), request.config.word_bits)
    return run_source(
        checked,
        dict(request.inputs),
        request.tape,
        request.max_steps,
        word_bits=request.config.word_bits,
        tape_out=request.config.tape_out,
        tape_in=request.config.tape_in,
        plan=stack_plan(checked, LoweringOptions(checked.word_bits,
                                                 request.program.options.stack)),
    )


def get_engine(name: str) -> Engine:
    if name == "reference":
        return run_reference
    if name == "source":
        return run_source_engine
    # the command line's start-up: onnx and onnxruntime only for the engines that need them
    # (the network engines import this module's neighbour `request`, not this module)
    from mlpc.runtime import onnx_engine

    if name == "onnx":
        return onnx_engine.run_onnx
    if name == "numpy":
        return onnx_engine.run_numpy
    raise MlpcError(f"unknown engine {name!r}")
