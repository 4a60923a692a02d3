"""The `onnx` engine (a program compiled, then run in onnxruntime by `OnnxModel`) and the
`numpy` engine (the same layers executed by `runtime/numpy_exec.py`), and reading model files
as `onnx.ModelProto` for the commands that look inside a model.
"""

from __future__ import annotations

import numpy as np
import onnx

from mlpc.compiler.codegen import decode_state, encode_state, read_out
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.export_onnx import check_options
from mlpc.compiler.model import compile_model, read_only_of, specialised_step
from mlpc.errors import MlpcError
from mlpc.runtime.machine import RunResult, initial_state
from mlpc.runtime.numpy_exec import NumpyExecutor
from mlpc.runtime.onnx_model import OnnxModel, read_model_bytes, run_model_batch
from mlpc.runtime.progress import Progress
from mlpc.runtime.report import RunReport, report_from_machine
from mlpc.runtime.request import RunRequest, prepared_image


def load_model_file(path: str) -> onnx.ModelProto:
    """A model file as a ModelProto (one-line errors: `read_model_bytes`'s, or unreadable)."""
    data = read_model_bytes(path)
    try:
        return onnx.load_from_string(data)
    except Exception as exc:  # truncated or corrupted protobuf
        raise MlpcError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None


def run_onnx(request: RunRequest) -> RunReport:
    """Compile the program's image for the request's machine (in the request's encoding and
    number type) and run it in onnxruntime. (`mlpc run` runs a batch as one onnxruntime batch
    through `run_model_batch`, with its cache of compiled models.)"""
    options = ExportOptions(weights=request.weights, dtype=request.dtype)
    model = OnnxModel(compile_model(request.program.image, request.config, options,
                                    request.specialise, request.runs))
    return run_model_batch(model, [(request.inputs, request.tape)], request.max_steps,
                           show_progress=request.show_progress,
                           show_total=request.budget_given)[0]


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
        step = specialised_step(config, read_only, request.dtype, request.runs)
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
    iterations = 0
    with Progress(request.progress_total, request.show_progress) as progress:
        while True:
            x = executor.step(x)
            iterations += int(x[0, live])
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
    return report_from_machine(image, result, "numpy", iterations)

