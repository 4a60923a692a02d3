"""The network engine against its oracle, the reference interpreter: lock-step on random
machine states (every step compared), the SUBLEQ corpora through stock onnxruntime, the
weights' independence of the program, and the honesty of the loop body."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
import onnxruntime as ort
import pytest
from conftest import MANY_PHASES, assert_state_matches
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from mlpc.compiler.assembler import load_image
from mlpc.compiler.codegen import build_step_network, encode_state
from mlpc.compiler.driver import machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.image import SubleqImage
from mlpc.compiler.machine_config import Fault, MachineConfig, Status
from mlpc.compiler.model import compile_model
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state
from mlpc.runtime.numpy_exec import NumpyExecutor
from mlpc.runtime.onnx_model import OnnxModel

BUDGET = 10**9
# the exported encodings: weights and number type
ENCODINGS = [("families", "int64"), ("families", "float64"), ("sparse", "int64"),
             ("dense", "int64")]
ENCODING_IDS = [f"{w}-{d}" for w, d in ENCODINGS]


def lockstep(cfg: MachineConfig, image: list[int], tape: list[int], steps: int,
             dtype: type = np.int64) -> None:
    """Run the reference interpreter and the numpy layers (in `dtype`) side by side,
    comparing memory, pc, fault, step count and output tape after every step; bounds checked
    on every value, and in float64 every state value must be an integer (exact)."""
    step_net = build_step_network(cfg)
    executor = NumpyExecutor(step_net.network, check=True, dtype=dtype)
    state = initial_state(cfg, image, tape)
    x = encode_state(step_net.layout, state.memory, tape, BUDGET)[None, :].astype(dtype)
    out: list[int] = []
    for i in range(steps):
        reference.step(cfg, state)
        x = executor.step(x)
        where = f"after step {i + 1}"
        assert x.dtype == dtype, where
        assert np.array_equal(x, np.round(x)), where
        assert_state_matches(step_net.layout, x[0], state, out, BUDGET, where)


@st.composite
def machines(draw: st.DrawFn) -> tuple[MachineConfig, list[int], list[int]]:
    bits = draw(st.sampled_from((16, 32)))
    m = draw(st.integers(3, 20))
    cfg = MachineConfig(memory=m, word_bits=bits, tape_in=draw(st.integers(0, 3)),
                        tape_out=draw(st.integers(0, 4)))
    lo, hi = cfg.word_min, cfg.word_max
    # mostly addresses near the memory (so instructions run, jump, do I/O and fault), some
    # values at the edges of the W-bit range (wrap-around), some anywhere
    word = st.one_of(
        st.integers(-3, m + 2),
        st.integers(-3, m + 2),
        st.sampled_from((lo, lo + 1, hi, hi - 1, 0, 1, -1)),
        st.integers(lo, hi),
    )
    image = draw(st.lists(word, min_size=m, max_size=m))
    tape = draw(st.lists(word, max_size=cfg.tape_in))
    return cfg, image, tape


@pytest.mark.parametrize("dtype", [np.int64, np.float64], ids=["int64", "float64"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machine=machines())
def test_lockstep_random_machines(machine: tuple[MachineConfig, list[int], list[int]],
                                  dtype: type) -> None:
    cfg, image, tape = machine
    lockstep(cfg, image, tape, 40, dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.int64, np.float64], ids=["int64", "float64"])
@settings(phases=MANY_PHASES, max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(machine=machines())
def test_lockstep_random_machines_many(machine: tuple[MachineConfig, list[int], list[int]],
                                       dtype: type) -> None:
    cfg, image, tape = machine
    lockstep(cfg, image, tape, 40, dtype)


@pytest.mark.parametrize("dtype", [np.int64, np.float64], ids=["int64", "float64"])
@pytest.mark.parametrize("bits", [16, 32])
def test_wraparound_both_ends(bits: int, dtype: type) -> None:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    # M[9] -= M[10] with M[9] = lo, M[10] = 1 -> hi (no branch); then M[11] -= M[12] with
    # M[11] = hi, M[12] = -1 -> lo (branch to halt)
    image = [10, 9, 3, 12, 11, -1, 0, 0, 0, lo, 1, hi, -1]
    cfg = MachineConfig(memory=len(image), word_bits=bits, tape_in=0, tape_out=0)
    lockstep(cfg, image, [], 3, dtype)
    state = reference.run(cfg, initial_state(cfg, image), 10)
    assert state.memory[9] == hi and state.memory[11] == lo and state.status == Status.HALTED


@pytest.mark.parametrize(("weights", "dtype"), ENCODINGS[:3], ids=ENCODING_IDS[:3])
@pytest.mark.parametrize("bits", [16, 32])
def test_onnx_matches_reference_on_random_machines(bits: int, weights: str, dtype: str) -> None:
    """64 random machine states (edge-of-range words, I/O, faults, self-modification) in one
    onnxruntime call through `resume_state`, each compared with the reference interpreter:
    this exercises the exported encoding (not just the numpy layers) on extreme values."""
    rng = np.random.default_rng(bits)
    m, steps = 14, 30
    cfg = MachineConfig(memory=m, word_bits=bits, tape_in=2, tape_out=3)
    model = OnnxModel(compile_model(SubleqImage(words=(0, 0, -1)), cfg,
                                    ExportOptions(unroll=4, weights=weights, dtype=dtype)))
    layout = build_step_network(cfg).layout
    lo, hi = cfg.word_min, cfg.word_max
    edges = np.array([lo, lo + 1, hi, hi - 1, -1, 0, 1], dtype=np.int64)
    states, expected = [], []
    for _ in range(64):
        image = rng.integers(-3, m + 3, size=m)
        pick = rng.random(m)
        image[pick < 0.25] = rng.choice(edges, size=int((pick < 0.25).sum()))
        image[pick > 0.9] = rng.integers(lo, hi, size=int((pick > 0.9).sum()), endpoint=True)
        tape = [int(v) for v in rng.choice(edges, size=int(rng.integers(0, 3)))]
        words = [int(v) for v in image]
        states.append(encode_state(layout, words, tape, steps))
        expected.append(reference.run(cfg, initial_state(cfg, words, tape), steps))
    names = [o.name for o in model.session.get_outputs()]
    feeds = {"tape": np.zeros((64, 0), dtype=np.int64), "max_steps": np.array(steps),
             "resume_state": np.stack(states)}
    out = dict(zip(names, model.session.run(None, feeds), strict=True))
    for i, state in enumerate(expected):
        assert out["memory"][i].tolist() == state.memory, i
        assert int(out["steps"][i]) == state.steps, i
        assert int(out["fault"][i]) == state.fault, i
        assert int(out["status"][i]) == {Status.RUNNING: 0, Status.HALTED: 1,
                                         Status.FAULT: 2}[state.status], i
        tape = out["output_tape"][i, : out["output_length"][i]].tolist()
        assert tape == state.tape_out, i


def test_every_fault_in_lockstep() -> None:
    cases = {
        Fault.PC_RANGE: [0, 0, 4, 0, 0],  # jumps to 4 > m-3
        Fault.A_RANGE: [-2, 0, 0],
        Fault.B_RANGE: [0, 3, 0],
        Fault.IO_BOTH: [-1, -1, 0],
        Fault.OUTPUT_FULL: [0, -1, 0],
    }
    for fault, image in cases.items():
        cfg = MachineConfig(memory=len(image), word_bits=32, tape_in=0, tape_out=0)
        lockstep(cfg, image, [], 4)
        state = reference.run(cfg, initial_state(cfg, image), 10)
        assert state.fault == fault


def _corpus_image(corpus: Path, *names: str) -> SubleqImage:
    return load_image([str(corpus / n) for n in names])


def _stock_run(tmp_path: Path, image: SubleqImage, dtype: str = "int64", **feeds: np.ndarray
               ) -> dict[str, np.ndarray]:
    """Compile to a file and run it with plain onnxruntime: no mlpc code in the loop."""
    path = tmp_path / "prog.onnx"
    model = compile_model(image, machine_config(image), ExportOptions(dtype=dtype))
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


@pytest.mark.parametrize(
    ("names", "text", "steps"),
    [
        (("hello.dec",), "Hello, World!\n", None),
        (("hi.dec",), "Hi", None),
        pytest.param(("self.dec", "hello.dec"), "Hello, World!\n", 7321,
                     id="self+hello"),
    ],
)
@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_corpus_on_stock_onnxruntime(
    tmp_path: Path, subleq_corpus: Path, names: tuple[str, ...], text: str, steps: int | None,
    dtype: str,
) -> None:
    image = _corpus_image(subleq_corpus, *names)
    cfg = machine_config(image)
    expected = reference.run(cfg, initial_state(cfg, image.words), 10**7)
    out = _stock_run(tmp_path, image, dtype)
    tape = out["output_tape"][0, : out["output_length"][0]]
    assert "".join(map(chr, tape)) == text
    assert int(out["status"][0]) == 1
    assert int(out["steps"][0]) == expected.steps
    if steps is not None:
        assert expected.steps == steps
    assert out["memory"][0].tolist() == expected.memory


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_beer_on_stock_onnxruntime(tmp_path: Path, subleq_corpus: Path, dtype: str) -> None:
    image = _corpus_image(subleq_corpus, "beer.dec")
    cfg = machine_config(image)
    expected = reference.run(cfg, initial_state(cfg, image.words), 10**7)
    out = _stock_run(tmp_path, image, dtype)
    assert int(out["steps"][0]) == expected.steps == 35232
    assert out["output_tape"][0, : out["output_length"][0]].tolist() == expected.tape_out


def test_batch_of_tapes_through_one_session(tmp_path: Path) -> None:
    """An echo program, three different tapes in one batch, compared item by item."""
    from mlpc.compiler.assembler import parse_assembly

    echo = parse_assembly(
        "loop: -1 x\n x -1\n z x loop\n z z -1\n x: .word 0\n z: .word 0\n", "echo.asm"
    )
    tapes = [[5, 6, -1], [7, -1], [1, 2, 3, -1]]
    width = max(map(len, tapes))
    batch = np.full((len(tapes), width), -1, dtype=np.int64)
    for i, t in enumerate(tapes):
        batch[i, : len(t)] = t
    out = _stock_run(tmp_path, echo, tape=batch)
    cfg = machine_config(echo)
    for i, t in enumerate(tapes):
        expected = reference.run(cfg, initial_state(cfg, echo.words, t), 10**6)
        assert out["output_tape"][i, : out["output_length"][i]].tolist() == expected.tape_out
        assert int(out["steps"][i]) == expected.steps
        assert out["memory"][i].tolist() == expected.memory


def _weight_digest(model: onnx.ModelProto) -> str:
    digest = hashlib.sha256()
    for t in sorted(model.graph.initializer, key=lambda t: t.name):
        if t.name.startswith("image"):  # the program, not a weight
            continue
        digest.update(t.name.encode())
        digest.update(t.raw_data)
    return digest.hexdigest()


def test_weights_do_not_depend_on_the_program(subleq_corpus: Path) -> None:
    hello = _corpus_image(subleq_corpus, "hello.dec")
    hi = _corpus_image(subleq_corpus, "hi.dec")
    cfg = MachineConfig(memory=200, tape_in=8, tape_out=64)
    a, b = compile_model(hello, cfg), compile_model(hi, cfg)
    assert _weight_digest(a) == _weight_digest(b)
    images = [t for t in a.graph.initializer if t.name.startswith("image")]
    assert len(images) == 1


# the network's own operations (docs/network.md): affine maps with constant weights, ReLU
# (`Relu` or `Max` with a constant zero), and reshaping/selection with constant arguments
ALLOWED_ON_STATE_PATH = {"MatMul", "Add", "Sub", "Mul", "Max", "Relu", "Reshape", "Unsqueeze",
                         "Squeeze", "Slice", "Concat", "Split", "Identity", "GatherElements"}
# taps off the state (loop condition, output events) may also reduce and cast
ALLOWED_TAPS = ALLOWED_ON_STATE_PATH | {"ReduceMax", "Cast"}
# ops whose inputs after the first are indices, shapes or axes: constants only
CONSTANT_ARGUMENTS = {"Reshape", "Unsqueeze", "Squeeze", "Slice", "Split"}
NOT_CARRIED = ("cond_out", "events_out")


def _loop_body(model: onnx.ModelProto) -> onnx.GraphProto:
    loop = next(n for n in model.graph.node if n.op_type == "Loop")
    return next(a.g for a in loop.attribute if a.name == "body")


def _body_violations(model: onnx.ModelProto) -> list[str]:
    """Ops in the Loop body outside the network's allowed set, and anything on the path to
    the next state that is not an affine map with constant weights or a ReLU: a `Mul` or
    `MatMul` without a constant operand, a `Max` that is not a ReLU, a gather whose indices
    are not a loop-invariant expansion of a constant initializer, an index, shape or axis
    that is computed, or a value from outside the loop that is not a constant."""
    # encode and decode are local functions: expand them (their constants become Constant
    # nodes of the main graph, constants like the initializers)
    graph = onnx.inliner.inline_local_functions(model).graph
    inits = {t.name: t for t in graph.initializer}
    inits.update({n.output[0]: n.attribute[0].t for n in graph.node
                  if n.op_type == "Constant" and n.attribute[0].name == "value"})
    producers = {o: n for n in graph.node for o in n.output}
    body = _loop_body(model)
    inits.update({t.name: t for t in body.initializer})
    made = {o: n for n in body.node for o in n.output}
    carried_in = {i.name for i in body.input[2:]}  # after `iteration` and `cond_in`
    # which body values feed the next state: walk back from every loop-carried output
    carried_out = [o.name for o in body.output if o.name not in NOT_CARRIED]
    assert carried_out and len(carried_out) == len(carried_in)
    on_path: set[str] = set()
    frontier = list(carried_out)
    while frontier:
        name = frontier.pop()
        if name in on_path or name not in made:
            continue
        on_path.add(name)
        frontier.extend(made[name].input)

    def constant(name: str) -> bool:
        return name in inits

    def zero(name: str) -> bool:
        return constant(name) and not np.any(numpy_helper.to_array(inits[name]))

    problems = []
    for node in body.node:
        feeds_state = any(o in on_path for o in node.output)
        allowed = ALLOWED_ON_STATE_PATH if feeds_state else ALLOWED_TAPS
        if node.op_type not in allowed:
            problems.append(f"{node.op_type} {node.name}")
        if node.op_type == "GatherElements":
            index = node.input[1]
            expand = producers.get(index)
            if (index in made or expand is None or expand.op_type != "Expand"
                    or not constant(expand.input[0])):
                problems.append(f"non-constant index in {node.name}")
        if not feeds_state:
            continue
        for i, name in enumerate(node.input):
            if name in ("iteration", "cond_in"):
                problems.append(f"{node.name} reads the loop's {name}")
            elif (name and name not in made and name not in carried_in and not constant(name)
                  and not (node.op_type == "GatherElements" and i == 1)):
                problems.append(f"{node.name} reads {name} from outside the loop")
        if node.op_type in ("Mul", "MatMul") and not any(constant(i) for i in node.input):
            problems.append(f"{node.op_type} {node.name} has no constant operand")
        if node.op_type == "Max" and not (len(node.input) == 2 and any(zero(i)
                                                                        for i in node.input)):
            problems.append(f"Max {node.name} is not a ReLU (no constant zero operand)")
        if node.op_type in CONSTANT_ARGUMENTS and not all(constant(i) for i in node.input[1:]
                                                          if i):
            problems.append(f"{node.op_type} {node.name} has a computed argument")
    return problems


def _expand_layer_calls(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with each call of a layer function in the Loop body replaced by the
    function's nodes (values renamed: the call's inputs and outputs, the function's own
    values prefixed with the call's name), so the honesty check walks every op."""
    functions = {f.name: f for f in model.functions}
    body = _loop_body(model)
    nodes = []
    for node in body.node:
        fn = functions.get(node.op_type) if node.domain == "mlpc" else None
        if fn is None:
            nodes.append(node)
            continue
        rename = dict(zip(fn.input, node.input, strict=True))
        rename.update(zip(fn.output, node.output, strict=True))
        for inner in fn.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(inner)
            copy.name = f"{node.name}/{inner.name}"
            for values in (copy.input, copy.output):
                for i, v in enumerate(values):
                    values[i] = rename.get(v, f"{node.name}/{v}") if v else v
            nodes.append(copy)
    del body.node[:]
    body.node.extend(nodes)
    return model


