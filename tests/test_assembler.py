"""The assembly format and the numeric loader of `compiler/assembler.py`, and the disassembler."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpc.compiler.assembler import (
    disassemble,
    load_image,
    parse_assembly,
    parse_numeric,
)
from mlpc.compiler.machine_config import MachineConfig, Status
from mlpc.errors import MlpcError, SourceError, SourcePos
from mlpc.runtime import reference
from mlpc.runtime.machine import initial_state

REPO = Path(__file__).resolve().parents[1]


def words_of(text: str) -> list[int]:
    return list(parse_assembly(text, "t.asm").words)


def source_error(text: str) -> SourceError:
    with pytest.raises(SourceError) as info:
        parse_assembly(text, "t.asm")
    return info.value


# --- instructions, labels and `?` ---------------------------------------------------------


def test_instruction_forms_and_labels() -> None:
    text = """\
top:    x y top     # 0: 3 operands
        x y         # 3: C = ? (the next instruction)
        y           # 6: y y ?
x:      .word 5     # 9
y:      .word 7     # 10
"""
    image = parse_assembly(text, "t.asm")
    assert image.words == (9, 10, 0, 9, 10, 6, 10, 10, 9, 5, 7)
    assert image.symbols == (("top", 0), ("x", 9), ("y", 10))
    assert image.symbol_table() == {"top": 0, "x": 9, "y": 10}
    assert image.source_path == "t.asm"
    assert [(s.start, s.end, s.line) for s in image.spans] == [
        (0, 3, 1), (3, 6, 2), (6, 9, 3), (9, 10, 4), (10, 11, 5)
    ]
    assert image.spans[0].note == "top:    x y top     # 0: 3 operands"


def test_several_labels_on_one_line_and_label_only_lines() -> None:
    text = "a: b:\nc:\n  d: 0 0 -1\ne:"
    image = parse_assembly(text, "t.asm")
    assert image.words == (0, 0, -1)
    assert image.symbols == (("a", 0), ("b", 0), ("c", 0), ("d", 0), ("e", 3))


def test_question_mark() -> None:
    # In an instruction `?` is the next instruction's address, whichever operand it is in;
    # in `.word` it is the address of the next word.
    assert words_of("0 0 0\n? ? ?\n.word ? ? ?+10") == [0, 0, 0, 6, 6, 6, 7, 8, 19]
    assert words_of("z z ?+3\nz z -1\nz: .word 0") == [6, 6, 6, 6, 6, -1, 0]


def test_signed_operands() -> None:
    # A sign after a space and before a term starts a new operand; otherwise it joins terms.
    assert words_of("x: 0 0 -1") == [0, 0, -1]
    assert words_of("x: 0 -1") == [0, -1, 3]
    assert words_of(".word 1 2 -3 +4") == [1, 2, -3, 4]
    assert words_of("x: .word 10 x-1 x - 1 x -1 x+1 x + 1 x +1") == [
        10, -1, -1, 0, -1, 1, 1, 0, 1
    ]
    assert words_of(".word - -3 --4") == [3, 4]
    assert words_of(".word 0x10 0XfF") == [16, 255]


def test_label_arithmetic() -> None:
    text = """\
start:  .word end - start     # the length of everything
        .word mid+1 mid + 2 -mid
