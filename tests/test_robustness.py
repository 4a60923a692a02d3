"""Nothing a user types crashes mlpc (docs/language.md, README.md "The command line").

Every command gets malformed input of every kind, in a subprocess (`python -m mlpc.cli`) run
from an empty temporary directory: the message is one line naming the problem (a source
error may add the offending line and a caret under it), the exit status is the one
docs/machine.md gives (1 program or input errors, 2 usage, 3 trap or fault, 4 step limit), and no
traceback appears. Also here: the resource limits (`--memory` beyond what mlpc can build,
`--max-steps` of 0 and huge values, endless loops on every engine).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import onnx
import pytest
from conftest import run_cli
from onnx import TensorProto, helper

from mlpc.compiler.codegen import MAX_NETWORK_MEMORY

OK_TL = "input a;\noutput o;\no = a + 1;\n"
ECHO_TL = "output o;\nwrite(read());\no = read();\n"
LOOP_TL = "output o;\nwhile (1) { o += 1; }\n"
LOOP_DEC = "0 0 0\n"  # M[0] -= M[0] -> 0 <= 0: jump to 0, forever
SLOW = pytest.mark.slow  # the full engine-by-value matrices; a sample runs by default


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout.decode("utf-8", "replace")
        self.err = proc.stderr.decode("utf-8", "replace")

    @property
    def lines(self) -> list[str]:
        return self.err.splitlines()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("robust")
    (d / "ok.tl").write_text(OK_TL)
    (d / "echo.tl").write_text(ECHO_TL)
    (d / "loop.tl").write_text(LOOP_TL)
    (d / "loop.dec").write_text(LOOP_DEC)
    (d / "adir.tl").mkdir()
    (d / "adir.onnx").mkdir()
    return d


def mlpc(cwd: Path, *args: str, stdin: bytes = b"") -> Result:
    proc = run_cli(args, cwd=cwd, stdin=stdin)
    result = Result(proc)
    assert "Traceback" not in result.err, result.err
    return result


def assert_error(r: Result, code: int, *fragments: str) -> None:
    """Exit status `code`, a one-line message containing `fragments` (plus, for a source
    error, the source line and a caret line), nothing else on stderr."""
    assert r.code == code, (r.code, r.err)
    lines = r.lines
    assert lines, "no message"
    head = lines[0]
    assert head.startswith("error: ") or re.match(r"^[^:]+:\d+(:\d+)?: error: ", head), head
    for fragment in fragments:
        assert fragment in head, (fragment, head)
    if len(lines) > 1:
        assert len(lines) == 3 and re.fullmatch(r" *\^", lines[2]), lines
        assert re.match(r"^[^:]+:\d+:\d+: error: ", head)


def source_error(workdir: Path, name: str, text: str | bytes, *fragments: str,
                 line: int | None = None) -> Result:
    path = workdir / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    r = mlpc(workdir, "run", name, "--engine", "source")
    assert_error(r, 1, *fragments)
    if line is not None:
        assert r.lines[0].startswith(f"{name}:{line}:"), r.lines[0]
    return r


# --- malformed source: syntax errors at every kind of position -----------------------------

def _case(name: str, text: str, line: int, fragment: str, slow: bool = False) -> object:
    return pytest.param(f"{name}.tl", text, line, fragment, id=name,
                        marks=[SLOW] if slow else [])


SYNTAX = [
    _case("missing_operand", "output o;\no = (1 + ;\n", 2, "expected an expression"),
    _case("missing_semicolon", "output o;\no = 1\no = 2;\n", 2, "expected ';'"),
    _case("missing_paren", "output o;\no = (1 + 2;\n", 2, "error"),
    _case("extra_paren", "output o;\no = 1 + 2);\n", 2, "error", slow=True),
    _case("missing_brace", "output o;\nif (1) { o = 1;\n", 2, "expected '}' at end of file"),
    _case("extra_brace", "output o;\no = 1; }\n", 2, "error", slow=True),
    _case("if_without_braces", "output o;\nif (1) o = 1;\n", 2, "error"),
    _case("else_alone", "output o;\nelse { o = 1; }\n", 2, "error", slow=True),
    _case("bad_for_header", "output o;\nfor (var i = 0; i < 3) { }\n", 2, "error"),
    _case("keyword_as_name", "var while = 1;\n", 1, "error", slow=True),
    _case("declaration_in_expr", "output o;\no = var;\n", 2, "error", slow=True),
    _case("stray_character", "output o;\no = 1 @ 2;\n", 2, "error"),
    _case("dollar_in_name", "var a$ = 1;\n", 1, "error", slow=True),
    _case("func_without_body", "func f(a);\n", 1, "error"),
    _case("param_trailing_comma", "func f(a,) { }\n", 1, "error", slow=True),
    _case("call_trailing_comma", "func f(a) { return a; }\nf(1,);\n", 2, "error", slow=True),
    _case("empty_index", "var a[4];\na[] = 1;\n", 2, "error", slow=True),
    _case("assign_to_literal", "3 = 4;\n", 1, "error"),
    _case("assign_to_call", "func f() { return 1; }\nf() = 1;\n", 2, "error", slow=True),
    _case("unknown_operator", "var x;\nx <<<= 1;\n", 2, "unknown operator '<<<='"),
    _case("error_at_end_of_file", "output o;\no = 1 +", 2, "error"),
    _case("bad_escape_in_string", 'print("a\\q");\n', 1, "escape"),
    _case("bad_char_literal", "var c = 'ab';\n", 1, "error"),
    _case("empty_char_literal", "var c = '';\n", 1, "error", slow=True),
    _case("bad_hex_literal", "var c = 0xZZ;\n", 1, "integer literal"),
    _case("leading_zero_junk", "var c = 12abc;\n", 1, "integer literal"),
    _case("unterminated_string", 'output o;\nprint("abc);\n', 2, "unterminated string"),
    _case("unterminated_char", "var c = 'a;\n", 1, "error", slow=True),
    _case("unterminated_comment", "output o;\n/* open\no = 1;\n", 2, "unterminated comment"),
    _case("huge_literal", "output o;\no = 99999999999999999999999999999999999;\n", 2,
          "out of range"),
    _case("huge_hex_literal", "output o;\no = 0x1FFFFFFFFFFFFFFFFFFFF;\n", 2, "out of range",
          slow=True),
    _case("literal_just_too_big", "output o;\no = 2147483648;\n", 2, "out of range", slow=True),
    _case("huge_array", "var a[99999999999];\n", 1, "error"),
    _case("negative_array", "var a[-1];\n", 1, "error", slow=True),
    _case("array_size_not_constant", "input n;\nvar a[n];\n", 2, "error"),
    _case("undeclared", "output o;\no = zz;\n", 2, "zz"),
    _case("redeclared", "var x;\nvar x;\n", 2, "x", slow=True),
    _case("arity", "func f(a) { return a; }\nf(1, 2);\n", 2, "error"),
    _case("break_outside_loop", "break;\n", 1, "break"),
    _case("return_outside_function", "return 1;\n", 1, "error"),
    _case("nested_function", "func f() { func g() { } }\n", 1, "error", slow=True),
    _case("nul_byte", "output o;\no = 1;\x00\n", 2, "error"),
    _case("only_garbage", "}}}}\n", 1, "error", slow=True),
]


@pytest.mark.parametrize("name, text, line, fragment", SYNTAX)
def test_source_errors(workdir: Path, name: str, text: str, line: int, fragment: str) -> None:
    r = source_error(workdir, name, text, fragment, line=line)
    assert r.out == ""


def test_source_error_through_every_command(workdir: Path) -> None:
    (workdir / "syn.tl").write_text("output o;\no = (1 + ;\n")
    for args in (["run", "syn.tl"], ["run", "syn.tl", "--engine", "numpy"],
                 ["compile", "syn.tl", "-o", "syn.onnx"], ["asm", "syn.tl"],
                 ["trace", "syn.tl"], ["verify", "syn.tl"]):
        r = mlpc(workdir, *args)
        assert_error(r, 1, "syn.tl:2:10: error: expected an expression")
        assert r.lines[1:] == ["o = (1 + ;", "         ^"]
    assert not (workdir / "syn.onnx").exists()


@pytest.mark.parametrize("depth", [5000, pytest.param(100_000, marks=SLOW)])
def test_deeply_nested_parentheses(workdir: Path, depth: int) -> None:
    (workdir / "parens.tl").write_text("output o;\no = " + "(" * depth + "1" + ")" * depth
                                       + ";\n")
    r = mlpc(workdir, "run", "parens.tl", "--engine", "reference")
    assert (r.code, r.out, r.err) == (0, "o = 1\n", "")


@pytest.mark.parametrize("text", [
    "output o;\no = " + "-" * 5000 + "1;\n",
    "output o;\n" + "if (1) {" * 5000 + "}" * 5000 + "\n",
    "output o;\no = " + "(1 + " * 5000 + "1" + ")" * 5000 + ";\n",
    "output o;\no = " + "f(" * 5000 + "1" + ")" * 5000 + ";\n",
    "output o;\nvar a[2];\no = " + "a[" * 5000 + "0" + "]" * 5000 + ";\n",
], ids=["unary", "blocks", "binary", "calls", "indices"])
def test_deep_nesting_is_an_error_not_a_crash(workdir: Path, text: str) -> None:
    (workdir / "deep.tl").write_text(text)
    r = mlpc(workdir, "run", "deep.tl", "--engine", "source")
    assert_error(r, 1, "deep.tl:")


def test_long_flat_expression(workdir: Path) -> None:
    """A long chain of additions: either its value or a one-line error, never a crash."""
    (workdir / "flat.tl").write_text("output o;\no = " + "1 + " * 3000 + "1;\n")
    r = mlpc(workdir, "run", "flat.tl", "--engine", "source")
    if r.code == 0:
        assert r.out == "o = 3001\n"
    else:
        assert_error(r, 1, "flat.tl:2:")


# --- files: encodings, empty, missing, directories -------------------------------------------

@pytest.mark.parametrize("suffix", [".tl", ".dec", ".sq", ".asm"])
def test_non_utf8_file(workdir: Path, suffix: str) -> None:
    (workdir / f"bad{suffix}").write_bytes(b"output o;\n\xff\xfe\x80 o = 1;\n")
    commands = [["run", "--engine", "reference"]]
    if suffix == ".tl":
        commands += [["asm"], ["compile", "-o", "x.onnx"]]
    for command in commands:
        r = mlpc(workdir, command[0], f"bad{suffix}", *command[1:])
        assert_error(r, 1, f"bad{suffix}", "UTF-8")


def test_empty_tl_program_runs_everywhere(workdir: Path) -> None:
    (workdir / "empty.tl").write_text("")
    for engine in ("source", "reference", "numpy", "onnx"):
        r = mlpc(workdir, "run", "empty.tl", "--engine", engine, "--json")
        assert r.code == 0, r.err
        assert '"status": "halted"' in r.out


@pytest.mark.parametrize("suffix, text", [(".dec", ""), (".sq", "   \n\n"),
                                          (".asm", "# only a comment\n"), (".asm", "")])
def test_empty_image(workdir: Path, suffix: str, text: str) -> None:
    (workdir / f"empty{suffix}").write_text(text)
    r = mlpc(workdir, "run", f"empty{suffix}", "--engine", "reference")
    assert_error(r, 1, f"empty{suffix}", "empty")


@pytest.mark.parametrize("command", [
    ["run", "nothere.tl"], ["run", "nothere.dec", "--engine", "reference"],
    ["run", "nothere.onnx"], ["compile", "nothere.tl", "-o", "x.onnx"], ["asm", "nothere.asm"],
    ["inspect", "nothere.onnx"], ["trace", "nothere.tl"], ["verify", "nothere.dec"],
])
def test_missing_file(workdir: Path, command: list[str]) -> None:
    r = mlpc(workdir, *command)
    assert_error(r, 1, "nothere.", "no such file")


@pytest.mark.parametrize("command", [
    ["run", "adir.tl"], ["run", "adir.onnx"], ["compile", "adir.tl", "-o", "x.onnx"],
    ["asm", "adir.tl"], ["inspect", "adir.onnx"], ["trace", "adir.tl"],
])
def test_directory_given_as_file(workdir: Path, command: list[str]) -> None:
    r = mlpc(workdir, *command)
    assert_error(r, 1, "adir.", "directory")


# --- malformed .dec and assembly ---------------------------------------------------------------

IMAGES = [
    ("letters.dec", "1 2 x 3\n", "expected an integer"),
    ("float.dec", "1 2 3.5\n", "3.5"),
    ("too_big.dec", "0 0 99999999999999999999\n", "99999999999999999999"),
    ("word_too_big.dec", "0 0 2147483648\n", "2147483648"),
    ("unknown_label.asm", "a: b\n", "unknown label 'b'"),
    ("duplicate_label.asm", "a: 0 0 -1\na: 0 0 -1\n", "a"),
    ("bad_directive.asm", ".bogus 1\n", "error"),
    ("word_without_value.asm", "x: .word\n", "error"),
    ("label_only_colon.asm", ": 0 0 -1\n", "error"),
    ("huge_asm_word.asm", "0 0 -1\nx: .word 99999999999999999999999\n", "error"),
]


@pytest.mark.parametrize("name, text, fragment", IMAGES, ids=[i[0] for i in IMAGES])
def test_malformed_images(workdir: Path, name: str, text: str, fragment: str) -> None:
    (workdir / name).write_text(text)
    r = mlpc(workdir, "run", name, "--engine", "reference")
    assert_error(r, 1, fragment)


@pytest.mark.parametrize("command", [["asm"], ["compile", "-o", "img.onnx"], ["trace"],
                                     ["verify"]])
def test_malformed_image_every_command(workdir: Path, command: list[str]) -> None:
    (workdir / "letters.dec").write_text("1 2 x 3\n")
    r = mlpc(workdir, command[0], "letters.dec", *command[1:])
    assert_error(r, 1, "letters.dec:1:5: error: expected an integer, found 'x'")
    assert not (workdir / "img.onnx").exists()


# --- outputs, options, inputs ----------------------------------------------------------------

@pytest.mark.parametrize("target", ["nodir/x.onnx", "adir.onnx", "/proc/mlpc-test.onnx"])
def test_unwritable_output(workdir: Path, target: str) -> None:
    r = mlpc(workdir, "compile", "ok.tl", "-o", target)
    assert_error(r, 1, target, "cannot write")


def test_read_only_output_directory(workdir: Path) -> None:
    ro = workdir / "readonly"
    ro.mkdir(exist_ok=True)
    ro.chmod(0o500)
    try:
        r = mlpc(workdir, "compile", "ok.tl", "-o", "readonly/x.onnx")
        if r.code == 0:  # root ignores directory permissions
            assert (ro / "x.onnx").is_file()
        else:
            assert_error(r, 1, "readonly/x.onnx", "cannot write")
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("args, fragment", [
    (["run", "ok.tl", "--bogus"], "unrecognized arguments: --bogus"),
    (["compile", "ok.tl"], "-o"),
    (["compile", "ok.tl", "-o", "x.onnx", "--unroll", "0"], "--unroll"),
    (["run", "ok.tl", "--engine", "gpu"], "--engine"),
    (["run", "ok.tl", "--word-bits", "8"], "--word-bits"),
    (["run", "ok.tl", "--memory", "-5"], "--memory"),
    (["run", "ok.tl", "--memory", "lots"], "--memory"),
    (["run", "ok.tl", "--max-steps", "-1"], "--max-steps"),
    (["run", "ok.tl", "--max-steps", "1e6"], "--max-steps"),
    (["run", "ok.tl", "--tape-in", "-3"], "--tape-in"),
    (["run", "ok.tl", "--stack", "x"], "--stack"),
    (["run", "ok.tl", "--tape", "1", "--stdin"], "not allowed"),
    (["run", "ok.tl", "--input", "=1"], "NAME=VALUE"),
    (["run", "ok.tl", "--input", "a"], "NAME=VALUE"),
    (["run"], "PROG"),
    (["frobnicate"], "frobnicate"),
    ([], "COMMAND"),
])
def test_usage_errors(workdir: Path, args: list[str], fragment: str) -> None:
    r = mlpc(workdir, *args)
    assert_error(r, 2, fragment)


@pytest.mark.parametrize("engine", ["source", "onnx", pytest.param("reference", marks=SLOW),
                                    pytest.param("numpy", marks=SLOW)])
@pytest.mark.parametrize("value, fragment", [
    ("xyz", "not an integer"),
    ("1.5", "not an integer"),
    ("", "not an integer"),
    ("2147483648", "does not fit in 32 bits"),
    ("-2147483649", "does not fit in 32 bits"),
    ("99999999999999999999999", "does not fit in 32 bits"),
])
def test_bad_input_values(workdir: Path, engine: str, value: str, fragment: str) -> None:
    r = mlpc(workdir, "run", "ok.tl", "--engine", engine, "--input", f"a={value}")
    assert_error(r, 1, "input a", fragment)


def test_input_that_does_not_fit_16_bits(workdir: Path) -> None:
    r = mlpc(workdir, "run", "ok.tl", "--word-bits", "16", "--input", "a=32768")
    assert_error(r, 1, "input a = 32768 does not fit in 16 bits")
    r = mlpc(workdir, "run", "ok.tl", "--word-bits", "16", "--input", "a=-32768", "--engine",
             "reference")
    assert (r.code, r.out) == (0, "o = -32767\n")


@pytest.mark.parametrize("engine", ["source", "reference", "numpy", "onnx"])
@pytest.mark.parametrize("tape, fragment", [
    pytest.param("1,x", "not an integer", marks=SLOW),
    pytest.param("1,,2", "not an integer", marks=SLOW),
    ("1,2147483648", "2147483648"),
    ("99999999999999999999999", "99999999999999999999999"),
])
def test_bad_tape_words(workdir: Path, engine: str, tape: str, fragment: str) -> None:
    r = mlpc(workdir, "run", "echo.tl", "--engine", engine, "--tape", tape)
    assert_error(r, 1, fragment)


# --- models: corrupted, truncated, foreign ---------------------------------------------------

@pytest.fixture(scope="module")
def models(workdir: Path) -> Path:
    r = mlpc(workdir, "compile", "echo.tl", "-o", "echo.onnx")
    assert r.code == 0, r.err
    data = (workdir / "echo.onnx").read_bytes()
    (workdir / "truncated.onnx").write_bytes(data[: len(data) // 3])
    (workdir / "truncated_tail.onnx").write_bytes(data[:-7])
    corrupt = bytearray(data)
    for k in range(0, len(corrupt), 97):
        corrupt[k] ^= 0xA5
    (workdir / "corrupt.onnx").write_bytes(bytes(corrupt))
    (workdir / "empty.onnx").write_bytes(b"")
    (workdir / "text.onnx").write_text("this is not a model\n")
    node = helper.make_node("Add", ["x", "y"], ["z"])
    graph = helper.make_graph(
        [node], "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(workdir / "foreign.onnx"))
    return workdir


BAD_MODELS = ["truncated.onnx", "truncated_tail.onnx", "corrupt.onnx", "empty.onnx",
              "text.onnx", "foreign.onnx"]


@pytest.mark.parametrize("name", BAD_MODELS)
@pytest.mark.parametrize("command", [["run"], ["inspect"],
                                     pytest.param(["inspect", "--json"], marks=SLOW)])
def test_bad_models(models: Path, name: str, command: list[str]) -> None:
    r = mlpc(models, command[0], name, *command[1:])
    assert_error(r, 1)
    assert name in r.lines[0] or "not made by mlpc" in r.lines[0], r.lines[0]
    assert r.out == ""


@pytest.mark.parametrize("args, code, fragment", [
    (["view", "nothere.onnx"], 1, "no such file"),
    (["view", "truncated.onnx"], 1, "not a readable ONNX model"),
    (["view", "adir.onnx"], 1, "directory"),
    (["view", "echo.onnx", "--port", "99999999", "--no-browser"], 2, "--port"),
    (["view", "echo.onnx", "--port", "0", "--no-browser"], 2, "--port"),
])
def test_view_errors(models: Path, args: list[str], code: int, fragment: str) -> None:
    r = mlpc(models, *args)
    assert_error(r, code, fragment)


@pytest.mark.parametrize("args, code, fragment", [
    (["--tape", "1,2147483648"], 1, "2147483648"),
    (["--tape", "99999999999999999999999"], 1, "99999999999999999999999"),
    (["--input", "zz=1"], 1, "unknown input 'zz'"),
    (["--engine", "numpy"], 2, "onnx engine"),
    (["--tape", ",".join(["1"] * 300)], 1, "capacity"),
])
def test_model_run_errors(models: Path, args: list[str], code: int, fragment: str) -> None:
    r = mlpc(models, "run", "echo.onnx", *args)
    assert_error(r, code, fragment)


def test_model_runs_with_good_tape(models: Path) -> None:
    r = mlpc(models, "run", "echo.onnx", "--tape=-2147483648,2147483647", "--words")
    assert (r.code, r.out, r.err) == (0, "-2147483648\no = 2147483647\n", "")


# --- resource limits ---------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["run", "ok.tl", "--input", "a=1", "--engine", "reference"],
    ["run", "ok.tl", "--input", "a=1", "--engine", "onnx"],
    ["run", "ok.tl", "--input", "a=1", "--engine", "numpy"],
    ["run", "loop.dec", "--engine", "reference"],
    ["compile", "ok.tl", "-o", "huge.onnx"],
    ["trace", "ok.tl", "--input", "a=1"],
    ["verify", "ok.tl", "--input", "a=1"],
])
@pytest.mark.parametrize("memory", [MAX_NETWORK_MEMORY + 1, pytest.param(10**9, marks=SLOW),
                                    pytest.param(10**30, marks=SLOW)])
def test_memory_beyond_the_limit(workdir: Path, command: list[str], memory: int) -> None:
    r = mlpc(workdir, *command, "--memory", str(memory))
    assert_error(r, 1, f"--memory {memory} is too large", f"at most {MAX_NETWORK_MEMORY} words")
    assert not (workdir / "huge.onnx").exists()


@pytest.mark.parametrize("args, fragment", [
    (["run", "ok.tl", "--input", "a=1", "--tape-in", "99999999999"],
     f"--tape-in 99999999999 is too large: at most {MAX_NETWORK_MEMORY} words"),
    (["compile", "ok.tl", "-o", "huge.onnx", "--tape-in", str(MAX_NETWORK_MEMORY + 1)],
     "--tape-in"),
    (["compile", "ok.tl", "-o", "huge.onnx", "--unroll", "99999999999"],
     "--unroll 99999999999 is too large: at most 1024"),
])
def test_other_sizes_beyond_the_limits(workdir: Path, args: list[str], fragment: str) -> None:
    r = mlpc(workdir, *args)
    assert_error(r, 1, fragment)
    assert not (workdir / "huge.onnx").exists()


@pytest.mark.parametrize("engine", ["source", "reference", "numpy", "onnx"])
def test_max_steps_zero(workdir: Path, engine: str) -> None:
    r = mlpc(workdir, "run", "ok.tl", "--input", "a=1", "--engine", engine, "--max-steps", "0")
    assert (r.code, r.out) == (4, "o = 0\n")
    assert r.lines == ["mlpc: step-limit: stopped after 0 steps (max_steps)"]


def test_stock_onnxruntime_max_steps_zero(models: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(models / "echo.onnx"))
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {
        "tape": np.zeros((1, 0), dtype=np.int64),
        "max_steps": np.array(0, dtype=np.int64)}), strict=True))
    assert (int(out["status"][0]), int(out["steps"][0]), int(out["output_length"][0])) == (
        0, 0, 0)


@pytest.mark.parametrize("engine", ["source", "reference", "numpy", "onnx"])
@pytest.mark.parametrize("steps", ["99999999999999999999999",
                                   pytest.param(str((1 << 63) - 1), marks=SLOW)])
def test_max_steps_huge(workdir: Path, engine: str, steps: str) -> None:
    r = mlpc(workdir, "run", "ok.tl", "--input", "a=41", "--engine", engine, "--max-steps",
             steps)
    assert (r.code, r.out, r.err) == (0, "o = 42\n", "")


def test_compile_with_huge_max_steps(workdir: Path) -> None:
    r = mlpc(workdir, "compile", "ok.tl", "-o", "hugesteps.onnx", "--max-steps",
             "99999999999999999999999")
    assert r.code == 0, r.err
    r = mlpc(workdir, "run", "hugesteps.onnx", "--input", "a=1")
    assert (r.code, r.out) == (0, "o = 2\n")


@pytest.mark.parametrize("engine", ["source", "reference", "numpy", "onnx"])
def test_endless_loop_hits_the_step_limit(workdir: Path, engine: str) -> None:
    r = mlpc(workdir, "run", "loop.tl", "--engine", engine, "--max-steps", "300", "--json")
    assert r.code == 4, r.err
    assert '"status": "step-limit"' in r.out
    assert '"detail": "stopped after 300 steps (max_steps)"' in r.out
    assert '"steps": 300' in r.out
    assert r.err == ""  # with --json the object says it all
    r = mlpc(workdir, "run", "loop.tl", "--engine", engine, "--max-steps", "300")
    assert r.code == 4 and re.fullmatch(r"o = \d+\n", r.out), r.out
    assert r.lines == ["mlpc: step-limit: stopped after 300 steps (max_steps)"]


@pytest.mark.parametrize("engine", ["reference", "numpy", "onnx"])
def test_endless_dec_loop_hits_the_step_limit(workdir: Path, engine: str) -> None:
    r = mlpc(workdir, "run", "loop.dec", "--engine", engine, "--max-steps", "77",
             "--memory", "16")
    assert (r.code, r.out) == (4, "")
    assert r.lines == ["mlpc: step-limit: stopped after 77 steps (max_steps)"]


def test_endless_loop_model_default_budget(workdir: Path) -> None:
    r = mlpc(workdir, "compile", "loop.tl", "-o", "loop.onnx", "--max-steps", "500")
    assert r.code == 0, r.err
    r = mlpc(workdir, "run", "loop.onnx", "--max-steps", "123")
    assert (r.code, r.lines) == (4, ["mlpc: step-limit: stopped after 123 steps (max_steps)"])


def test_stdin_not_utf8(workdir: Path) -> None:
    r = mlpc(workdir, "run", "echo.tl", "--stdin", "--engine", "reference", stdin=b"\xff\xfe")
    assert_error(r, 1, "standard input", "UTF-8")