def _honesty_model(weights: str = "families", dtype: str = "int64", unroll: int = 2,
                   expand: bool = True, specialise: bool = False) -> onnx.ModelProto:
    image = SubleqImage(words=(9, -1, 3, 0, 0, -1, 0, 0, 0, 65), writable=((4, 5), (6, 9)))
    cfg = MachineConfig(memory=16, tape_in=2, tape_out=4)
    model = compile_model(image, cfg, ExportOptions(unroll=unroll, weights=weights, dtype=dtype),
                          specialise)
    return _expand_layer_calls(model) if expand else model


@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_specialised_loop_body_is_an_honest_network(dtype: str) -> None:
    """A specialised network's tables are ReLU units and weighted sums: the same rules."""
    model = _honesty_model(dtype=dtype, specialise=True)
    assert _body_violations(model) == []
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["network_form"] == "specialised"


@pytest.mark.parametrize(("weights", "dtype"), ENCODINGS, ids=ENCODING_IDS)
def test_loop_body_is_an_honest_network(weights: str, dtype: str) -> None:
    model = _honesty_model(weights, dtype)
    assert _body_violations(model) == []
    body = _loop_body(model)
    ops = {n.op_type for n in body.node}
    assert ("Max" if weights == "families" else "Relu") in ops  # the check saw the ReLUs
    if dtype == "float64":  # the loop-carried tensors are doubles
        carried = [i for i in body.input[2:]]
        assert carried and all(i.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
                               for i in carried)


