"""Every command takes what a user would hand it (a program or a compiled model), or says in
one line which kind of file it wants; `--help` lists the kinds. In a subprocess, as a user
runs them (README.md, "The command line")."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

from mlpc.cli import attach_negative_values, main
from mlpc.compiler.driver import load_program, load_program_text
from mlpc.compiler.options import CompileOptions
from mlpc.errors import MlpcError

REPO = Path(__file__).resolve().parents[1]
GCD = REPO / "examples" / "gcd.tl"
HELLO = REPO / "examples" / "hello.asm"


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout.decode("utf-8")
        self.err = proc.stderr.decode("utf-8")


def mlpc(cwd: Path, *args: str | Path) -> Result:
    proc = run_cli(args, cwd=cwd)
    result = Result(proc)
    assert "Traceback" not in result.err
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inputs")
    for source, model in ((GCD, "gcd.onnx"), (HELLO, "hello.onnx")):
        result = mlpc(path, "compile", source, "-o", model)
        assert result.code == 0, result.err
    return path


def one_line_error(result: Result, code: int, *words: str) -> None:
    assert result.code == code, result.err
    assert result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    for word in words:
        assert word in result.err, result.err


# --- asm ------------------------------------------------------------------------------------


def test_asm_of_a_model_is_its_listing(work: Path) -> None:
    from_model = mlpc(work, "asm", "gcd.onnx")
    from_source = mlpc(work, "asm", GCD)
    assert from_model.code == from_source.code == 0
    assert from_model.out == from_source.out and "JMP" in from_model.out


def test_asm_of_a_model_among_programs(work: Path) -> None:
    one_line_error(mlpc(work, "asm", "gcd.onnx", HELLO), 2, "one compiled MODEL.onnx")


# --- inspect --------------------------------------------------------------------------------


def test_inspect_compiles_a_program_in_memory(work: Path) -> None:
    model = json.loads(mlpc(work, "inspect", "gcd.onnx", "--json").out)
    program = mlpc(work, "inspect", GCD, "--json")
    assert program.code == 0
    data = json.loads(program.out)
    assert data["file"] == f"{GCD} (compiled in memory)"
    for key in ("memory_words", "word_bits", "nonzero_weights", "layers", "file_bytes"):
        assert data[key] == model[key]


def test_inspect_a_program_with_compile_options(work: Path) -> None:
    result = mlpc(work, "inspect", HELLO, "--memory", "200", "--dtype", "float64")
    assert result.code == 0
    assert "m = 200 words" in result.out and "float64" in result.out


def test_inspect_a_model_refuses_compile_options(work: Path) -> None:
    one_line_error(mlpc(work, "inspect", "gcd.onnx", "--dtype", "float64"), 2,
                   "--dtype is a compile option")


# --- trace and verify on a model: the program from its metadata -----------------------------


def test_trace_of_a_model_is_its_programs(work: Path) -> None:
    args = ["--input", "a=1071", "--input", "b=462", "--steps", "5000"]
    model = mlpc(work, "trace", "gcd.onnx", *args)
    source = mlpc(work, "trace", GCD, *args)
    assert model.code == source.code == 0
    assert model.out == source.out
    assert model.out.splitlines()[-1] == "; halted after 895 steps; g = 21"


def test_trace_of_a_model_json_names_its_source(work: Path) -> None:
    result = mlpc(work, "trace", "hello.onnx", "--json")
    assert result.code == 0
    data = json.loads(result.out)
    assert data["program"] == str(HELLO) and data["text"] == "Hello, World!\n"


def test_verify_a_model(work: Path) -> None:
    result = mlpc(work, "verify", "gcd.onnx", "--input", "a=10", "--input", "b=4",
                  "--steps", "30", "--quiet")
    assert result.code == 0, result.err
    assert result.out.startswith("agree: reference, numpy, onnx for 30 steps")
    assert "source: agrees" in result.out


@pytest.mark.parametrize("name", ["gcd.tl", "hello.asm", "hello.dec"])
def test_a_program_from_text_is_the_program_from_its_file(name: str) -> None:
    """What trace and verify rebuild from a model's source: the same checked program and
    image as the file gives, named after the file, without reading it."""
    path = str(REPO / "examples" / name)
    from_file = load_program([path], CompileOptions())
    text = Path(path).read_text(encoding="utf-8")
    from_text = load_program_text(text, path, CompileOptions())
    assert from_text.image == from_file.image
    assert from_text.input_names == from_file.input_names
    assert (from_text.checked is None) == (from_file.checked is None) == (name != "gcd.tl")
    missing = str(REPO / "examples" / f"not-there-{name}")  # never read: the text is given
    assert load_program_text(text, missing, CompileOptions()).image.source_path == missing


def test_a_program_from_text_reports_errors_under_its_name() -> None:
    with pytest.raises(MlpcError, match=r"^elsewhere/bad\.tl:2:5: error: expected an expression"):
        load_program_text("output x;\nx = ;\n", "elsewhere/bad.tl", CompileOptions())


def test_trace_of_a_model_without_its_source(work: Path) -> None:
    """A model compiled from several images holds no single source to rebuild."""
    image = work / "two.dec"
    image.write_text("0 0 -1\n")
    assert mlpc(work, "compile", image, image, "-o", "two.onnx").code == 0
    one_line_error(mlpc(work, "trace", "two.onnx"), 1, "does not hold its program's source",
                   "give mlpc trace the program files")
    one_line_error(mlpc(work, "verify", "two.onnx"), 1, "give mlpc verify the program files")


def test_trace_of_a_model_built_with_another_stack(work: Path) -> None:
    fib = REPO / "examples" / "fib_rec.tl"
    assert mlpc(work, "compile", fib, "--stack", "300", "-o", "fib.onnx").code == 0
    one_line_error(mlpc(work, "trace", "fib.onnx", "--input", "n=3"), 1,
                   "does not rebuild the model's program")
    result = mlpc(work, "trace", "fib.onnx", "--input", "n=3", "--stack", "300")
    assert result.code == 0 and result.out.splitlines()[-1].startswith("; halted")


# --- one-line errors naming the kind of file wanted ------------------------------------------


@pytest.mark.parametrize(("args", "words"), [
    (["view", str(GCD)], ["mlpc view opens a compiled model (MODEL.onnx)"]),
    (["compile", "gcd.onnx", "-o", "x.onnx"], ["mlpc compile takes a program (.tl"]),
    (["trace", str(GCD), "gcd.onnx"], ["one compiled MODEL.onnx on its own"]),
    (["inspect", str(GCD), "gcd.onnx"], ["one compiled MODEL.onnx on its own"]),
])
def test_the_wrong_kind_of_file(work: Path, args: list[str], words: list[str]) -> None:
    one_line_error(mlpc(work, *args), 2, *words)


# --- trace's default window -----------------------------------------------------------------


def test_trace_says_when_it_stops_at_its_default_window(work: Path) -> None:
    # consecutive Fibonacci numbers: Euclid's slowest case, 8,632 steps
    result = mlpc(work, "trace", GCD, "--input", "a=832040", "--input", "b=514229")
    assert result.code == 0
    assert result.out.splitlines()[-1].startswith("; still running after 1000 steps")
    assert result.err == ("mlpc trace: stopped at the default window of 1,000 steps (the "
                          "program is still running); --steps N or --from A --to B shows "
                          "more\n")
    quiet = mlpc(work, "trace", GCD, "--input", "a=1071", "--input", "b=462", "--steps", "10")
    assert quiet.code == 0 and quiet.err == ""
    done = mlpc(work, "trace", HELLO)
    assert done.code == 0 and done.err == ""


# --- --help lists every kind of input -------------------------------------------------------


@pytest.mark.parametrize(("command", "kinds"), [
    ("run", [".tl", ".sq/.dec", ".asm", "MODEL.onnx"]),
    ("compile", [".tl", ".sq/.dec", ".asm"]),
    ("asm", [".tl", ".sq/.dec", ".asm", "MODEL.onnx"]),
    ("inspect", [".tl", ".sq/.dec", ".asm", "MODEL.onnx"]),
    ("trace", [".tl", ".sq/.dec", ".asm", "MODEL.onnx"]),
    ("verify", [".tl", ".sq/.dec", ".asm", "MODEL.onnx"]),
    ("view", ["MODEL.onnx"]),
])
def test_help_lists_the_input_kinds(work: Path, command: str, kinds: list[str]) -> None:
    result = mlpc(work, command, "--help")
    assert result.code == 0
    for kind in kinds:
        assert kind in result.out, (command, kind)


# --- values that start with '-': negative tape words and inputs ------------------------------

# The README's eof() example: every word of the tape counts, -1 included.
EOF_PROGRAM = """output n, sum;
while (!eof()) { var x = read(); n += 1; sum += x; }
"""


@pytest.fixture(scope="module")
def eof_program(work: Path) -> Path:
    path = work / "eof.tl"
    path.write_text(EOF_PROGRAM)
    return path


def test_a_tape_that_starts_with_a_negative_word(work: Path, eof_program: Path) -> None:
    """As a user types it: argparse would take `-1,-1,5` for an option."""
    result = mlpc(work, "run", eof_program, "--tape", "-1,-1,5", "--engine", "reference")
    assert result.code == 0, result.err
    assert result.out == "n = 3\nsum = 3\n"


@pytest.mark.parametrize(("command", "last_line"), [
    ("run", "sum = 3"),
    ("trace", "; halted after 28 steps; n = 3; sum = 3"),
    ("verify", "source: agrees with the full reference run (halted, 28 SUBLEQ steps, 0 output "
               "words, n = 3, sum = 3)"),
])
def test_every_command_takes_a_negative_tape(eof_program: Path,
                                             capsys: pytest.CaptureFixture[str], command: str,
                                             last_line: str) -> None:
    extra = ["--quiet"] if command in ("run", "verify") else []
    assert main([command, str(eof_program), "--tape", "-1,-1,5", *extra]) == 0
    spaced = capsys.readouterr().out
    assert spaced.splitlines()[-1] == last_line
    assert main([command, str(eof_program), "--tape=-1,-1,5", *extra]) == 0
    assert capsys.readouterr().out == spaced


@pytest.mark.parametrize(("command", "last_line"), [
    ("trace", "; halted after 522 steps; g = -5"),
    ("verify", "source: agrees with the full reference run (halted, 522 SUBLEQ steps, 0 output "
               "words, g = -5)"),
])
def test_every_command_takes_a_negative_input(capsys: pytest.CaptureFixture[str], command: str,
                                              last_line: str) -> None:
    quiet = ["--quiet"] if command == "verify" else []
    for args in (["--input", "a=-5", "--input", "b=-10"], ["--input", "b=-10", "--input=a=-5"]):
        assert main([command, str(GCD), *args, *quiet]) == 0
        assert capsys.readouterr().out.splitlines()[-1] == last_line


def test_a_batch_of_negative_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    # gcd's `%` keeps the dividend's sign: -3 % 6 = -3, then 6 % -3 = 0, so g = -3
    assert main(["run", str(GCD), "--input", "a=-3,4", "--input", "b=6", "--engine",
                 "reference", "--quiet"]) == 0
    assert capsys.readouterr().out == "[1] a=-3 b=6\ng = -3\n[2] a=4 b=6\ng = 2\n"


def test_only_values_are_attached() -> None:
    assert attach_negative_values(["run", "p.tl", "--tape", "-1,2", "--input", "a=-3"]) == [
        "run", "p.tl", "--tape=-1,2", "--input", "a=-3"]
    assert attach_negative_values(["run", "p.tl", "--input", "-3"]) == [
        "run", "p.tl", "--input=-3"]
    # an option after --tape is not its value; nothing after `--` is an option
    assert attach_negative_values(["run", "--tape", "--stdin"]) == ["run", "--tape", "--stdin"]
    assert attach_negative_values(["run", "--", "--tape", "-1"]) == [
        "run", "--", "--tape", "-1"]
    assert attach_negative_values(["run", "p.tl", "--tape"]) == ["run", "p.tl", "--tape"]


def test_a_tape_option_without_its_value_is_still_a_usage_error(work: Path,
                                                                eof_program: Path) -> None:
    one_line_error(mlpc(work, "run", eof_program, "--tape", "--stdin"), 2,
                   "argument --tape: expected one argument")
    one_line_error(mlpc(work, "run", eof_program, "--input", "-3"), 2,
                   "--input expects NAME=VALUE, got '-3'")
