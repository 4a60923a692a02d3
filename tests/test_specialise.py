"""`--specialise`: the network with a program's constant words folded into its weights.

The oracle is the universal machine (the reference interpreter): a specialised network must
give the same outputs, text, status, detail, step count and memory on every program whose
writable words were declared correctly, and fault with READ_ONLY (at the step that writes)
when they were not.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from test_differential import capturing_memory, run_everywhere
from tl_cases import CASES, TlCase

from mlpc.cli import main
from mlpc.compiler import model as model_stage
from mlpc.compiler import network as network_module
from mlpc.compiler.codegen import (
    ReadOnly,
    build_step_network,
    decode_state,
    encode_state,
    ramp_weights,
)
from mlpc.compiler.driver import LoadedProgram, machine_config
from mlpc.compiler.encodings import ExportOptions
from mlpc.compiler.machine_config import Fault, MachineConfig, Status, canonical_pc
from mlpc.compiler.model import check_specialised_float64, read_only_of
from mlpc.compiler.options import CompileOptions
from mlpc.errors import MlpcError
from mlpc.runtime import reference
from mlpc.runtime.engines import get_engine
from mlpc.runtime.machine import MachineState
from mlpc.runtime.numpy_exec import NumpyExecutor
from mlpc.runtime.request import RunRequest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
from expected import EXAMPLES  # noqa: E402

EXAMPLE_IDS = [e.name for e in EXAMPLES]


def _elements(network: object) -> int:
    return sum(d.length or 1 for s in network.spaces  # type: ignore[attr-defined]
               for d in s.definitions() if not d.passthrough)


def _observed(report: object) -> tuple[object, ...]:
    r = report
    return r.outputs, r.tape, r.status, r.detail, r.steps  # type: ignore[attr-defined]


# --- the table of one-scalar functions ---------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(1 << 40), 1 << 40), min_size=2, max_size=40))
def test_ramp_weights_interpolate_every_value(values: list[int]) -> None:
    w = ramp_weights(values)
    assert len(w) == len(values) - 1
    for x, expected in enumerate(values):
        assert values[0] + sum(wk * max(x - k, 0) for k, wk in enumerate(w)) == expected


# --- examples: specialised == universal, on numpy and onnx -------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=EXAMPLE_IDS)
def test_examples_specialised_onnx_equals_reference(example: object) -> None:
    run = example.small  # type: ignore[attr-defined]
    program = LoadedProgram([str(REPO / "examples" / example.file)],  # type: ignore[attr-defined]
                            CompileOptions())
    config = machine_config(program.image)
    request = RunRequest(program, config, run.tape_words, run.inputs, 100_000)
    with capturing_memory() as memories:
        expected = get_engine("reference")(request)
        got = get_engine("onnx")(RunRequest(program, config, run.tape_words, run.inputs,
                                            100_000, specialise=True))
    assert _observed(got) == _observed(expected)
    assert got.outputs == run.outputs and got.status == run.status
    assert memories[0] == memories[1]  # the whole final memory, constant words included


@pytest.mark.parametrize("name", ["gcd", "sieve"])
def test_examples_specialised_float64_onnx_equals_reference(name: str) -> None:
    """The float64 model of a specialised network (its long tables are families, its short
    ones scalar units) on onnxruntime, whole memory included."""
    example = next(e for e in EXAMPLES if e.name == name)
    run = example.small
    program = LoadedProgram([str(REPO / "examples" / example.file)], CompileOptions())
    config = machine_config(program.image)
    request = RunRequest(program, config, run.tape_words, run.inputs, 100_000)
    with capturing_memory() as memories:
        expected = get_engine("reference")(request)
        got = get_engine("onnx")(RunRequest(program, config, run.tape_words, run.inputs,
                                            100_000, specialise=True, dtype="float64"))
    assert _observed(got) == _observed(expected)
    assert memories[0] == memories[1]


@pytest.mark.parametrize("name", ["gcd", "fizzbuzz", "hanoi"])
def test_examples_specialised_numpy_in_lock_step(name: str) -> None:
    """Every step of the single-step specialised network (numpy, bounds checked at run
    time) decodes to the reference machine's state: pc, the whole memory, the output event
    (the network with runs: `test_runs.py`)."""
    example = next(e for e in EXAMPLES if e.name == name)
    run = example.small
    program = LoadedProgram([str(REPO / "examples" / example.file)], CompileOptions())
    image = program.image
    config = machine_config(image)
    step = build_step_network(config, read_only_of(image, config), runs=False)
    memory = list(image.words) + [0] * (config.memory - len(image.words))
    for input_name, address in image.inputs:
        memory[address] = dict(run.inputs)[input_name]
    machine = MachineState(memory=list(memory), tape_in=list(run.tape_words))
    executor = NumpyExecutor(step.network, check=True)
    x = encode_state(step.layout, memory, run.tape_words, 100_000)[None, :]
    steps = 0
    while (event := reference.step(config, machine)) is not None:
        x = executor.step(x)
        steps += 1
        state = decode_state(step.layout, x[0])
        assert (state.pc, state.memory) == (machine.pc, tuple(machine.memory)), steps
        assert state.out_event == event.output
    assert decode_state(step.layout, executor.step(x)[0]).status == machine.status
    assert steps > 250


def test_specialised_networks_are_smaller_on_the_median_example() -> None:
    """The issue's bar on the example programs: at least 3x fewer elements computed per step
    on the median example (the README's table states the measured ratios)."""
    ratios = []
    for example in EXAMPLES:
        image = LoadedProgram([str(REPO / "examples" / example.file)], CompileOptions()).image
        config = machine_config(image)
        universal = build_step_network(config).network
        special = build_step_network(config, read_only_of(image, config), False).network
        assert special.relu_layers == universal.relu_layers == 3
        assert build_step_network(config, read_only_of(image, config)).network.relu_layers == 3
        ratios.append(_elements(universal) / _elements(special))
    assert float(np.median(ratios)) >= 3.0, sorted(ratios)


# --- the shared table and generated programs ---------------------------------------------------


def _table_case(case: TlCase) -> None:
    path = Path(f"/tmp/mlpc-specialise-{case.name}.tl")
    path.write_text(case.source, encoding="utf-8")
    program = LoadedProgram([str(path)], CompileOptions(word_bits=case.word_bits))
    config = machine_config(program.image, word_bits=case.word_bits, tape_out=case.tape_out)
    budget = case.max_steps or 2_000_000
    expected = get_engine("reference")(RunRequest(program, config, case.tape, case.inputs,
                                                  budget))
    got = get_engine("onnx")(RunRequest(program, config, case.tape, case.inputs, budget,
                                        specialise=True))
    assert _observed(got) == _observed(expected)
    assert (got.outputs, got.tape, got.status) == (case.outputs, case.expected_tape,
                                                   case.status)


SAMPLE = CASES[::6]


@pytest.mark.parametrize("case", SAMPLE, ids=[c.name for c in SAMPLE])
def test_table_sample_specialised(case: TlCase) -> None:
    _table_case(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_table_specialised(case: TlCase) -> None:
    _table_case(case)


def test_generated_programs_run_specialised() -> None:
    """The differential suite's fixed programs (each trap kind, recursion, full tapes) on
    the specialised onnx model next to the reference interpreter (memory included); its
    hypothesis tests run `onnx+specialised` among their engines."""
    from test_differential import REGRESSIONS

    for _, program in REGRESSIONS:
        run_everywhere(program, ("reference", "onnx+specialised", "numpy+specialised"))


# --- a wrong read-only set is caught by the fault ----------------------------------------------


def _first_write_into(config: MachineConfig, memory: list[int], constant: set[int]
                      ) -> int:
    """The step (1-based) at which the reference machine first writes a word in `constant`."""
    machine = MachineState(memory=list(memory))
    steps = 0
    while (event := reference.step(config, machine)) is not None:
        steps += 1
        if any(address in constant for address, _, _ in event.writes):
            return steps
    raise AssertionError("the program never writes those words")


@pytest.mark.parametrize("engine", ["onnx", "numpy"])
def test_a_wrong_read_only_set_faults_at_the_write(engine: str, tmp_path: Path) -> None:
    source = tmp_path / "count.tl"
    source.write_text("output s;\nvar i = 0;\nwhile (i < 20) { s += i; i += 1; }\n")
    program = LoadedProgram([str(source)], CompileOptions())
    image = program.image
    config = machine_config(image)
    right = read_only_of(image, config)
    s_address = dict(image.outputs)["s"]
    wrong = ReadOnly(tuple(j for j in right.writable if j != s_address), right.image)
    memory = list(image.words) + [0] * (config.memory - len(image.words))
    at = _first_write_into(config, memory, {s_address})
    request = RunRequest(program, config, (), (), 100_000, specialise=True)
    import mlpc.runtime.onnx_engine as onnx_engine
    with pytest.MonkeyPatch.context() as patch:  # the analysis "forgets" s
        patch.setattr(onnx_engine, "read_only_of", lambda image, config: wrong)
        patch.setattr(model_stage, "read_only_of", lambda image, config: wrong)
        report = get_engine(engine)(request)
    assert report.status == "fault"
    assert report.detail == Fault.READ_ONLY.describe() == "write to a read-only word"
    assert report.steps == at - 1  # the faulting instruction does not count, as every fault


def _first_indirect_read_of(config: MachineConfig, memory: list[int], words: set[int],
                            writable: set[int]) -> int:
    """The step (1-based) at which the reference machine first reads a word in `words`
    through an operand word in `writable` (a patched a operand)."""
    machine = MachineState(memory=list(memory))
    steps = 0
    while machine.status == Status.RUNNING:
        pc = machine.pc
        steps += 1
        if pc in writable and machine.memory[pc] in words:
            return steps
        if reference.step(config, machine) is None:
            break
    raise AssertionError("the program never reads those words through a written operand")


@pytest.mark.parametrize("engine", ["onnx", "numpy"])
def test_a_wrong_set_read_through_an_operand_faults(engine: str, tmp_path: Path) -> None:
    """The array `t` is only read, but through an operand the program patches (an indexed
    read): a set that calls its words constant faults INDIRECT_READ at the first such read,
    before it, instead of reading the constant."""
    source = tmp_path / "table.tl"
    source.write_text("output s;\nvar t[3] = {5, 6, 7};\nvar i = 0;\n"
                      "while (i < 3) { s += t[i]; i += 1; }\n")
    program = LoadedProgram([str(source)], CompileOptions())
    image = program.image
    config = machine_config(image)
    right = read_only_of(image, config)
    assert right.direct_reads
    t = dict(image.symbols)["t"]
    table = {t, t + 1, t + 2}
    assert table <= set(right.writable)  # arrays are writable in the lowering's record
    wrong = ReadOnly(tuple(j for j in right.writable if j not in table), right.image, True)
    memory = list(image.words) + [0] * (config.memory - len(image.words))
    at = _first_indirect_read_of(config, memory, table, set(wrong.writable))
    request = RunRequest(program, config, (), (), 100_000, specialise=True)
    import mlpc.runtime.onnx_engine as onnx_engine
    with pytest.MonkeyPatch.context() as patch:  # the analysis "forgets" t
        patch.setattr(onnx_engine, "read_only_of", lambda image, config: wrong)
        patch.setattr(model_stage, "read_only_of", lambda image, config: wrong)
        report = get_engine(engine)(request)
    assert (report.status, report.detail) == (
        "fault", "read of a read-only word through a written operand")
    assert report.steps == at - 1
    assert dict(report.outputs) == {"s": 0}


# --- the command line and the model ------------------------------------------------------------


def _mlpc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(args, cwd=cwd, text=True)


def test_cli_compile_and_run_specialised(tmp_path: Path) -> None:
    gcd = str(REPO / "examples" / "gcd.tl")
    out = tmp_path / "gcd.onnx"
    done = _mlpc("compile", gcd, "-o", str(out), "--specialise", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.rstrip().endswith("families weights, int64, specialised")
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["network_form"] == "specialised"
    constant = json.loads(meta["constant_words"])
    writable = json.loads(meta["state_words"])
    assert len(writable) + sum(b - a for a, b in constant) == int(meta["memory_words"])
    ran = _mlpc("run", str(out), "--input", "a=1071", "--input", "b=462", "--json",
                cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["outputs"] == {"g": 21}
    universal = _mlpc("run", gcd, "--input", "a=1071", "--input", "b=462", "--json",
                      cwd=tmp_path)
    direct = _mlpc("run", gcd, "--input", "a=1071", "--input", "b=462", "--json",
                   "--specialise", cwd=tmp_path)
    results = [json.loads(r.stdout) for r in (direct, universal, ran)]
    # the same run; the specialised network takes a straight-line run per iteration
    iterations = [r.pop("iterations") for r in results]
    assert results[0] == results[1] == results[2]
    assert iterations[1] == results[1]["steps"] == 895
    assert iterations[0] == iterations[2] < 895 / 3


def test_cli_read_only_declares_subleq_constants(tmp_path: Path, subleq_corpus: Path) -> None:
    hello = subleq_corpus / "hello.dec"
    refused = _mlpc("run", str(hello), "--specialise", cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {hello}: --specialise needs to know which words")
    assert refused.stderr.count("\n") == 1
    # hello.dec's first instruction (words 0-2) is never written: a correct declaration
    ok = _mlpc("run", str(hello), "--specialise", "--read-only", "0-2", cwd=tmp_path)
    assert (ok.returncode, ok.stdout) == (0, "Hello, World!\n")
    # words 3-20 hold the data it writes: the model faults at the first write, not later
    wrong = _mlpc("run", str(hello), "--specialise", "--read-only", "3-20", "--json",
                  cwd=tmp_path)
    report = json.loads(wrong.stdout)
    assert (report["status"], report["detail"], report["steps"]) == (
        "fault", "write to a read-only word", 0)


@pytest.mark.parametrize("args, message", [
    (["--read-only", "0-2"], "error: --read-only declares constant words for --specialise: "
                             "give both\n"),
    (["--specialise", "--read-only", "5-2"], "argument --read-only: expected START-END with "
                                             "0 <= START <= END, got '5-2'"),
])
def test_cli_read_only_errors(args: list[str], message: str, tmp_path: Path) -> None:
    done = _mlpc("run", str(REPO / "examples" / "gcd.tl"), *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr


def test_cli_read_only_is_refused_for_tl(tmp_path: Path) -> None:
    done = _mlpc("run", str(REPO / "examples" / "gcd.tl"), "--specialise", "--read-only",
                 "0-2", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr == ("error: --read-only is for SUBLEQ code: a .tl program knows which "
                           "words it writes\n")


def _isqrt_networks() -> tuple[object, MachineConfig, int]:
    """isqrt's specialised network, its machine, and the largest partial sum it can reach:
    past 2^53, while the universal network of the same machine stays below."""
    program = LoadedProgram([str(REPO / "examples" / "isqrt.tl")], CompileOptions())
    config = machine_config(program.image)
    # float64 keeps one step per iteration where the runs' tables pass 2^53
    # (`model.specialised_step`): the refusal is the single-step network's
    special = build_step_network(config, read_only_of(program.image, config), False).network
    return special, config, special.max_magnitude()


@pytest.mark.parametrize("command", ["compile", "run"])
def test_float64_refused_for_specialise_names_it(command: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Plain `--dtype float64` works for isqrt; with `--specialise` the refusal says that
    --specialise is the cause, and what works instead."""
    special, config, worst = _isqrt_networks()
    assert worst >= network_module.FLOAT64_EXACT
    assert build_step_network(config).network.max_magnitude() < network_module.FLOAT64_EXACT
    isqrt = str(REPO / "examples" / "isqrt.tl")
    args = [command, isqrt, *(["-o", str(tmp_path / "m.onnx")] if command == "compile"
                              else ["--input", "n=10", "--quiet"])]
    assert main([*args, "--dtype", "float64"]) == 0
    capsys.readouterr()
    assert main([*args, "--dtype", "float64", "--specialise"]) == 1
    assert capsys.readouterr().err == (
        "error: float64 is not exact for this program with --specialise: its constant words, "
        f"folded into the weights, let a partial sum reach {worst} >= 2^53 (use --dtype "
        "int64, or drop --specialise)\n")
    assert main([*args, "--dtype", "int64", "--specialise"]) == 0


def test_float64_refusal_blames_specialise_only_when_dropping_it_helps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine whose universal network is not exact in float64 either, dropping
    --specialise would not help: the plain refusal (check_options) stands."""
    special, config, worst = _isqrt_networks()
    options = ExportOptions(dtype="float64")
    with pytest.raises(MlpcError, match="drop --specialise"):
        check_specialised_float64(special, config, options)
    # no network is exact now (the model stage reads the bound as it imported it)
    monkeypatch.setattr(model_stage, "FLOAT64_EXACT", 1)
    check_specialised_float64(special, config, options)


def test_the_committed_benchmark_passed_its_checks() -> None:
    """The results the README's table is made of (tests/test_docs.py checks the table):
    every timed window agreed with the reference interpreter, and the issue's bars held on
    the median example: 3x fewer elements per step, 2x the steps/s (at batch 64: at batch 1
    both forms are bound by the number of onnxruntime ops, see the README)."""
    result = json.loads((REPO / "benchmarks" / "results" / "specialise.json").read_text())
    assert result["mismatches"] == []
    # per SUBLEQ step: a specialised iteration executes a straight-line run where one
    # starts, so its elements are spread over the steps per iteration of bench_runs.py
    runs = json.loads((REPO / "benchmarks" / "results" / "runs.json").read_text())
    per_iteration = {r["program"]: r["runs"]["steps_per_iteration"] for r in runs["rows"]}
    assert statistics.median(
        r["universal"]["elements_per_step"] * per_iteration[r["program"]]
        / r["specialised"]["elements_per_step"] for r in result["default_memory"]) >= 3.0
    assert result["summary"]["median_speed_ratio_batch64_default"] >= 2.0
    rows = result["default_memory"] + result["memory_4096"]
    assert {r["program"] for r in rows} == {e.name for e in EXAMPLES}
    assert all(r["specialised"]["state"] < r["universal"]["state"] for r in rows)


def test_inspect_shows_both_forms(tmp_path: Path) -> None:
    gcd = str(REPO / "examples" / "gcd.tl")
    out = tmp_path / "gcd.onnx"
    assert _mlpc("compile", gcd, "-o", str(out), "--specialise", cwd=tmp_path).returncode == 0
    shown = _mlpc("inspect", str(out), "--json", cwd=tmp_path)
    info = json.loads(shown.stdout)
    image = LoadedProgram([gcd], CompileOptions()).image
    config = machine_config(image)
    special = build_step_network(config, read_only_of(image, config)).network
    universal = build_step_network(config).network
    assert info["network_form"] == "specialised"
    assert info["network_sizes"]["specialised"]["elements_per_step"] == _elements(special)
    assert info["network_sizes"]["universal"]["elements_per_step"] == _elements(universal)
    assert info["network_sizes"]["specialised"]["state"] == special.n_state
    constant = sum(b - a for a, b in info["constant_words"])
    assert constant == config.memory - len(read_only_of(image, config).writable)
    text = _mlpc("inspect", str(out), cwd=tmp_path).stdout
    assert f"form: specialised ({constant:,} constant words in " in text


# --- random machines, random constant words ------------------------------------------------------


@st.composite
def specialised_machines(draw: st.DrawFn) -> tuple[MachineConfig, list[int], list[int],
                                                   tuple[int, ...]]:
    """A random machine (as tests/test_network.py draws them: operands near the memory,
    words at the edges of the W-bit range) and a random non-empty set of writable words."""
    bits = draw(st.sampled_from((16, 32)))
    m = draw(st.integers(3, 24))
    config = MachineConfig(memory=m, word_bits=bits, tape_in=draw(st.integers(0, 3)),
                           tape_out=draw(st.integers(0, 4)))
    word = st.one_of(st.integers(-3, m + 2), st.integers(-3, m + 2),
                     st.sampled_from((config.word_min, config.word_max, 0, 1, -1)),
                     st.integers(config.word_min, config.word_max))
    image = draw(st.lists(word, min_size=m, max_size=m))
    tape = draw(st.lists(word, max_size=config.tape_in))
    writable = draw(st.sets(st.integers(0, m - 1), min_size=1))
    return config, image, tape, tuple(sorted(writable))


def specialised_fault(config: MachineConfig, machine: MachineState, constant: set[int],
                      direct_reads: bool) -> Fault | None:
    """The fault only a specialised network has, for the next step of a running machine
    whose instruction the reference machine would execute: a write to a constant word
    (READ_ONLY), or with `direct_reads` a constant word named by a writable operand word
    (INDIRECT_READ)."""
    m, pc, memory = config.memory, machine.pc, machine.memory
    if machine.status != Status.RUNNING or not 0 <= pc <= m - 3:
        return None
    a, b = memory[pc], memory[pc + 1]
    if not (-1 <= a < m and -1 <= b < m) or a == b == -1:
        return None
    if b in constant:
        return Fault.READ_ONLY
    if direct_reads and pc not in constant and a in constant:
        return Fault.INDIRECT_READ
    return None


@settings(max_examples=60, deadline=None)
@given(machine=specialised_machines(), dtype=st.sampled_from((np.int64, np.float64)),
       direct_reads=st.booleans())
def test_random_machines_in_lock_step(machine: tuple[MachineConfig, list[int], list[int],
                                                     tuple[int, ...]], dtype: type,
                                      direct_reads: bool) -> None:
    """Every step of a specialised network on a random machine is the reference machine's
    step, until an instruction would write a constant word (READ_ONLY) or, when the network
    assumes that constant words are read through constant operands only (`direct_reads`),
    read one through a writable operand word (INDIRECT_READ): that step faults, with the
    memory, pc and step count of the state before it."""
    config, image, tape, writable = machine
    step = build_step_network(config, ReadOnly(writable, tuple(image), direct_reads))
    executor = NumpyExecutor(step.network, check=True, dtype=dtype)
    machine_state = MachineState(memory=list(image), tape_in=list(tape))
    x = encode_state(step.layout, image, tape, 1000)[None, :].astype(dtype)
    constant = set(range(config.memory)) - set(writable)
    for _ in range(30):
        before = (list(machine_state.memory), machine_state.pc, machine_state.steps)
        fault = specialised_fault(config, machine_state, constant, direct_reads)
        event = reference.step(config, machine_state)
        x = executor.step(x)
        state = decode_state(step.layout, x[0].astype(np.int64))
        m = config.memory
        if fault is not None:
            assert (state.fault, list(state.memory), canonical_pc(state.pc, m)) == (
                fault, before[0], canonical_pc(before[1], m))
            assert 1000 - state.budget == before[2]
            return
        assert (list(state.memory), canonical_pc(state.pc, m), state.fault) == (
            machine_state.memory, canonical_pc(machine_state.pc, m), machine_state.fault)
        assert 1000 - state.budget == machine_state.steps
        assert state.out_event == (event.output if event is not None else None)
