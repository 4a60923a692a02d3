"""The `onnx` engine (a program compiled, then run in onnxruntime by `OnnxModel`) and the
`numpy` engine (the same layers executed by `runtime/numpy_exec.py`), and reading model files
as `onnx.ModelProto` for the commands that look inside a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from mlpc.compiler.codegen import build_step_network, decode_state, encode_state, read_out
from mlpc.compiler.driver import compile_model, read_only_of
from mlpc.compiler.export_onnx import ExportOptions, check_options
from mlpc.errors import MlpcError
from mlpc.runtime.engines import RunRequest, prepared_image
from mlpc.runtime.machine import RunResult, initial_state
from mlpc.runtime.numpy_exec import NumpyExecutor
from mlpc.runtime.onnx_model import OnnxModel, run_model_batch
from mlpc.runtime.progress import Progress
from mlpc.runtime.report import RunReport, report_from_machine


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

