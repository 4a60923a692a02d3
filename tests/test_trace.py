"""`mlpc trace`: exact trace lines for hello.asm and a small .tl program (cell names, macro
instructions, source lines), the --from/--to window, --json, faults, input and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlpc.cli import main
from mlpc.compiler.driver import load_program
from mlpc.compiler.options import CompileOptions
from mlpc.runtime.trace import CellNames, output_summary

REPO = Path(__file__).resolve().parents[1]
HELLO = str(REPO / "examples" / "hello.asm")
HELLO_SRC = {
    12: "; 12: loop:   ptr: msg -1         # output M[ptr], the current character",
    13: "; 13: minus_one ptr       # ptr -= -1: point at the next character",
    14: "; 14: one count done      # count -= 1; when no characters are left, go to done",
    15: "; 15: z z loop            # z - z = 0 <= 0: jump back to loop",
    16: "; 16: done:   z z -1              # jump to -1: halt",
}
ARRAY_TL = """\
input n;
output r;
var buf[3];
buf[1] = n;
r = buf[1] / 2;
"""


def trace(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["trace", *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_hello_first_steps(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = trace(capsys, HELLO, "--steps", "5")
    assert status == 0 and err == ""
    assert out.splitlines() == [
        ";  step     pc:      a      b      c  line  changes",
        HELLO_SRC[12],
        "      1      0:     19     -1      3    12  out 72 'H'",
        HELLO_SRC[13],
        "      2      3:     16      0      6    13  loop/ptr: 19 -> 20",
        HELLO_SRC[14],
        "      3      6:     15     18     12    14  count: 14 -> 13",
        HELLO_SRC[15],
        "      4      9:     17     17      0    15  jump 0",
        HELLO_SRC[12],
        "      5      0:     20     -1      3    12  out 101 'e'",
        '; still running after 5 steps (pc 3); output "He"',
    ]


def test_hello_window_at_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = trace(capsys, HELLO, "--from", "53", "--to", "100")
    assert status == 0
    assert out.splitlines() == [
        ";  step     pc:      a      b      c  line  changes",
        HELLO_SRC[12],
        "     53      0:     32     -1      3    12  out 10 '\\n'",
        HELLO_SRC[13],
        "     54      3:     16      0      6    13  loop/ptr: 32 -> 33",
        HELLO_SRC[14],
        "     55      6:     15     18     12    14  count: 1 -> 0, jump 12",
        HELLO_SRC[16],
        "     56     12:     17     17     -1    16  halt",
        '; halted after 56 steps; output "Hello, World!\\n"',
    ]


def test_window_past_the_end_shows_only_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = trace(capsys, HELLO, "--from", "500")
    assert status == 0
    assert out.splitlines() == [
        ";  step     pc:      a      b      c  line  changes",
        '; halted after 56 steps; output "Hello, World!\\n"',
    ]


def _row(words: tuple[int, ...], step: int, pc: int, line: int | str, macro: str,
         effects: str = "") -> str:
    """An expected trace line; the instruction words come from the image, so the test does not
    pin the compiler's data layout (which moves as the lowering improves)."""
    a, b, c = words[pc : pc + 3]
    return f"{step:>7} {pc:>6}: {a:>6} {b:>6} {c:>6}  {line:>4}  {macro:<28}  {effects}".rstrip()


TL_HEADER = ";  step     pc:      a      b      c  line  macro                         changes"


def test_tl_program_names_macros_and_source_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "arr.tl"
    src.write_text(ARRAY_TL)
    words = load_program([str(src)], CompileOptions()).image.words
    status, out, _ = trace(capsys, str(src), "--input", "n=9", "--to", "9")
    assert status == 0
    assert out.splitlines() == [
        TL_HEADER,
        "; 4: buf[1] = n;",
        _row(words, 1, 0, 4, "MOV buf+1, n"),
        _row(words, 2, 3, 4, "MOV buf+1, n", "$Z: 0 -> -9"),
        _row(words, 3, 6, 4, "MOV buf+1, n", "buf+1: 0 -> 9"),
        _row(words, 4, 9, 4, "MOV buf+1, n", "$Z: -9 -> 0"),
        "; 5: r = buf[1] / 2;",
        _row(words, 5, 12, 5, "MOV $cdiv.2.r, buf+1"),  # division by a constant: its routine
        _row(words, 6, 15, 5, "MOV $cdiv.2.r, buf+1", "$Z: 0 -> -9"),
        _row(words, 7, 18, 5, "MOV $cdiv.2.r, buf+1", "$cdiv.2.r: 0 -> 9"),
        _row(words, 8, 21, 5, "MOV $cdiv.2.r, buf+1", "$Z: -9 -> 0"),
        _row(words, 9, 24, 5, "CALL $cdiv.2 (ra $cdiv.2.ra)"),
        "; still running after 9 steps (pc 27); r = 0",
    ]


