"""Straight-line runs (`compiler/runs.py`, docs/network.md "Many steps per iteration"): a
specialised network executes a whole run per iteration, and stops at the reference
machine's state at every iteration boundary and for every budget."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tl_cases import CASES

from mlpc.compiler.codegen import (
    ReadOnly,
    StepNetwork,
    build_step_network,
    decode_state,
    encode_state,
)
from mlpc.compiler.driver import load_program, load_program_text, machine_config
from mlpc.compiler.machine_config import MachineConfig, Status
from mlpc.compiler.model import compile_model, read_only_of
from mlpc.compiler.options import CompileOptions
from mlpc.compiler.runs import Run, candidate_runs, find_runs
from mlpc.runtime.machine import MachineState
from mlpc.runtime.numpy_exec import NumpyExecutor
from mlpc.runtime.onnx_model import OnnxModel
from mlpc.runtime.reference import step as reference_step

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples"))
from expected import EXAMPLES  # noqa: E402


def _example(name: str) -> tuple[object, MachineConfig, StepNetwork, list[int]]:
    example = next(e for e in EXAMPLES if e.name == name)
    image = load_program([str(REPO / "examples" / example.file)], CompileOptions()).image
    config = machine_config(image)
    step = build_step_network(config, read_only_of(image, config))
    words = image.initial_words(example.small.inputs, len(example.small.tape_words))
    words += [0] * (config.memory - len(words))
    return example, config, step, words


def lock_step(config: MachineConfig, step: StepNetwork, memory: list[int],
              tape: tuple[int, ...], budget: int) -> tuple[int, int]:
    """Run the network one iteration at a time (numpy, every declared range checked): after
    each, its state is the reference machine's after as many steps as the budget went down.
    Returns (steps, iterations)."""
    machine = MachineState(memory=list(memory), tape_in=list(tape))
    executor = NumpyExecutor(step.network, check=True)
    x = encode_state(step.layout, memory, tape, budget)[None, :]
    live = step.layout.index("live")
    iterations = 0
    outputs: list[int] = []
    while True:
        x = executor.step(x)
        if not x[0, live]:
            break
        iterations += 1
        state = decode_state(step.layout, x[0])
        while machine.steps < budget - state.budget and machine.status == Status.RUNNING:
            event = reference_step(config, machine)
            if event is not None and event.output is not None:
                outputs.append(event.output)
        assert machine.steps == budget - state.budget, iterations
        assert (state.pc, state.memory, state.fault) == (
            machine.pc, tuple(machine.memory), machine.fault), iterations
        if state.out_event is not None:
            assert outputs and outputs[-1] == state.out_event
    if machine.status == Status.RUNNING and machine.steps < budget:
        reference_step(config, machine)  # the fault the last (live) iteration found
    final = decode_state(step.layout, x[0])
    assert final.status == machine.status
    assert budget - final.budget == machine.steps
    return machine.steps, iterations


@pytest.mark.parametrize("name", [e.name for e in EXAMPLES])
def test_examples_run_in_lock_step_with_runs(name: str) -> None:
    _, config, step, words = _example(name)
    example = next(e for e in EXAMPLES if e.name == name)
    assert step.runs and step.network.relu_layers == 3
    steps, iterations = lock_step(config, step, words, example.small.tape_words, 100_000)
    assert steps > 100 and iterations < steps / 2 or name == "collatz"


@pytest.mark.parametrize("name", ["fib_iter", "gcd"])
def test_every_budget_stops_at_the_reference_state(name: str) -> None:
    """A run longer than the budget left is not taken: its steps go one at a time."""
    example, config, step, words = _example(name)
    total, _ = lock_step(config, step, words, (), 100_000)
    budgets = range(total + 2) if name == "fib_iter" else random.Random(1).sample(
        range(total + 2), 40)
    for budget in budgets:
        lock_step(config, step, words, (), budget)


def _tl_lock_step(source: str, inputs: tuple[tuple[str, int], ...], tape: tuple[int, ...],
                  word_bits: int, budget: int) -> None:
    program = load_program_text(source, "case.tl", CompileOptions(word_bits=word_bits))
    image = program.image
    config = machine_config(image, word_bits=word_bits)
    step = build_step_network(config, read_only_of(image, config))
    words = image.initial_words(inputs, len(tape))
    words += [0] * (config.memory - len(words))
    lock_step(config, step, words, tape, budget)


@pytest.mark.parametrize("case", CASES[::12], ids=lambda c: c.name)
def test_tl_cases_run_in_lock_step_with_runs(case) -> None:  # type: ignore[no-untyped-def]
    _tl_lock_step(case.source, case.inputs, case.tape, case.word_bits,
                  min(case.max_steps or 20_000, 20_000))


def test_iterations_counted_by_the_model_and_numpy_agree() -> None:
    """The model's `iterations` output (each step's live flag summed) is the number of
    iterations the numpy engine ran, and what replaying the run table on the reference
    trace gives."""
    example, config, step, words = _example("gcd")
    image = load_program([str(REPO / "examples" / "gcd.tl")], CompileOptions()).image
    model = OnnxModel(compile_model(image, config, specialise=True).SerializeToString())
    result = model.run(dict(example.small.inputs), max_steps=100_000)
    _, iterations = lock_step(config, step, words, (), 100_000)
    assert int(result.iterations[0]) == iterations
    replayed = _iterations(config, {r.start: r.length for r in step.runs}, words)
    assert replayed == iterations < int(result.steps[0]) / 3


def _iterations(config: MachineConfig, runs: dict[int, int], words: list[int]) -> int:
    """Iterations of the reference trace where a run of length runs[pc] starts at pc."""
    machine = MachineState(memory=list(words))
    count = 0
    while machine.status == Status.RUNNING:
        for _ in range(runs.get(machine.pc, 1)):
            reference_step(config, machine)
        count += 1
    return count


@pytest.mark.parametrize("name", ["fizzbuzz", "hanoi", "collatz", "brainfuck"])
def test_runs_start_only_where_an_iteration_can_and_lose_none(name: str) -> None:
    """Runs start only at pc 0, the next pcs of runs and single steps, and the return sites
    after calls (`runs.iteration_starts`): on the examples' own inputs (calls, recursion,
    returns through patched jumps) the trace takes exactly the iterations it takes with a
    run at every eligible pc, from a fifth to a third fewer run starts."""
    example = next(e for e in EXAMPLES if e.name == name)
    image = load_program([str(REPO / "examples" / example.file)], CompileOptions()).image
    config = machine_config(image)
    ro = read_only_of(image, config)
    every = candidate_runs(config, ro.writable, ro.image)
    kept = find_runs(config, ro.writable, ro.image)
    assert {r.start for r in kept} < set(every)
    assert len(kept) <= 0.85 * len(every)
    words = image.initial_words(example.default.inputs, len(example.default.tape_words))
    words += [0] * (config.memory - len(words))
    assert _iterations(config, {r.start: r.length for r in kept}, words) == _iterations(
        config, {pc: r.length for pc, r in every.items()}, words)


def test_a_run_writes_only_writable_words_and_reads_only_constant_code() -> None:
    """A run's write to a read-only word is impossible by construction: b is eligible only
    when writable; its instruction words are constants."""
    for example in EXAMPLES:
        _, config, step, _ = _example(example.name)
        writable = set(step.read_only.writable)
        for run in step.runs:
            assert 2 <= run.length <= 64
            assert all(w.address in writable for w in run.writes)
            assert not {p + o for p in run.pcs for o in range(3)} & writable


# ---- random machines: constant code over writable data ----------------------------------


@st.composite
def machines(draw: st.DrawFn) -> tuple[MachineConfig, ReadOnly, list[int], int]:
    """Code of mostly straight-line instructions (some conditional branches, some jumps to
    a random instruction), constant; data words after it, writable, random."""
    word_bits = draw(st.sampled_from([16, 32]))
    H = 1 << (word_bits - 1)
    n_code = draw(st.integers(2, 10))
    n_data = draw(st.integers(2, 8))
    m = 3 * n_code + 3 + n_data + 3
    data = range(3 * n_code + 3, 3 * n_code + 3 + n_data)
    words: list[int] = []
    for i in range(n_code):
        a, b = draw(st.sampled_from(data)), draw(st.sampled_from(data))
        kind = draw(st.integers(0, 5))
        c = 3 * i + 3 if kind <= 2 else 3 * draw(st.integers(0, n_code - 1))
        words += [a, b, c if kind != 5 else -1]
    words += [data[0], data[0], -1]  # the last instruction halts: no pc past the code
    words += [draw(st.integers(-H, H - 1)) for _ in data]
    words += [0, 0, 0]
    writable = tuple(data)
    config = MachineConfig(memory=m, word_bits=word_bits, tape_in=0, tape_out=8)
    return config, ReadOnly(writable, tuple(words)), words, draw(st.integers(0, 300))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(machines())
def test_random_machines_with_runs_match_the_reference(machine) -> None:  # type: ignore[no-untyped-def]
    config, read_only, words, budget = machine
    step = build_step_network(config, read_only)
    lock_step(config, step, words, (), budget)


@settings(max_examples=40, deadline=None)
@given(machines(), st.randoms(use_true_random=False))
def test_a_runs_writes_are_its_steps(machine, rnd) -> None:  # type: ignore[no-untyped-def]
    """Each run's table (its affine writes and jump) is what its steps do, from any memory."""
    config, read_only, words, _ = machine
    H = 1 << (config.word_bits - 1)
    for run in find_runs(config, read_only.writable, read_only.image):
        memory = list(words)
        for j in read_only.writable:
            memory[j] = rnd.randrange(-H, H)
        _check_run(config, run, memory)


