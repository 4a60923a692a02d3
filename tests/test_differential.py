"""Differential tests: random `.tl` programs (tests/strategies.py) on every engine.

The promise (docs/network.md, "Exactness"): `source`, `reference`, `numpy` and `onnx` give
the same named outputs, output tape, status and detail (trap kind and line, fault kind), and
the three machine-level engines also the same step count and final memory.

How a program is run (`run_everywhere`):
- It is compiled once (`CompileOptions(stack=...)`: a small stack when its recursion is
  bounded, so a runaway recursion overflows in few steps) and run on machines whose memory
  is rounded up to a few sizes, with fixed tape capacities, so the network (which depends
  only on memory, W and the tapes; `build_step_network` is cached) is shared by many
  programs.
- `source` and `reference` run to the end. The network engines run at most `net_steps`
  SUBLEQ steps; a longer run is compared with the reference interpreter stopped after the
  same number of steps (status "step-limit", same memory, tape and outputs), so every
  program tests the network engines without rejection sampling.
- Engines are called as `mlpc run` calls them: `get_engine(name)(RunRequest(...))`. The
  final memory, which reports do not carry, is picked up on its way into the report.

CI settings: `test_four_engines_agree` runs `FOUR_ENGINE_EXAMPLES` programs through all four
engines; `test_source_and_reference_agree` runs many more (and larger) through the fast
two. The `slow` variants run many more of each. Failures found once are kept in
`REGRESSIONS` and run every time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from conftest import MANY_PHASES
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import LARGE, SMALL, GeneratedProgram, tl_programs
from tl_cases import random_program

from mlpc.compiler.driver import LoadedProgram
from mlpc.compiler.machine_config import MachineConfig
from mlpc.compiler.options import CompileOptions
from mlpc.errors import MlpcError
from mlpc.runtime import engines as engines_module
from mlpc.runtime import onnx_engine
from mlpc.runtime.engines import get_engine
from mlpc.runtime.report import RunReport
from mlpc.runtime.request import RunRequest

NET_STEPS = 1000  # SUBLEQ steps the network engines run per program (CI)
SLOW_NET_STEPS = 6000
FULL_STEPS = 5_000_000  # source and reference: every generated program ends well before
MEMORY_SIZES = (512, 1024, 2048, 3072, 4096, 6144, 8192)
TAPE_IN = 8
TAPE_OUT = 48
FOUR_ENGINE_EXAMPLES = 12  # the default run's share; the slow variants run 400
TWO_ENGINE_EXAMPLES = 25  # (and 3,000)

_TMP = Path(tempfile.mkdtemp(prefix="mlpc-differential-"))


@dataclass(frozen=True)
class Outcome:
    report: RunReport
    memory: tuple[int, ...] | None  # machine-level engines only


def observable(report: RunReport) -> tuple[object, ...]:
    """What every engine must agree on (source steps are not SUBLEQ steps)."""
    return report.outputs, report.tape, report.status, report.detail


def machine_level(outcome: Outcome) -> tuple[object, ...]:
    return (*observable(outcome.report), outcome.report.steps, outcome.memory)


@contextlib.contextmanager
def capturing_memory() -> Iterator[list[tuple[int, ...]]]:
    """Collect the final memory of each machine-level run made inside the block: the
    reference and numpy engines pass it to `report_from_machine`, the onnx engine gets it
    from `OnnxModel.run`."""
    seen: list[tuple[int, ...]] = []
    real_report = engines_module.report_from_machine
    real_run = onnx_engine.OnnxModel.run

    def report(image, result, engine, *rest):  # type: ignore[no-untyped-def]
        seen.append(tuple(int(w) for w in result.memory))
        return real_report(image, result, engine, *rest)

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        batch = real_run(self, *args, **kwargs)
        seen.append(tuple(int(w) for w in batch.memory[0]))
        return batch

    with mock.patch.object(engines_module, "report_from_machine", report), \
            mock.patch.object(onnx_engine, "report_from_machine", report), \
            mock.patch.object(onnx_engine.OnnxModel, "run", run):
        yield seen


def load(program: GeneratedProgram, stack: int | None = None) -> LoadedProgram:
    path = _TMP / "random.tl"
    path.write_text(program.source, encoding="utf-8")
    return LoadedProgram([str(path)], CompileOptions(word_bits=program.word_bits, stack=stack))


def stack_for(program: GeneratedProgram) -> int | None:
    """A stack that holds the bounded recursion with room to spare: the default stack is
    256 frames of the largest frame; this is `depth + 3` of them (the frame measured at
    W = 32, where the default stack always has the addresses: frames do not depend on W)."""
    loaded = load(dataclasses.replace(program, word_bits=32))
    image = loaded.image
    extra = image.min_memory - len(image.words) if image.min_memory else 0
    if extra <= 0:
        return None
    frame = extra // 256
    return frame * (program.recursion_depth + 3)


def machine_for(loaded: LoadedProgram, word_bits: int) -> MachineConfig:
    need = loaded.image.default_memory()
    memory = next((m for m in MEMORY_SIZES if m >= need), need)
    return MachineConfig(memory=memory, word_bits=word_bits, tape_in=TAPE_IN, tape_out=TAPE_OUT)


def run_engine(name: str, loaded: LoadedProgram, program: GeneratedProgram,
               config: MachineConfig, max_steps: int) -> Outcome:
    """`name` is an engine, or `engine:dtype` for a network engine in another number type,
    `engine+specialised` for its network specialised to the program."""
    name, _, form = name.partition("+")
    name, _, dtype = name.partition(":")
    request = RunRequest(loaded, config, program.tape, program.inputs, max_steps,
                         dtype=dtype or "int64", specialise=form == "specialised")
    with capturing_memory() as seen:
        report = get_engine(name)(request)
    if name == "source":
        assert seen == []
        return Outcome(report, None)
    assert len(seen) == 1, f"{name}: expected one final memory, saw {len(seen)}"
    return Outcome(report, seen[0])


def run_everywhere(program: GeneratedProgram, engines: tuple[str, ...] = (
        "source", "reference", "numpy", "onnx", "onnx:float64", "onnx+specialised"),
        net_steps: int = NET_STEPS) -> None:
    """Run `program` on `engines` and assert that they agree (see the module docstring); the
    onnx engine runs the int64 and the float64 model, and the model specialised to it."""
    network = [e for e in engines if e.partition("+")[0].partition(":")[0] in ("numpy", "onnx")]
    loaded = load(program, stack_for(program) if network else None)
    try:
        _ = loaded.image  # compiled on first use
    except MlpcError as exc:  # the default stack needs more than W-bit addresses reach
        if network or "addresses reach" not in str(exc):
            raise
        loaded = load(program, stack_for(program))
        try:
            _ = loaded.image
        except MlpcError as again:  # the program itself does not fit W-bit addresses: the
            # lowering refuses it, as it must (a one-line error); nothing to compare
            assume("addresses reach" not in str(again))
            raise
    config = machine_for(loaded, program.word_bits)
    where = f"\n--- program (W={program.word_bits}, inputs {program.inputs}, tape " \
            f"{program.tape}, memory {config.memory}) ---\n{program.source}"
    full = run_engine("reference", loaded, program, config, FULL_STEPS)
    assert full.report.status != "step-limit", "generated program did not end" + where
    if "source" in engines:
        source = run_engine("source", loaded, program, config, FULL_STEPS)
        assert observable(source.report) == observable(full.report), "source" + where
    if not network:
        return
    if full.report.steps <= net_steps:
        expected = full
    else:
        expected = run_engine("reference", loaded, program, config, net_steps)
        assert expected.report.status == "step-limit"
    for name in network:
        got = run_engine(name, loaded, program, config, net_steps)
        assert machine_level(got) == machine_level(expected), name + where


# --- regressions: programs that once disagreed or broke the harness -----------------------

def _program(source: str, inputs: tuple[int, int] = (0, 0), tape: tuple[int, ...] = (),
             word_bits: int = 32, recursion_depth: int = 0) -> GeneratedProgram:
    return GeneratedProgram(0, source, (("x0", inputs[0]), ("x1", inputs[1])), tape,
                            word_bits, recursion_depth)


# Hand-picked shapes kept as fixed examples (every run, whatever hypothesis draws): edge
# operands, each trap kind, an exhausted tape, a full output tape. New shrunk failures go here.
REGRESSIONS: tuple[tuple[str, GeneratedProgram], ...] = (
    ("edges_w32", _program(
        "input x0, x1;\noutput o0, o1, o2;\n"
        "o0 = (x0 / -1) + (x0 % -1) + (x1 >> 31) + (x1 << 31);\n"
        "o1 = (x0 - 1) + (x1 + 1) + ~x0;\no2 = read() + read() + read();\n",
        (-(1 << 31), (1 << 31) - 1), (5, -(1 << 31)))),
    ("edges_w16", _program(
        "input x0, x1;\noutput o0, o1, o2;\no0 = x0 * x1;\no1 = x0 % 7 | 0x7F;\n"
        "o2 = -x0 >> 3;\nprint(x1, \"\\n\");\n",
        (-(1 << 15), (1 << 15) - 1), (), 16)),
    ("index_trap", _program(
        "input x0, x1;\noutput o0, o1, o2;\nvar arr[4] = {1, 2, 3, 4};\n"
        "for (var i = 0; i < 6; i += 1) {\n    o0 += arr[i];\n    write(o0);\n}\n", (0, 0))),
    ("division_trap", _program(
        "input x0, x1;\noutput o0, o1, o2;\no0 = 7;\no1 = o0 % x1;\no2 = 1;\n", (3, 0))),
    ("assert_trap", _program(
        "input x0, x1;\noutput o0, o1, o2;\nprint(\"a\");\nassert(x0 == x1);\no0 = 1;\n",
        (1, 2))),
    ("stack_overflow", _program(
        "input x0, x1;\noutput o0, o1, o2;\nfunc down(n) {\n    if (n == 12345) { return 0; }\n"
        "    return down(n + 1) + 1;\n}\no0 = 5;\no1 = down(x0 & 1);\n", (0, 0))),
    ("bounded_recursion", _program(
        "input x0, x1;\noutput o0, o1, o2;\nfunc rec(n, a) {\n    if (n <= 0) { return a; }\n"
        "    return rec(n - 1, a * 3 + n) + 1;\n}\no0 = rec((x0 > 0) + (x0 > 5), x1);\n",
        (7, -5), (), 32, 2)),
    ("output_tape_full", _program(
        "input x0, x1;\noutput o0, o1, o2;\nwhile (o0 < 60) { write(o0); o0 += 1; }\n")),
    # comparing with the constant INT_MIN tested its sign in place: a write to a pool word,
    # which the specialised network faulted on
    ("compare_with_int_min_constant", _program(
        "input x0, x1;\noutput o0, o1, o2;\nconst K = (-2147483647) + 0XFFFFFFFF;\n"
        "var arr[4] = {0};\nwrite(arr[x1 & 3] <= K);\no0 = ult(x0, 0) + ule(0, x0);\n"
        "o1 = (x0 ? udiv(x1, x0) : umod(x1, 7)) + (x1 >>> 3);\nputc(o1);\n", (0, 32))),
    # eof(): -1 words on the tape, read past the end, eof() in a function and in a loop
    ("eof_drains_minus_ones", _program(
        "input x0, x1;\noutput o0, o1, o2;\nfunc left() { return !eof(); }\n"
        "while (left()) { o0 += read(); o1 += 1; }\no2 = read() * 10 + eof();\n"
        "write(eof() ? x0 : x1);\n", (3, 4), (-1, -1, -(1 << 15), -1), 16)),
    # a condition folded to a constant (`!K * ...`) was tested in place: the same write to a
    # pool word (found by the slow four-engine test on onnx+specialised)
    ("constant_condition", _program(
        "input x0, x1;\noutput o0, o1, o2;\nconst K = (-32768) + 0;\nvar pre[3] = {0, 0, 0};\n"
        "if ((!K * (pre[1] + pre[0]))) { o0 = 1; }\nif (K) { o1 = 2; }\n"
        "while (!K * x0) { o2 = 3; }\n", (-1, -32767), (), 16)),
)

_SETTINGS = dict(deadline=None, derandomize=False,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])


@pytest.mark.parametrize("name, program", REGRESSIONS, ids=[n for n, _ in REGRESSIONS])
def test_regression(name: str, program: GeneratedProgram) -> None:
    run_everywhere(program)


@settings(max_examples=FOUR_ENGINE_EXAMPLES, **_SETTINGS)
@given(program=tl_programs(SMALL))
def test_four_engines_agree(program: GeneratedProgram) -> None:
    run_everywhere(program)


@settings(max_examples=TWO_ENGINE_EXAMPLES, **_SETTINGS)
@given(program=tl_programs(LARGE))
def test_source_and_reference_agree(program: GeneratedProgram) -> None:
    run_everywhere(program, ("source", "reference"))


@pytest.mark.slow
@settings(phases=MANY_PHASES, max_examples=400, **_SETTINGS)
@given(program=tl_programs(SMALL))
def test_four_engines_agree_many(program: GeneratedProgram) -> None:
    run_everywhere(program, net_steps=SLOW_NET_STEPS)


@pytest.mark.slow
@settings(phases=MANY_PHASES, max_examples=3000, **_SETTINGS)
@given(program=tl_programs(LARGE))
def test_source_and_reference_agree_many(program: GeneratedProgram) -> None:
    run_everywhere(program, ("source", "reference"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_seeded_programs_on_the_network_engines(seed: int) -> None:
    """The seeded programs of `tl_cases.random_program` (larger: thousands of words), their
    first `NET_STEPS` steps on the network engines."""
    base = random_program(seed, word_bits=16 if seed % 2 else 32)
    program = GeneratedProgram(base.seed, base.source, base.inputs, base.tape, base.word_bits,
                               recursion_depth=8)
    run_everywhere(program)


# --- one recursion limit on every engine ----------------------------------------------------

DOWN = ("input depth;\noutput r;\nfunc down(k) {\n    if (k == depth) { return k; }\n"
        "    return down(k + 1) + 0;\n}\nr = down(1);\n")
# Worked out from the lowering's rules: a recursive call of `down` saves only its return
# address (one word: k is dead after the call) and the default stack holds 256 saves of the
# largest; down(1) is called from the top level, which saves nothing, so depth d needs d - 1
# words. (depth, --stack, engines, expected status and r)
RECURSION_LIMIT = (
    (256, None, ("source", "reference", "onnx"), ("halted", 256)),
    (257, None, ("source", "reference", "numpy", "onnx"), ("halted", 257)),
    (258, None, ("source", "reference", "numpy", "onnx"), ("trap", 0)),
    (300, None, ("source", "reference", "onnx"), ("trap", 0)),
    (300, 299, ("source", "reference", "onnx"), ("halted", 300)),
    (300, 298, ("source", "reference", "onnx"), ("trap", 0)),
    (2000, 100_000, ("source", "reference"), ("halted", 2000)),
    (2000, 1998, ("source", "reference"), ("trap", 0)),
)


@pytest.mark.parametrize("depth, stack, engines, expected", RECURSION_LIMIT,
                         ids=[f"{d}-{s}" for d, s, _, _ in RECURSION_LIMIT])
def test_the_issue_reproducer_stops_at_the_same_call_everywhere(
        depth: int, stack: int | None, engines: tuple[str, ...],
        expected: tuple[str, int]) -> None:
    program = GeneratedProgram(0, DOWN, (("depth", depth),), (), 32)
    loaded = load(program, stack)
    config = machine_for(loaded, 32)
    status, r = expected
    detail = "stack overflow at line 5" if status == "trap" else ""
    reference = run_engine("reference", loaded, program, config, FULL_STEPS)
    for name in engines:
        got = run_engine(name, loaded, program, config, FULL_STEPS)
        assert observable(got.report) == ((("r", r),), (), status, detail), name
        if name != "source":
            assert machine_level(got) == machine_level(reference), name


@st.composite
def recursions(draw: st.DrawFn) -> tuple[GeneratedProgram, int]:
    """A recursive function (or a mutually recursive pair) whose frames differ by what is
    live across the call, and the depth it is called with."""
    local = draw(st.booleans())
    live = draw(st.sampled_from(("0", "n", "a", "n * a") + (("l", "l - n") if local else ())))
    mutual = draw(st.booleans())
    callee = "g" if mutual else "f"
    lines = ["input x0, x1;", "output o0, o1, o2;", "func f(n, a) {"]
    if local:
        lines.append("    var l = a + 1;")
    lines += ["    if (n <= 0) { return a; }", "    o1 += 1;",
              f"    return {live} + {callee}(n - 1, a + 2);", "}"]
    if mutual:
        lines += ["func g(n, a) {", "    o2 += 1;", "    return f(n, a - 1) + 1;", "}"]
    lines.append("o0 = f(x0, x1);")
    depth = draw(st.integers(0, 40))
    source = "\n".join(lines) + "\n"
    return GeneratedProgram(0, source, (("x0", depth), ("x1", 5)), (), 32, depth), depth


def smallest_stack(program: GeneratedProgram, largest: int) -> int:
    """The fewest stack words with which the source engine runs `program` to its end."""
    low, high = 0, largest  # halts with `high` words, as the caller checks
    while low < high:
        middle = (low + high) // 2
        loaded = load(program, middle)
        report = run_engine("source", loaded, program, machine_for(loaded, 32), FULL_STEPS)
        if report.report.status == "halted":
            high = middle
        else:
            low = middle + 1
    return low


@settings(max_examples=25, **_SETTINGS)
@given(drawn=recursions())
def test_deep_recursion_at_the_stack_limit_on_both_sides(
        drawn: tuple[GeneratedProgram, int]) -> None:
    """With just enough stack the run ends on both engines; with one word less both trap at
    the same call (the outputs count the calls made) with the same detail."""
    program, depth = drawn
    largest = 8 * depth + 8
    loaded = load(program, largest)
    report = run_engine("source", loaded, program, machine_for(loaded, 32), FULL_STEPS).report
    assert report.status == "halted", program.source
    need = smallest_stack(program, largest)
    for stack in (need, need - 1) if need else (0,):
        loaded = load(program, stack)
        config = machine_for(loaded, 32)
        source = run_engine("source", loaded, program, config, FULL_STEPS).report
        reference = run_engine("reference", loaded, program, config, FULL_STEPS).report
        assert observable(source) == observable(reference), (stack, program.source)
        assert source.status == ("halted" if stack == need else "trap")


# --- the tests can fail: a deliberately broken engine is caught ----------------------------


@contextlib.contextmanager
def broken_numpy_engine() -> Iterator[None]:
    """The numpy executor flips bit 0 of the last memory word after its first step. Where
    that word sits in the state vector is the network's layout (`StateLayout.memory`), read
    from the step network the numpy engine builds."""
    from mlpc.runtime.numpy_exec import NumpyExecutor

    real_step = NumpyExecutor.step
    real_build = onnx_engine.specialised_step
    layouts = {}

    def build(config, read_only, dtype, *rest):  # type: ignore[no-untyped-def]
        step_net = real_build(config, read_only, dtype, *rest)
        layouts[id(step_net.network)] = step_net.layout
        return step_net

    def step(self, x):  # type: ignore[no-untyped-def]
        y = real_step(self, x)
        # the step's executor (not the read-out's, whose network is not registered)
        if id(self.network) in layouts and not getattr(self, "_flipped", False):
            self._flipped = True
            last = layouts[id(self.network)].memory.stop - 1
            y = y.copy()
            y[:, last] ^= 1  # the word's offset encoding M + 2^(W-1): M changes by +-1
        return y

    with mock.patch.object(NumpyExecutor, "step", step), \
            mock.patch.object(onnx_engine, "specialised_step", build):
        yield


@contextlib.contextmanager
def broken_reference_engine() -> Iterator[None]:
    """The reference interpreter flips bit 0 of the first named output's word after the
    program's last step."""
    from mlpc.runtime import reference

    real_run = engines_module.run_reference
    real_step_run = reference.run

    def run_reference(request):  # type: ignore[no-untyped-def]
        address = request.program.image.outputs[0][1]

        def run(config, state, max_steps):  # type: ignore[no-untyped-def]
            result = real_step_run(config, state, max_steps)
            if state.pc < 0:
                state.memory[address] ^= 1
            return result

        with mock.patch.object(reference, "run", run):
            return real_run(request)

    with mock.patch.object(engines_module, "run_reference", run_reference):
        yield