def test_tl_program_from_start_to_halt(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    src = tmp_path / "tiny.tl"
    src.write_text("input x;\noutput y;\ny = x + 1;\ny = y - 3;\n")
    words = load_program([str(src)], CompileOptions()).image.words
    status, out, _ = trace(capsys, str(src), "--input", "x=5")
    assert status == 0
    assert out.splitlines() == [
        TL_HEADER,
        "; 3: y = x + 1;",
        _row(words, 1, 0, 3, "MOV y, x"),
        _row(words, 2, 3, 3, "MOV y, x", "$Z: 0 -> -5"),
        _row(words, 3, 6, 3, "MOV y, x", "y: 0 -> 5"),
        _row(words, 4, 9, 3, "MOV y, x", "$Z: -5 -> 0"),
        _row(words, 5, 12, 3, "ADD y, #1", "y: 5 -> 6"),
        "; 4: y = y - 3;",
        _row(words, 6, 15, 4, "SUB y, #3", "y: 6 -> 3"),
        _row(words, 7, 18, "", "HALT", "halt"),
        "; halted after 7 steps; y = 3",
    ]


def test_cell_names_from_symbols_and_listing(tmp_path: Path) -> None:
    src = tmp_path / "arr.tl"
    src.write_text(ARRAY_TL)
    image = load_program([str(src)], CompileOptions()).image
    names = CellNames(image)
    symbols = image.symbol_table()
    assert names.name(symbols["n"]) == "n"
    assert names.name(symbols["buf"]) == "buf"
    assert names.name(symbols["buf"] + 2) == "buf+2"
    assert names.name(0) is None and names.label(0) == "M[0]"
    assert names.label(image.trap.code_address) == "$trap_code"  # type: ignore[union-attr]
    assert names.address_of("r") == symbols["r"]
    assert names.address_of("nothing") is None


def test_sq_image_has_no_source_columns(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    # M[9] <- input; output M[9]; M[10] -= M[11] (1 - 2 = -1 <= 0) -> halt
    prog = tmp_path / "io.sq"
    prog.write_text("-1 9 3\n9 -1 6\n11 10 -1\n0 1 2\n")
    status, out, _ = trace(capsys, str(prog), "--tape", "65")
    assert status == 0
    assert out.splitlines() == [
        ";  step     pc:      a      b      c  changes",
        "      1      0:     -1      9      3  in 65 -> M[9]",
        "      2      3:      9     -1      6  out 65 'A'",
        "      3      6:     11     10     -1  M[10]: 1 -> -1, halt",
        '; halted after 3 steps; output "A"',
    ]


def test_fault_is_summed_up(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    prog = tmp_path / "f.sq"
    prog.write_text("0 0 3 7 0 0\n")  # the second instruction's a = 7 is outside memory
    status, out, _ = trace(capsys, str(prog), "--memory", "6")
    assert status == 0
    assert out.splitlines() == [
        ";  step     pc:      a      b      c  changes",
        "      1      0:      0      0      3",
        "; fault: operand a out of range at pc 3 after 1 step",
    ]


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = trace(capsys, HELLO, "--from", "2", "--to", "3", "--json")
    assert status == 0
    data = json.loads(out)
    assert data["trace"] == [
        {"step": 2, "pc": 3, "instruction": [16, 0, 6], "macro": "", "line": 13,
         "source": "minus_one ptr       # ptr -= -1: point at the next character",
         "changes": [{"address": 0, "name": "loop/ptr", "old": 19, "new": 20}],
         "input": None, "output": None, "next_pc": 6},
        {"step": 3, "pc": 6, "instruction": [15, 18, 12], "macro": "", "line": 14,
         "source": "one count done      # count -= 1; when no characters are left, go to done",
         "changes": [{"address": 18, "name": "count", "old": 14, "new": 13}],
         "input": None, "output": None, "next_pc": 9},
    ]
    assert {k: data[k] for k in ("from", "to", "status", "steps", "pc", "tape", "text")} == {
        "from": 2, "to": 3, "status": "step-limit", "steps": 3, "pc": 9, "tape": [72],
        "text": "H"}


def test_output_summary() -> None:
    assert output_summary([72, 105, 10]) == 'output "Hi\\n"'
    assert output_summary([65, -1]) == "output (2 words): 65 -1"
    assert output_summary([66] * 61) == f'output "{"B" * 60}" ...'
    assert output_summary([-5] * 17) == "output (17 words): " + " ".join(["-5"] * 16) + " ..."


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--from", "5", "--to", "4"], 2, "error: --to 4 is before --from 5\n"),
        (["--cells", "count"], 2,
         "error: --cells chooses what --plot draws: give --plot OUT.png too\n"),
        (["--from", "0"], 2, "error: mlpc trace: argument --from: must be positive: '0'\n"),
        (["--input", "x=1"], 1, "error: unknown input 'x' (the program's inputs: none)\n"),
    ],
)
def test_errors(capsys: pytest.CaptureFixture[str], args: list[str], status: int,
                message: str) -> None:
    assert trace(capsys, HELLO, *args) == (status, "", message)


def test_a_model_is_read_for_its_program(capsys: pytest.CaptureFixture[str]) -> None:
    """(tests/test_cli_inputs.py traces real models)"""
    assert trace(capsys, "model.onnx") == (1, "", "error: model.onnx: no such file\n")
    assert trace(capsys, HELLO, "model.onnx") == (
        2, "", "error: mlpc trace takes program files (.tl, .sq/.dec, .asm) or one compiled "
        "MODEL.onnx on its own\n")