def _check_run(config: MachineConfig, run: Run, memory: list[int]) -> None:
    H = 1 << (config.word_bits - 1)
    machine = MachineState(memory=list(memory), pc=run.start)
    for pc in run.pcs:
        assert machine.pc == pc
        reference_step(config, machine)
    expect = list(memory)
    for w in run.writes:
        value = w.const + sum(memory[j] for j in w.plus) - sum(memory[j] for j in w.minus)
        expect[w.address] = (value + H) % (2 * H) - H
    assert machine.memory == expect
    jumps = run.branches and machine.memory[run.writes[0].address] <= 0
    assert machine.pc == (run.target if jumps else run.fall)


def test_the_single_step_form_is_still_there() -> None:
    _, config, step, _ = _example("gcd")
    single = build_step_network(config, step.read_only, runs=False)
    assert not single.runs and single.network.relu_layers == 3
    assert len(step.network.state_names) == len(single.network.state_names) + 12


@pytest.mark.parametrize("weights", ["families", "sparse"])
@pytest.mark.parametrize("name", ["hanoi", "palindromes", "gcd"])
def test_models_with_runs_match_the_reference(name: str, weights: str) -> None:
    """Whole runs in onnxruntime, with runs whose reads and landings are restricted to the
    words runs touch (hanoi, palindromes) or cover every writable word (gcd)."""
    from mlpc.compiler.encodings import ExportOptions

    example, config, step, words = _example(name)
    image = load_program([str(REPO / "examples" / example.file)], CompileOptions()).image
    model = OnnxModel(compile_model(image, config, ExportOptions(weights=weights),
                                    specialise=True).SerializeToString())
    run = example.small
    result = model.run(dict(run.inputs), tapes=[run.tape_words], max_steps=100_000)
    machine = MachineState(memory=list(words), tape_in=list(run.tape_words))
    while machine.status == Status.RUNNING:
        reference_step(config, machine)
    assert list(result.memory[0]) == machine.memory
    assert result.tapes[0] == tuple(machine.tape_out)
    assert int(result.steps[0]) == machine.steps > int(result.iterations[0])