def _on_path_node(body: onnx.GraphProto, op_type: str, two_activations: bool = False
                  ) -> onnx.NodeProto:
    """A node of the given type on the path to the next state (the first step's)."""
    made = {o for n in body.node for o in n.output}
    carried_in = {i.name for i in body.input[2:]}
    for node in body.node:
        if node.op_type != op_type or not node.name.startswith("s0/"):
            continue
        activations = [i for i in node.input if i in made or i in carried_in]
        if not two_activations or len(activations) == 2:
            return node
    raise AssertionError(f"no {op_type} node found")


def _smuggle_abs(model: onnx.ModelProto) -> None:
    body = _loop_body(model)
    relu = next(n for n in body.node if n.op_type in ("Relu", "Max"))
    relu.op_type = "Abs"  # not a ReLU network any more
    del relu.input[1:]


def _smuggle_product(model: onnx.ModelProto) -> None:
    node = _on_path_node(_loop_body(model), "Add", two_activations=True)
    node.op_type = "Mul"  # a product of two activations: not an affine map


def _smuggle_shifted_relu(model: onnx.ModelProto) -> None:
    body = _loop_body(model)
    node = next(n for n in body.node if n.op_type == "Max")
    one = numpy_helper.from_array(np.array(1, dtype=np.int64), "smuggled_one")
    model.graph.initializer.append(one)
    node.input[1] = "smuggled_one"  # max(x, 1): not a ReLU