def _failure(test: object, *args: object) -> str:
    """The first line of the comparison that failed ("" if the test passed): `run_everywhere`
    names the engine that disagreed with the reference interpreter."""
    try:
        test(*args)  # type: ignore[operator]
    except AssertionError as exc:
        return str(exc).splitlines()[0]
    return ""


def test_differential_detects_a_broken_engine() -> None:
    """Every differential test fails when one engine is broken: the numpy executor flipping
    one bit of one memory word after step 1 (seen through the final memory), or the
    reference interpreter flipping one bit of the first output's word after the last step
    (seen by the source comparison). Each test is run as it is (the hypothesis tests with
    their strategy, a few examples and no shrinking), and each must fail."""
    from hypothesis import Phase

    quick = settings(max_examples=2, phases=[Phase.generate], database=None, deadline=None,
                     suppress_health_check=list(HealthCheck))
    four = given(program=tl_programs(SMALL))(
        quick(test_four_engines_agree.hypothesis.inner_test))  # type: ignore[attr-defined]
    two = given(program=tl_programs(LARGE))(
        quick(test_source_and_reference_agree.hypothesis.inner_test))  # type: ignore[attr-defined]
    sample = dict(REGRESSIONS)["division_trap"]
    # sanity: unbroken, the tests pass
    assert _failure(test_regression, "division_trap", sample) == ""
    with broken_numpy_engine():
        assert _failure(test_regression, "division_trap", sample) == "numpy"
        assert _failure(four) == "numpy"
        assert _failure(run_everywhere, sample, ("reference", "numpy")) == "numpy"
    with broken_reference_engine():
        assert _failure(test_regression, "division_trap", sample) == "source"
        assert _failure(four) == "source"
        assert _failure(two) == "source"
        assert _failure(run_everywhere, sample, ("reference", "onnx")) == "onnx"
