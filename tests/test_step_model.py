"""The step as its own model (`mlpc compile --step-model`, issue 12 item 2): one step,
state in -> next_state out, applied n times with plain onnxruntime from `encode_state`;
every state equals the numpy layers', the decoded machine equals the reference
interpreter's, and the last state equals the Loop model's `final_state`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import assert_state_matches

from mlpc.compiler.assembler import load_image
from mlpc.compiler.codegen import build_step_network, encode_state
from mlpc.compiler.driver import load_program, machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.export_onnx import build_step_model
from mlpc.compiler.image import SubleqImage
from mlpc.compiler.model import compile_model, compile_step_model, tensor_name
from mlpc.compiler.options import CompileOptions
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state
from mlpc.runtime.numpy_exec import NumpyExecutor

ROOT = Path(__file__).resolve().parent.parent
ENCODINGS = [("families", "int64"), ("families", "float64"), ("sparse", "int64")]
ENCODING_IDS = [f"{w}-{d}" for w, d in ENCODINGS]


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def round_trip(image: SubleqImage, weights: str, dtype: str, steps: int,
               tape: tuple[int, ...] = (), inputs: dict[str, int] | None = None) -> None:
    """Apply the step model `steps` times from the encoded initial state, comparing every
    state with the numpy executor and the reference interpreter, then the last one with the
    Loop model's final_state for the same budget."""
    cfg = machine_config(image)
    options = ExportOptions(unroll=4, weights=weights, dtype=dtype)
    step_model = compile_step_model(cfg, options)
    meta = {p.key: p.value for p in step_model.metadata_props}
    step_net = build_step_network(cfg)
    assert json.loads(meta["state_layout"])["n_state"] == step_net.layout.size
    assert meta["model_kind"] == "step"
    session = _session(step_model)
    executor = NumpyExecutor(step_net.network)
    inputs = inputs or {}
    words = list(image.words)
    for name, addr in image.inputs:
        words[addr] = inputs.get(name, words[addr])
    state = initial_state(cfg, words, list(tape))
    x = encode_state(step_net.layout, state.memory, tape, steps)[None, :]
    out: list[int] = []
    for i in range(steps):
        x_next = session.run(None, {"state": x})[0]
        where = f"{weights}-{dtype} after step {i + 1}"
        assert x_next.dtype == np.int64, where
        assert np.array_equal(x_next, executor.step(x)), where
        x = x_next
        reference.step(cfg, state)
        assert_state_matches(step_net.layout, x[0], state, out, steps, where)
    full = _session(compile_model(image, cfg, options))
    feeds: dict[str, np.ndarray] = {"max_steps": np.array(steps, dtype=np.int64)}
    for name, addr in image.inputs:
        feeds[tensor_name(name, "input")] = np.array([words[addr]], dtype=np.int64)
    if tape:
        feeds["tape"] = np.array([tape], dtype=np.int64)
    names = [o.name for o in full.get_outputs()]
    final = dict(zip(names, full.run(None, feeds), strict=True))["final_state"]
    assert np.array_equal(final, x)


@pytest.mark.parametrize(("weights", "dtype"), ENCODINGS, ids=ENCODING_IDS)
def test_step_model_round_trip_on_corpus(subleq_corpus: Path, weights: str, dtype: str
                                         ) -> None:
    image = load_image([str(subleq_corpus / "hello.dec")])
    round_trip(image, weights, dtype, 80)


@pytest.mark.parametrize(("weights", "dtype"), ENCODINGS, ids=ENCODING_IDS)
def test_step_model_round_trip_on_example(weights: str, dtype: str) -> None:
    image = load_program([str(ROOT / "examples" / "gcd.tl")], CompileOptions()).image
    round_trip(image, weights, dtype, 40, inputs={"a": 1071, "b": 462})


def test_step_model_batch_and_dense() -> None:
    """A batch of different machines through one session; dense weights too."""
    image = SubleqImage(words=(0, 0, -1))
    cfg = machine_config(image, 12, 16, 2, 2)
    step_net = build_step_network(cfg)
    rng = np.random.default_rng(12)
    x = np.stack([encode_state(step_net.layout, list(rng.integers(-3, 15, size=12)),
                               [int(rng.integers(-5, 5))], 100) for _ in range(16)])
    sessions = [_session(build_step_model(step_net.network, ExportOptions(weights=w)))
                for w in ("dense", "sparse")]
    executor = NumpyExecutor(step_net.network)
    for _ in range(25):
        expected = executor.step(x)
        for s in sessions:
            assert np.array_equal(s.run(None, {"state": x})[0], expected)
        x = expected


def test_step_model_is_one_step_with_own_weights() -> None:
    """No Loop, no outer scope: the layers as calls of local functions (affine maps and
    ReLUs) whose weights are the model's own initializers; one input and one output, listed
    by onnxruntime."""
    image = SubleqImage(words=(0, 0, -1))
    model = compile_step_model(machine_config(image, 8, 16, 0, 0))
    calls = [n.op_type for n in model.graph.node if n.domain == "mlpc"]
    assert calls == ["layer1", "layer2", "layer3", "next_state"]
    assert "Loop" not in {n.op_type for n in model.graph.node}
    assert {n.op_type for f in model.functions for n in f.node} & {"Relu", "Max"}
    assert len(model.graph.initializer) > 0
    session = _session(model)
    assert [i.name for i in session.get_inputs()] == ["state"]
    assert [o.name for o in session.get_outputs()] == ["next_state"]


def test_cli_writes_a_step_model(tmp_path: Path) -> None:
    step_path, full_path = tmp_path / "step.onnx", tmp_path / "full.onnx"
    mlpc = [sys.executable, "-m", "mlpc.cli"]
    prog = str(ROOT / "examples" / "gcd.tl")
    done = subprocess.run([*mlpc, "compile", prog, "--step-model", str(step_path),
                           "-o", str(full_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"wrote {step_path}" in done.stderr and "one step" in done.stderr
    step = onnx.load(str(step_path))
    full = onnx.load(str(full_path))
    layout = {p.key: p.value for p in full.metadata_props}["state_layout"]
    assert {p.key: p.value for p in step.metadata_props}["state_layout"] == layout
    ran = subprocess.run([*mlpc, "run", str(step_path)], capture_output=True, text=True,
                         check=False)
    assert ran.returncode != 0 and "step model" in ran.stderr
    neither = subprocess.run([*mlpc, "compile", prog], capture_output=True, text=True,
                             check=False)
    assert neither.returncode == 2 and "--step-model" in neither.stderr