def _smuggle_data_dependent_gather(model: onnx.ModelProto) -> None:
    node = next(n for n in _loop_body(model).node if n.op_type == "GatherElements")
    node.input[1] = node.input[0]  # indices read from the state itself


def _smuggle_where(model: onnx.ModelProto) -> None:
    node = _on_path_node(_loop_body(model), "Add", two_activations=True)
    node.op_type = "Where"  # a data-dependent choice


@pytest.mark.parametrize(("weights", "smuggle", "expected"), [
    ("families", _smuggle_abs, "Abs"),
    ("sparse", _smuggle_abs, "Abs"),
    ("families", _smuggle_product, "has no constant operand"),
    ("families", _smuggle_shifted_relu, "is not a ReLU"),
    ("sparse", _smuggle_data_dependent_gather, "non-constant index"),
    ("families", _smuggle_where, "Where"),
], ids=["abs-families", "abs-sparse", "product", "shifted-relu", "gather", "where"])
def test_honesty_check_catches_a_smuggled_op(weights: str, smuggle: object,
                                             expected: str) -> None:
    model = _honesty_model(weights, unroll=1)
    assert _body_violations(model) == []
    smuggle(model)  # type: ignore[operator]
    problems = _body_violations(model)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("weights", "dtype"), ENCODINGS, ids=ENCODING_IDS)
