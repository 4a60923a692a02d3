"""The network IR on its own: bound proofs, the float64 magnitude bound, the sparse lowering
against the family evaluation, the exporter's refusals, the README's size claims, and the
step on onnxruntime's CUDA provider where one exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from conftest import run_python_strictly
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpc.compiler.assembler import load_image
from mlpc.compiler.codegen import (
    MAX_NETWORK_MEMORY,
    build_step_network,
    encode_state,
    multiplier,
)
from mlpc.compiler.driver import machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.export_onnx import build_step_model, check_options
from mlpc.compiler.machine_config import MachineConfig
from mlpc.compiler.model import compile_model
from mlpc.compiler.network import (
    FLOAT64_EXACT,
    Lin,
    Network,
    RangeError,
    SpaceBuilder,
    scalarise_families,
    state_space,
)
from mlpc.compiler.onnx_graph import ExportError
from mlpc.compiler.sparse import lower_to_sparse
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state
from mlpc.runtime.numpy_exec import BoundViolation, NumpyExecutor
from mlpc.runtime.onnx_model import OnnxModel


def _tiny(coeff: int) -> Network:
    """state (x in [0, 10], v[4] in [0, 3]) -> relu(v + coeff x - j) -> sum -> next state."""
    x = state_space(scalars=(("x", 0, 10),), families=(("v", 4, 0, 3),))
    h = SpaceBuilder("h", True, x)
    h.unit("f", h.v("v") + coeff * h.s("x") + Lin(slope=-1))
    h.unit("v", h.v("v"))
    h1 = h.build()
    z = SpaceBuilder("next", False, h1)
    z.linear("v", z.v("v"), 0, 3)
    z.linear("x", z.sum(z.v("f"), 0, 3 + 10 * abs(coeff)) - z.sum(z.v("f"), 0, 3 + 10 * abs(coeff)),
             0, 10)
    return Network(x, (h1, z.build()))


def test_builder_proves_pre_activations_and_refuses_int64_overflow() -> None:
    net = _tiny(5)
    f = net.spaces[0].families[0]
    assert (f.pre_lo, f.pre_hi) == (0 - 3, 3 + 50)  # slope -1 over j in [0, 4)
    assert (f.lo, f.hi) == (0, 53)
    with pytest.raises(RangeError, match="exceeds int64"):
        _tiny(1 << 62)


def _table(weights: tuple[int, ...]) -> Network:
    """state x in [0, 6] -> a table of ramps relu(x - k), k = 1..4 -> y = 2 x + sum_k w_k
    relu(x - k) (a weighted sum) and a plain sum, then the next state."""
    x = state_space(scalars=(("x", 0, 6), ("y", -100, 100), ("s", 0, 20)), families=())
    h = SpaceBuilder("h", True, x)
    h.unit("ramps", h.s("x") + Lin(slope=-1), index=(1, 2, 3, 4))
    h.unit("x", h.s("x"))
    h1 = h.build()
    z = SpaceBuilder("next", False, h1)
    z.linear("x", z.s("x"), 0, 6)
    z.linear("y", 2 * z.s("x") + z.sum(z.v("ramps"), 0, 5, weights), -100, 100)
    z.linear("s", z.sum(z.v("ramps"), 0, 5), 0, 20)
    return Network(x, (h1, z.build()))


def test_scalarise_families_keeps_every_value() -> None:
    """A short table that is only summed becomes scalar units, its sums weighted sums of
    them; each unit's bounds are its own (the family's shifted by slope * j), and the
    network computes the same next state for every x."""
    net = _table((1, -2, 0, 3))
    flat = scalarise_families(net, max_length=4)
    h = flat.spaces[0]
    assert h.families == ()
    assert [d.name for d in h.scalars] == ["x", "ramps[0]", "ramps[1]", "ramps[2]", "ramps[3]"]
    assert [(d.pre_lo, d.pre_hi) for d in h.scalars[1:]] == [(-1, 5), (-2, 4), (-3, 3), (-4, 2)]
    y = flat.spaces[1].scalars[1]
    assert y.expr.scalars == (("x", 2), ("ramps[0]", 1), ("ramps[1]", -2), ("ramps[3]", 3))
    assert scalarise_families(net, max_length=3).spaces[0].families == net.spaces[0].families
    for value in range(7):
        x = np.array([[value, 0, 0]], dtype=np.int64)
        want = NumpyExecutor(net, check=True).step(x)
        assert NumpyExecutor(flat, check=True).step(x).tolist() == want.tolist()
        ramps = [max(value - k, 0) for k in (1, 2, 3, 4)]
        assert want.tolist() == [[value, 2 * value + ramps[0] - 2 * ramps[1] + 3 * ramps[3],
                                  sum(ramps)]]


def test_specialised_step_with_scalar_tables_runs_in_lock_step() -> None:
    """The specialised gcd network as the families encoding emits it (its tables over a and
    b as scalar units, its table over pc still a family) gives the same state as the
    network itself at every step of a whole run, with every bound checked."""
    from mlpc.compiler.driver import LoadedProgram
    from mlpc.compiler.export_families import SCALAR_FAMILY_LIMIT, families_form
    from mlpc.compiler.model import read_only_of
    from mlpc.compiler.options import CompileOptions

    program = LoadedProgram([str(Path(__file__).resolve().parents[1] / "examples/gcd.tl")],
                            CompileOptions())
    config = machine_config(program.image)
    step = build_step_network(config, read_only_of(program.image, config))
    flat = families_form(step.network, "int64")
    tables = {d.name for d in step.network.spaces[2].families if d.name.endswith(
        ("_table", "_indirect"))}
    assert tables and all(d.length <= SCALAR_FAMILY_LIMIT for d in step.network.spaces[2].families
                          if d.name in tables)
    assert not tables & {d.name for d in flat.spaces[2].families}
    assert "pc_table" in {d.name for d in flat.spaces[0].families}
    words = list(program.image.words)
    words[dict(program.image.inputs)["a"]] = 1071
    words[dict(program.image.inputs)["b"]] = 462
    x = encode_state(step.layout, words, (), 10_000)[None, :]
    ours, theirs = NumpyExecutor(step.network, check=True), NumpyExecutor(flat, check=True)
    y = x
    for _ in range(1000):
        x, y = ours.step(x), theirs.step(y)
        assert x.tolist() == y.tolist()


def test_passthrough_is_recognised_only_for_plain_copies() -> None:
    h = _tiny(1).spaces[0]
    assert [d.passthrough for d in h.families] == [False, True]


def test_float64_refused_when_a_partial_sum_can_reach_2_53() -> None:
    small, big = _tiny(1), _tiny(1 << 50)
    check_options(small, ExportOptions(dtype="float64"))
    assert big.max_magnitude() >= FLOAT64_EXACT
    with pytest.raises(ExportError, match="2\\^53"):
        check_options(big, ExportOptions(dtype="float64"))
    with pytest.raises(ExportError, match="families"):
        check_options(small, ExportOptions(dtype="float64", weights="sparse"))


@pytest.mark.parametrize("bits", [16, 32])
def test_float64_is_provably_exact_up_to_the_largest_memory(bits: int) -> None:
    """The bound the issue asked for: every partial sum of every definition below 2^53 for
    every memory size the network supports."""
    net = build_step_network(MachineConfig(memory=MAX_NETWORK_MEMORY, word_bits=bits,
                                           tape_in=256, tape_out=65536)).network
    assert net.max_magnitude() < FLOAT64_EXACT


def test_units_per_memory_word() -> None:
    """README: 14 computed ReLU units per memory word (10 in layer 1, 4 in layer 2), 3 ReLU
    layers, the memory passing through layers 2 and 3."""
    net = build_step_network(MachineConfig(memory=100, tape_in=4, tape_out=4)).network
    per_layer = [sum(1 for d in s.families if not d.passthrough and d.length == 100)
                 for s in net.spaces if s.relu]
    assert per_layer == [10, 4, 0]
    tape_units = [d.name for d in net.spaces[0].families if d.length == 4 and not d.passthrough]
    assert tape_units == ["I0", "I1"]  # 2 units per tape word, in layer 1
    assert sum(len(s.scalars) for s in net.spaces if s.relu) == 97
    assert net.relu_layers == 3
    assert multiplier(MachineConfig(memory=100)) == 1 << 32
    assert multiplier(MachineConfig(memory=65536, word_bits=16)) == 1 << 17


@st.composite
def random_states(draw: st.DrawFn) -> tuple[MachineConfig, list[int], list[int]]:
    bits = draw(st.sampled_from((16, 32)))
    m = draw(st.integers(3, 12))
    cfg = MachineConfig(memory=m, word_bits=bits, tape_in=draw(st.integers(0, 3)), tape_out=3)
    word = st.one_of(st.integers(-3, m + 2), st.integers(cfg.word_min, cfg.word_max))
    return cfg, draw(st.lists(word, min_size=m, max_size=m)), draw(st.lists(
        word, max_size=cfg.tape_in))


@settings(max_examples=40, deadline=None)
@given(random_states())
def test_sparse_lowering_equals_the_family_evaluation(case: tuple) -> None:
    """Two independent evaluations of one network: the family executor (numpy broadcasting)
    and the lowered sparse matrices applied as dense int64 products, for 12 steps."""
    cfg, image, tape = case
    step = build_step_network(cfg)
    sparse = lower_to_sparse(step.network)
    executor = NumpyExecutor(step.network, check=True)
    x = encode_state(step.layout, image, tape, 1000)[None, :]
    y = x.copy()
    for _ in range(12):
        x = executor.step(x)
        for layer in sparse.layers:
            for f in layer.factors:
                y = y @ f.dense().T + f.bias
            if layer.relu:
                y = np.maximum(y, 0)
        assert np.array_equal(x, y)


def test_declared_ranges_are_checked_at_run_time() -> None:
    """A state outside its declared ranges (a pending write whose old word disagrees with
    memory) is caught by the checking executor, not silently computed."""
    cfg = MachineConfig(memory=8, tape_in=0, tape_out=2)
    step = build_step_network(cfg)
    x = encode_state(step.layout, [0] * 8, [], 10)
    x[step.layout.index("wa2")] = 2 + 3
    x[step.layout.index("wo")] = 0
    x[step.layout.index("wv")] = (1 << 32) - 1  # M[3] + (top - 0) leaves [0, 2^32)
    x[3] = 5
    with pytest.raises(BoundViolation):
        NumpyExecutor(step.network, check=True).step(x[None, :])


CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.mark.skipif(not CUDA, reason="onnxruntime-gpu with a CUDA device is not available here")
@pytest.mark.parametrize("names", [("hello.dec",), ("self.dec", "hello.dec")])
def test_float64_model_on_cuda(subleq_corpus: Path, names: tuple[str, ...]) -> None:
    """float64 is the encoding GPU runtimes can run (no int64 MatMul/ReLU kernels there)."""
    image = load_image([str(subleq_corpus / n) for n in names])
    cfg = machine_config(image)
    expected = reference.run(cfg, initial_state(cfg, image.words), 10**7)
    model = compile_model(image, cfg, ExportOptions(dtype="float64"))
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    names_out = [o.name for o in session.get_outputs()]
    out = dict(zip(names_out, session.run(None, {}), strict=True))
    assert out["output_tape"][0, : out["output_length"][0]].tolist() == expected.tape_out
    assert int(out["steps"][0]) == expected.steps
    assert out["memory"][0].tolist() == expected.memory


def test_float64_and_int64_models_agree_on_a_corpus_program(subleq_corpus: Path) -> None:
    image = load_image([str(subleq_corpus / "hello.dec")])
    cfg = machine_config(image)
    runs = [OnnxModel(compile_model(image, cfg, ExportOptions(dtype=dt))).run()
            for dt in ("int64", "float64")]
    assert runs[0].tapes == runs[1].tapes
    assert runs[0].steps.tolist() == runs[1].steps.tolist() == [167]
    assert np.array_equal(runs[0].memory, runs[1].memory)


def test_dense_limit_stated_in_the_readme() -> None:
    """README: dense weights up to 804 words of memory with the default tapes."""
    def fits(m: int) -> bool:
        net = build_step_network(MachineConfig(memory=m)).network
        try:
            check_options(net, ExportOptions(weights="dense"))
        except ExportError:
            return False
        return True

    assert fits(804) and not fits(805)


def test_readme_speed_table_is_the_benchmark_output() -> None:
    """The README's speed table is what `benchmarks/run.py --readme` makes of the committed
    results file, so a number edited by hand (or a stale table) fails here."""
    import importlib.util
    import json
    import sys

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_run", root / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # (dataclasses look their module up)
    spec.loader.exec_module(bench)
    result = json.loads((root / "benchmarks" / "results" / "run.json").read_text())
    readme = (root / "README.md").read_text()
    block = readme.split("<!-- speed-table -->\n")[1].split("\n<!-- /speed-table -->")[0]
    assert block == bench.readme_table(result)
    # the prose under it: ONNX ops per step of the default encoding and of today's model
    rows = {r["program"]: r for r in result["programs"]}
    ours = {round(r["new"]["families-int64"]["onnx_ops_per_step"]) for r in rows.values()}
    today = {round(r["today"]["onnx_ops_per_step"]) for r in rows.values() if "today" in r}
    assert len(ours) == 1
    assert f"in {ours.pop()} ONNX ops per step (today: {min(today)}–{max(today)})." in " ".join(
        readme.split())


def test_readme_size_table_is_the_benchmark_output() -> None:
    import sys

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks"))
    import bench_network

    readme = (root / "README.md").read_text()
    block = readme.split("<!-- size-table -->\n")[1].split("\n<!-- /size-table -->")[0]
    rows = bench_network.sizes(bench_network.README_MEMORIES)
    assert block == bench_network.sizes_table(rows)


def test_plain_onnxruntime_prints_no_warning(tmp_path: Path) -> None:
    """docs/onnx.md (Inputs): the optional inputs (tape, max_steps, resume_state) are ONNX optional
    tensors, listed by get_inputs(), and a plain session prints nothing (an initializer
    standing in as an input's default made onnxruntime warn three times per session)."""

    image = load_image([str(Path(__file__).resolve().parents[1] / "examples" / "hello.asm")])
    path = tmp_path / "hello.onnx"
    path.write_bytes(compile_model(image, machine_config(image)).SerializeToString())
    script = (
        "import numpy as np, onnxruntime as ort\n"
        f"s = ort.InferenceSession({str(path)!r})\n"
        "print(sorted(i.name for i in s.get_inputs()))\n"
        "names = [o.name for o in s.get_outputs()]\n"
        "out = dict(zip(names, s.run(None, {})))\n"
        "print(bytes(out['output_tape'][0].tolist()).decode(), end='')\n"
        "out = dict(zip(names, s.run(None, {'max_steps': np.array(5)})))\n"
        "print(out['steps'].tolist(), out['status'].tolist())\n"
    )
    stdout = run_python_strictly(script)
    lines = stdout.splitlines()
    assert lines[0] == "['max_steps', 'resume_state', 'tape']"
    assert "Hello, World!" in stdout
    assert lines[-1] == "[5] [0]"


def _restricted_network() -> Network:
    """A family V over positions 0..9; units over some of them (a subset, restricted) and a
    linear family over all ten that adds units over a subset back (missing: 0)."""
    x = state_space(scalars=(("a", 0, 5),), families=(("V", 10, 0, 400),))
    b = SpaceBuilder("h", True, x)
    b.unit("R", b.v("V") - 3 * b.s("a") + Lin(slope=-2), index=(1, 4, 7), restricted=True)
    b.unit("C", 2 * b.s("a") + Lin(slope=1), index=(2, 4))
    b.unit("V", b.v("V"))
    b.unit("a", b.s("a"))
    h = b.build()
    z = SpaceBuilder("out", False, h)
    # R <= V where it exists, C <= 14: V + C - R stays in [0, 314] for V <= 300
    z.linear("V", z.v("V") + z.v("C") - z.v("R"), 0, 400, index=tuple(range(10)))
    z.linear("a", z.s("a"), 0, 5)
    return Network(x, (h, z.build()))


def test_restricted_families_match_by_position() -> None:
    """Units over some positions of a family read its units there, a family over all of them
    reads 0 where its source has none: numpy, the sparse form and the ONNX model (families
    and sparse encodings, a Gather at constant indices) agree with the formula."""
    net = _restricted_network()
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.integers(0, 301, (16, 10)), rng.integers(0, 6, (16, 1))], axis=1)
    V, a = x[:, :10], x[:, 10:]
    R = np.maximum(V[:, [1, 4, 7]] - 3 * a - 2 * np.array([1, 4, 7]), 0)
    C = np.maximum(2 * a + np.array([2, 4]), 0)
    want = V.copy()
    want[:, [2, 4]] += C
    want[:, [1, 4, 7]] -= R
    expect = np.concatenate([want, a], axis=1)
    assert np.array_equal(NumpyExecutor(net, check=True).step(x), expect)
    y = x.copy()
    for layer in lower_to_sparse(net).layers:
        for f in layer.factors:
            y = y @ f.dense().T + f.bias
        if layer.relu:
            y = np.maximum(y, 0)
    assert np.array_equal(y, expect)
    for weights in ("families", "sparse"):
        model = build_step_model(net, ExportOptions(weights=weights))
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        assert np.array_equal(session.run(None, {"state": x})[0], expect), weights


def test_a_restricted_term_missing_units_bounds_include_0() -> None:
    h = _restricted_network().spaces[0]
    z = SpaceBuilder("z", True, h)
    z.unit("W", z.v("V") + z.v("C"), index=tuple(range(10)), restricted=True)
    w = z.build().families[0]
    assert (w.pre_lo, w.pre_hi) == (0, 400 + 2 * 5 + 4)
    with pytest.raises(ValueError, match="distinct and sorted"):
        SpaceBuilder("z", True, h).unit("W", z.v("V"), index=(3, 1), restricted=True)