def test_cli_one_step_compiles_the_specialised_network_without_runs(tmp_path: Path) -> None:
    """`--one-step` (with `--specialise`): one SUBLEQ step per iteration, the same results;
    without --specialise, or with a model, it is a usage error (exit status 2)."""
    import json

    import onnx
    from conftest import run_cli

    gcd = str(REPO / "examples" / "gcd.tl")
    inputs = ["--input", "a=1071", "--input", "b=462", "--json", "--no-cache"]
    runs = run_cli(["run", gcd, *inputs, "--specialise"], text=True)
    one = run_cli(["run", gcd, *inputs, "--specialise", "--one-step"], text=True)
    assert runs.returncode == one.returncode == 0
    a, b = json.loads(runs.stdout), json.loads(one.stdout)
    assert a["steps"] == b["steps"] == b["iterations"] == 895 > a["iterations"]
    assert {k: v for k, v in a.items() if k != "iterations"} == {
        k: v for k, v in b.items() if k != "iterations"}
    model = tmp_path / "one.onnx"
    made = run_cli(["compile", gcd, "-o", model, "--specialise", "--one-step"], text=True)
    assert made.returncode == 0
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert meta["network_form"] == "specialised" and "runs" not in meta
    bad = run_cli(["run", gcd, *inputs, "--one-step"], text=True)
    assert bad.returncode == 2 and "--one-step chooses the --specialise network" in bad.stderr
    assert run_cli(["run", model, *inputs, "--one-step"], text=True).returncode == 2
