"""`mlpc run PROG.tl --engine source` as a user runs it: in a subprocess, checking stdout,
stderr and the exit status (docs/machine.md), for runs that halt, trap, fault or run out of
steps, and for programs and inputs with errors (`file:line:col: error: ...` plus the caret
line, exit status 1, never a traceback)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from tl_cases import CASES_BY_NAME

GCD = """\
// gcd.tl
input a, b;
output g;
while (b != 0) { var t = a % b; a = b; b = t; }
g = a;
print("gcd = ", g, "\\n");
"""


def mlpc(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(args, stdin=stdin or b"", text=True)


def write(tmp_path: Path, text: str, name: str = "prog.tl") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_gcd_halts(tmp_path: Path) -> None:
    prog = write(tmp_path, GCD)
    result = mlpc("run", prog, "--engine", "source", "--input", "a=12", "--input", "b=18")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "gcd = 6\ng = 6\n"


def test_json_report(tmp_path: Path) -> None:
    prog = write(tmp_path, GCD)
    result = mlpc("run", prog, "--engine", "source", "--input", "a=0x30", "--input", "b=-18",
                  "--json")
    assert (result.returncode, result.stderr) == (0, "")
    # 48 % -18 = 12, -18 % 12 = -6, 12 % -6 = 0: g = -6
    assert json.loads(result.stdout) == {
        "outputs": {"g": -6},
        "tape": [ord(c) for c in "gcd = -6\n"],
        "text": "gcd = -6\n",
        "status": "halted",
        "detail": "",
        # 2 declarations + while (1 + 4 tests + 3 bodies of 4 statements) + g = a + print
        "steps": 2 + 1 + 4 + 3 * 4 + 2,
        "iterations": 2 + 1 + 4 + 3 * 4 + 2,  # one per step: the source engine has no network
        "engine": "source",
    }


def test_tape_and_words(tmp_path: Path) -> None:
    case = CASES_BY_NAME["bubble_sort_from_tape"]
    prog = write(tmp_path, case.source)
    result = mlpc("run", prog, "--engine", "source", "--tape", "5, 3,9,1,7", "--words")
    assert (result.returncode, result.stdout, result.stderr) == (0, "1 3 5 7 9\n", "")


def test_stdin_tape(tmp_path: Path) -> None:
    case = CASES_BY_NAME["uppercase_echo"]
    prog = write(tmp_path, case.source)
    result = mlpc("run", prog, "--engine", "source", "--stdin", stdin="hello")
    assert (result.returncode, result.stdout, result.stderr) == (0, "HELLO", "")


def test_sixteen_bit_words(tmp_path: Path) -> None:
    prog = write(tmp_path, "input a;\noutput r;\nr = a + 1;\nprint(r);\n")
    result = mlpc("run", prog, "--engine", "source", "--word-bits", "16", "--input", "a=32767")
    assert (result.returncode, result.stdout, result.stderr) == (0, "-32768\nr = -32768\n", "")


# --- traps, faults, step limit: exit status 3 or 4, the reason on stderr -----------------


def test_division_by_zero_trap(tmp_path: Path) -> None:
    prog = write(tmp_path, "output q;\nq = 10;\nq = q / 0;\n")
    result = mlpc("run", prog, "--engine", "source")
    assert result.returncode == 3
    assert result.stdout == "q = 10\n"
    assert result.stderr == "mlpc: trap: division by zero at line 3 (after 3 steps)\n"


def test_trap_json(tmp_path: Path) -> None:
    case = CASES_BY_NAME["trap_index_in_loop"]
    prog = write(tmp_path, case.source)
    result = mlpc("run", prog, "--engine", "source", "--json")
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert (report["status"], report["detail"], report["outputs"]) == (
        "trap", "index out of range at line 4", {"n": 3})


def test_stack_overflow_trap(tmp_path: Path) -> None:
    prog = write(tmp_path, CASES_BY_NAME["trap_stack_overflow"].source)
    result = mlpc("run", prog, "--engine", "source")
    assert result.returncode == 3
    assert result.stdout == "r = 0\n"
    # the compiled program's stack: each recursive call saves one word (the return address)
    # and the default stack holds 256. 2 declarations + the assignment + 257 calls (down(0)
    # from the top level saves nothing) and their returns + the 258th call
    assert result.stderr == "mlpc: trap: stack overflow at line 3 (after 518 steps)\n"


def test_output_tape_full_fault(tmp_path: Path) -> None:
    prog = write(tmp_path, 'print("hello");\n')
    result = mlpc("run", prog, "--engine", "source", "--tape-out", "2")
    assert (result.returncode, result.stdout) == (3, "he")
    assert result.stderr == "mlpc: fault: output tape full (after 1 steps)\n"


def test_step_limit(tmp_path: Path) -> None:
    prog = write(tmp_path, "output n;\nwhile (1) { n += 1; }\n")
    result = mlpc("run", prog, "--engine", "source", "--max-steps", "9")
    assert result.returncode == 4
    # output, while, then (test, block, n += 1) twice: 8 steps; the 3rd test is the 9th
    assert result.stdout == "n = 2\n"
    assert result.stderr == (
        "mlpc: step-limit: stopped after 9 steps (max_steps)\n"
    )


# --- errors in the program: exit status 1, the message and caret on stderr ---------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("output x;\nx = 1 +;\n", "2:8: error: expected an expression, found ';'\n"
                                  "x = 1 +;\n       ^"),
        ("while (1) {\n  x = 1;\n}\n", "2:3: error: undeclared name 'x'\n  x = 1;\n  ^"),
        ("func f(a) { }\nf();\n", "2:1: error: function 'f' takes 1 argument, but 0 were "
                                  "given\nf();\n^"),
        ("var n = 2;\nvar a[n];\n", "2:7: error: array size must be a constant expression "
                                    "('n' is a variable)\nvar a[n];\n      ^"),
        ("break;\n", "1:1: error: 'break' outside a loop\nbreak;\n^"),
        ('print("abc);\n', "1:7: error: unterminated string literal\nprint(\"abc);\n      ^"),
        ("x = 1; /* no end\n", "1:8: error: unterminated comment\nx = 1; /* no end\n"
                               "       ^"),
        ("var x = " + "-" * 300 + "1;\n", None),
    ],
)
def test_program_errors(tmp_path: Path, source: str, message: str | None) -> None:
    prog = write(tmp_path, source)
    result = mlpc("run", prog, "--engine", "source")
    assert (result.returncode, result.stdout) == (1, "")
    assert "Traceback" not in result.stderr
    if message is None:
        assert result.stderr.startswith(f"{prog}:1:")
        assert "error: nesting too deep" in result.stderr
    else:
        assert result.stderr == f"{prog}:{message}\n"


def test_missing_input(tmp_path: Path) -> None:
    prog = write(tmp_path, GCD)
    result = mlpc("run", prog, "--engine", "source", "--input", "a=1")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: missing input: b (set with --input NAME=VALUE)\n"


def test_unknown_input(tmp_path: Path) -> None:
    prog = write(tmp_path, "input x;\n")
    result = mlpc("run", prog, "--engine", "source", "--input", "x=1", "--input", "y=2")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: unknown input 'y' (the program's inputs: x)\n"


def test_input_out_of_range(tmp_path: Path) -> None:
    prog = write(tmp_path, "input x;\n")
    result = mlpc("run", prog, "--engine", "source", "--input", "x=2147483648")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: input x = 2147483648 does not fit in 32 bits\n"


def test_tape_longer_than_capacity(tmp_path: Path) -> None:
    prog = write(tmp_path, "halt;\n")
    result = mlpc("run", prog, "--engine", "source", "--tape", "1,2,3", "--tape-in", "2")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "error: input tape has 3 words but its capacity is 2 (use --tape-in)\n"
    )


def test_source_engine_needs_a_tl_program(tmp_path: Path) -> None:
    prog = write(tmp_path, "0 0 -1\n", name="halt.sq")
    result = mlpc("run", prog, "--engine", "source")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: the source engine runs .tl programs only\n"


def test_missing_file(tmp_path: Path) -> None:
    prog = str(tmp_path / "absent.tl")
    result = mlpc("run", prog, "--engine", "source")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: {prog}: no such file\n"
