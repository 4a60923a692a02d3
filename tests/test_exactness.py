"""Exact without wraparound (issue 21 section 1): every product and every partial sum of
every op an exported step computes stays below 2^63 (int64) or 2^53 (float64).

Two checks that do not share code: the exporter's build-time proof (`compiler/exactness.py`,
summarised in each model's `exactness` metadata) for every example in every form, and an
independent evaluation of the exported step graph in Python integers on states of real runs,
which bounds every MatMul entry by sum |a| * |b| of the actual operands and compares the
result with onnxruntime's. A fold that the bound does not allow is refused."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnx.inliner
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from mlpc.compiler import export_families
from mlpc.compiler.codegen import build_step_network, encode_state
from mlpc.compiler.driver import load_program, machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.exactness import ExactnessError, Prover
from mlpc.compiler.export_onnx import build_step_model
from mlpc.compiler.image import SubleqImage
from mlpc.compiler.model import compile_model, read_only_of, specialised_step
from mlpc.compiler.network import Network, RangeError, SpaceBuilder, state_space
from mlpc.compiler.onnx_graph import Graph
from mlpc.compiler.options import CompileOptions
from mlpc.errors import MlpcError
from mlpc.runtime.machine import initial_state

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.tl"))
LIMITS = {"int64": 1 << 63, "float64": 1 << 53}
ENCODINGS = [("families", "int64"), ("families", "float64"), ("sparse", "int64")]


def _expected() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlpc_examples_expected",
                                                  ROOT / "examples" / "expected.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


SMALL = {e.name: e.small for e in _expected().EXAMPLES}


def _image(name: str) -> SubleqImage:
    return load_program([str(ROOT / "examples" / f"{name}.tl")], CompileOptions()).image


def _proof(model: onnx.ModelProto) -> dict:
    return json.loads({p.key: p.value for p in model.metadata_props}["exactness"])


# ---- the build-time proof, every example in every form --------------------------------------


def _assert_proven(name: str, weights: str, dtype: str, specialise: bool) -> None:
    image = _image(name)
    try:
        model = compile_model(image, machine_config(image),
                              ExportOptions(weights=weights, dtype=dtype), specialise)
    except MlpcError as exc:  # the network-level refusal of float64 (partial sums >= 2^53)
        assert dtype == "float64" and "float64 is not exact" in str(exc), str(exc)
        return
    proof = _proof(model)
    assert proof["dtype"] == dtype and proof["limit"] == LIMITS[dtype]
    assert proof["ops"] >= 8 * 10  # every arithmetic op of the 8 unrolled steps
    assert proof["largest"]["MatMul"] < LIMITS[dtype]
    assert max(proof["largest"].values()) < LIMITS[dtype]


@pytest.mark.parametrize("specialise", [False, True], ids=["universal", "specialised"])
@pytest.mark.parametrize("dtype", ["int64", "float64"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_families_models_are_proven_exact(name: str, dtype: str, specialise: bool) -> None:
    _assert_proven(name, "families", dtype, specialise)


@pytest.mark.parametrize("specialise", [False, True], ids=["universal", "specialised"])
@pytest.mark.parametrize("name", ["gcd", "fib_iter"])
def test_sparse_models_are_proven_exact(name: str, specialise: bool) -> None:
    _assert_proven(name, "sparse", "int64", specialise)


@pytest.mark.slow
@pytest.mark.parametrize("specialise", [False, True], ids=["universal", "specialised"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_sparse_models_of_every_example_are_proven_exact(name: str, specialise: bool) -> None:
    _assert_proven(name, "sparse", "int64", specialise)


def test_dense_model_is_proven_exact() -> None:
    _assert_proven("fib_iter", "dense", "int64", True)


def test_sparse_refuses_a_memory_whose_row_sums_pass_2_63() -> None:
    """A sparse row sum counts each family of a reduction whole (S * m^2 / 2 per half-tent
    family): at m = 40,000 that passes 2^63, which the old exporter left to wraparound. The
    families encoding combines each word first and is proven at the same memory."""
    image = _image("gcd")
    config = machine_config(image, memory=40_000)
    with pytest.raises(MlpcError, match=r"^MatMul .*2\^63\+.* int64 is not exact .*--weights "
                                        r"families\)$"):
        compile_model(image, config, ExportOptions(weights="sparse"))
    assert _proof(compile_model(image, config))["largest"]["MatMul"] < 1 << 63


# ---- the independent check: real states, exact integers ----------------------------------


def _ints(array: np.ndarray) -> np.ndarray:
    """An integer-valued array as Python integers (a float that is not whole fails)."""
    a = np.asarray(array)
    if a.dtype.kind == "f":
        assert np.all(np.round(a) == a), "a non-integer value"
    return np.vectorize(int, otypes=[object])(a) if a.size else a.astype(object)


def evaluate(model: onnx.ModelProto, state: np.ndarray) -> tuple[np.ndarray, int]:
    """The step model on `state` ([batch, n], int64) in exact Python integers: the next
    state and the largest magnitude any op can have passed through, from the actual
    operands: sum |a| * |b| of each MatMul entry (every partial sum and product is at most
    that, in any order), |value| of every other computed value."""
    graph = onnx.inliner.inline_local_functions(model).graph
    env = {t.name: _ints(numpy_helper.to_array(t)) for t in graph.initializer}
    env["state"] = _ints(state)
    worst = 0
    for node in graph.node:
        x = [env[n] for n in node.input]
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        op = node.op_type
        if op == "Constant":
            out = [_ints(numpy_helper.to_array(a["value"]))]
        elif op == "MatMul":
            out = [np.matmul(x[0], x[1])]
            worst = max(worst, int(np.max(np.matmul(np.abs(x[0]), np.abs(x[1])))))
        elif op in ("Add", "Sub", "Mul", "Max"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Max": np.maximum}[op]
            out = [f(x[0], x[1])]
        elif op == "Relu":
            out = [np.maximum(x[0], 0)]
        elif op in ("Identity", "Cast"):  # exact integers need no conversion
            out = [x[0]]
        elif op == "Shape":
            out = [np.array(x[0].shape[a.get("start", 0):a.get("end")], dtype=object)]
        elif op == "Expand":
            out = [np.broadcast_to(x[0], tuple(int(s) for s in x[1]))]
        elif op == "Concat":
            out = [np.concatenate(x, axis=a["axis"])]
        elif op == "Split":
            out = np.split(x[0], np.cumsum([int(s) for s in x[1]])[:-1], axis=a["axis"])
        elif op == "Slice":
            index = [slice(None)] * x[0].ndim
            for s, e, axis in zip(x[1], x[2], x[3], strict=True):
                index[int(axis)] = slice(int(s), int(e))
            out = [x[0][tuple(index)]]
        elif op == "Unsqueeze":
            out = [np.expand_dims(x[0], tuple(int(i) for i in x[1]))]
        elif op == "Reshape":
            shape = [int(s) or x[0].shape[i] for i, s in enumerate(x[1])]
            out = [x[0].reshape(shape)]
        elif op == "GatherElements":
            out = [np.take_along_axis(x[0], x[1].astype(np.int64), axis=a["axis"])]
        else:
            raise AssertionError(f"the step has an op this check does not know: {op}")
        for name, value in zip(node.output, out, strict=True):
            env[name] = value
            if op not in ("Shape",) and value.size:
                worst = max(worst, int(np.max(np.abs(value))))
    return env["next_state"], worst


def _real_states(name: str, network: Network, layout: object, session: ort.InferenceSession,
                 steps: int) -> np.ndarray:
    """The states of the example's small run after 0, 1, ..., steps - 1 steps (the step
    model applied by onnxruntime from the encoded initial state)."""
    image = _image(name)
    run = SMALL[name]
    words = list(image.words)
    for var, addr in image.inputs:
        words[addr] = dict(run.inputs).get(var, words[addr])
    cfg = layout.config  # type: ignore[attr-defined]
    state = initial_state(cfg, words, list(run.tape_words))
    x = encode_state(layout, state.memory, run.tape_words, 10_000)[None, :]  # type: ignore[arg-type]
    out = []
    for _ in range(steps):
        out.append(x[0])
        x = session.run(None, {"state": x})[0]
    return np.stack(out)


CASES = [("gcd", w, d, s) for w, d in ENCODINGS for s in (False, True)] + [
    ("bubble_sort", "families", "int64", False), ("fizzbuzz", "families", "float64", False),
    ("fib_iter", "dense", "int64", True)]


@pytest.mark.parametrize(("name", "weights", "dtype", "specialise"), CASES,
                         ids=[f"{n}-{w}-{d}-{'spec' if s else 'univ'}" for n, w, d, s in CASES])
def test_real_steps_stay_within_the_proven_bound(name: str, weights: str, dtype: str,
                                                 specialise: bool) -> None:
    image = _image(name)
    cfg = machine_config(image)
    step = specialised_step(cfg, read_only_of(image, cfg) if specialise else None, dtype)
    model = build_step_model(step.network, ExportOptions(weights=weights, dtype=dtype))
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    states = _real_states(name, step.network, step.layout, session, 40)
    exact, seen = evaluate(model, states)
    assert np.array_equal(exact.astype(np.int64), session.run(None, {"state": states})[0])
    proven = max(_proof(model)["largest"].values())
    assert 0 < seen <= proven < LIMITS[dtype]


def test_the_old_folds_passed_2_63_on_real_states(monkeypatch: pytest.MonkeyPatch) -> None:
    """Folding every pending product, as the exporter did before the proof (f010992), puts
    MatMuls in gcd's step whose products pass 2^63 on real states: the independent check
    sees it, and the build-time check refuses such a model."""
    monkeypatch.setattr(export_families.FamilyEmitter, "_exact_on", lambda *_: True)
    monkeypatch.setattr(export_families.FamilyEmitter, "_exact_with", lambda *_: True)
    image = _image("gcd")
    step = build_step_network(machine_config(image))
    with pytest.raises(ExactnessError, match=r"^MatMul .*: a partial sum can reach \d+ "
                                             r"\(2\^8\d\+\), not below 2\^63"):
        build_step_model(step.network)
    with pytest.raises(MlpcError, match="int64 is not exact"):
        compile_model(image, machine_config(image))
    monkeypatch.setattr(Prover, "_check", lambda *_: None)  # build it anyway, unproven
    model = build_step_model(step.network)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    states = _real_states("gcd", step.network, step.layout, session, 5)
    exact, seen = evaluate(model, states)
    assert seen >= 1 << 70  # 2^77.99 on these states
    # onnxruntime still gets the right state, by wrapping modulo 2^64: what the proof removes
    assert np.array_equal(exact.astype(np.int64), session.run(None, {"state": states})[0])


# ---- the prover's rules ----------------------------------------------------------------------


def _prove(dtype: str, ops: list[tuple[str, list[str]]], given: dict[str, int],
           consts: dict[str, np.ndarray]) -> Prover:
    """A graph of `ops` (input "_": the previous op's output) over inputs [batch, 2, 1]
    whose entries are bounded by `given`, proven."""
    g = Graph()
    names = {n: g.const(n, v) for n, v in consts.items()}
    prover = Prover(dtype, g.arrays)
    prover.begin(g.nodes)
    for name, bound in given.items():
        prover.given(name, np.full((1, 2, 1), bound, dtype=object))
    last = ""
    for op, ins in ops:
        last = g.op(op, [names.get(i, i) if i != "_" else last for i in ins], op)
    prover.visit(g.nodes)
    return prover


def test_prover_bounds_a_matmul_by_its_absolute_terms() -> None:
    w = np.array([[3, -4]], dtype=np.int64)
    moved = _prove("float64", [("Identity", ["x"]), ("Max", ["_", "zero"])], {"x": 1 << 60},
                   {"zero": np.array(0.0)})
    assert moved.checked == 0  # nothing computed: no sum to bound (the input's own bound)
    ok = _prove("int64", [("Reshape", ["x", "shape"]), ("MatMul", ["w", "_"])],
                {"x": (1 << 63) // 7}, {"w": w, "shape": np.array([0, 2, 1])})
    assert ok.report()["largest"] == {"MatMul": 7 * ((1 << 63) // 7)}
    with pytest.raises(ExactnessError, match=r"partial sum can reach \d+ \(2\^63\+\)"):
        _prove("int64", [("Reshape", ["x", "shape"]), ("MatMul", ["w", "_"])],
               {"x": (1 << 63) // 7 + 1}, {"w": w, "shape": np.array([0, 2, 1])})
    with pytest.raises(ExactnessError, match=r"\(2\^53\+\), not below 2\^53: float64"):
        _prove("float64", [("Mul", ["x", "c"])], {"x": 1 << 50}, {"c": np.array(8.0)})


def test_prover_refuses_what_it_cannot_bound() -> None:
    with pytest.raises(ExactnessError, match="not integer-valued"):
        _prove("float64", [("Mul", ["x", "half"])], {"x": 4}, {"half": np.array(0.5)})
    with pytest.raises(ExactnessError, match="Where .*: no bound rule"):
        _prove("int64", [("Where", ["x", "x", "x"])], {"x": 4}, {})
    with pytest.raises(ExactnessError, match="no bound for 'y'"):
        _prove("int64", [("Add", ["x", "y"])], {"x": 4}, {})


def test_prover_checks_the_sum_of_an_add() -> None:
    p = _prove("int64", [("Add", ["x", "x"])], {"x": 1 << 61}, {})
    assert p.report() == {"dtype": "int64", "limit": 1 << 63, "ops": 1,
                          "largest": {"Add": 1 << 62}}
    with pytest.raises(ExactnessError):
        _prove("int64", [("Add", ["x", "x"]), ("Sub", ["_", "_"])], {"x": 1 << 61}, {})


def test_step_model_proof_is_in_its_metadata() -> None:
    image = _image("gcd")
    step = build_step_network(machine_config(image))
    proof = _proof(build_step_model(step.network, ExportOptions(dtype="float64")))
    assert proof["dtype"] == "float64" and proof["limit"] == 1 << 53
    # one step: its MatMuls and Adds, no more (the Loop model repeats them per unrolled step)
    model = build_step_model(step.network, ExportOptions(dtype="float64"))
    ops = [n.op_type for n in onnx.inliner.inline_local_functions(model).graph.node]
    assert 0 < proof["ops"] <= sum(op in ("MatMul", "Add", "Sub", "Mul") for op in ops)


def test_builder_refuses_a_definition_whose_partial_sums_pass_2_63() -> None:
    """A declared range is not enough: an executor that adds a definition's terms (the
    numpy engine, int64) forms partial sums up to the sum of their magnitudes."""
    state = state_space([("x", 0, 1 << 62), ("y", 0, (1 << 62) - 1)], [])
    fits = SpaceBuilder("s", False, state)
    assert fits.linear("z", fits.s("x") + fits.s("y"), 0, 1 << 62).scalars == (("z", 1),)
    b = SpaceBuilder("s", False, state_space([("x", 0, 1 << 62), ("y", 0, 1 << 62)], []))
    with pytest.raises(RangeError, match=r"s\.z: a partial sum can reach 9223372036854775808 "
                                         r">= 2\^63"):
        b.linear("z", b.s("x") + b.s("y"), 0, 1 << 62)