mid:    .word start - end + 7
end:
"""
    assert words_of(text) == [5, 5, 6, -4, 2]


def test_label_used_before_definition() -> None:
    assert words_of("later later later\nlater: .word 9") == [3, 3, 3, 9]


def test_names_may_contain_dots_and_digits() -> None:
    image = parse_assembly("loop.1: _x2 _x2 loop.1\n_x2: .word 0", "t.asm")
    assert image.words == (3, 3, 0, 0)


# --- data directives -----------------------------------------------------------------------


def test_word_directive() -> None:
    assert words_of(".word 1\n.word 'A' '\\n' lbl\nlbl: .word -2147483648") == [
        1, 65, 10, 4, -2147483648
    ]


def test_string_directive() -> None:
    assert words_of('.string "Hi\\n"') == [72, 105, 10]
    assert words_of('.string ""\n.word 1') == [1]
    assert words_of(r'.string "a\tb\"c\\d\0\'"') == [97, 9, 98, 34, 99, 92, 100, 0, 39]
    assert words_of('.string "héllo €"') == [104, 233, 108, 108, 111, 32, 8364]


def test_comment_characters_inside_literals() -> None:
    # `#` and `;` inside a string or character literal do not start a comment.
    assert words_of('.string "a#b;c"   # a comment "x"') == [97, 35, 98, 59, 99]
    assert words_of(".word '#' ';' 1 ; comment") == [35, 59, 1]
    assert words_of('s: .string "#"\n.word s') == [35, 0]


def test_zero_directive() -> None:
    assert words_of(".zero 3\n.word 1\n.zero 0\n.zero 0x2\nend: .word end") == [
        0, 0, 0, 1, 0, 0, 6
    ]


def test_char_literals() -> None:
    assert words_of(r".word 'A' 'z' ' ' '\n' '\t' '\\' '\'' '\0' '€'") == [
        65, 122, 32, 10, 9, 92, 39, 0, 8364
    ]
    assert words_of(".word 'A'+1 'a' - 'A'") == [66, 32]


def test_comments() -> None:
    text = """\
# a full-line comment
; another style of comment
    # indented comment
x: 1 2 3 # trailing comment
   4 5 6 ; trailing comment
   7 8 9#no space before the comment
   10;11
