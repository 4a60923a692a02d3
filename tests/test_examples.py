"""The example programs in `examples/`: every engine against the hand-worked table in
`examples/expected.py`, and the `mlpc run` lines of their header comments.

- source and reference engines: the default inputs (the header's command line);
- numpy and onnxruntime: the small inputs (a few thousand SUBLEQ steps, seconds each) in the
  default run, the default inputs in the slow run (`-m slow`: minutes per program);
- the machine-level engines must also agree with the reference interpreter on the step count.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import shlex
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from mlpc import cli
from mlpc.cli.common import parse_inputs, parse_tape
from mlpc.compiler.driver import LoadedProgram, load_program, machine_config
from mlpc.compiler.options import CompileOptions
from mlpc.runtime.engines import get_engine
from mlpc.runtime.report import RunReport
from mlpc.runtime.request import RunRequest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
MAX_STEPS = 1_000_000  # every default run takes well under 200,000 SUBLEQ steps


def _load_expected() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlpc_examples_expected",
                                                  EXAMPLES_DIR / "expected.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


expected = _load_expected()
EXAMPLES = expected.EXAMPLES
NAMES = [e.name for e in EXAMPLES]


@cache
def program(name: str) -> LoadedProgram:
    return load_program([str(EXAMPLES_DIR / f"{name}.tl")], CompileOptions())


def run(name: str, engine: str, which: str) -> RunReport:
    case = getattr(expected.BY_NAME[name], which)
    prog = program(name)
    request = RunRequest(prog, machine_config(prog.image), case.tape_words, case.inputs,
                         MAX_STEPS)
    return get_engine(engine)(request)


@cache
def reference_steps(name: str, which: str) -> int:
    return run(name, "reference", which).steps


def check(report: RunReport, name: str, which: str) -> None:
    case = getattr(expected.BY_NAME[name], which)
    assert report.status == case.status
    assert report.detail == case.detail
    assert report.outputs == case.outputs
    assert report.tape == case.out_words
    if isinstance(case.out, str):
        assert report.text() == case.out


def test_table_covers_every_example() -> None:
    on_disk = sorted(p.stem for p in EXAMPLES_DIR.glob("*.tl"))
    assert on_disk == sorted(NAMES)
    assert len(NAMES) >= 12
    assert (EXAMPLES_DIR / "hello.asm").is_file()


@pytest.mark.parametrize("engine", ["source", "reference"])
@pytest.mark.parametrize("name", NAMES)
def test_default_inputs(name: str, engine: str) -> None:
    report = run(name, engine, "default")
    check(report, name, "default")
    if engine == "reference":
        assert report.steps < 200_000  # the examples' promise: quick on the interpreter


@pytest.mark.parametrize("name", NAMES)
def test_small_inputs_on_the_interpreters(name: str) -> None:
    check(run(name, "source", "small"), name, "small")
    report = run(name, "reference", "small")
    check(report, name, "small")
    assert report.steps <= 6_000  # keeps the network engines' runs short (seconds)


@pytest.mark.parametrize("engine", ["numpy", "onnx"])
@pytest.mark.parametrize("name", NAMES)
def test_small_inputs_on_the_network(name: str, engine: str) -> None:
    report = run(name, engine, "small")
    check(report, name, "small")
    assert report.steps == reference_steps(name, "small")


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["numpy", "onnx"])
@pytest.mark.parametrize("name", NAMES)
def test_default_inputs_on_the_network(name: str, engine: str) -> None:
    report = run(name, engine, "default")
    check(report, name, "default")
    assert report.steps == reference_steps(name, "default")


# --- the header comments -----------------------------------------------------------------

RUN_LINE = re.compile(r"^//\s+((?:printf\s+'[^']*'\s*\|\s*)?mlpc run .*)$")


def header(name: str) -> list[str]:
    lines = []
    for line in (EXAMPLES_DIR / f"{name}.tl").read_text().splitlines():
        if not line.startswith("//"):
            break
        lines.append(line)
    return lines


def run_lines(name: str) -> list[str]:
    return [m.group(1) for line in header(name) if (m := RUN_LINE.match(line))]


def parse_run_line(line: str) -> tuple[list[str], bytes | None]:
    """`[printf 'TEXT' |] mlpc run ARGS` -> (the arguments after `mlpc`, stdin bytes)."""
    stdin = None
    if line.startswith("printf"):
        left, _, line = line.partition("|")
        words = shlex.split(left)
        assert len(words) == 2 and "%" not in words[1] and "\\" not in words[1], left
        stdin = words[1].encode()
    words = shlex.split(line)
    assert words[:2] == ["mlpc", "run"], line
    return words[1:], stdin


def as_request(args: list[str], stdin: bytes | None) -> tuple[tuple[tuple[str, int], ...],
                                                            tuple[int, ...]]:
    """The named inputs and the tape a command line gives, as `mlpc run` reads them."""
    ns = cli.build_parser().parse_args(args)
    tape = tuple(stdin.decode()) if stdin is not None else parse_tape(ns.tape or "")
    return parse_inputs(ns.input), tuple(ord(c) if isinstance(c, str) else c for c in tape)


@pytest.mark.parametrize("name", NAMES)
def test_header_says_what_and_how(name: str) -> None:
    text = "\n".join(header(name))
    assert text.startswith(f"// {name}.tl: ")  # what it does
    lines = run_lines(name)
    assert lines, f"{name}.tl: no `mlpc run` line in the header comment"
    args, stdin = parse_run_line(lines[0])
    assert args[1] == f"examples/{name}.tl"
    # the first line runs the table's default inputs
    default = expected.BY_NAME[name].default
    inputs, tape = as_request(args, stdin)
    assert dict(inputs) == dict(default.inputs)
    assert tape == default.tape_words


@pytest.mark.parametrize("name", NAMES)
def test_header_run_lines_work(name: str, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """Every `mlpc run` line of the header, run by the CLI on the reference engine from the
    repository root, halts; the outputs are the table's where the inputs are the table's."""
    monkeypatch.chdir(EXAMPLES_DIR.parent)
    example = expected.BY_NAME[name]
    for line in run_lines(name):
        args, stdin = parse_run_line(line)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin or b"")))
        status = cli.main([*args, "--engine", "reference", "--json", "--quiet"])
        got = json.loads(capsys.readouterr().out)
        assert status == 0, line
        assert got["status"] == "halted", line
        inputs, tape = as_request(args, stdin)
        for case in (example.default, example.small):
            if dict(inputs) == dict(case.inputs) and tape == case.tape_words:
                assert got["outputs"] == dict(case.outputs), line
                assert tuple(got["tape"]) == case.out_words, line


SPECIALISED = [n for n in NAMES if any("--specialise" in line for line in run_lines(n))]


def test_the_longest_header_runs_go_to_the_specialised_network() -> None:
    """The header lines that once sent their inputs to `--engine reference` (thousands of
    steps) run them on the network specialised to the program (issue 22's bar: under a
    second of network time each, `benchmarks/bench_runs.py`)."""
    assert sorted(SPECIALISED) == ["brainfuck", "collatz", "crc32", "fib_rec", "isqrt"]
    assert not any("--engine reference" in line for n in NAMES for line in run_lines(n))


@pytest.mark.slow
@pytest.mark.parametrize("name", SPECIALISED)
def test_specialised_header_lines_run_on_the_network(
        name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    """Such a line, as written (the default onnx engine, `--specialise`), gives the table's
    outputs in as many steps as the reference interpreter, in about half as many
    iterations or fewer."""
    monkeypatch.chdir(EXAMPLES_DIR.parent)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    example = expected.BY_NAME[name]
    line = next(line for line in run_lines(name) if "--specialise" in line)
    args, stdin = parse_run_line(line)
    got = {}
    for engine in ("reference", "onnx"):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin or b"")))
        assert cli.main([*args, "--engine", engine, "--json", "--quiet"]) == 0, line
        got[engine] = json.loads(capsys.readouterr().out)
    net = got["onnx"]
    assert net["status"] == "halted"
    assert net["outputs"] == dict(example.default.outputs)
    assert tuple(net["tape"]) == example.default.out_words
    assert net["steps"] == got["reference"]["steps"]
    assert net["iterations"] < 0.6 * net["steps"]


@pytest.mark.parametrize("engine", ["reference", "numpy", "onnx"])
def test_hello_asm(engine: str) -> None:
    """The hand-written SUBLEQ example (56 steps) on the machine-level engines."""
    prog = load_program([str(EXAMPLES_DIR / "hello.asm")], CompileOptions())
    report = get_engine(engine)(RunRequest(prog, machine_config(prog.image), max_steps=1000))
    assert report.status == "halted"
    assert report.text() == "Hello, World!\n"
    assert report.steps == 56
