"""`mlpc run --engine reference` and `mlpc asm` as a user runs them: in a subprocess, checking
stdout, stderr and the exit status (docs/machine.md, "What a run reports")."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
HELLO_ASM = REPO / "examples" / "hello.asm"
HELLO_TEXT = "Hello, World!\n"
HELLO_WORDS = "72 101 108 108 111 44 32 87 111 114 108 100 33 10\n"

# Reads words until the end of the tape (-1; any negative word ends it) and writes them back.
ECHO_ASM = """\
# echo: copy the input tape to the output tape
loop:   -1 ch               # ch <- next input word (-1 once the tape is exhausted)
        u u                 # u = 0
        t t                 # t = 0
        ch t                # t = -ch
        t u                 # u = ch
        m1 u done           # u = ch + 1 <= 0: the end of the input
        ch -1               # output ch
        z z loop
done:   z z -1              # halt

ch:     .word 0
t:      .word 0
u:      .word 0
m1:     .word -1
z:      .word 0
"""
# 8 steps per word echoed; the end of the tape takes 6 steps and the halt 1.


def echo_steps(n: int) -> int:
    return 8 * n + 7


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout.decode("utf-8")
        self.err = proc.stderr.decode("utf-8")

    def json(self) -> dict[str, object]:
        data = json.loads(self.out)
        assert isinstance(data, dict)
        return data


# The commands run in an empty directory, as a user's would: `python -m` puts the working
# directory first on sys.path, and in the repository root the partial `mlpc/` source folder
# would shadow the installed package.
_cwd: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def neutral_cwd(tmp_path_factory: pytest.TempPathFactory) -> None:
    _cwd[:] = [tmp_path_factory.mktemp("cwd")]


def mlpc(*args: str | Path, stdin: bytes = b"") -> Result:
    proc = run_cli(args, cwd=_cwd[0], stdin=stdin)
    result = Result(proc)
    assert "Traceback" not in result.err
    return result


def run(*args: str | Path, stdin: bytes = b"") -> Result:
    return mlpc("run", "--engine", "reference", *args, stdin=stdin)


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prog") / "echo.asm"
    path.write_text(ECHO_ASM)
    return path


def assert_one_line_error(result: Result, code: int, message: str) -> None:
    assert result.code == code
    assert result.out == ""
    assert result.err == message + "\n"


# --- running ----------------------------------------------------------------------------


def test_hello_dec(subleq_corpus: Path) -> None:
    result = run(subleq_corpus / "hello.dec")
    assert (result.code, result.out, result.err) == (0, HELLO_TEXT, "")


def test_hello_asm() -> None:
    result = run(HELLO_ASM)
    assert (result.code, result.out, result.err) == (0, HELLO_TEXT, "")


def test_hello_at_16_bits() -> None:
    result = run(HELLO_ASM, "--word-bits", "16")
    assert (result.code, result.out, result.err) == (0, HELLO_TEXT, "")


def test_json() -> None:
    result = run(HELLO_ASM, "--json")
    assert result.code == 0
    assert result.err == ""
    assert result.out.endswith("}\n") and result.out.count("\n") == 1
    data = result.json()
    assert list(data) == ["outputs", "tape", "text", "status", "detail", "steps", "iterations",
                          "engine"]
    assert data == {
        "outputs": {},
        "tape": [72, 101, 108, 108, 111, 44, 32, 87, 111, 114, 108, 100, 33, 10],
        "text": HELLO_TEXT,
        "status": "halted",
        "detail": "",
        "steps": 56,
        "iterations": 56,
        "engine": "reference",
    }


def test_words() -> None:
    result = run(HELLO_ASM, "--words")
    assert (result.code, result.out, result.err) == (0, HELLO_WORDS, "")


def test_concatenated_self_interpreter(subleq_corpus: Path) -> None:
    result = run(subleq_corpus / "self.dec", subleq_corpus / "hello.dec", "--json")
    data = result.json()
    assert (result.code, data["text"], data["steps"]) == (0, HELLO_TEXT, 7321)


@pytest.mark.parametrize(
    ("tape", "words"),
    [
        ("1,2,3", [1, 2, 3]),
        (" 4 , 5 ", [4, 5]),
        ("0x41,-0", [65, 0]),
        ("7,-1,8", [7]),  # -1 on the tape ends the echo early
        ("", []),
    ],
)
def test_tape(echo: Path, tape: str, words: list[int]) -> None:
    result = run(echo, "--tape", tape, "--json")
    assert result.code == 0
    data = result.json()
    assert (data["tape"], data["status"]) == (words, "halted")
    assert data["steps"] == echo_steps(len(words))


def test_tape_words_output(echo: Path) -> None:
    result = run(echo, "--tape=10,-20,30", "--words")
    # -20 is negative: the echo program stops there
    assert (result.code, result.out, result.err) == (0, "10\n", "")
    result = run(echo, "--tape=2147483646,0,99", "--words")
    assert (result.code, result.out, result.err) == (0, "2147483646 0 99\n", "")


def test_stdin(echo: Path) -> None:
    text = "héllo, €\nwörld\n"
    result = run(echo, "--stdin", stdin=text.encode())
    assert (result.code, result.out, result.err) == (0, text, "")
    data = run(echo, "--stdin", "--json", stdin=b"AB").json()
    assert (data["tape"], data["text"], data["steps"]) == ([65, 66], "AB", echo_steps(2))


def test_stdin_empty(echo: Path) -> None:
    result = run(echo, "--stdin", "--words")
    assert (result.code, result.out, result.err) == (0, "", "")


def test_no_tape_reads_end_of_tape(echo: Path) -> None:
    data = run(echo, "--json").json()
    assert (data["tape"], data["status"], data["steps"]) == ([], "halted", 7)


# --- step limit and faults ----------------------------------------------------------------


def test_max_steps(subleq_corpus: Path) -> None:
    result = run(subleq_corpus / "hello.dec", "--max-steps", "5", "--json")
    assert result.code == 4
    data = result.json()
    assert (data["status"], data["steps"], data["tape"], data["text"]) == (
        "step-limit", 5, [72], "H"
    )
    assert data["detail"] == "stopped after 5 steps (max_steps)"


def test_max_steps_text_mode(subleq_corpus: Path) -> None:
    result = run(subleq_corpus / "hello.dec", "--max-steps", "18")
    assert result.code == 4
    assert result.out == "He"
    assert result.err.startswith("mlpc: step-limit")
    assert result.err.count("\n") == 1


def test_max_steps_exact_boundary(subleq_corpus: Path) -> None:
    # hello.dec halts on its 167th step: a budget of exactly 167 is enough.
    assert run(subleq_corpus / "hello.dec", "--max-steps", "167").code == 0
    assert run(subleq_corpus / "hello.dec", "--max-steps", "166").code == 4
    assert run(subleq_corpus / "hello.dec", "--max-steps", "0", "--json").json()["steps"] == 0


def test_endless_loop_hits_the_limit(tmp_path: Path) -> None:
    prog = tmp_path / "loop.dec"
    prog.write_text("0 0 0\n")
    data = run(prog, "--max-steps", "1000", "--json").json()
    assert (data["status"], data["steps"]) == ("step-limit", 1000)


def test_fault_output_full(subleq_corpus: Path) -> None:
    result = run(subleq_corpus / "hello.dec", "--tape-out", "3", "--json")
    assert result.code == 3
    data = result.json()
    assert (data["status"], data["detail"], data["tape"], data["text"], data["steps"]) == (
        "fault", "output tape full", [72, 101, 108], "Hel", 40
    )


def test_fault_text_mode(subleq_corpus: Path) -> None:
    result = run(subleq_corpus / "hello.dec", "--tape-out", "3")
    assert (result.code, result.out) == (3, "Hel")
    assert result.err.startswith("mlpc: fault: output tape full")
    assert result.err.count("\n") == 1


@pytest.mark.parametrize(
    ("program", "detail", "steps"),
    [
        ("z z 100\nz: .word 0", "pc out of range", 1),
        ("-1 -1 0", "a == b == -1 (input and output at once)", 0),
        ("5000 0 0", "operand a out of range", 0),
        ("0 -7 0", "operand b out of range", 0),
    ],
)
def test_faults(tmp_path: Path, program: str, detail: str, steps: int) -> None:
    path = tmp_path / "f.asm"
    path.write_text(program + "\n")
    result = run(path, "--memory", "10", "--json")
    assert result.code == 3
    data = result.json()
    assert (data["status"], data["detail"], data["steps"]) == ("fault", detail, steps)


# --- errors in the program or its inputs: exit 1, one line -------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.dec"
    assert_one_line_error(run(missing), 1, f"error: {missing}: no such file")


def test_directory_as_file(tmp_path: Path) -> None:
    assert_one_line_error(run(tmp_path), 1, f"error: {tmp_path}: is a directory, not a file")


def test_non_integer_token(tmp_path: Path) -> None:
    prog = tmp_path / "bad.dec"
    prog.write_text("1 2 3\n4 five 6\n")
    result = run(prog)
    assert (result.code, result.out) == (1, "")
    # One message line with line:col, then the offending line and a caret under the column.
    assert result.err.splitlines() == [
        f"{prog}:2:3: error: expected an integer, found 'five'",
        "4 five 6",
        "  ^",
    ]


def test_unknown_label(tmp_path: Path) -> None:
    prog = tmp_path / "bad.asm"
    prog.write_text("x: x y -1\n")
    result = run(prog)
    assert (result.code, result.out) == (1, "")
    assert result.err.splitlines() == [
        f"{prog}:1:6: error: unknown label 'y'",
        "x: x y -1",
        "     ^",
    ]


def test_image_larger_than_memory(subleq_corpus: Path) -> None:
    result = run(subleq_corpus / "hello.dec", "--memory", "53")
    assert (result.code, result.out, result.err.count("\n")) == (1, "", 1)
    # The wording belongs to the CLI; it must name both sizes.
    assert result.err.startswith("error: ")
    assert "54" in result.err and "53" in result.err
    # hello.dec touches nothing past its image: memory of exactly its size is enough.
    result = run(subleq_corpus / "hello.dec", "--memory", "54")
    assert (result.code, result.out) == (0, HELLO_TEXT)


def test_non_utf8_file(tmp_path: Path) -> None:
    prog = tmp_path / "latin1.asm"
    prog.write_bytes(b"# caf\xe9\n0 0 -1\n")
    assert_one_line_error(run(prog), 1, f"error: {prog}:1: file is not valid UTF-8 text")


def test_empty_file(tmp_path: Path) -> None:
    # An empty image would be `0 0 0` over zeroed memory: an endless loop. It is an error.
    prog = tmp_path / "empty.dec"
    prog.write_text("")
    assert_one_line_error(run(prog), 1, f"error: {prog}: the program is empty (no words)")
    blank = tmp_path / "blank.asm"
    blank.write_text("# nothing here\n\n")
    assert_one_line_error(run(blank), 1, f"error: {blank}: the program is empty (no words)")


@pytest.mark.parametrize(
    ("tape", "message"),
    [
        ("1,x,3", "error: --tape: not an integer: 'x'"),
        ("1,,3", "error: --tape: not an integer: ''"),
        ("1.5", "error: --tape: not an integer: '1.5'"),
        (
            "2147483648",
            "error: input tape word 0 is 2147483648, outside the 32-bit range "
            "[-2147483648, 2147483647]",
        ),
    ],
)
def test_bad_tape(echo: Path, tape: str, message: str) -> None:
    assert_one_line_error(run(echo, "--tape", tape), 1, message)


def test_tape_longer_than_capacity(echo: Path) -> None:
    result = run(echo, "--tape", "1,2,3", "--tape-in", "2")
    assert_one_line_error(
        result, 1, "error: input tape has 3 words but its capacity is 2 (use --tape-in)"
    )
    assert run(echo, "--tape", "1,2,3", "--tape-in", "3").code == 0


def test_stdin_not_utf8(echo: Path) -> None:
    result = run(echo, "--stdin", stdin=b"\xff\xfe")
    assert_one_line_error(result, 1, "error: standard input is not valid UTF-8 text")


# --- usage errors: exit 2 ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["HELLO", "--bogus"], "error: mlpc: unrecognized arguments: --bogus"),
        ([], "error: mlpc run: the following arguments are required: PROG"),
        (
            ["HELLO", "--word-bits", "8"],
            "error: mlpc run: argument --word-bits: invalid choice: 8 (choose from 16, 32)",
        ),
        (
            ["HELLO", "--word-bits", "x"],
            "error: mlpc run: argument --word-bits: invalid int value: 'x'",
        ),
        (["HELLO", "--max-steps", "-1"],
         "error: mlpc run: argument --max-steps: must not be negative: '-1'"),
        (["HELLO", "--memory", "0"], "error: mlpc run: argument --memory: must be positive: '0'"),
        (["HELLO", "--memory", "lots"],
         "error: mlpc run: argument --memory: not an integer: 'lots'"),
        (["HELLO", "--tape", "1", "--stdin"],
         "error: mlpc run: argument --stdin: not allowed with argument --tape"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    args = [str(HELLO_ASM) if a == "HELLO" else a for a in args]
    assert_one_line_error(run(*args), 2, message)


def test_unknown_engine() -> None:
    result = mlpc("run", "--engine", "nope", HELLO_ASM)
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith("error: mlpc run: argument --engine: invalid choice: 'nope'")
    assert result.err.count("\n") == 1


def test_no_command() -> None:
    result = mlpc()
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith("error: mlpc: the following arguments are required: COMMAND")
    assert result.err.count("\n") == 1


def test_unknown_command() -> None:
    result = mlpc("frobnicate")
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith("error: mlpc: argument COMMAND: invalid choice: 'frobnicate'")


# --- mlpc asm ------------------------------------------------------------------------------


def test_asm_listing(subleq_corpus: Path) -> None:
    result = mlpc("asm", subleq_corpus / "hello.dec")
    assert (result.code, result.err) == (0, "")
    lines = result.out.splitlines()
    assert len(lines) == 18
    assert lines[0] == " " * 17 + "0:     12     12      3   ; M[12] -= M[12]; if <= 0 goto next"
    assert lines[4] == " " * 16 + "12:      0     -1     15   ; output M[0]"
    assert lines[10] == " " * 16 + "30:     36     12     -1   ; M[12] -= M[36]; if <= 0 goto halt"


def test_asm_listing_of_assembly() -> None:
    result = mlpc("asm", HELLO_ASM)
    assert (result.code, result.err) == (0, "")
    lines = result.out.splitlines()
    assert lines[0] == "loop:            0:     19     -1      3   ; output M[msg]"
    assert lines[2] == (
        "                 6:     15     18     12   ; M[count] -= M[one]; if <= 0 goto done"
    )
    assert lines[4] == (
        "done:           12:     17     17     -1   ; M[z] -= M[z]; if <= 0 goto halt"
    )


def test_asm_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.asm"
    assert_one_line_error(mlpc("asm", missing), 1, f"error: {missing}: no such file")
    assert mlpc("asm").code == 2


# --- the network's encoding and number type: --weights, --dtype ----------------------------


@pytest.mark.parametrize("engine", ["onnx", "numpy"])
def test_float64_runs_hello_like_int64(engine: str) -> None:
    results = {dtype: mlpc("run", HELLO_ASM, "--engine", engine, "--dtype", dtype, "--json")
               for dtype in ("int64", "float64")}
    for result in results.values():
        assert (result.code, result.err) == (0, "")
    assert results["float64"].json() == results["int64"].json()
    data = results["float64"].json()
    assert (data["text"], data["status"], data["steps"], data["engine"]) == (
        HELLO_TEXT, "halted", 56, engine)
    plain = mlpc("run", HELLO_ASM, "--dtype", "float64")
    assert (plain.code, plain.out, plain.err) == (0, HELLO_TEXT, "")


def test_float64_model_file(tmp_path: Path) -> None:
    model = tmp_path / "hello64.onnx"
    result = mlpc("compile", HELLO_ASM, "-o", model, "--dtype", "float64")
    assert result.code == 0, result.err
    assert result.err.startswith(f"wrote {model}: ")
    assert result.err.rstrip().endswith("families weights, float64")
    assert mlpc("inspect", model, "--json").json()["dtype"] == "float64"
    result = mlpc("run", model)
    assert (result.code, result.out, result.err) == (0, HELLO_TEXT, "")
    # the model has its number type and encoding: they are not run options
    assert_one_line_error(mlpc("run", model, "--dtype", "int64"), 2,
                          "error: --weights and --dtype are compile options: a compiled model "
                          "has its own")


@pytest.mark.parametrize("command", ["run", "compile"])
@pytest.mark.parametrize("weights", ["sparse", "dense"])
def test_float64_needs_the_families_encoding(tmp_path: Path, command: str,
                                             weights: str) -> None:
    out = tmp_path / "refused.onnx"
    args = ["-o", out] if command == "compile" else []
    result = mlpc(command, HELLO_ASM, *args, "--dtype", "float64", "--weights", weights,
                  "--memory", "64")
    assert_one_line_error(result, 1, "error: float64 needs --weights families (a sparse or "
                          "dense row sum adds terms whose partial sums pass 2^53)")
    assert not out.exists()


def test_weights_encodings_run_hello() -> None:
    for weights in ("families", "sparse", "dense"):
        result = mlpc("run", HELLO_ASM, "--weights", weights, "--memory", "64")
        assert (result.code, result.out, result.err) == (0, HELLO_TEXT, ""), weights
    result = mlpc("run", HELLO_ASM, "--weights", "dense")  # 1,057 words by default
    assert_one_line_error(result, 1, "error: --weights dense is for memories up to 512 words "
                          "(this one has 1057); use --weights families or sparse")


def test_unknown_dtype_and_weights() -> None:
    for option, value in (("--dtype", "float32"), ("--weights", "banded")):
        result = mlpc("run", HELLO_ASM, option, value)
        assert (result.code, result.out) == (2, "")
        assert result.err.startswith(f"error: mlpc run: argument {option}: invalid choice: "
                                     f"'{value}'")
        assert result.err.count("\n") == 1


def test_cli_choices_match_the_exporter() -> None:
    """The CLI repeats the exporter's choices and defaults so that it starts without
    importing onnx; they must not drift apart."""
    from mlpc.cli import common
    from mlpc.cli import compile as compile_command
    from mlpc.compiler.encodings import ExportOptions
    from mlpc.compiler.limits import DTYPES, WEIGHTS

    assert common.WEIGHTS == WEIGHTS and common.DTYPES == DTYPES
    defaults = ExportOptions()
    assert (common.WEIGHTS[0], common.DTYPES[0], compile_command.DEFAULT_UNROLL) == (
        defaults.weights, defaults.dtype, defaults.unroll)


@pytest.mark.parametrize("command", [["compile", "-o", "never.onnx"], ["run"],
                                     ["run", "--engine", "numpy"],
                                     ["run", "--engine", "reference"]])
def test_an_image_word_outside_the_word_range_is_refused_by_every_path(
        tmp_path: Path, command: list[str]) -> None:
    """A SUBLEQ image word past the W-bit range: the compiler refuses it as the engines do
    (the network's ranges, and so its exactness, hold for machine words only); nothing is
    wrapped, and no model is written."""
    image = tmp_path / "big.dec"
    image.write_text("0 0 -1 99999999999\n")
    result = Result(run_cli([command[0], str(image), *command[1:]], cwd=tmp_path))
    assert "Traceback" not in result.err
    assert_one_line_error(result, 1, "error: memory image word 3 is 99999999999, outside the "
                          "32-bit range [-2147483648, 2147483647]")
    assert not (tmp_path / "never.onnx").exists()