def test_main_graph_reads_at_a_glance(weights: str, dtype: str) -> None:
    """inputs -> encode -> Loop(step) -> readout -> decode -> outputs (issues 12, 21): at
    most 13 nodes in the main graph (the optional inputs' defaults, then the four boxes); in
    the body each step is layer1 -> layer2 -> layer3 -> next_state, calls of local functions
    with doc strings."""
    model = _honesty_model(weights, dtype, expand=False)
    ops = [n.op_type for n in model.graph.node]
    assert len(ops) <= 13, ops
    assert ops[-4:] == ["encode", "Loop", "readout", "decode"]
    assert set(ops[:-4]) <= {"OptionalHasElement", "If"}
    layers = ["layer1", "layer2", "layer3", "next_state"]
    assert [f.name for f in model.functions] == ["encode", *layers, "readout", "decode"]
    assert all(f.doc_string for f in model.functions)
    calls = [n.name for n in _loop_body(model).node if n.domain == "mlpc"]
    assert calls == [f"s{k}/{layer}" for k in range(2) for layer in layers]


@pytest.mark.parametrize("unroll", [1, 3])
def test_dense_and_sparse_agree(unroll: int) -> None:
    """Every encoding (families int64 and float64, sparse, dense) gives the same tape, step
    count, memory and status, and the tape is the reference interpreter's."""
    image = SubleqImage(words=(12, 12, 3, 13, -1, 6, 14, 13, 9, 15, 15, -1, 0, 72, -1, 1))
    cfg = MachineConfig(memory=20, tape_in=0, tape_out=8)
    results = {}
    for weights, dtype in ENCODINGS:
        model = OnnxModel(compile_model(image, cfg, ExportOptions(unroll=unroll,
                                                                   weights=weights,
                                                                   dtype=dtype)))
        run = model.run(max_steps=50)
        results[weights, dtype] = (run.tapes, run.steps.tolist(), run.memory.tolist(),
                                   run.status.tolist())
    first = results[ENCODINGS[0]]
    for encoding, result in results.items():
        assert result == first, encoding
    expected = reference.run(cfg, initial_state(cfg, image.words), 50)
    assert list(first[0][0]) == expected.tape_out
    assert first[1] == [expected.steps] and first[2][0] == expected.memory