"""
    assert words_of(text) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 12]


def test_empty_text() -> None:
    assert words_of("") == []
    assert words_of("# nothing\n\n   \n") == []


# --- errors --------------------------------------------------------------------------------


def test_unknown_label() -> None:
    err = source_error("x: .word 1\n   0 x nowhere\n")
    assert str(err) == "t.asm:2:8: error: unknown label 'nowhere'"
    assert (err.message, err.path, err.pos) == ("unknown label 'nowhere'", "t.asm", SourcePos(2, 8))
    assert err.render() == (
        "t.asm:2:8: error: unknown label 'nowhere'\n"
        "   0 x nowhere\n"
        "       ^"
    )


def test_unknown_label_in_word_and_expression() -> None:
    assert str(source_error(".word 1 2+missing")) == "t.asm:1:11: error: unknown label 'missing'"


def test_duplicate_label() -> None:
    err = source_error("x: .word 1\ny: .word 2\n  x: .word 3")
    assert str(err) == "t.asm:3:3: error: label 'x' defined twice"
    assert str(source_error("a: a: 0")) == "t.asm:1:4: error: label 'a' defined twice"


def test_bad_directive() -> None:
    assert str(source_error("  .wrod 1 2")) == "t.asm:1:3: error: unknown directive '.wrod'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (".string 5", "t.asm:1:1: error: .string takes one string literal"),
        ('.string "a" "b"', "t.asm:1:1: error: .string takes one string literal"),
        (".zero x", "t.asm:1:1: error: .zero takes one count"),
        (".zero -1", "t.asm:1:1: error: .zero takes one count"),
        (".word", "t.asm:1:1: error: .word needs at least one value"),
        ("1 2 3 4", "t.asm:1:1: error: an instruction has at most 3 operands, found 4"),
        ("0 0 -", "t.asm:1:5: error: operand missing after sign"),
        ("0 @ 0", "t.asm:1:3: error: unexpected character '@'"),
        ("0 : 1", "t.asm:1:3: error: unexpected ':'"),
        ('.string "open', "t.asm:1:9: error: unexpected character '\"'"),
        (".word 'ab'", "t.asm:1:7: error: unexpected character \"'\""),
        ("0 0 \"s\"", "t.asm:1:5: error: unexpected '\"s\"'"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    assert str(source_error(text)) == message


def test_non_integer_in_numeric_file() -> None:
    assert parse_numeric("1 -2 +3\n\n  4\t5\n", "p.dec") == [1, -2, 3, 4, 5]
    assert parse_numeric("", "p.dec") == []
    with pytest.raises(SourceError) as info:
        parse_numeric("1 2 3\n 4  5x 6\n", "p.dec")
    assert str(info.value) == "p.dec:2:5: error: expected an integer, found '5x'"
    assert info.value.render().splitlines() == [
        "p.dec:2:5: error: expected an integer, found '5x'",
        " 4  5x 6",
        "    ^",
    ]


@pytest.mark.parametrize("token", ["1.5", "0x10", "--1", "1e3", "١٢", "-", "abc"])
def test_numeric_file_accepts_only_decimal_integers(token: str) -> None:
    with pytest.raises(SourceError) as info:
        parse_numeric(f"7 {token}", "p.dec")
    assert str(info.value) == f"p.dec:1:3: error: expected an integer, found {token!r}"


# --- loading files -------------------------------------------------------------------------


def test_load_image_concatenates_and_offsets_symbols(tmp_path: Path) -> None:
    first = tmp_path / "a.dec"
    first.write_text("1 2 3\n4\n")
    second = tmp_path / "b.asm"
    second.write_text("here: here here -1\n")
    image = load_image([str(first), str(second)])
    # Each file is assembled at address 0 (the way self.dec reads the program placed after
    # it); the symbols give where the labelled words sit in the combined image.
    assert image.words == (1, 2, 3, 4, 0, 0, -1)
    assert image.symbols == (("here", 4),)
    assert image.source_path == f"{first}+{second}"


@pytest.mark.parametrize("suffix", [".asm", ".sasm", ".s"])
def test_assembly_suffixes(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"p{suffix}"
    path.write_text("x: x x -1\n")
    assert load_image([str(path)]).words == (0, 0, -1)


def test_load_image_errors(tmp_path: Path) -> None:
    with pytest.raises(MlpcError, match=r"^no program given$"):
        load_image([])
    missing = tmp_path / "missing.dec"
    binary = tmp_path / "bin.dec"
    binary.write_bytes(b"1 2\n3 \xff\n")
    empty = tmp_path / "empty.dec"
    empty.write_text("")
    comments = tmp_path / "comments.asm"
    comments.write_text("# only a comment\n")
    cases = [
        ([str(missing)], f"{missing}: no such file"),
        ([str(tmp_path)], f"{tmp_path}: is a directory, not a file"),
        ([str(binary)], f"{binary}:2: file is not valid UTF-8 text"),
        ([str(empty)], f"{empty}: the program is empty (no words)"),
        ([str(comments)], f"{comments}: the program is empty (no words)"),
        ([str(empty), str(comments)], f"{empty}+{comments}: the program is empty (no words)"),
    ]
    for paths, message in cases:
        with pytest.raises(MlpcError) as info:
            load_image(paths)
        assert str(info.value) == message


# --- examples/hello.asm --------------------------------------------------------------------


def test_hello_asm_prints_hello_world() -> None:
    image = load_image([str(REPO / "examples" / "hello.asm")])
    config = MachineConfig(memory=image.default_memory())
    assert config.memory == len(image.words) + 1024
    state = reference.run(config, initial_state(config, image.words), 10_000)
    assert state.status == Status.HALTED
    assert bytes(state.tape_out).decode() == "Hello, World!\n"
    # 14 characters x 4 instructions, minus the final jump back, plus the halt.
    assert state.steps == 56


# --- disassembler --------------------------------------------------------------------------


def test_disassemble_hello_dec(subleq_corpus: Path) -> None:
    words = parse_numeric((subleq_corpus / "hello.dec").read_text(), "hello.dec")
    lines = disassemble(words).splitlines()
    assert len(lines) == 18  # 54 words
    pad = " " * 16
    assert lines[0] == pad + " 0:     12     12      3   ; M[12] -= M[12]; if <= 0 goto next"
    assert lines[4] == pad + "12:      0     -1     15   ; output M[0]"
    assert lines[10] == pad + "30:     36     12     -1   ; M[12] -= M[36]; if <= 0 goto halt"
    assert lines[11] == pad + "33:     37     37      0   ; M[37] -= M[37]; if <= 0 goto 0"
    assert lines[17] == pad + "51:     33     10     53   ; M[10] -= M[33]; if <= 0 goto 53"


def test_disassemble_names_and_special_forms() -> None:
    words = [-1, 7, 3, 7, -1, 6, -1, -1, 0, 7]
    listing = disassemble(words, {"start": 0, "x": 7})
    assert listing.splitlines() == [
        "start:           0:     -1      7      3   ; M[x] <- input",
        "                 3:      7     -1      6   ; output M[x]",
        "                 6:     -1     -1      0   ; faults: a == b == -1",
        "                 9:      7",
    ]