def test_chunked_run_equals_single_run() -> None:
    image = SubleqImage(words=(7, 8, -1, 6, 6, 0, 0, 1, 1000))  # counts M[8] down, halts
    cfg = MachineConfig(memory=12, tape_in=0, tape_out=0)
    model = OnnxModel(compile_model(image, cfg, ExportOptions(unroll=4)))
    one = model.run(max_steps=5000, chunk=1 << 20)
    many = model.run(max_steps=5000, chunk=37)
    expected = reference.run(cfg, initial_state(cfg, image.words), 5000)
    for run in (one, many):
        assert run.steps.tolist() == [expected.steps]
        assert run.memory[0].tolist() == expected.memory
        assert int(run.status[0]) == 1


def test_step_limit_is_exact_for_any_unroll() -> None:
    image = SubleqImage(words=(0, 0, 0))  # loops forever
    cfg = MachineConfig(memory=3, tape_in=0, tape_out=0)
    for unroll in (1, 3, 8):
        model = OnnxModel(compile_model(image, cfg, ExportOptions(unroll=unroll)))
        run = model.run(max_steps=10)
        assert run.steps.tolist() == [10] and run.status.tolist() == [0]


@pytest.mark.parametrize("max_steps", [0, -5, 1])
def test_zero_and_negative_budgets_on_stock_onnxruntime(max_steps: int) -> None:
    image = SubleqImage(words=(0, 0, 0))  # loops forever
    cfg = MachineConfig(memory=3, tape_in=0, tape_out=0)
    session = ort.InferenceSession(compile_model(image, cfg).SerializeToString())
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"max_steps": np.array(max_steps)}), strict=True))
    assert int(out["steps"][0]) == max(max_steps, 0)
    assert int(out["status"][0]) == 0  # still running: the step limit
    assert out["output_tape"].shape == (1, 0)


def test_program_names_that_clash_with_model_tensors(tmp_path: Path) -> None:
    """A program output called `steps` (a model output) becomes the tensor `output.steps`."""
    from mlpc.compiler.driver import load_program
    from mlpc.compiler.options import CompileOptions

    src = tmp_path / "clash.tl"
    src.write_text("input status;\noutput steps;\nsteps = status + 3;\n")
    image = load_program([str(src)], CompileOptions()).image
    model = compile_model(image, machine_config(image))
    session = ort.InferenceSession(model.SerializeToString())
    assert "input.status" in [i.name for i in session.get_inputs()]
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"input.status": np.array([4, 40])}), strict=True))
    assert out["output.steps"].tolist() == [7, 43]
    run = OnnxModel(model).run(inputs={"status": [4]})
    assert run.report().outputs == (("steps", 7),)
